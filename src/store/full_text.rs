//! The full-text index of turns (`store.full_text`): over what callers said
//! (the default), over callers and system replies, or none. FTS5 with the
//! trigram tokenizer, so substring search works for Chinese as for English;
//! kept exact by the store in the same transaction as the turns it indexes.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullText {
    Off,
    /// `user_saying`: what callers said. System replies are the bot's own
    /// templated text, and indexing them costs about four times as much.
    Callers,
    /// `user_saying` and `system_reply`.
    All,
}

impl FullText {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "callers" => Ok(FullText::Callers),
            "all" => Ok(FullText::All),
            "off" => Ok(FullText::Off),
            // `full_text = true/false` of earlier releases.
            "true" => Ok(FullText::All),
            "false" => Ok(FullText::Off),
            other => Err(format!("must be \"callers\", \"all\" or \"off\", found {other:?}")),
        }
    }

    /// The indexed columns of `record_details`.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            FullText::Off => &[],
            FullText::Callers => &["user_saying"],
            FullText::All => &["user_saying", "system_reply"],
        }
    }

    /// The mode an existing index was built for, from its SQL.
    pub(super) fn of_sql(sql: &str) -> Self {
        if sql.contains("system_reply") { FullText::All } else { FullText::Callers }
    }

    /// Creates the index and fills it from the stored turns. `content="…"`
    /// is written without spaces: that is how Datasette recognises the index.
    pub(super) fn create_sql(self) -> String {
        format!(
            "CREATE VIRTUAL TABLE record_details_fts USING fts5 ({}, content=\"record_details\", \
             content_rowid = 'rowid', tokenize = 'trigram');\n\
             INSERT INTO record_details_fts (record_details_fts) VALUES ('rebuild');",
            self.columns().join(", ")
        )
    }

    /// Indexes the turn just inserted; its columns as parameters. Static
    /// text: this runs for every turn written.
    pub(super) fn insert_sql(self) -> &'static str {
        match self {
            FullText::Off => "",
            FullText::Callers => "INSERT INTO record_details_fts (rowid, user_saying) VALUES (last_insert_rowid(), ?1)",
            FullText::All => {
                "INSERT INTO record_details_fts (rowid, user_saying, system_reply) VALUES (last_insert_rowid(), ?1, ?2)"
            }
        }
    }

    /// Takes the turns of record `?1` out of the index, before they are deleted.
    pub(super) fn delete_sql(self) -> &'static str {
        match self {
            FullText::Off => "",
            FullText::Callers => {
                "INSERT INTO record_details_fts (record_details_fts, rowid, user_saying) \
                 SELECT 'delete', rowid, user_saying FROM record_details WHERE log_id = ?1"
            }
            FullText::All => {
                "INSERT INTO record_details_fts (record_details_fts, rowid, user_saying, system_reply) \
                 SELECT 'delete', rowid, user_saying, system_reply FROM record_details WHERE log_id = ?1"
            }
        }
    }
}

impl fmt::Display for FullText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FullText::Off => "off",
            FullText::Callers => "callers",
            FullText::All => "all",
        })
    }
}
