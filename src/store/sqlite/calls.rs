//! CDR legs and the files they came from, in the SQLite store.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params};

use super::keys::upsert;
use super::{Sqlite, sql_error};
use crate::cdr::{IVR, Leg};
use crate::keys::{KeyKind, KeyState, QueryKey};
use crate::store::StoreError;
use crate::store::contract::Calls;

const UPSERT_LEG: &str = "INSERT INTO cdr_legs (call_id, call_id_num, device_type, developer, account_id, cc_id, \
     agent_id, caller_no, callee_no, wait_begin, wait_end, ack_begin, ack_end, call_begin, call_end, device_no, \
     call_type, release_cause, vdn_id, pre_device_type, pre_device_no, extra_json) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22) \
     ON CONFLICT (call_id, call_id_num) DO UPDATE SET device_type = excluded.device_type, \
     developer = excluded.developer, account_id = excluded.account_id, cc_id = excluded.cc_id, \
     agent_id = excluded.agent_id, caller_no = excluded.caller_no, callee_no = excluded.callee_no, \
     wait_begin = excluded.wait_begin, wait_end = excluded.wait_end, ack_begin = excluded.ack_begin, \
     ack_end = excluded.ack_end, call_begin = excluded.call_begin, call_end = excluded.call_end, \
     device_no = excluded.device_no, call_type = excluded.call_type, release_cause = excluded.release_cause, \
     vdn_id = excluded.vdn_id, pre_device_type = excluded.pre_device_type, pre_device_no = excluded.pre_device_no, \
     extra_json = excluded.extra_json";

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
            let mut write = tx.prepare_cached(UPSERT_LEG).map_err(sql)?;
            for l in legs {
                let [
                    developer,
                    account_id,
                    cc_id,
                    agent_id,
                    caller_no,
                    callee_no,
                    device_no,
                    call_type,
                    release,
                    vdn,
                    pre_type,
                    pre_no,
                ] = &l.texts;
                let [wait_begin, wait_end, ack_begin, ack_end, call_begin, call_end] = l.times;
                write
                    .execute(params![
                        l.call_id,
                        l.call_id_num,
                        l.device_type,
                        developer,
                        account_id,
                        cc_id,
                        agent_id,
                        caller_no,
                        callee_no,
                        wait_begin,
                        wait_end,
                        ack_begin,
                        ack_end,
                        call_begin,
                        call_end,
                        device_no,
                        call_type,
                        release,
                        vdn,
                        pre_type,
                        pre_no,
                        l.extra_json
                    ])
                    .map_err(sql)?;
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
                let (begin, end, ivr): (Option<i64>, Option<i64>, Option<bool>) =
                    span.query_row(params![call, IVR], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(sql)?;
                let Ok(key) = QueryKey::of(kind, call) else { continue };
                if ivr != Some(true) {
                    continue;
                }
                added += u64::from(upsert(&tx, &key, "cdr", &[KeyState::Removed], now_ms).map_err(sql)?);
                set_span.execute(params![key.to_string(), begin, end]).map_err(sql)?;
            }
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
}
