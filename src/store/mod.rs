//! The store: a SQLite file (this module: WAL mode, created readable by its
//! owner only, migrated by `PRAGMA user_version`) or a PostgreSQL database
//! shared by tenants ([`postgres`]), behind one [`Store`]. One writer a store
//! (a tenant, in PostgreSQL); analysts read beside it. [`copy`] moves a
//! mirror from one to the other.

pub mod copy;
mod copy_rows;
mod full_text;
pub(crate) mod keys;
pub(crate) mod ledger;
mod lock;
pub mod postgres;
pub mod snapshot;
pub(crate) mod upsert;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

pub use keys::KeysFileRead;

use crate::config::{FullText, StoreAt, StoreSettings};
use crate::keys::{KeyRow, KeyState, KeyUpdate, SkippedWindow, StreamCursor};
use crate::run_log::StatusReport;
pub use lock::WriterLock;
pub use postgres::Postgres;
pub use upsert::PageOutcome;

/// `schema.sql`: version 1, then each later version's step after a
/// `-- migration: N` line.
const SCHEMA: &str = include_str!("../../schema.sql");

/// Schema steps; step `i` takes `user_version` from `i` to `i + 1`.
fn migrations() -> Vec<&'static str> {
    split_steps(SCHEMA)
}

/// A schema file's steps: version 1, then each `-- migration: N` section.
fn split_steps(schema: &'static str) -> Vec<&'static str> {
    let mut steps = Vec::new();
    let mut rest = schema;
    while let Some(at) = rest.find("\n-- migration: ") {
        steps.push(&rest[..at]);
        rest = &rest[at + 1..];
    }
    steps.push(rest);
    steps
}

/// Keys written in one transaction by `keys add` and the keys file: a
/// million-key import never holds the store for longer than a moment.
pub(crate) const KEYS_PER_TRANSACTION: usize = 2_000;

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = 6;

#[cfg(test)]
#[test]
fn schema_sql_holds_one_step_per_version() {
    let steps = migrations();
    assert_eq!(steps.len() as i64, SCHEMA_VERSION);
    for (i, step) in steps.iter().enumerate().skip(1) {
        assert!(step.starts_with(&format!("-- migration: {}\n", i + 1)), "step {}", i + 1);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {path}: {msg}")]
    Open { path: PathBuf, msg: String },
    #[error(
        "the store {path} has schema version {found}, newer than this oifde-sync understands ({supported}); \
         upgrade oifde-sync or point store.path at another file"
    )]
    TooNew { path: PathBuf, found: i64, supported: i64 },
    #[error("cannot migrate the store {path}: {source}")]
    Migrate { path: PathBuf, source: rusqlite::Error },
    #[error(
        "the store {path} is busy: {holder} held a write transaction for longer than the wait; try again, \
         and readers should open it read-only (e.g. `sqlite3 -readonly`)"
    )]
    Locked { path: PathBuf, holder: String },
    #[error("store {path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
    #[error(
        "the store {path} is damaged ({detail}); nothing was written. Stop oifde-sync, keep a copy of the file, \
         then recover what it holds with `sqlite3 {path} .recover | sqlite3 recovered.db` and point store.path \
         at the result (a backfill then fills any gap), or start a new store and backfill"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "the store {path} is already being written by {holder}; one writer at a time. \
         Stop that process first (`systemctl stop oifde-sync` for the service)"
    )]
    Busy { path: PathBuf, holder: String },
    #[error("cannot write the snapshot {to}: {msg}")]
    Snapshot { to: PathBuf, msg: String },
    /// The store refused a value of a record (a constraint, a size limit):
    /// that record's fault, not the store's.
    #[error("the store {store} refused a value: {msg}")]
    Content { store: String, msg: String },
    #[error("database {url}: {msg}")]
    Database { url: String, msg: String },
    #[error("lost the connection to the database {url}")]
    Disconnected { url: String },
    #[error(
        "tenant {tenant} is already being synced into {url} by {holder}; one writer per tenant. \
         Stop that process first (`systemctl stop oifde-sync@…` for the service)"
    )]
    TenantBusy { tenant: String, url: String, holder: String },
}

