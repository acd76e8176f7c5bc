//! The PostgreSQL store (`store.url`): the SQLite store's tables with a
//! `tenant_id` on every row, so several tenants share one database; one
//! writer per tenant, held by a session advisory lock.
//!
//! The store's interface is synchronous (the sync engine calls it from a
//! blocking thread, as it does SQLite). Each call runs the async client on
//! the store's own single-threaded runtime, from a short-lived thread, so it
//! works from any context, async or not.

mod calls;
mod connect;
mod copy_rows;
mod facts;
mod keys;
mod ledger;
mod measures;
mod retention;
mod upsert;

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::StoreError;
use super::contract::{Backend, Size};
use crate::config::FullText;
use crate::config::PgSettings;

/// `schema.pg.sql`: version 1, then each later version after a `-- migration: N` line.
const SCHEMA: &str = include_str!("../../../schema.pg.sql");

/// The schema version this binary writes to PostgreSQL.
pub const SCHEMA_VERSION: i64 = 9;

/// The first schema version with the analyst views (`report` needs them).
pub const MEASURES_SINCE: i64 = 6;

/// The first schema version that keeps the measures in tables, filled from
/// the rows when a store is migrated to it.
const FACTS_SINCE: i64 = 7;

/// Serialises schema changes between daemons starting together.
const MIGRATION_LOCK: i64 = 0x6f69_6664_6573_6368;

pub struct Postgres {
    /// Drives the connection; `None` once dropped.
    rt: Option<tokio::runtime::Runtime>,
    client: Client,
    tenant: String,
    shown: String,
    full_text: FullText,
    /// The page statements, prepared on first use.
    prepared: Option<upsert::Prepared>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // A runtime cannot be dropped (blocking) inside another one.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A PostgreSQL error with the server's own words and the database named.
pub(crate) fn pg_error(shown: &str, e: &tokio_postgres::Error) -> StoreError {
    // Closed, a connection failure (class 08) or the server shutting the session (57P0x).
    let lost = e.code().is_some_and(|c| c.code().starts_with("08") || c.code().starts_with("57P0"));
    if e.is_closed() || lost {
        return StoreError::Disconnected { url: shown.to_string() };
    }
    let msg = match e.as_db_error() {
        Some(db) => match db.hint() {
            Some(hint) => format!("{} ({hint})", db.message()),
            None => db.message().to_string(),
        },
        None => connect::with_causes(e),
    };
    // A data exception (22), an integrity violation (23) or a size limit
    // (54) is the value's fault, not the database's.
    if e.code().is_some_and(|c| ["22", "23", "54"].iter().any(|class| c.code().starts_with(class))) {
        return StoreError::Content { store: shown.to_string(), msg };
    }
    StoreError::Database { url: shown.to_string(), msg }
}

/// The schema version recorded in the database; 0 without oifde-sync's tables.
async fn stored_version(c: &impl tokio_postgres::GenericClient) -> Result<i64, tokio_postgres::Error> {
    if !c.query_one("SELECT to_regclass('oifde_schema') IS NOT NULL", &[]).await?.get::<_, bool>(0) {
        return Ok(0);
    }
    Ok(c.query_one("SELECT version::BIGINT FROM oifde_schema", &[]).await?.get(0))
}

/// Runs `f` on `rt` and waits for it: on the calling thread (the store's
/// worker), or, called from inside another runtime (a command's own), from a
/// thread of its own.
fn run_on<T: Send>(
    rt: Option<&tokio::runtime::Runtime>,
    shown: &str,
    f: impl Future<Output = Result<T, tokio_postgres::Error>> + Send,
) -> Result<T, StoreError> {
    let rt = rt.expect("runtime present until drop");
    let result = if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(|| rt.block_on(f)).join().expect("store thread panicked"))
    } else {
        rt.block_on(f)
    };
    result.map_err(|e| pg_error(shown, &e))
}

