//! Where a key stands, as the store keeps it: its state, its row, a stream
//! key's cursor, a window it moved on without, what a query decided.

use serde::Serialize;

use super::QueryKey;

/// Where a key stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Polled every pass (stream keys; point keys not read yet).
    Active,
    /// A point key whose call may still change: read again every pass.
    Settling,
    /// A point key that found nothing yet: read again at `next_query_at`.
    Waiting,
    /// A point key whose call has settled: never read again.
    Done,
    /// A point key that found nothing for `query.give_up_after`.
    GivenUp,
    /// No longer configured; its cursor is kept.
    Removed,
}

impl KeyState {
    pub const ALL: [KeyState; 6] =
        [KeyState::Active, KeyState::Settling, KeyState::Waiting, KeyState::Done, KeyState::GivenUp, KeyState::Removed];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Settling => "settling",
            KeyState::Waiting => "waiting",
            KeyState::Done => "done",
            KeyState::GivenUp => "given_up",
            KeyState::Removed => "removed",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|s| s.as_str() == text.trim()).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown key state {text:?}; use one of {}", names.join(", "))
        })
    }
}

/// One row of `query_keys`, with the key's cursor.
#[derive(Clone, Debug, Serialize)]
pub struct KeyRow {
    pub query_key: String,
    pub kind: String,
    pub source: String,
    pub state: KeyState,
    pub added_at: i64,
    pub last_query_at: Option<i64>,
    pub next_query_at: Option<i64>,
    pub records_found: i64,
    pub misses: i64,
    /// Epoch ms: everything before it is committed (stream keys).
    pub cursor_time: Option<i64>,
    /// Passes in a row that ended at a window that cannot complete.
    pub failed_passes: i64,
    /// Why the server refused the key's last query, if it did.
    pub last_error: Option<String>,
    /// A CDR call's span over all its legs, epoch ms: where a server that
    /// refuses key-only queries is asked (from five minutes before to five after).
    pub call_begin: Option<i64>,
    pub call_end: Option<i64>,
}

impl KeyRow {
    pub fn key(&self) -> Option<QueryKey> {
        QueryKey::from_stored(&self.query_key).ok()
    }
}

/// An active stream key and its cursor.
#[derive(Clone, Debug, Serialize)]
pub struct StreamCursor {
    pub query_key: String,
    /// Epoch ms: everything before it is committed; `None`: not read yet.
    pub cursor_time: Option<i64>,
}

/// A window a key moved on without.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedWindow {
    pub query_key: String,
    /// Epoch seconds, `[start, end)`.
    pub start: i64,
    pub end: i64,
    pub reason: String,
}

/// What a point key's query decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyUpdate {
    pub state: KeyState,
    pub next_query_at: Option<i64>,
    /// Records the query found; `None` leaves the count.
    pub records_found: Option<i64>,
    pub misses: i64,
}
