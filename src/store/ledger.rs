//! What the store knows of the sync itself: cursors, the run log, backfill
//! progress, and the status report built from them.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::{Sqlite, StoreError};
use crate::run_log::Figures;
use crate::run_log::{RunRow, StatusReport};

/// `keys = ?5, windows = ?6, …`: the figures' columns set from parameters
/// numbered from `first`, with `mark` (`?` for SQLite, `$` for PostgreSQL).
pub(super) fn figure_sets(mark: char, first: usize) -> String {
    let sets: Vec<String> =
        Figures::COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = {mark}{}", i + first)).collect();
    sets.join(", ")
}

/// Finished backfill windows `(key, start, end)` as spans by key.
pub(super) fn spans_by_key(rows: Vec<(String, i64, i64)>) -> HashMap<String, Vec<(i64, i64)>> {
    let mut done: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for (key, start, end) in rows {
        done.entry(key).or_default().push((start, end));
    }
    done
}

/// Marks the runs left `running` by a process that ended mid-pass.
pub(crate) const ABANDONED: &str = "UPDATE sync_runs SET status = 'failed', finished_at = coalesce(finished_at, ?1), \
     error = coalesce(error, 'the process ended before the pass finished (killed, or it lost its store)') \
     WHERE status = 'running'";

impl Sqlite {
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

    /// Moves a key's cursor back to `epoch_s` (a cursor in the future).
    pub fn pull_back_cursor(&mut self, key: &str, epoch_s: i64, now_ms: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE sync_cursors SET cursor_time = ?2, updated_at = ?3 WHERE query_key = ?1 AND cursor_time > ?2",
                params![key, epoch_s * 1000, now_ms],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// A new run. A run still `running` belongs to a process that ended
    /// before it finished (one writer at a time): it is marked failed.
    pub fn begin_run(&mut self, kind: &str, now_ms: i64) -> Result<i64, StoreError> {
        self.conn.execute(ABANDONED, [now_ms]).map_err(|e| self.sql(e))?;
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
        f: &Figures,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE sync_runs SET finished_at = ?2, status = ?3, error = ?4, {} WHERE id = ?1",
            figure_sets('?', 5)
        );
        let mut values: Vec<rusqlite::types::Value> =
            vec![id.into(), now_ms.into(), status.to_string().into(), error.map(str::to_string).into()];
        values.extend(f.values().into_iter().map(|v| rusqlite::types::Value::Integer(v as i64)));
        self.conn.execute(&sql, rusqlite::params_from_iter(values)).map(drop).map_err(|e| self.sql(e))
    }

    /// The windows a backfill job has finished, as `[start, end)` spans by key.
    pub fn backfill_done(&self, job: &str) -> Result<HashMap<String, Vec<(i64, i64)>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT query_key, window_start, window_end FROM backfill_progress WHERE job = ?1")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([job], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        Ok(spans_by_key(rows))
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

    pub fn status(&self, last_runs: usize) -> Result<StatusReport, StoreError> {
        let count = |table: &str| -> Result<i64, StoreError> {
            self.conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).map_err(|e| self.sql(e))
        };
        let sql = format!(
            "SELECT id, kind, started_at, finished_at, status, error, {} FROM sync_runs ORDER BY id DESC LIMIT ?1",
            Figures::COLUMNS.join(", ")
        );
        let mut runs_stmt = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        let runs = runs_stmt
            .query_map([last_runs as i64], |r| {
                let values = (0..Figures::COLUMNS.len())
                    .map(|i| r.get::<_, i64>(i + 6).map(|v| v as u64))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(RunRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    started_at: r.get(2)?,
                    finished_at: r.get(3)?,
                    status: r.get(4)?,
                    error: r.get(5)?,
                    figures: Figures::from_values(&values),
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
            db_bytes_counts: "file",
            keys: self.key_counts()?,
            cursors: self.stream_cursors()?,
            skipped_windows: self.skipped_windows()?,
            runs,
        })
    }
}
