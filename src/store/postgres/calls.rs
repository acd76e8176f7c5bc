//! CDR legs and the files they came from, for one tenant in PostgreSQL: a
//! batch of legs in one statement of arrays, then its calls' keys.

use std::collections::HashSet;

use super::Postgres;
use super::keys::upsert;
use crate::cdr::{IVR, Leg, TEXT_COLUMNS, TIME_COLUMNS};
use crate::keys::{KeyKind, KeyState, QueryKey};
use crate::store::StoreError;
use crate::store::contract::Calls;

/// `INSERT … SELECT FROM unnest(…)` of every column, replacing a leg read again.
fn upsert_legs_sql() -> String {
    let mut columns = vec!["call_id", "call_id_num", "device_type"];
    columns.extend(TIME_COLUMNS);
    columns.extend(TEXT_COLUMNS);
    columns.push("extra_json");
    let types: Vec<&str> = columns
        .iter()
        .enumerate()
        .map(|(i, _)| if (1..3 + TIME_COLUMNS.len()).contains(&i) { "BIGINT[]" } else { "TEXT[]" })
        .collect();
    let params: Vec<String> = types.iter().enumerate().map(|(i, t)| format!("${}::{t}", i + 2)).collect();
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
        let sql = upsert_legs_sql();
        let tenant = self.tenant.clone();
        let call_id: Vec<&str> = legs.iter().map(|l| l.call_id.as_str()).collect();
        let call_id_num: Vec<i64> = legs.iter().map(|l| l.call_id_num).collect();
        let device_type: Vec<Option<i64>> = legs.iter().map(|l| l.device_type).collect();
        let times: Vec<Vec<Option<i64>>> =
            (0..TIME_COLUMNS.len()).map(|i| legs.iter().map(|l| l.times[i]).collect()).collect();
        let texts: Vec<Vec<Option<&str>>> =
            (0..TEXT_COLUMNS.len()).map(|i| legs.iter().map(|l| l.texts[i].as_deref()).collect()).collect();
        let extra: Vec<Option<&str>> = legs.iter().map(|l| l.extra_json.as_deref()).collect();
        let calls: Vec<&str> = legs.iter().map(|l| l.call_id.as_str()).collect::<HashSet<_>>().into_iter().collect();
        let client = &mut self.client;
        super::run_on(self.rt.as_ref(), &self.shown, async move {
            let tx = client.transaction().await?;
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                vec![&tenant, &call_id, &call_id_num, &device_type];
            params.extend(times.iter().map(|t| t as &(dyn tokio_postgres::types::ToSql + Sync)));
            params.extend(texts.iter().map(|t| t as &(dyn tokio_postgres::types::ToSql + Sync)));
            params.push(&extra);
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
}
