//! Sessions removed by age from one tenant in PostgreSQL, with what hangs
//! on them: plain DELETEs, whose space autovacuum gives back to the tables.

use super::{Postgres, facts, upsert};
use crate::store::StoreError;
use crate::store::contract::Retention;

impl Retention for Postgres {
    fn prune_sessions(&mut self, before_ms: i64, limit: usize) -> Result<u64, StoreError> {
        let tenant = self.tenant.clone();
        let client = &mut self.client;
        super::run_on(self.rt.as_ref(), &self.shown, async move {
            let tx = client.transaction().await?;
            let rows = tx
                .query(
                    "SELECT log_id, call_id, cti_call_id FROM records WHERE tenant_id = $1 AND start_time < $2 \
                     ORDER BY start_time LIMIT $3",
                    &[&tenant, &before_ms, &(limit as i64)],
                )
                .await?;
            let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            if ids.is_empty() {
                tx.commit().await?;
                return Ok(0);
            }
            let calls: Vec<String> = rows
                .iter()
                .flat_map(|r| [r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(2)])
                .flatten()
                .collect();
            // Their figures leave the sums, and the same callers' later
            // sessions may be no repeat any more.
            let none: Vec<Option<&str>> = Vec::new();
            let no_start: Vec<Option<i64>> = Vec::new();
            let mut touched = ids.clone();
            for row in tx.query(facts::FOLLOWERS, &[&tenant, &none, &no_start, &ids]).await? {
                touched.push(row.get(0));
            }
            touched.sort_unstable();
            touched.dedup();
            for sql in upsert::uncount_sql() {
                tx.execute(&sql, &[&tenant, &ids]).await?;
            }
            for sql in [upsert::DELETE_TURNS, upsert::DELETE_QA, upsert::DELETE_RECORDS] {
                tx.execute(sql, &[&tenant, &ids]).await?;
            }
            // The legs of their calls, unless a session kept meets them.
            tx.execute(
                "DELETE FROM cdr_legs l WHERE tenant_id = $1 AND call_id = ANY ($2) \
                 AND NOT EXISTS (SELECT 1 FROM records r WHERE r.tenant_id = $1 AND r.cti_call_id = l.call_id) \
                 AND NOT EXISTS (SELECT 1 FROM records r WHERE r.tenant_id = $1 AND r.call_id = l.call_id)",
                &[&tenant, &calls],
            )
            .await?;
            facts::refresh(&tx, &tenant, &touched).await?;
            // The summary rows left at zero (a day, an hour no session is left in).
            for (table, count) in [
                ("summary_calls_per_day", "calls"),
                ("summary_intentions_per_day", "turns"),
                ("summary_answers", "answers"),
                ("kpi_hourly", "sessions"),
                ("kpi_dropoff", "sessions"),
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE tenant_id = $1 AND {count} = 0"), &[&tenant]).await?;
            }
            tx.commit().await?;
            Ok(ids.len() as u64)
        })
    }

    fn prune_legs(&mut self, before_ms: i64, limit: usize) -> Result<u64, StoreError> {
        self.run(async {
            self.client
                .execute(
                    "DELETE FROM cdr_legs WHERE tenant_id = $1 AND call_id IN ( \
                         SELECT l.call_id FROM cdr_legs l WHERE l.tenant_id = $1 GROUP BY l.call_id \
                         HAVING max(coalesce(l.call_end, l.call_begin, 0)) < $2 \
                            AND NOT EXISTS (SELECT 1 FROM records r WHERE r.tenant_id = $1 AND r.cti_call_id = l.call_id) \
                            AND NOT EXISTS (SELECT 1 FROM records r WHERE r.tenant_id = $1 AND r.call_id = l.call_id) \
                         LIMIT $3)",
                    &[&self.tenant, &before_ms, &(limit as i64)],
                )
                .await
        })
    }

    fn count_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.run(async {
            let row = self
                .client
                .query_one(
                    "SELECT count(*) FROM records WHERE tenant_id = $1 AND start_time < $2",
                    &[&self.tenant, &before_ms],
                )
                .await?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }
}