impl Postgres {
    /// Connects, creates or migrates the schema, and builds, changes or drops
    /// the trigram indexes for `full_text`.
    pub fn open(settings: &PgSettings, full_text: FullText) -> Result<Self, StoreError> {
        let mut db = Self::connect(settings)?;
        db.migrate()?;
        db.set_full_text(full_text)?;
        Ok(db)
    }
    /// Connects to an existing store without changing it.
    pub fn open_read_only(settings: &PgSettings) -> Result<Self, StoreError> {
        let db = Self::connect(settings)?;
        let found = db.schema_version()?;
        if found == 0 {
            return Err(StoreError::Open {
                store: settings.shown.clone(),
                msg: "no oifde-sync tables in this database; run `oifde-sync sync` first".into(),
            });
        }
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { store: settings.shown.clone(), found, supported: SCHEMA_VERSION });
        }
        Ok(db)
    }
    fn connect(settings: &PgSettings) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Open { store: settings.shown.clone(), msg: e.to_string() })?;
        let client = std::thread::scope(|s| {
            s.spawn(|| rt.block_on(connect::connect(settings))).join().expect("connect thread panicked")
        });
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                // A runtime cannot be dropped (blocking) inside another one.
                rt.shutdown_background();
                return Err(e);
            }
        };
        Ok(Self {
            rt: Some(rt),
            client,
            tenant: settings.tenant.clone(),
            shown: settings.shown.clone(),
            full_text: FullText::Off,
            prepared: None,
        })
    }
    /// Runs `f` on the store's runtime and waits for it.
    fn run<T: Send>(&self, f: impl Future<Output = Result<T, tokio_postgres::Error>> + Send) -> Result<T, StoreError> {
        run_on(self.rt.as_ref(), &self.shown, f)
    }
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
    fn migrate(&mut self) -> Result<(), StoreError> {
        let steps = crate::store::sql::split_steps(SCHEMA);
        let client = &mut self.client;
        let applied = run_on(self.rt.as_ref(), &self.shown, async move {
            let tx = client.transaction().await?;
            // Daemons of several tenants may start together: one migrates at a time.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
            let found = stored_version(&tx).await?;
            if found > SCHEMA_VERSION {
                return Ok(Err(found));
            }
            let mut applied = Vec::new();
            for (step, sql) in steps.iter().enumerate().skip(found as usize) {
                tx.batch_execute(sql).await?;
                tx.execute("UPDATE oifde_schema SET version = $1", &[&(step as i32 + 1)]).await?;
                applied.push(step + 1);
            }
            if found < FACTS_SINCE {
                for sql in facts::refresh_sql(facts::Scope::All) {
                    tx.batch_execute(&sql).await?;
                }
            }
            tx.commit().await?;
            Ok(Ok(applied))
        })
        .map_err(|e| match e {
            StoreError::Database { url, msg } => {
                StoreError::Database { url, msg: format!("cannot migrate the schema: {msg}") }
            }
            other => other,
        })?;
        match applied {
            Err(found) => Err(StoreError::TooNew { store: self.shown.clone(), found, supported: SCHEMA_VERSION }),
            Ok(applied) => {
                match (applied.first(), applied.last()) {
                    (Some(1), _) => {
                        tracing::info!(url = %self.shown, version = SCHEMA_VERSION, "created the store's tables")
                    }
                    (Some(from), Some(to)) => {
                        tracing::info!(url = %self.shown, from = from - 1, to, "store schema migrated")
                    }
                    _ => {}
                }
                Ok(())
            }
        }
    }
    /// Trigram (`pg_trgm`) GIN indexes over the columns `wanted` covers; a
    /// `LIKE '%…%'` on them uses the index, for Chinese as for English.
    fn set_full_text(&mut self, wanted: FullText) -> Result<(), StoreError> {
        let existing: Vec<String> = self.run(async {
            let rows = self
                .client
                .query(
                    "SELECT indexname::TEXT FROM pg_indexes WHERE schemaname = current_schema() \
                     AND tablename = 'turn_rows' AND indexname LIKE 'record_details_%_trgm'",
                    &[],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        let index = |column: &str| format!("record_details_{column}_trgm");
        let wanted_names: Vec<String> = wanted.columns().iter().map(|c| index(c)).collect();
        let mut changes = String::new();
        for name in existing.iter().filter(|n| !wanted_names.contains(n)) {
            changes.push_str(&format!("DROP INDEX IF EXISTS {name};\n"));
        }
        let missing: Vec<&&str> = wanted.columns().iter().filter(|c| !existing.contains(&index(c))).collect();
        if !missing.is_empty() {
            changes.push_str("CREATE EXTENSION IF NOT EXISTS pg_trgm;\n");
        }
        for column in missing {
            changes.push_str(&format!(
                "CREATE INDEX IF NOT EXISTS {} ON turn_rows USING gin ({column} gin_trgm_ops);\n",
                index(column)
            ));
        }
        if !changes.is_empty() {
            // Daemons of several tenants may start together: one changes the indexes at a time.
            let sql = format!("BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK}); {changes}COMMIT;");
            self.run(self.client.batch_execute(&sql)).map_err(|e| match e {
                StoreError::Database { url, msg } if msg.contains("pg_trgm") || msg.contains("extension") => {
                    StoreError::Database {
                        url,
                        msg: format!(
                            "{msg}; the full-text index needs the pg_trgm extension: run `CREATE EXTENSION pg_trgm;` \
                             as a database owner once, or set store.full_text = \"off\""
                        ),
                    }
                }
                other => other,
            })?;
            if existing.is_empty() {
                tracing::debug!(to = %wanted, "full-text index built");
            } else {
                tracing::info!(to = %wanted, "full-text index changed");
            }
        }
        self.full_text = wanted;
        Ok(())
    }
}

impl Backend for Postgres {
    /// PostgreSQL waits on row locks by itself.
    fn wait_when_busy(&self, _wait: Duration) {}

    /// The whole database, every tenant's rows.
    fn size(&self) -> Result<Size, StoreError> {
        let bytes: i64 = self.run(async {
            Ok(self.client.query_one("SELECT pg_database_size(current_database())", &[]).await?.get(0))
        })?;
        Ok(Size { bytes: bytes as u64, counts: "database" })
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
    fn schema_version(&self) -> Result<i64, StoreError> {
        self.run(stored_version(&self.client))
    }
    /// PostgreSQL checks its own pages; nothing to do here.
    fn quick_check(&self, _limit: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Takes the tenant's session advisory lock, waiting up to `wait`; the
    /// server drops it when this connection ends, however this process ends.
    fn take_writer(&mut self, what: &str, wait: Duration) -> Result<(), StoreError> {
        let started = Instant::now();
        loop {
            let got: bool = self.run(async {
                let row = self
                    .client
                    .query_one("SELECT pg_try_advisory_lock(hashtextextended('oifde-sync:' || $1, 0))", &[&self.tenant])
                    .await?;
                Ok(row.get(0))
            })?;
            if got {
                break;
            }
            if started.elapsed() >= wait {
                let holder: Option<String> = self.run(async {
                    let row = self
                        .client
                        .query_opt("SELECT holder FROM writers WHERE tenant_id = $1", &[&self.tenant])
                        .await?;
                    Ok(row.map(|r| r.get(0)))
                })?;
                return Err(StoreError::TenantBusy {
                    tenant: self.tenant.clone(),
                    url: self.shown.clone(),
                    holder: holder.unwrap_or_else(|| "another process".into()),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let since = crate::tz::now_ms();
        let holder = format!(
            "{what} (pid {}) on host {} since {} UTC",
            std::process::id(),
            host.trim(),
            crate::tz::utc_text(since)
        );
        self.run(self.client.execute(
            "INSERT INTO writers (tenant_id, holder, since) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET holder = excluded.holder, since = excluded.since",
            &[&self.tenant, &holder, &since],
        ))
        .map(drop)
    }
}