/// Names a lock held elsewhere apart from other SQLite errors.
pub(crate) fn sql_error(path: &Path, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Locked { path: path.to_path_buf(), holder: lock::holder(path) }
        }
        Some(rusqlite::ErrorCode::ConstraintViolation | rusqlite::ErrorCode::TooBig) => {
            StoreError::Content { store: path.display().to_string(), msg: source.to_string() }
        }
        _ => StoreError::Sql { path: path.to_path_buf(), source },
    }
}

/// The mirror: a SQLite file (`store.path`) or a PostgreSQL database
/// (`store.url`), with one contract. Every method is the same on both.
pub enum Store {
    Sqlite(Sqlite),
    Postgres(Box<Postgres>),
}

/// Methods that only read, then those that write, each sent to the store at hand.
macro_rules! dispatch {
    (read: $( $(#[$m:meta])* fn $name:ident(&$s:ident $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*
     write: $( $(#[$wm:meta])* fn $wname:ident(&mut $ws:ident $(, $warg:ident: $wty:ty)*) -> $wret:ty; )*) => {
        impl Store {
            $( $(#[$m])* pub fn $name(&$s $(, $arg: $ty)*) -> $ret {
                match $s { Store::Sqlite(db) => db.$name($($arg),*), Store::Postgres(db) => db.$name($($arg),*) }
            } )*
            $( $(#[$wm])* pub fn $wname(&mut $ws $(, $warg: $wty)*) -> $wret {
                match $ws { Store::Sqlite(db) => db.$wname($($warg),*), Store::Postgres(db) => db.$wname($($warg),*) }
            } )*
        }
    };
}

dispatch! {
read:
    fn has_keys(&self) -> Result<bool, StoreError>;
    fn due_keys(&self, now_ms: i64) -> Result<Vec<KeyRow>, StoreError>;
    fn list_keys(&self, state: Option<KeyState>) -> Result<Vec<KeyRow>, StoreError>;
    fn skipped_windows(&self) -> Result<Vec<SkippedWindow>, StoreError>;
    fn key_counts(&self) -> Result<Vec<(KeyState, i64)>, StoreError>;
    fn stream_cursors(&self) -> Result<Vec<StreamCursor>, StoreError>;
    fn cursor(&self, key: &str) -> Result<Option<i64>, StoreError>;
    fn backfill_done(&self, job: &str) -> Result<std::collections::HashMap<String, Vec<(i64, i64)>>, StoreError>;
    fn status(&self, last_runs: usize) -> Result<StatusReport, StoreError>;
    fn quick_check(&self, limit: Duration) -> Result<bool, StoreError>;
    fn count_rows(&self, table: &str) -> Result<i64, StoreError>;
    fn read_rows(&self, t: &copy::Table, after: Option<&[copy::Cell]>, limit: usize) -> Result<Vec<Vec<copy::Cell>>, StoreError>;
    fn copy_position(&self, source: &str, t: &copy::Table) -> Result<Option<(Vec<copy::Cell>, bool)>, StoreError>;
    /// Where the store is, for messages: the file, or the database URL without its password.
    fn describe(&self) -> String;
    /// Starts reading one consistent state of the store (a read
    /// transaction; repeatable read in PostgreSQL), kept until the store is
    /// closed: what `copy` reads out, while a writer goes on. Needs only
    /// the right to read.
    fn read_snapshot(&self) -> Result<(), StoreError>;
write:
    fn configure_keys(&mut self, configured: &[crate::keys::QueryKey], now_ms: i64) -> Result<(), StoreError>;
    fn read_keys_file(&mut self, file: &Path, now_ms: i64) -> Result<Result<KeysFileRead, String>, StoreError>;
    fn add_keys(&mut self, keys: &[crate::keys::QueryKey], now_ms: i64) -> Result<u64, StoreError>;
    fn forget_keys(&mut self, keys: &[crate::keys::QueryKey]) -> Result<u64, StoreError>;
    fn set_window_only(&mut self, on: bool, now_ms: i64) -> Result<(), StoreError>;
    fn key_queried(&mut self, key: &str, u: KeyUpdate, error: Option<&str>, now_ms: i64) -> Result<(), StoreError>;
    fn stream_key_read(&mut self, key: &str, records: i64, now_ms: i64) -> Result<(), StoreError>;
    fn key_failed_pass(&mut self, key: &str) -> Result<i64, StoreError>;
    fn skip_window(&mut self, key: &str, start: i64, end: i64, reason: &str, now_ms: i64) -> Result<(), StoreError>;
    fn clear_skipped(&mut self, key: Option<&str>, start: i64, end: i64) -> Result<(), StoreError>;
    fn set_cursor(&mut self, key: &str, epoch_s: i64, now_ms: i64) -> Result<(), StoreError>;
    fn pull_back_cursor(&mut self, key: &str, epoch_s: i64, now_ms: i64) -> Result<(), StoreError>;
    fn begin_run(&mut self, kind: &str, now_ms: i64) -> Result<i64, StoreError>;
    fn finish_run(&mut self, id: i64, status: &str, f: &crate::run_log::Figures, error: Option<&str>, now_ms: i64) -> Result<(), StoreError>;
    fn mark_backfill_window(&mut self, job: &str, key: &str, start: i64, end: i64, now_ms: i64) -> Result<(), StoreError>;
    fn clear_backfill(&mut self, job: &str) -> Result<(), StoreError>;
    fn apply_page(&mut self, records: &[crate::record::Record], now_ms: i64) -> Result<PageOutcome, StoreError>;
    /// Takes the one-writer lock for `what` (a command), waiting up to `wait`
    /// for a holder to let go; kept while the store is open.
    fn take_writer(&mut self, what: &str, wait: Duration) -> Result<(), StoreError>;
    fn write_rows(&mut self, t: &copy::Table, rows: &[Vec<copy::Cell>], source: &str, key: &str, done: bool) -> Result<(), StoreError>;
    fn finish_copy(&mut self) -> Result<(), StoreError>;
    /// Deletes every row of `tables` and of `copy_progress` (the tenant's, in PostgreSQL), in one transaction.
    fn clear_tables(&mut self, tables: &[copy::Table]) -> Result<(), StoreError>;
}

impl Store {
    /// Opens (creating if needed, mode 0600) and migrates a SQLite store, with the
    /// default full-text index (what callers said).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Sqlite::open(path).map(Store::Sqlite)
    }

    /// As [`Store::open`]; `full_text` builds (and fills), changes or drops the index.
    pub fn open_with(path: &Path, full_text: FullText) -> Result<Self, StoreError> {
        Sqlite::open_with(path, full_text).map(Store::Sqlite)
    }

    /// The configured store (`store.path` or `store.url`), created and migrated.
    pub fn open_configured(settings: &StoreSettings) -> Result<Self, StoreError> {
        match &settings.at {
            StoreAt::Postgres(pg) => Postgres::open(pg, settings.full_text).map(|p| Store::Postgres(Box::new(p))),
            StoreAt::Sqlite { path, .. } => Self::open_with(path, settings.full_text),
        }
    }

    /// A SQLite file, read only (it must exist).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        Sqlite::open_read_only(path).map(Store::Sqlite)
    }

    /// The configured store, read only (for `status` and `keys list`).
    pub fn open_configured_read_only(settings: &StoreSettings) -> Result<Self, StoreError> {
        match &settings.at {
            StoreAt::Postgres(pg) => Postgres::open_read_only(pg).map(|p| Store::Postgres(Box::new(p))),
            StoreAt::Sqlite { path, .. } => Sqlite::open_read_only(path).map(Store::Sqlite),
        }
    }

    /// How long a write waits for another process's write transaction
    /// (SQLite; PostgreSQL waits on row locks by itself).
    pub fn wait_when_busy(&self, wait: Duration) {
        if let Store::Sqlite(db) = self {
            let _ = db.conn.busy_timeout(wait);
        }
    }

    /// The SQLite connection, for read-only inspection (`demo`); `None` for PostgreSQL.
    pub fn sqlite_connection(&self) -> Option<&Connection> {
        match self {
            Store::Sqlite(db) => Some(&db.conn),
            Store::Postgres(_) => None,
        }
    }
}

pub struct Sqlite {
    /// Held while this process writes (sync, backfill, the daemon).
    writer: Option<WriterLock>,
    conn: Connection,
    path: PathBuf,
    /// What `record_details_fts` indexes, written with every turn.
    full_text: FullText,
}

impl Sqlite {
    /// Opens (creating if needed, mode 0600) and migrates the store, with the
    /// default full-text index (what callers said).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, FullText::Callers)
    }

    /// As [`Store::open`]; `full_text` builds (and fills), changes or drops the index.
    pub fn open_with(path: &Path, full_text: FullText) -> Result<Self, StoreError> {
        let open_err = |msg: String| StoreError::Open { path: path.to_path_buf(), msg };
        create_private(path).map_err(|e| open_err(e.to_string()))?;
        let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(|e| open_err(e.to_string()))?;
        // Switching to WAL takes an exclusive lock, which a concurrent first
        // open may hold for a moment: try again rather than fail.
        let mut tries = 0;
        while let Err(e) = conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
            tries += 1;
            if tries > 50 || !matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy)) {
                return Err(sql_error(path, e));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // 16 MiB of page cache keeps index pages hot on large backfills.
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16000; PRAGMA wal_autocheckpoint = 16000; PRAGMA journal_size_limit = 67108864;",
        )
            .map_err(|e| open_err(e.to_string()))?;
        tighten_sidecars(path);
        let mut store = Sqlite { writer: None, conn, path: path.to_path_buf(), full_text: FullText::Off };
        let created = store.migrate()?;
        store.set_full_text(full_text, created)?;
        Ok(store)
    }

    /// Opens an existing store without writing to it (for `status`).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                msg: "no such file; run `oifde-sync sync` first".into(),
            });
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| StoreError::Open { path: path.to_path_buf(), msg: e.to_string() })?;
        let store = Sqlite { writer: None, conn, path: path.to_path_buf(), full_text: FullText::Off };
        let found = store.user_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: path.to_path_buf(), found, supported: SCHEMA_VERSION });
        }
        Ok(store)
    }

    /// Takes the lock on `<store>.lock` and keeps it while the store is open.
    pub fn take_writer(&mut self, what: &str, wait: Duration) -> Result<(), StoreError> {
        self.writer = Some(WriterLock::acquire(&self.path, what, wait)?);
        Ok(())
    }

    pub fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        sql_error(&self.path, source)
    }

    fn user_version(&self) -> Result<i64, StoreError> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.sql(e))
    }

    /// Brings the schema to [`SCHEMA_VERSION`]: a new store is created at
    /// it in one step (announced with its absolute path), an older one
    /// migrated a version at a time. Returns whether the store is new.
    fn migrate(&mut self) -> Result<bool, StoreError> {
        let found = self.user_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: self.path.clone(), found, supported: SCHEMA_VERSION });
        }
        if found == SCHEMA_VERSION {
            return Ok(false);
        }
        let path = self.path.clone();
        let migrate = |source| StoreError::Migrate { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive).map_err(migrate)?;
        // Another process may have taken steps while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(migrate)?;
        for sql in migrations().into_iter().skip(now as usize) {
            tx.execute_batch(sql).map_err(migrate)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(migrate)?;
        tx.commit().map_err(migrate)?;
        let shown = std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone());
        if now == 0 {
            tracing::info!(path = %shown.display(), version = SCHEMA_VERSION, "created a new store");
        } else if now < SCHEMA_VERSION {
            tracing::info!(path = %shown.display(), from = now, to = SCHEMA_VERSION, "store schema migrated");
        }
        Ok(now == 0)
    }
}

