//! The store's contract: what the sync, the commands and `copy` may ask of
//! a store, the same on SQLite and on PostgreSQL. Each part is a trait of
//! its own, implemented in the backend file of the same name
//! (`sqlite/keys.rs`, `postgres/keys.rs`, …); [`Backend`] is all of them,
//! used as `Box<dyn Backend>`. A method one backend lacks does not compile.
//!
//! Times are epoch milliseconds (`now_ms`), except cursors and windows,
//! which are epoch seconds. In PostgreSQL every read and write is the
//! configured tenant's.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::StoreError;
use super::dedup::PageOutcome;
use super::tables::{Cell, Table};
use crate::cdr::Leg;
use crate::keys::file::KeysFileRead;
use crate::keys::{KeyKind, KeyRow, KeyState, KeyUpdate, QueryKey, SkippedWindow, StreamCursor};
use crate::kpi::Kpis;
use crate::platform::{HourCount, PlatformHour, Verified};
use crate::record::Record;
use crate::run_log::{Figures, RunRow};

/// The query keys: where each came from, its state, when it is next due.
pub trait Keys {
    /// Makes the config's keys active and marks config keys no longer
    /// listed (and named by no other source) as removed.
    fn configure_keys(&mut self, configured: &[QueryKey], now_ms: i64) -> Result<(), StoreError>;
    /// Reads what was appended to the keys file and adds its keys, in one
    /// transaction with the file's new mark. `Err` inside: the file cannot be read.
    fn read_keys_file(&mut self, file: &Path, now_ms: i64) -> Result<Result<KeysFileRead, String>, StoreError>;
    /// `keys add`: new keys, and done, given-up or removed ones made active
    /// again, [`super::KEYS_PER_TRANSACTION`] at a time. Returns how many changed.
    fn add_keys(&mut self, keys: &[QueryKey], now_ms: i64) -> Result<u64, StoreError>;
    /// `keys forget`: the keys and their cursors are deleted. Returns how many were known.
    fn forget_keys(&mut self, keys: &[QueryKey]) -> Result<u64, StoreError>;
    /// Whether any key other than the window-only one is still polled.
    fn has_keys(&self) -> Result<bool, StoreError>;
    /// Turns the window-only key `*` on or off.
    fn set_window_only(&mut self, on: bool, now_ms: i64) -> Result<(), StoreError>;
    /// The keys a pass at `now_ms` reads: active and settling ones, and
    /// waiting ones whose time has come. Done keys cost nothing.
    fn due_keys(&self, now_ms: i64) -> Result<Vec<KeyRow>, StoreError>;
    /// Every key, or those in `state`, by key.
    fn list_keys(&self, state: Option<KeyState>) -> Result<Vec<KeyRow>, StoreError>;
    /// Records a point key's query, once its records are committed, with
    /// why the server refused it (`None`: it did not).
    fn key_queried(&mut self, key: &str, u: KeyUpdate, error: Option<&str>, now_ms: i64) -> Result<(), StoreError>;
    /// Records that a stream key was read this pass, to its end.
    fn stream_key_read(&mut self, key: &str, records: i64, now_ms: i64) -> Result<(), StoreError>;
    /// One more pass of `key` ended at a window that cannot complete;
    /// returns how many in a row.
    fn key_failed_pass(&mut self, key: &str) -> Result<i64, StoreError>;
    /// Records a window the key moves on without, and moves its cursor past
    /// it, in one transaction.
    fn skip_window(&mut self, key: &str, start: i64, end: i64, reason: &str, now_ms: i64) -> Result<(), StoreError>;
    /// Windows keys moved on without, oldest first.
    fn skipped_windows(&self) -> Result<Vec<SkippedWindow>, StoreError>;
    /// A completed backfill of `key` (every key: `None`) over `[start, end)`
    /// covers the skipped windows inside it.
    fn clear_skipped(&mut self, key: Option<&str>, start: i64, end: i64) -> Result<(), StoreError>;
    /// How many keys are in each state (states with none left out), in
    /// the order of [`KeyState::ALL`].
    fn key_counts(&self) -> Result<Vec<(KeyState, i64)>, StoreError>;
    /// The active stream keys with their cursors.
    fn stream_cursors(&self) -> Result<Vec<StreamCursor>, StoreError>;
}

