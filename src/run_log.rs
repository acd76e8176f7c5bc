//! The run log's words: the figures of a pass (one type, counted while the
//! pass runs, written to `sync_runs` by column name, printed in one line,
//! fed to the metrics), how a pass ended, and the status built from the log.

use std::fmt;

use serde::Serialize;

use crate::keys::{KeyState, SkippedWindow, StreamCursor};
use crate::platform::Verified;

/// Declares the figures once: the struct, its column names and its values.
macro_rules! figures {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// The figures of one pass; each is a `sync_runs` column of the same name.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
        pub struct Figures {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl Figures {
            /// The `sync_runs` columns, in the order of [`Figures::values`].
            pub const COLUMNS: &'static [&'static str] = &[$(stringify!($name)),*];

            pub fn values(&self) -> Vec<u64> {
                vec![$(self.$name),*]
            }

            /// The inverse of [`Figures::values`].
            pub fn from_values(values: &[u64]) -> Self {
                let mut it = values.iter().copied();
                Self { $($name: it.next().unwrap_or(0),)* }
            }

            pub fn add(&mut self, other: &Figures) {
                $(self.$name += other.$name;)*
            }
        }
    };
}

figures! {
    /// Keys read.
    keys,
    /// Windows completed (a point key's key-only query counts as one).
    windows,
    pages,
    records_fetched,
    inserted,
    updated,
    unchanged,
    stale,
    failed_windows,
    /// Windows read again because they came back short of the server's total.
    rereads,
    /// HTTP requests, token requests included.
    requests,
    retries,
    /// Records whose text held NUL characters, stored as U+FFFD (the
    /// original kept in `raw_json` / `extra_json`).
    nul_replaced,
}

impl Figures {
    /// `(name, value)` pairs, for the metrics.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, u64)> {
        Self::COLUMNS.iter().copied().zip(self.values())
    }
}

impl fmt::Display for Figures {
    /// "3 keys, 5 windows, …, 0 retries".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.pairs().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{value} {}", name.replace('_', " "))?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassStatus {
    /// Every window committed.
    Ok,
    /// Some windows failed; their keys' cursors stayed put.
    Partial,
    /// The pass could not go on (credentials refused, store failure).
    Failed,
    /// Stopped by a shutdown request; committed pages stay.
    Interrupted,
    /// Nothing to read: a keys file with no valid key yet.
    Skipped,
}

impl PassStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PassStatus::Ok => "ok",
            PassStatus::Partial => "partial",
            PassStatus::Failed => "failed",
            PassStatus::Interrupted => "interrupted",
            PassStatus::Skipped => "skipped",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub kind: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: String,
    #[serde(flatten)]
    pub figures: Figures,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub records: i64,
    pub turns: i64,
    pub qa_rows: i64,
    pub schema_version: i64,
    pub db_bytes: u64,
    /// What `db_bytes` counts: `"file"` (the SQLite file and its WAL) or
    /// `"database"` (the whole PostgreSQL database, every tenant's rows).
    pub db_bytes_counts: &'static str,
    /// Keys by state, as `{"active": n, …}`.
    #[serde(serialize_with = "states_as_map")]
    pub keys: Vec<(KeyState, i64)>,
    /// The active stream keys' cursors.
    pub cursors: Vec<StreamCursor>,
    /// Windows keys moved on without: read them with a backfill.
    pub skipped_windows: Vec<SkippedWindow>,
    pub runs: Vec<RunRow>,
    /// The last verification against the platform's count of calls.
    pub verified: Option<Verified>,
}

fn states_as_map<S: serde::Serializer>(counts: &[(KeyState, i64)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(counts.iter().map(|(state, n)| (state.as_str(), n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_display_names_every_figure() {
        let f = Figures::from_values(&(1..=Figures::COLUMNS.len() as u64).collect::<Vec<_>>());
        assert_eq!(Figures::from_values(&f.values()), f);
        let text = f.to_string();
        assert!(text.starts_with("1 keys, 2 windows"), "{text}");
        assert!(text.contains("10 rereads") && text.ends_with("13 nul replaced"), "{text}");
    }
}
