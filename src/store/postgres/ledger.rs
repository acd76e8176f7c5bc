//! Cursors, the run log and backfill progress of one tenant in PostgreSQL.

use std::collections::HashMap;

use super::Postgres;
use crate::run_log::{Figures, RunRow};
use crate::store::StoreError;
use crate::store::contract::Ledger;
use crate::store::sql::{ABANDONED, figure_sets, spans_by_key};

/// Moves a cursor forward only: `$1` tenant, `$2` key, `$3` epoch ms, `$4` now.
pub(super) const SET_CURSOR: &str = "INSERT INTO sync_cursors (tenant_id, query_key, cursor_time, updated_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, query_key) DO UPDATE SET cursor_time = excluded.cursor_time, \
     updated_at = excluded.updated_at WHERE excluded.cursor_time > sync_cursors.cursor_time";

impl Ledger for Postgres {
    fn cursor(&self, key: &str) -> Result<Option<i64>, StoreError> {
        self.run(async {
            let row = self
                .client
                .query_opt(
                    "SELECT cursor_time FROM sync_cursors WHERE tenant_id = $1 AND query_key = $2",
                    &[&self.tenant, &key],
                )
                .await?;
            Ok(row.map(|r| r.get::<_, i64>(0).div_euclid(1000)))
        })
    }

    fn set_cursor(&mut self, key: &str, epoch_s: i64, now_ms: i64) -> Result<(), StoreError> {
        self.run(self.client.execute(SET_CURSOR, &[&self.tenant, &key, &(epoch_s * 1000), &now_ms])).map(drop)
    }

    fn pull_back_cursor(&mut self, key: &str, epoch_s: i64, now_ms: i64) -> Result<(), StoreError> {
        self.run(self.client.execute(
            "UPDATE sync_cursors SET cursor_time = $3, updated_at = $4 WHERE tenant_id = $1 AND query_key = $2 \
             AND cursor_time > $3",
            &[&self.tenant, &key, &(epoch_s * 1000), &now_ms],
        ))
        .map(drop)
    }

    /// A new run; the tenant's runs still `running` (a process that ended
    /// mid-pass) are marked failed first.
    fn begin_run(&mut self, kind: &str, now_ms: i64) -> Result<i64, StoreError> {
        self.run(async {
            let abandoned = ABANDONED.replace("?1", "$2") + " AND tenant_id = $1";
            self.client.execute(&abandoned, &[&self.tenant, &now_ms]).await?;
            let row = self
                .client
                .query_one(
                    "INSERT INTO sync_runs (tenant_id, kind, started_at, status) VALUES ($1, $2, $3, 'running') \
                     RETURNING id",
                    &[&self.tenant, &kind, &now_ms],
                )
                .await?;
            Ok(row.get(0))
        })
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
            "UPDATE sync_runs SET finished_at = $3, status = $4, error = $5, {} WHERE tenant_id = $1 AND id = $2",
            figure_sets('$', 6)
        );
        let values: Vec<i64> = f.values().into_iter().map(|v| v as i64).collect();
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            vec![&self.tenant, &id, &now_ms, &status, &error];
        params.extend(values.iter().map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync)));
        self.run(self.client.execute(&sql, &params)).map(drop)
    }

    fn backfill_done(&self, job: &str) -> Result<HashMap<String, Vec<(i64, i64)>>, StoreError> {
        let rows: Vec<(String, i64, i64)> = self.run(async {
            let rows = self
                .client
                .query(
                    "SELECT query_key, window_start, window_end FROM backfill_progress WHERE tenant_id = $1 AND job = $2",
                    &[&self.tenant, &job],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
        })?;
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
        self.run(self.client.execute(
            "INSERT INTO backfill_progress (tenant_id, job, query_key, window_start, window_end, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, job, query_key, window_start) DO UPDATE SET \
             window_end = excluded.window_end, finished_at = excluded.finished_at",
            &[&self.tenant, &job, &key, &start, &end, &now_ms],
        ))
        .map(drop)
    }

    fn clear_backfill(&mut self, job: &str) -> Result<(), StoreError> {
        self.run(
            self.client
                .execute("DELETE FROM backfill_progress WHERE tenant_id = $1 AND job = $2", &[&self.tenant, &job]),
        )
        .map(drop)
    }

    fn last_runs(&self, n: usize) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!(
            "SELECT id, kind, started_at, finished_at, status, error, {} FROM sync_runs WHERE tenant_id = $1 \
             ORDER BY id DESC LIMIT $2",
            Figures::COLUMNS.join(", ")
        );
        let rows = self.run(self.client.query(&sql, &[&self.tenant, &(n as i64)]))?;
        Ok(rows
            .iter()
            .map(|r| {
                let values: Vec<u64> = Figures::COLUMNS.iter().map(|c| r.get::<_, i64>(*c) as u64).collect();
                RunRow {
                    id: r.get("id"),
                    kind: r.get("kind"),
                    started_at: r.get("started_at"),
                    finished_at: r.get("finished_at"),
                    status: r.get("status"),
                    error: r.get("error"),
                    figures: Figures::from_values(&values),
                }
            })
            .collect())
    }
}
