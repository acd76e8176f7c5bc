//! CDR legs and the files they came from, in the SQLite store.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params};

use super::keys::upsert;
use super::{Sqlite, facts, sql_error};
use crate::cdr::{IVR, Leg, stored_columns};
use crate::keys::{KeyKind, KeyState, QueryKey};
use crate::platform::{HourCount, PlatformHour, Verified};
use crate::store::StoreError;
use crate::store::contract::Calls;

/// Writes a leg, replacing the same leg read before.
fn upsert_leg_sql() -> String {
    let columns = stored_columns();
    let params: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let sets: Vec<String> = columns.iter().skip(2).map(|c| format!("{c} = excluded.{c}")).collect();
    format!(
        "INSERT INTO cdr_legs ({}) VALUES ({}) ON CONFLICT (call_id, call_id_num) DO UPDATE SET {}",
        columns.join(", "),
        params.join(", "),
        sets.join(", ")
    )
}

impl Calls for Sqlite {
    fn cdr_file_mark(&self, path: &str) -> Result<Option<(i64, i64)>, StoreError> {
        self.conn
            .query_row("SELECT size, modified_at FROM cdr_files WHERE path = ?1", [path], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.sql(e))
    }

    fn add_cdr_legs(&mut self, legs: &[Leg], kind: KeyKind, now_ms: i64) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
        let mut added = 0;
        {
            let mut write = tx.prepare_cached(&upsert_leg_sql()).map_err(sql)?;
            for l in legs {
                let (ints, texts) = l.values();
                let mut values: Vec<&dyn rusqlite::ToSql> = vec![&l.call_id];
                values.extend(ints.iter().map(|v| v as &dyn rusqlite::ToSql));
                values.extend(texts.iter().map(|v| v as &dyn rusqlite::ToSql));
                write.execute(&values[..]).map_err(sql)?;
            }
            let mut span = tx
                .prepare_cached(
                    "SELECT min(call_begin), max(call_end), max(device_type = ?2) FROM cdr_legs WHERE call_id = ?1",
                )
                .map_err(sql)?;
            let mut set_span = tx
                .prepare_cached("UPDATE query_keys SET call_begin = ?2, call_end = ?3 WHERE query_key = ?1")
                .map_err(sql)?;
            let calls: HashSet<&str> = legs.iter().map(|l| l.call_id.as_str()).collect();
            for call in calls {
                facts::mark_call(&tx, call).map_err(sql)?;
                let (begin, end, ivr): (Option<i64>, Option<i64>, Option<bool>) =
                    span.query_row(params![call, IVR], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(sql)?;
                let Ok(key) = QueryKey::of(kind, call) else { continue };
                if ivr != Some(true) {
                    continue;
                }
                added += u64::from(upsert(&tx, &key, "cdr", &[KeyState::Removed], now_ms).map_err(sql)?);
                set_span.execute(params![key.to_string(), begin, end]).map_err(sql)?;
            }
            facts::refresh(&tx).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(added)
    }

    fn cdr_file_read(
        &mut self,
        path: &str,
        size: i64,
        modified_ms: i64,
        rows: u64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO cdr_files (path, size, modified_at, rows, read_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (path) DO UPDATE SET size = excluded.size, modified_at = excluded.modified_at, \
                 rows = excluded.rows, read_at = excluded.read_at",
                params![path, size, modified_ms, rows as i64, now_ms],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    fn put_platform_hours(&mut self, hours: &[PlatformHour], now_ms: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO platform_stats (access_code, record_time, call_count, exit_no_consult_count, \
                     call_staff_no_consult_count, call_staff_consult_count, exit_consulting_count, interact_count, \
                     autonomy_rate, average_interact_per_call, db_record_time, interface_request_count, \
                     interface_success_count, interface_success_rate, extra_json, fetched_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                )
                .map_err(sql)?;
            for h in hours {
                put.execute(params![
                    h.access_code,
                    h.record_time,
                    h.call_count,
                    h.exit_no_consult_count,
                    h.call_staff_no_consult_count,
                    h.call_staff_consult_count,
                    h.exit_consulting_count,
                    h.interact_count,
                    h.autonomy_rate,
                    h.average_interact_per_call,
                    h.db_record_time,
                    h.interface_request_count,
                    h.interface_success_count,
                    h.interface_success_rate,
                    h.extra_json,
                    now_ms
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    fn hour_counts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<HourCount>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.access_code, p.record_time, p.call_count, \
                 (SELECT count(*) FROM records r WHERE r.called_number = p.access_code \
                  AND r.start_time >= p.record_time AND r.start_time < p.record_time + 3600000) \
                 FROM platform_stats p WHERE p.record_time >= ?1 AND p.record_time < ?2 \
                 ORDER BY p.access_code, p.record_time",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_map(params![from_ms, to_ms], |r| {
            Ok(HourCount { access_code: r.get(0)?, hour: r.get(1)?, platform: r.get(2)?, mirrored: r.get(3)? })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.sql(e))
    }

    fn keep_verification(&mut self, v: &Verified) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO verifications (id, verified_at, period_from, period_to, platform_calls, \
                 mirrored, missing, missing_hours) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![v.at, v.from, v.to, v.platform_calls, v.mirrored, v.missing, v.missing_hours],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    fn last_verification(&self) -> Result<Option<Verified>, StoreError> {
        self.conn
            .query_row(
                "SELECT verified_at, period_from, period_to, platform_calls, mirrored, missing, missing_hours \
                 FROM verifications WHERE id = 1",
                [],
                |r| {
                    Ok(Verified {
                        at: r.get(0)?,
                        from: r.get(1)?,
                        to: r.get(2)?,
                        platform_calls: r.get(3)?,
                        mirrored: r.get(4)?,
                        missing: r.get(5)?,
                        missing_hours: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}
