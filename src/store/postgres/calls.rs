//! CDR legs and the files they came from, for one tenant in PostgreSQL: a
//! batch of legs in one statement of arrays, then its calls' keys.

use std::collections::HashSet;

use super::keys::upsert;
use super::{Postgres, facts};
use crate::cdr::{IVR, Leg, TIME_COLUMNS, stored_columns};
use crate::keys::{KeyKind, KeyState, QueryKey};
use crate::platform::{HourCount, PlatformHour, Verified};
use crate::store::StoreError;
use crate::store::contract::Calls;

/// `INSERT … SELECT FROM unnest(…)` of every column, replacing a leg read again.
fn upsert_legs_sql() -> String {
    let columns = stored_columns();
    // call_id, then the integers, then the texts, as `Leg::values` gives them.
    let ints = 2 + TIME_COLUMNS.len();
    let params: Vec<String> = (0..columns.len())
        .map(|i| format!("${}::{}", i + 2, if (1..=ints).contains(&i) { "BIGINT[]" } else { "TEXT[]" }))
        .collect();
    let sets: Vec<String> = columns.iter().skip(2).map(|c| format!("{c} = excluded.{c}")).collect();
    format!(
        "INSERT INTO cdr_legs (tenant_id, {cols}) SELECT $1, * FROM unnest({params}) \
         ON CONFLICT (tenant_id, call_id, call_id_num) DO UPDATE SET {sets}",
        cols = columns.join(", "),
        params = params.join(", "),
        sets = sets.join(", ")
    )
}

impl Calls for Postgres {
    fn cdr_file_mark(&self, path: &str) -> Result<Option<(i64, i64)>, StoreError> {
        self.run(async {
            let row = self
                .client
                .query_opt(
                    "SELECT size, modified_at FROM cdr_files WHERE tenant_id = $1 AND path = $2",
                    &[&self.tenant, &path],
                )
                .await?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })
    }

