//! What the store knows of the sync itself: cursors, the run log, backfill
//! progress, and the status report built from them.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError};

/// The figures of one pass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunFigures {
    pub keys: u64,
    pub windows: u64,
    pub pages: u64,
    pub records_fetched: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub stale: u64,
    pub failed_windows: u64,
    /// Windows read again because they came back short of the server's total.
    pub rereads: u64,
    pub requests: u64,
    pub retries: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub kind: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: String,
    #[serde(flatten)]
    pub figures: RunFigures,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CursorRow {
    pub query_key: String,
    /// Epoch ms: everything before it is committed.
    pub cursor_time: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub records: i64,
    pub turns: i64,
    pub qa_rows: i64,
    pub schema_version: i64,
    pub db_bytes: u64,
    pub cursors: Vec<CursorRow>,
    pub runs: Vec<RunRow>,
}

impl Store {
    /// A key's cursor, in epoch seconds.
    pub fn cursor(&self, key: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT cursor_time FROM sync_cursors WHERE query_key = ?1", [key], |r| r.get::<_, i64>(0))
            .optional()
            .map(|ms| ms.map(|ms| ms.div_euclid(1000)))
            .map_err(|e| self.sql(e))
    }

    /// Moves a key's cursor to `epoch_s`; called only once a window's records
    /// are committed. Never moves it backwards.
    pub fn set_cursor(&mut self, key: &str, epoch_s: i64, now_ms: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO sync_cursors (query_key, cursor_time, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (query_key) DO UPDATE SET cursor_time = excluded.cursor_time, updated_at = excluded.updated_at \
                 WHERE excluded.cursor_time > sync_cursors.cursor_time",
                params![key, epoch_s * 1000, now_ms],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    pub fn begin_run(&mut self, kind: &str, now_ms: i64) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO sync_runs (kind, started_at, status) VALUES (?1, ?2, 'running')",
                params![kind, now_ms],
            )
            .map_err(|e| self.sql(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn finish_run(
        &mut self,
        id: i64,
        status: &str,
        f: &RunFigures,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE sync_runs SET finished_at = ?2, status = ?3, keys = ?4, windows = ?5, pages = ?6, \
                 records_fetched = ?7, inserted = ?8, updated = ?9, unchanged = ?10, stale = ?11, \
                 failed_windows = ?12, requests = ?13, retries = ?14, error = ?15, rereads = ?16 WHERE id = ?1",
                params![
                    id,
                    now_ms,
                    status,
                    f.keys as i64,
                    f.windows as i64,
                    f.pages as i64,
                    f.records_fetched as i64,
                    f.inserted as i64,
                    f.updated as i64,
                    f.unchanged as i64,
                    f.stale as i64,
                    f.failed_windows as i64,
                    f.requests as i64,
                    f.retries as i64,
                    error,
                    f.rereads as i64,
                ],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// The windows a backfill job has finished, as `(key, window_start)`.
    pub fn backfill_done(&self, job: &str) -> Result<HashSet<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT query_key, window_start FROM backfill_progress WHERE job = ?1")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([job], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<HashSet<_>, _>>());
        rows.map_err(|e| self.sql(e))
    }

    pub fn mark_backfill_window(
        &mut self,
        job: &str,
        key: &str,
        start: i64,
        end: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO backfill_progress (job, query_key, window_start, window_end, finished_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![job, key, start, end, now_ms],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Forgets a finished backfill, so running it again reads the period again.
    pub fn clear_backfill(&mut self, job: &str) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM backfill_progress WHERE job = ?1", [job]).map(drop).map_err(|e| self.sql(e))
    }

    /// Every key's cursor, by key.
    pub fn cursors(&self) -> Result<Vec<CursorRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT query_key, cursor_time, updated_at FROM sync_cursors ORDER BY query_key")
            .map_err(|e| self.sql(e))?;
        stmt.query_map([], |r| Ok(CursorRow { query_key: r.get(0)?, cursor_time: r.get(1)?, updated_at: r.get(2)? }))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))
    }

    pub fn status(&self, last_runs: usize) -> Result<StatusReport, StoreError> {
        let count = |table: &str| -> Result<i64, StoreError> {
            self.conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).map_err(|e| self.sql(e))
        };
        let cursors = self.cursors()?;
        let mut runs_stmt = self
            .conn
            .prepare(
                "SELECT id, kind, started_at, finished_at, status, keys, windows, pages, records_fetched, inserted, \
                 updated, unchanged, stale, failed_windows, requests, retries, error, rereads FROM sync_runs ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.sql(e))?;
        let runs = runs_stmt
            .query_map([last_runs as i64], |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(|v| v as u64);
                Ok(RunRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    started_at: r.get(2)?,
                    finished_at: r.get(3)?,
                    status: r.get(4)?,
                    figures: RunFigures {
                        keys: n(5)?,
                        windows: n(6)?,
                        pages: n(7)?,
                        records_fetched: n(8)?,
                        inserted: n(9)?,
                        updated: n(10)?,
                        unchanged: n(11)?,
                        stale: n(12)?,
                        failed_windows: n(13)?,
                        rereads: n(17)?,
                        requests: n(14)?,
                        retries: n(15)?,
                    },
                    error: r.get(16)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        let file_size = |suffix: &str| {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
        };
        Ok(StatusReport {
            records: count("records")?,
            turns: count("record_details")?,
            qa_rows: count("qa_records")?,
            schema_version: self.user_version()?,
            db_bytes: file_size("") + file_size("-wal"),
            cursors,
            runs,
        })
    }
}