impl Sqlite {
    /// Builds, changes or drops the full-text index to match `wanted`.
    /// Without it, writes are several times as fast.
    /// `created`: the store is new, and the change is part of its creation.
    fn set_full_text(&mut self, wanted: FullText, created: bool) -> Result<(), StoreError> {
        let existing: Option<String> = self
            .conn
            .query_row("SELECT sql FROM sqlite_master WHERE name = 'record_details_fts'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.sql(e))?;
        // Stores written before 0.2 name the content table in single quotes,
        // which Datasette does not recognise: such an index is built again.
        let current = existing.as_deref().map_or(FullText::Off, FullText::of_sql);
        let recognised = existing.as_deref().is_none_or(|sql| sql.contains("content=\"record_details\""));
        if current == wanted && recognised {
            self.full_text = wanted;
            return Ok(());
        }
        let mut sql = String::new();
        if existing.is_some() {
            sql.push_str("DROP TABLE record_details_fts;\n");
        }
        if wanted != FullText::Off {
            sql.push_str(&wanted.create_sql());
        }
        let path = self.path.clone();
        let migrate = |source| StoreError::Migrate { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(migrate)?;
        tx.execute_batch(&sql).map_err(migrate)?;
        tx.commit().map_err(migrate)?;
        self.full_text = wanted;
        if !created {
            tracing::info!(from = %current, to = %wanted, "full-text index changed");
        }
        Ok(())
    }
}

impl Sqlite {
    /// `PRAGMA quick_check`, given at most `limit` to run (on a large store it
    /// reads every page). `Ok(false)`: it did not finish in time.
    pub fn quick_check(&self, limit: Duration) -> Result<bool, StoreError> {
        let handle = self.conn.get_interrupt_handle();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(limit).is_err() {
                handle.interrupt();
            }
        });
        let result: Result<Vec<String>, rusqlite::Error> =
            self.conn.prepare("PRAGMA quick_check(5)").and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
        let _ = done_tx.send(());
        let _ = watchdog.join();
        let damaged = |detail: String| StoreError::Damaged { path: self.path.clone(), detail };
        match result {
            Ok(lines) if lines == ["ok"] => Ok(true),
            Ok(lines) => Err(damaged(lines.join("; "))),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) => {
                tracing::warn!(path = %self.path.display(), "the store's quick check did not finish in {limit:?}; skipped");
                Ok(false)
            }
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
                ) =>
            {
                Err(damaged(e.to_string()))
            }
            Err(e) => Err(self.sql(e)),
        }
    }
}

/// Creates the file, and its directory, readable by the owner only; SQLite
/// gives its `-wal` and `-shm` files the same mode. A file that others can
/// read is made private, with a warning.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    // The store's own directory is made when its parent exists; a typo in
    // store.path does not grow a tree of directories.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        let parent_exists = dir.parent().is_none_or(|p| p.as_os_str().is_empty() || p.is_dir());
        if !parent_exists {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "directory {} does not exist; create it, or correct store.path",
                    dir.parent().map_or_else(|| dir.display().to_string(), |p| p.display().to_string())
                ),
            ));
        }
        std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        // Created meanwhile by another process, or there already.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            make_private(path);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The store's `-wal` and `-shm` files, made private too.
fn tighten_sidecars(path: &Path) {
    for suffix in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        make_private(Path::new(&p));
    }
}

fn make_private(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(file) else { return };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        match std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {
                tracing::warn!(file = %file.display(), "other users could read the store (mode {mode:o}); made it 0600")
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), "other users can read the store (mode {mode:o}) and it cannot be changed: {e}")
            }
        }
    }
}
