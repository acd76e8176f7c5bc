//! The SQLite store (`store.path`): one file in WAL mode, created readable
//! by its owner only, migrated by `PRAGMA user_version`. One writer at a
//! time (`<store>.lock`); analysts read beside it.

mod calls;
mod copy_rows;
mod facts;
mod full_text;
mod keys;
mod ledger;
mod lock;
mod measures;
mod retention;
pub mod snapshot;
mod upsert;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::StoreError;
use super::contract::{Backend, Size};
use crate::config::FullText;
use lock::WriterLock;

/// `schema.sql`: version 1, then each later version's step after a
/// `-- migration: N` line.
const SCHEMA: &str = include_str!("../../../schema.sql");

/// Schema steps; step `i` takes `user_version` from `i` to `i + 1`.
fn migrations() -> Vec<&'static str> {
    crate::store::sql::split_steps(SCHEMA)
}

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = 12;

/// The first schema version with the analyst views (`report` needs them).
pub const MEASURES_SINCE: i64 = 9;

/// The first schema version that keeps the measures in tables, filled from
/// the rows when a store is migrated to it.
const FACTS_SINCE: i64 = 10;

#[cfg(test)]
#[test]
fn schema_sql_holds_one_step_per_version() {
    let steps = migrations();
    assert_eq!(steps.len() as i64, SCHEMA_VERSION);
    for (i, step) in steps.iter().enumerate().skip(1) {
        assert!(step.starts_with(&format!("-- migration: {}\n", i + 1)), "step {}", i + 1);
    }
}

/// Names a lock held elsewhere apart from other SQLite errors.
pub(super) fn sql_error(path: &Path, source: rusqlite::Error) -> StoreError {
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

    /// As [`Sqlite::open`]; `full_text` builds (and fills), changes or drops the index.
    pub fn open_with(path: &Path, full_text: FullText) -> Result<Self, StoreError> {
        let open_err = |msg: String| StoreError::Open { store: path.display().to_string(), msg };
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
        // 8 MB of page cache: as fast as 16 MB end to end at 100k and 1M
        // records, 8 MB less RSS (docs/performance.md, "Memory at 1M").
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -8000; PRAGMA wal_autocheckpoint = 16000; PRAGMA journal_size_limit = 67108864;",
        )
            .map_err(|e| open_err(e.to_string()))?;
        tighten_sidecars(path);
        facts::prepare(&conn).map_err(|e| open_err(e.to_string()))?;
        let mut store = Sqlite { writer: None, conn, path: path.to_path_buf(), full_text: FullText::Off };
        let created = store.migrate()?;
        store.set_full_text(full_text, created)?;
        Ok(store)
    }

    /// Opens an existing store without writing to it (for `status`).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Open {
                store: path.display().to_string(),
                msg: "no such file; run `oifde-sync sync` first".into(),
            });
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| StoreError::Open { store: path.display().to_string(), msg: e.to_string() })?;
        let store = Sqlite { writer: None, conn, path: path.to_path_buf(), full_text: FullText::Off };
        let found = store.user_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { store: path.display().to_string(), found, supported: SCHEMA_VERSION });
        }
        Ok(store)
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        sql_error(&self.path, source)
    }

    pub(super) fn user_version(&self) -> Result<i64, StoreError> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.sql(e))
    }

    /// Brings the schema to [`SCHEMA_VERSION`]: a new store is created at
    /// it in one step (announced with its absolute path), an older one
    /// migrated a version at a time. Returns whether the store is new.
    fn migrate(&mut self) -> Result<bool, StoreError> {
        let found = self.user_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                store: self.path.display().to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
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
        if now < FACTS_SINCE {
            facts::rebuild(&tx).map_err(migrate)?;
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

impl Backend for Sqlite {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    /// Takes the lock on `<store>.lock` and keeps it while the store is open.
    fn take_writer(&mut self, what: &str, wait: Duration) -> Result<(), StoreError> {
        self.writer = Some(WriterLock::acquire(&self.path, what, wait)?);
        Ok(())
    }

    fn wait_when_busy(&self, wait: Duration) {
        let _ = self.conn.busy_timeout(wait);
    }

    /// `PRAGMA quick_check`, given at most `limit` to run (on a large store it
    /// reads every page). `Ok(false)`: it did not finish in time.
    fn quick_check(&self, limit: Duration) -> Result<bool, StoreError> {
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

    fn schema_version(&self) -> Result<i64, StoreError> {
        self.user_version()
    }

    /// The file and its WAL.
    fn size(&self) -> Result<Size, StoreError> {
        let file_size = |suffix: &str| {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
        };
        Ok(Size { bytes: file_size("") + file_size("-wal"), counts: "file" })
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