/// What the store knows of the sync itself: cursors, the run log, backfill progress.
pub trait Ledger {
    /// A key's cursor, in epoch seconds.
    fn cursor(&self, key: &str) -> Result<Option<i64>, StoreError>;
    /// Moves a key's cursor to `epoch_s`; called only once a window's
    /// records are committed. Never moves it backwards.
    fn set_cursor(&mut self, key: &str, epoch_s: i64, now_ms: i64) -> Result<(), StoreError>;
    /// Moves a key's cursor back to `epoch_s` (a cursor in the future).
    fn pull_back_cursor(&mut self, key: &str, epoch_s: i64, now_ms: i64) -> Result<(), StoreError>;
    /// A new run; returns its id. A run still `running` belongs to a
    /// process that ended before it finished (one writer at a time): it is
    /// marked failed.
    fn begin_run(&mut self, kind: &str, now_ms: i64) -> Result<i64, StoreError>;
    /// Ends run `id` with its status, figures and error.
    fn finish_run(
        &mut self,
        id: i64,
        status: &str,
        f: &Figures,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// The last `n` runs, newest first.
    fn last_runs(&self, n: usize) -> Result<Vec<RunRow>, StoreError>;
    /// The windows a backfill job has finished, as `[start, end)` spans by key.
    fn backfill_done(&self, job: &str) -> Result<HashMap<String, Vec<(i64, i64)>>, StoreError>;
    /// Records that a backfill job finished `[start, end)` of `key`.
    fn mark_backfill_window(
        &mut self,
        job: &str,
        key: &str,
        start: i64,
        end: i64,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Forgets a finished backfill, so running it again reads the period again.
    fn clear_backfill(&mut self, job: &str) -> Result<(), StoreError>;
}

/// The mirror itself: records, their turns and Q&A rows, and the summary tables.
pub trait Pages {
    /// Applies one page in one transaction, by the dedup rule
    /// ([`super::dedup`]), summary tables included.
    fn apply_page(&mut self, records: &[Record], now_ms: i64) -> Result<PageOutcome, StoreError>;
    /// The intentions that mean "not understood" besides the empty one
    /// (`analytics.fallback_intentions`), for the analyst views; replaces
    /// the list kept.
    fn set_fallback_intentions(&mut self, intentions: &[String]) -> Result<(), StoreError>;
}

/// The rows of the copied tables ([`super::tables`]), for `copy`.
pub trait CopyRows {
    /// Starts reading one consistent state of the store (a read
    /// transaction; repeatable read in PostgreSQL), kept until the store is
    /// closed: what `copy` reads out, while a writer goes on. Needs only
    /// the right to read.
    fn read_snapshot(&self) -> Result<(), StoreError>;
    /// The rows of `table`.
    fn count_rows(&self, table: &str) -> Result<i64, StoreError>;
    /// Up to `limit` rows after the key `after`, in key order.
    fn read_rows(&self, t: &Table, after: Option<&[Cell]>, limit: usize) -> Result<Vec<Vec<Cell>>, StoreError>;
    /// Writes copied rows (keeping rows already there) and the copy's
    /// position (`key`, and whether the table is `done`), in one transaction.
    fn write_rows(
        &mut self,
        t: &Table,
        rows: &[Vec<Cell>],
        source: &str,
        key: &str,
        done: bool,
    ) -> Result<(), StoreError>;
    /// Where a copy from `source` stands for table `t`: the last key and whether it is done.
    fn copy_position(&self, source: &str, t: &Table) -> Result<Option<(Vec<Cell>, bool)>, StoreError>;
    /// Deletes every row of `tables` (children first) and the copy's
    /// positions, in one transaction.
    fn clear_tables(&mut self, tables: &[Table]) -> Result<(), StoreError>;
    /// Ends a copy: the full-text index is built again over the copied turns.
    fn finish_copy(&mut self) -> Result<(), StoreError>;
}

/// The calls of Huawei's own ledgers: CDR legs, and the files they came from.
pub trait Calls {
    /// The size and modification time (epoch ms) `path` had when it was
    /// last read whole; `None` when it never was.
    fn cdr_file_mark(&self, path: &str) -> Result<Option<(i64, i64)>, StoreError>;
    /// Stores `legs` (a leg read again replaces itself) and, in the same
    /// transaction, makes each of their calls that has an IVR leg a point
    /// key of `kind` from source `cdr`, carrying the call's span over all
    /// its stored legs. A removed key comes back; a done one stays done.
    /// Returns the keys added (or brought back).
    fn add_cdr_legs(&mut self, legs: &[Leg], kind: KeyKind, now_ms: i64) -> Result<u64, StoreError>;
    /// Records that `path`, of `size` bytes and modified at `modified_ms`,
    /// was read whole: `rows` legs.
    fn cdr_file_read(
        &mut self,
        path: &str,
        size: i64,
        modified_ms: i64,
        rows: u64,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Stores the platform's hours, each replacing the same hour of the
    /// same access code, in one transaction.
    fn put_platform_hours(&mut self, hours: &[PlatformHour], now_ms: i64) -> Result<(), StoreError>;
    /// Every platform hour starting in `[from_ms, to_ms)`, beside the
    /// mirror's sessions with that access code as `called_number` that
    /// started in the hour; by access code, then hour.
    fn hour_counts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<HourCount>, StoreError>;
    /// Keeps `v` as the last verification.
    fn keep_verification(&mut self, v: &Verified) -> Result<(), StoreError>;
    /// The last verification, if any.
    fn last_verification(&self) -> Result<Option<Verified>, StoreError>;
}

/// The analyst measures, as the views compute them.
pub trait Measures {
    /// The measures of the sessions that started in `[from_ms, to_ms)`,
    /// and the platform's figures for those days where fetched.
    fn kpis(&self, from_ms: i64, to_ms: i64) -> Result<Kpis, StoreError>;
}

/// Sessions removed by age (`prune`, `store.keep`), a batch a transaction.
pub trait Retention {
    /// Removes at most `limit` of the sessions that started before
    /// `before_ms`, oldest first, with their turns, Q&A rows, full-text
    /// rows and the CDR legs of their calls that no remaining session
    /// meets; the summary tables and the measures stay exact. One
    /// transaction; returns how many sessions went (0: none is left).
    fn prune_sessions(&mut self, before_ms: i64, limit: usize) -> Result<u64, StoreError>;
    /// Removes the CDR legs of at most `limit` calls that ended before
    /// `before_ms` and that no session meets; returns how many legs went.
    fn prune_legs(&mut self, before_ms: i64, limit: usize) -> Result<u64, StoreError>;
    /// How many sessions started before `before_ms`.
    fn count_before(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// What `db_bytes` of the status counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub bytes: u64,
    /// `"file"` (the SQLite file and its WAL) or `"database"` (the whole
    /// PostgreSQL database, every tenant's rows).
    pub counts: &'static str,
}

/// A store: every part of the contract, and the store's own life.
pub trait Backend: Keys + Ledger + Pages + CopyRows + Calls + Measures + Retention + Send {
    /// Where the store is, for messages: the file, or the database URL
    /// without its password.
    fn describe(&self) -> String;
    /// Takes the one-writer lock for `what` (a command), waiting up to
    /// `wait` for a holder to let go; kept while the store is open.
    fn take_writer(&mut self, what: &str, wait: Duration) -> Result<(), StoreError>;
    /// How long a write waits for another process's write transaction
    /// (PostgreSQL waits on row locks by itself).
    fn wait_when_busy(&self, wait: Duration);
    /// Checks the store's integrity, given at most `limit`. `Ok(false)`: it
    /// did not finish in time. PostgreSQL checks its pages itself.
    fn quick_check(&self, limit: Duration) -> Result<bool, StoreError>;
    /// The schema version the store holds.
    fn schema_version(&self) -> Result<i64, StoreError>;
    /// How large the store is, and what that counts.
    fn size(&self) -> Result<Size, StoreError>;
}
