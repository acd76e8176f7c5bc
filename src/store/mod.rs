//! The store: a SQLite file ([`sqlite`]) or a PostgreSQL database shared by
//! tenants ([`postgres`]), behind one contract ([`contract`]): a [`Store`]
//! is a `Box<dyn Backend>`. What both share has files of its own: the
//! dedup rule ([`dedup`]), the table list ([`tables`]) and common SQL
//! ([`sql`]). This file alone names both backends.

pub mod contract;
pub mod dedup;
pub mod postgres;
mod sql;
pub mod sqlite;
pub mod tables;
mod worker;

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

pub use contract::{Backend, Calls, CopyRows, Keys, Ledger, Measures, Pages, Retention, Size};
pub use postgres::Postgres;
pub use sqlite::Sqlite;
pub use worker::Worker;

use crate::config::{FullText, PgSettings, StoreAt, StoreSettings};
use crate::run_log::StatusReport;

/// The first schema version with the analyst views, for the store `settings` name.
pub fn measures_since(settings: &StoreSettings) -> i64 {
    match settings.at {
        StoreAt::Sqlite { .. } => sqlite::MEASURES_SINCE,
        StoreAt::Postgres(_) => postgres::MEASURES_SINCE,
    }
}

/// Keys written in one transaction by `keys add` and the keys file: a
/// million-key import never holds the store for longer than a moment.
pub(crate) const KEYS_PER_TRANSACTION: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `store`: the file, or the database URL without its password.
    #[error("cannot open the store {store}: {msg}")]
    Open { store: String, msg: String },
    #[error(
        "the store {store} has schema version {found}, newer than this oifde-sync understands ({supported}); \
         upgrade oifde-sync or point the config (store.path or store.url) at another store"
    )]
    TooNew { store: String, found: i64, supported: i64 },
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

/// The mirror, whichever store holds it: the contract's methods are
/// reached through it (`store.due_keys(now)`).
pub struct Store(Box<dyn Backend>);

impl Deref for Store {
    type Target = dyn Backend;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl DerefMut for Store {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.0
    }
}

impl From<Sqlite> for Store {
    fn from(db: Sqlite) -> Self {
        Store(Box::new(db))
    }
}

impl From<Postgres> for Store {
    fn from(db: Postgres) -> Self {
        Store(Box::new(db))
    }
}

impl Store {
    /// Opens (creating if needed, mode 0600) and migrates a SQLite store, with the
    /// default full-text index (what callers said).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Sqlite::open(path).map(Store::from)
    }

    /// As [`Store::open`]; `full_text` builds (and fills), changes or drops the index.
    pub fn open_with(path: &Path, full_text: FullText) -> Result<Self, StoreError> {
        Sqlite::open_with(path, full_text).map(Store::from)
    }

    /// A PostgreSQL store, created or migrated, with the trigram indexes `full_text` asks for.
    pub fn open_postgres(settings: &PgSettings, full_text: FullText) -> Result<Self, StoreError> {
        Postgres::open(settings, full_text).map(Store::from)
    }

    /// The configured store (`store.path` or `store.url`), created and migrated.
    pub fn open_configured(settings: &StoreSettings) -> Result<Self, StoreError> {
        match &settings.at {
            StoreAt::Postgres(pg) => Self::open_postgres(pg, settings.full_text),
            StoreAt::Sqlite { path, .. } => Self::open_with(path, settings.full_text),
        }
    }

    /// A SQLite file, read only (it must exist).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        Sqlite::open_read_only(path).map(Store::from)
    }

    /// A PostgreSQL store, read only (its tables must exist).
    pub fn open_postgres_read_only(settings: &PgSettings) -> Result<Self, StoreError> {
        Postgres::open_read_only(settings).map(Store::from)
    }

    /// The configured store, read only (for `status` and `keys list`).
    pub fn open_configured_read_only(settings: &StoreSettings) -> Result<Self, StoreError> {
        match &settings.at {
            StoreAt::Postgres(pg) => Self::open_postgres_read_only(pg),
            StoreAt::Sqlite { path, .. } => Self::open_read_only(path),
        }
    }

    /// What `status` shows, composed from the contract's reads.
    pub fn status(&self, last_runs: usize) -> Result<StatusReport, StoreError> {
        let size = self.size()?;
        Ok(StatusReport {
            records: self.count_rows("records")?,
            turns: self.count_rows("record_details")?,
            qa_rows: self.count_rows("qa_records")?,
            schema_version: self.schema_version()?,
            db_bytes: size.bytes,
            db_bytes_counts: size.counts,
            keys: self.key_counts()?,
            cursors: self.stream_cursors()?,
            skipped_windows: self.skipped_windows()?,
            runs: self.last_runs(last_runs)?,
            verified: self.last_verification()?,
        })
    }
}
