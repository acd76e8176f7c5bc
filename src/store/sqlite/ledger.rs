//! What the SQLite store knows of the sync itself: cursors, the run log and
//! backfill progress.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::Sqlite;
use crate::run_log::{Figures, RunRow};
use crate::store::StoreError;
use crate::store::contract::Ledger;
use crate::store::sql::{ABANDONED, figure_sets, spans_by_key};

impl Ledger for Sqlite {
    /// A key's cursor, in epoch seconds.
    fn cursor(&self, key: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT cursor_time FROM sync_cursors WHERE query_key = ?1", [key], |r| r.get::<_, i64>(0))
            .optional()
            .map(|ms| ms.map(|ms| ms.div_euclid(1000)))
            .map_err(|e| self.sql(e))
    }

    /// Moves a key's cursor to `epoch_s`; called only once a window's records
    /// are committed. Never moves it backwards.
    fn set_cursor(&mut self, key: &str, epoch_s: i64, now_ms: i64) -> Result<(), StoreError> {
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
    fn pull_back_cursor(&mut self, key: &str, epoch_s: i64, now_ms: i64) -> Result<(), StoreError> {
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
    fn begin_run(&mut self, kind: &str, now_ms: i64) -> Result<i64, StoreError> {
        self.conn.execute(ABANDONED, [now_ms]).map_err(|e| self.sql(e))?;
        self.conn
            .execute(
                "INSERT INTO sync_runs (kind, started_at, status) VALUES (?1, ?2, 'running')",
                params![kind, now_ms],
            )
            .map_err(|e| self.sql(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    fn finish_run(
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
    fn backfill_done(&self, job: &str) -> Result<HashMap<String, Vec<(i64, i64)>>, StoreError> {
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

    fn mark_backfill_window(
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
    fn clear_backfill(&mut self, job: &str) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM backfill_progress WHERE job = ?1", [job]).map(drop).map_err(|e| self.sql(e))
    }

    fn last_runs(&self, n: usize) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!(
            "SELECT id, kind, started_at, finished_at, status, error, {} FROM sync_runs ORDER BY id DESC LIMIT ?1",
            Figures::COLUMNS.join(", ")
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        stmt.query_map([n as i64], |r| {
            let values = Figures::COLUMNS
                .iter()
                .map(|c| r.get::<_, i64>(*c).map(|v| v as u64))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RunRow {
                id: r.get("id")?,
                kind: r.get("kind")?,
                started_at: r.get("started_at")?,
                finished_at: r.get("finished_at")?,
                status: r.get("status")?,
                error: r.get("error")?,
                figures: Figures::from_values(&values),
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| self.sql(e))
    }
}