    fn add_cdr_legs(&mut self, legs: &[Leg], kind: KeyKind, now_ms: i64) -> Result<u64, StoreError> {
        if legs.is_empty() {
            return Ok(0);
        }
        let sql = upsert_legs_sql();
        let tenant = self.tenant.clone();
        let call_id: Vec<&str> = legs.iter().map(|l| l.call_id.as_str()).collect();
        // Column-wise: one array a column.
        let rows: Vec<_> = legs.iter().map(Leg::values).collect();
        let ints: Vec<Vec<Option<i64>>> = (0..rows[0].0.len()).map(|i| rows.iter().map(|r| r.0[i]).collect()).collect();
        let texts: Vec<Vec<Option<&str>>> =
            (0..rows[0].1.len()).map(|i| rows.iter().map(|r| r.1[i]).collect()).collect();
        let calls: Vec<&str> = legs.iter().map(|l| l.call_id.as_str()).collect::<HashSet<_>>().into_iter().collect();
        let client = &mut self.client;
        super::run_on(self.rt.as_ref(), &self.shown, async move {
            let tx = client.transaction().await?;
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&tenant, &call_id];
            params.extend(ints.iter().map(|t| t as &(dyn tokio_postgres::types::ToSql + Sync)));
            params.extend(texts.iter().map(|t| t as &(dyn tokio_postgres::types::ToSql + Sync)));
            tx.execute(&sql, &params).await?;
            // The calls of the batch with an IVR leg, with their span over every stored leg.
            let rows = tx
                .query(
                    "SELECT call_id, min(call_begin), max(call_end) FROM cdr_legs \
                     WHERE tenant_id = $1 AND call_id = ANY ($2) GROUP BY call_id HAVING bool_or(device_type = $3)",
                    &[&tenant, &calls, &IVR],
                )
                .await?;
            let mut keys = Vec::new();
            let (mut names, mut begins, mut ends) = (Vec::new(), Vec::new(), Vec::new());
            for row in rows {
                let Ok(key) = QueryKey::of(kind, row.get::<_, &str>(0)) else { continue };
                names.push(key.to_string());
                begins.push(row.get::<_, Option<i64>>(1));
                ends.push(row.get::<_, Option<i64>>(2));
                keys.push(key);
            }
            let added = upsert(&tx, &tenant, &keys, "cdr", &[KeyState::Removed], now_ms).await?;
            tx.execute(
                "UPDATE query_keys k SET call_begin = s.b, call_end = s.e \
                 FROM unnest($2::TEXT[], $3::BIGINT[], $4::BIGINT[]) AS s (k, b, e) \
                 WHERE k.tenant_id = $1 AND k.query_key = s.k",
                &[&tenant, &names, &begins, &ends],
            )
            .await?;
            let touched: Vec<String> =
                tx.query(facts::OF_CALLS, &[&tenant, &calls]).await?.iter().map(|r| r.get(0)).collect();
            facts::refresh(&tx, &tenant, &touched).await?;
            tx.commit().await?;
            Ok(added)
        })
    }

    fn cdr_file_read(
        &mut self,
        path: &str,
        size: i64,
        modified_ms: i64,
        rows: u64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.run(self.client.execute(
            "INSERT INTO cdr_files (tenant_id, path, size, modified_at, rows, read_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, path) DO UPDATE SET size = excluded.size, modified_at = excluded.modified_at, \
             rows = excluded.rows, read_at = excluded.read_at",
            &[&self.tenant, &path, &size, &modified_ms, &(rows as i64), &now_ms],
        ))
        .map(drop)
    }

    fn put_platform_hours(&mut self, hours: &[PlatformHour], now_ms: i64) -> Result<(), StoreError> {
        let tenant = self.tenant.clone();
        let client = &mut self.client;
        super::run_on(self.rt.as_ref(), &self.shown, async move {
            let tx = client.transaction().await?;
            let put = tx
                .prepare(
                    "INSERT INTO platform_stats (tenant_id, access_code, record_time, call_count, exit_no_consult_count, \
                     call_staff_no_consult_count, call_staff_consult_count, exit_consulting_count, interact_count, \
                     autonomy_rate, average_interact_per_call, db_record_time, interface_request_count, \
                     interface_success_count, interface_success_rate, extra_json, fetched_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
                     ON CONFLICT (tenant_id, access_code, record_time) DO UPDATE SET call_count = excluded.call_count, \
                     exit_no_consult_count = excluded.exit_no_consult_count, \
                     call_staff_no_consult_count = excluded.call_staff_no_consult_count, \
                     call_staff_consult_count = excluded.call_staff_consult_count, \
                     exit_consulting_count = excluded.exit_consulting_count, interact_count = excluded.interact_count, \
                     autonomy_rate = excluded.autonomy_rate, average_interact_per_call = excluded.average_interact_per_call, \
                     db_record_time = excluded.db_record_time, interface_request_count = excluded.interface_request_count, \
                     interface_success_count = excluded.interface_success_count, \
                     interface_success_rate = excluded.interface_success_rate, extra_json = excluded.extra_json, \
                     fetched_at = excluded.fetched_at",
                )
                .await?;
            for h in hours {
                tx.execute(
                    &put,
                    &[
                        &tenant,
                        &h.access_code,
                        &h.record_time,
                        &h.call_count,
                        &h.exit_no_consult_count,
                        &h.call_staff_no_consult_count,
                        &h.call_staff_consult_count,
                        &h.exit_consulting_count,
                        &h.interact_count,
                        &h.autonomy_rate,
                        &h.average_interact_per_call,
                        &h.db_record_time,
                        &h.interface_request_count,
                        &h.interface_success_count,
                        &h.interface_success_rate,
                        &h.extra_json,
                        &now_ms,
                    ],
                )
                .await?;
            }
            tx.commit().await
        })
    }

    fn hour_counts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<HourCount>, StoreError> {
        self.run(async {
            let rows = self
                .client
                .query(
                    "SELECT p.access_code, p.record_time, p.call_count, \
                     (SELECT count(*) FROM records r WHERE r.tenant_id = p.tenant_id AND r.called_number = p.access_code \
                      AND r.start_time >= p.record_time AND r.start_time < p.record_time + 3600000) \
                     FROM platform_stats p WHERE p.tenant_id = $1 AND p.record_time >= $2 AND p.record_time < $3 \
                     ORDER BY p.access_code, p.record_time",
                    &[&self.tenant, &from_ms, &to_ms],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| HourCount { access_code: r.get(0), hour: r.get(1), platform: r.get(2), mirrored: r.get(3) })
                .collect())
        })
    }

    fn keep_verification(&mut self, v: &Verified) -> Result<(), StoreError> {
        self.run(self.client.execute(
            "INSERT INTO verifications (tenant_id, verified_at, period_from, period_to, platform_calls, mirrored, \
             missing, missing_hours) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id) DO UPDATE SET \
             verified_at = excluded.verified_at, period_from = excluded.period_from, period_to = excluded.period_to, \
             platform_calls = excluded.platform_calls, mirrored = excluded.mirrored, missing = excluded.missing, \
             missing_hours = excluded.missing_hours",
            &[&self.tenant, &v.at, &v.from, &v.to, &v.platform_calls, &v.mirrored, &v.missing, &v.missing_hours],
        ))
        .map(drop)
    }

    fn last_verification(&self) -> Result<Option<Verified>, StoreError> {
        self.run(async {
            let row = self
                .client
                .query_opt(
                    "SELECT verified_at, period_from, period_to, platform_calls, mirrored, missing, missing_hours \
                     FROM verifications WHERE tenant_id = $1",
                    &[&self.tenant],
                )
                .await?;
            Ok(row.map(|r| Verified {
                at: r.get(0),
                from: r.get(1),
                to: r.get(2),
                platform_calls: r.get(3),
                mirrored: r.get(4),
                missing: r.get(5),
                missing_hours: r.get(6),
            }))
        })
    }
}
