//! The SQLite store: one file in WAL mode, created readable by its owner only,
//! migrated by `PRAGMA user_version`. One writer; analysts read beside it.

mod keys;
mod ledger;
mod upsert;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use keys::{KeyRow, KeyState, KeyUpdate, KeysFileRead, StreamCursor};
pub use ledger::{RunRow, StatusReport};
pub use upsert::PageOutcome;

/// `schema.sql`: version 1, then each later version's step after a
/// `-- migration: N` line.
const SCHEMA: &str = include_str!("../../schema.sql");

/// Schema steps; step `i` takes `user_version` from `i` to `i + 1`.
fn migrations() -> Vec<&'static str> {
    let mut steps = Vec::new();
    let mut rest = SCHEMA;
    while let Some(at) = rest.find("\n-- migration: ") {
        steps.push(&rest[..at]);
        rest = &rest[at + 1..];
    }
    steps.push(rest);
    steps
}

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = 2;

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
        "the store {path} is locked by another process holding a write transaction; \
         readers should open it read-only (e.g. `sqlite3 -readonly`)"
    )]
    Locked { path: PathBuf },
    #[error("store {path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
}

/// Names a lock held elsewhere apart from other SQLite errors.
pub(crate) fn sql_error(path: &Path, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Locked { path: path.to_path_buf() }
        }
        _ => StoreError::Sql { path: path.to_path_buf(), source },
    }
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// `record_details_fts` exists and is written with every turn.
    full_text: bool,
}

impl Store {
    /// Opens (creating if needed, mode 0600) and migrates the store, with the
    /// full-text index.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, true)
    }

    /// As [`Store::open`]; `full_text` adds (and fills) or drops the index.
    pub fn open_with(path: &Path, full_text: bool) -> Result<Self, StoreError> {
        let open_err = |msg: String| StoreError::Open { path: path.to_path_buf(), msg };
        create_private(path).map_err(|e| open_err(e.to_string()))?;
        let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(|e| open_err(e.to_string()))?;
        // 16 MiB of page cache keeps index pages hot on large backfills.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16000; PRAGMA wal_autocheckpoint = 16000; PRAGMA journal_size_limit = 67108864;",
        )
            .map_err(|e| open_err(e.to_string()))?;
        let mut store = Store { conn, path: path.to_path_buf(), full_text: false };
        store.migrate()?;
        store.set_full_text(full_text)?;
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
        let store = Store { conn, path: path.to_path_buf(), full_text: false };
        let found = store.user_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: path.to_path_buf(), found, supported: SCHEMA_VERSION });
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for read-only inspection (tests, `demo`).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        sql_error(&self.path, source)
    }

    fn user_version(&self) -> Result<i64, StoreError> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.sql(e))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let found = self.user_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: self.path.clone(), found, supported: SCHEMA_VERSION });
        }
        for (step, sql) in migrations().into_iter().enumerate().skip(found as usize) {
            let path = self.path.clone();
            let migrate = |source| StoreError::Migrate { path: path.clone(), source };
            let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive).map_err(migrate)?;
            tx.execute_batch(sql).map_err(migrate)?;
            tx.pragma_update(None, "user_version", step as i64 + 1).map_err(migrate)?;
            tx.commit().map_err(migrate)?;
            tracing::info!(path = %self.path.display(), version = step + 1, "store schema migrated");
        }
        Ok(())
    }
}

/// The full-text part of `schema.sql`, between its markers.
fn full_text_sql() -> &'static str {
    let schema = migrations()[0];
    let start = schema.find("-- full-text: begin").expect("schema.sql marks its full-text part");
    let end = schema.find("-- full-text: end").expect("schema.sql marks its full-text part");
    &schema[start..end]
}

impl Store {
    /// Adds the full-text index (filled from the stored turns) or drops it.
    /// Without it, writes are about twice as fast.
    fn set_full_text(&mut self, enabled: bool) -> Result<(), StoreError> {
        let exists: bool = self
            .conn
            .query_row("SELECT count(*) > 0 FROM sqlite_master WHERE name = 'record_details_fts'", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        let sql = match (enabled, exists) {
            (true, false) => {
                format!("{}\nINSERT INTO record_details_fts (record_details_fts) VALUES ('rebuild');", full_text_sql())
            }
            (false, true) => "DROP TABLE record_details_fts;".to_string(),
            _ => {
                self.full_text = enabled;
                return Ok(());
            }
        };
        let path = self.path.clone();
        let migrate = |source| StoreError::Migrate { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(migrate)?;
        tx.execute_batch(&sql).map_err(migrate)?;
        tx.commit().map_err(migrate)?;
        self.full_text = enabled;
        tracing::info!(enabled, "full-text index {}", if enabled { "built" } else { "dropped" });
        Ok(())
    }
}

/// Creates the file, and its directory, readable by the owner only; SQLite
/// gives its `-wal` and `-shm` files the same mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    if !path.exists() {
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    }
    Ok(())
}
