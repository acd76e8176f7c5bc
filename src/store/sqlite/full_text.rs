//! The full-text index of turns (`store.full_text`): over what callers said
//! (the default), over callers and system replies, or none. FTS5 with the
//! trigram tokenizer, so substring search works for Chinese as for English;
//! kept exact by the store in the same transaction as the turns it indexes.

use crate::config::FullText;

/// The SQL of the index, for each mode.
impl FullText {
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

    /// Indexes a turn written: its rowid, then its columns, as parameters.
    /// Static text: this runs for every turn written.
    pub(super) fn insert_sql(self) -> &'static str {
        match self {
            FullText::Off => "",
            FullText::Callers => "INSERT INTO record_details_fts (rowid, user_saying) VALUES (?1, ?2)",
            FullText::All => "INSERT INTO record_details_fts (rowid, user_saying, system_reply) VALUES (?1, ?2, ?3)",
        }
    }

    /// Takes the turns of the record of rowid `?1` out of the index, before they are deleted.
    pub(super) fn delete_sql(self) -> &'static str {
        match self {
            FullText::Off => "",
            FullText::Callers => {
                "INSERT INTO record_details_fts (record_details_fts, rowid, user_saying) \
                 SELECT 'delete', id, user_saying FROM turn_rows WHERE record_id = ?1"
            }
            FullText::All => {
                "INSERT INTO record_details_fts (record_details_fts, rowid, user_saying, system_reply) \
                 SELECT 'delete', id, user_saying, system_reply FROM turn_rows WHERE record_id = ?1"
            }
        }
    }
}
