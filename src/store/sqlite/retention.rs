//! Sessions removed by age from the SQLite store, with what hangs on them.
//! The pages they free stay in the file's free list, where the next writes
//! take them: the file stops growing rather than shrinking.

use rusqlite::{Transaction, TransactionBehavior, params};

use super::{Sqlite, facts, sql_error, upsert};
use crate::config::FullText;
use crate::store::StoreError;
use crate::store::contract::Retention;

impl Retention for Sqlite {
    fn prune_sessions(&mut self, before_ms: i64, limit: usize) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let full_text = self.full_text;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let gone = prune(&tx, before_ms, limit, full_text).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(gone)
    }

    fn prune_legs(&mut self, before_ms: i64, limit: usize) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(
                "DELETE FROM cdr_legs WHERE call_id IN ( \
                     SELECT l.call_id FROM cdr_legs l GROUP BY l.call_id \
                     HAVING max(coalesce(l.call_end, l.call_begin, 0)) < ?1 \
                        AND NOT EXISTS (SELECT 1 FROM records r WHERE r.cti_call_id = l.call_id) \
                        AND NOT EXISTS (SELECT 1 FROM records r WHERE r.call_id = l.call_id) \
                     LIMIT ?2)",
            )
            .and_then(|mut s| s.execute(params![before_ms, limit as i64]))
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    fn count_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM records WHERE start_time < ?1", [before_ms], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }
}

/// The summary rows a prune left at zero (a day, an hour no session is left in).
const EMPTIED: &str = "DELETE FROM summary_calls_per_day WHERE calls = 0; \
    DELETE FROM summary_intentions_per_day WHERE turns = 0; DELETE FROM summary_answers WHERE answers = 0; \
    DELETE FROM kpi_hourly WHERE sessions = 0; DELETE FROM kpi_dropoff WHERE sessions = 0;";

fn prune(tx: &Transaction<'_>, before_ms: i64, limit: usize, full_text: FullText) -> rusqlite::Result<u64> {
    type Victim = (i64, Option<String>, Option<String>);
    let victims: Vec<Victim> = tx
        .prepare_cached(
            "SELECT rowid, call_id, cti_call_id FROM records WHERE start_time < ?1 ORDER BY start_time LIMIT ?2",
        )?
        .query_map(params![before_ms, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (id, _, _) in &victims {
        upsert::count_in_summaries(tx, *id, -1)?;
        // Its figures leave the sums, and the same caller's later sessions
        // may be no repeat any more.
        facts::mark_with_followers(tx, *id)?;
        upsert::delete_children(tx, *id, full_text)?;
        tx.prepare_cached("DELETE FROM records WHERE rowid = ?1")?.execute([id])?;
    }
    // The legs of their calls, unless a session kept meets them.
    let mut legs = tx.prepare_cached(
        "DELETE FROM cdr_legs WHERE call_id = ?1 AND NOT EXISTS (SELECT 1 FROM records WHERE cti_call_id = ?1) \
         AND NOT EXISTS (SELECT 1 FROM records WHERE call_id = ?1)",
    )?;
    for call in victims.iter().flat_map(|(_, call, cti)| [call, cti]).flatten() {
        legs.execute([call])?;
    }
    facts::refresh(tx)?;
    tx.execute_batch(EMPTIED)?;
    Ok(victims.len() as u64)
}
