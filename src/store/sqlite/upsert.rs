//! A page written to the SQLite store by the dedup rule ([`crate::store::dedup`]),
//! with its turns, Q&A rows, full-text rows and summary counts.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::{Sqlite, facts};
use crate::config::FullText;
use crate::record::{Record, Turn};
use crate::store::StoreError;
use crate::store::contract::Pages;
use crate::store::dedup::{Decision, PageOutcome, Summary, decide};

const INSERT_RECORD: &str = "INSERT INTO records (log_id, tenant_id, call_sor_id, call_id, cti_call_id, \
    calling_number, called_number, start_time, end_time, last_update_time, flow_inst_id, dialog_type, \
    call_data, location_id, flag, business_info, business_info_str, record_file_name, yugao_file_name, \
    raw_json, content_hash, first_seen_at, synced_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?22)";

const UPDATE_RECORD: &str = "UPDATE records SET tenant_id = ?2, call_sor_id = ?3, call_id = ?4, \
    cti_call_id = ?5, calling_number = ?6, called_number = ?7, start_time = ?8, end_time = ?9, \
    last_update_time = ?10, flow_inst_id = ?11, dialog_type = ?12, call_data = ?13, location_id = ?14, \
    flag = ?15, business_info = ?16, business_info_str = ?17, record_file_name = ?18, yugao_file_name = ?19, \
    raw_json = ?20, content_hash = ?21, synced_at = ?22 WHERE log_id = ?1";

impl Pages for Sqlite {
    fn apply_page(&mut self, records: &[Record], now_ms: i64) -> Result<PageOutcome, StoreError> {
        let path = self.path.clone();
        let sql = |source| super::sql_error(&path, source);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let outcome = apply(&tx, records, now_ms, self.full_text).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(outcome)
    }

    fn set_fallback_intentions(&mut self, intentions: &[String]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |e| super::sql_error(&path, e);
        // Read first: every pass sets the list, which seldom changes.
        let kept: Vec<String> = self
            .conn
            .prepare_cached("SELECT intention FROM fallback_intentions ORDER BY intention")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql)?;
        let mut wanted = intentions.to_vec();
        wanted.sort();
        wanted.dedup();
        if kept == wanted {
            return Ok(());
        }
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        tx.execute("DELETE FROM fallback_intentions", []).map_err(sql)?;
        for i in intentions {
            tx.execute("INSERT OR IGNORE INTO fallback_intentions (intention) VALUES (?1)", [i]).map_err(sql)?;
        }
        facts::rebuild(&tx).map_err(sql)?;
        tx.commit().map_err(sql)
    }
}

fn apply(tx: &Transaction<'_>, records: &[Record], now_ms: i64, full_text: FullText) -> rusqlite::Result<PageOutcome> {
    let mut outcome = PageOutcome::default();
    let mut lookup =
        tx.prepare_cached("SELECT rowid, last_update_time, content_hash FROM records WHERE log_id = ?1")?;
    let mut summary = Summary::default();
    // The turns written, indexed once every other statement of the page has
    // run: FTS5 writes what it holds to disk at each statement that may
    // roll back on its own, so a full-text row written before one costs a
    // flush and a merge.
    let mut indexed: Vec<(i64, i64, &Turn)> = Vec::new();
    let mut mark = tx.prepare_cached("INSERT INTO kpi_dirty (record_id) VALUES (?1) ON CONFLICT DO NOTHING")?;
    for r in records {
        let stored: Option<(i64, _)> =
            lookup.query_row([&r.log_id], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?)))).optional()?;
        let id = stored.as_ref().map(|(id, _)| *id);
        match decide(r, stored.map(|(_, version)| version)) {
            Decision::Insert => {
                write_record(tx, INSERT_RECORD, r, now_ms)?;
                let id = tx.last_insert_rowid();
                write_children(tx, id, r, &mut indexed)?;
                mark.execute([id])?;
                summary.add(r);
                outcome.inserted += 1;
            }
            Decision::Replace => {
                let id = id.expect("a replaced record is stored");
                count_in_summaries(tx, id, -1)?;
                facts::mark_with_followers(tx, id)?;
                write_record(tx, UPDATE_RECORD, r, now_ms)?;
                // The same session earlier in this page: its turns are
                // indexed first, so that taking them out finds them.
                if indexed.iter().any(|(_, record, _)| *record == id) {
                    index_turns(tx, &indexed, full_text)?;
                    indexed.clear();
                }
                delete_children(tx, id, full_text)?;
                write_children(tx, id, r, &mut indexed)?;
                mark.execute([id])?;
                summary.add(r);
                outcome.updated += 1;
            }
            Decision::Unchanged => outcome.unchanged += 1,
            Decision::Stale => outcome.stale += 1,
        }
    }
    summary.write(tx)?;
    if outcome.inserted + outcome.updated > 0 {
        facts::mark_followers(tx)?;
        facts::refresh(tx)?;
    }
    index_turns(tx, &indexed, full_text)?;
    Ok(outcome)
}

/// Adds the turns written (by their rowids) to the full-text index.
fn index_turns(tx: &Transaction<'_>, turns: &[(i64, i64, &Turn)], full_text: FullText) -> rusqlite::Result<()> {
    if full_text == FullText::Off {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(full_text.insert_sql())?;
    for (id, _, t) in turns {
        match full_text {
            FullText::All => insert.execute(params![id, t.user_saying, t.system_reply])?,
            _ => insert.execute(params![id, t.user_saying])?,
        };
    }
    Ok(())
}

impl Summary {
    fn write(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut calls = tx.prepare_cached(
            "INSERT INTO summary_calls_per_day (day, calls) VALUES (?1, ?2) \
             ON CONFLICT (day) DO UPDATE SET calls = calls + excluded.calls",
        )?;
        for (day, n) in &self.calls {
            calls.execute(params![day, n])?;
        }
        let mut intentions = tx.prepare_cached(
            "INSERT INTO summary_intentions_per_day (day, intention, turns) VALUES (?1, ?2, ?3) \
             ON CONFLICT (day, intention) DO UPDATE SET turns = turns + excluded.turns",
        )?;
        for ((day, intention), n) in &self.intentions {
            intentions.execute(params![day, intention, n])?;
        }
        let mut answers = tx.prepare_cached(
            "INSERT INTO summary_answers (question_title, answer_intent, answers) VALUES (?1, ?2, ?3) \
             ON CONFLICT (question_title, answer_intent) DO UPDATE SET answers = answers + excluded.answers",
        )?;
        for ((question, answer), n) in &self.answers {
            answers.execute(params![question, answer, n])?;
        }
        Ok(())
    }
}

/// Adds (`sign` 1) or takes away (-1) a stored record's rows (by its rowid)
/// in the summary tables, so that they stay equal to the GROUP BY over the rows.
pub(super) fn count_in_summaries(tx: &Transaction<'_>, id: i64, sign: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO summary_calls_per_day (day, calls) \
         SELECT coalesce(date(start_time / 1000, 'unixepoch'), ''), ?2 FROM records WHERE rowid = ?1 \
         ON CONFLICT (day) DO UPDATE SET calls = calls + excluded.calls",
    )?
    .execute(params![id, sign])?;
    tx.prepare_cached(
        "INSERT INTO summary_intentions_per_day (day, intention, turns) \
         SELECT coalesce(date(request_time / 1000, 'unixepoch'), ''), intention, ?2 * count(*) FROM turn_rows \
         WHERE record_id = ?1 AND intention IS NOT NULL GROUP BY 1, 2 \
         ON CONFLICT (day, intention) DO UPDATE SET turns = turns + excluded.turns",
    )?
    .execute(params![id, sign])?;
    tx.prepare_cached(
        "INSERT INTO summary_answers (question_title, answer_intent, answers) \
         SELECT coalesce(question_title, ''), coalesce(answer_intent, ''), ?2 * count(*) FROM qa_rows \
         WHERE record_id = ?1 GROUP BY 1, 2 \
         ON CONFLICT (question_title, answer_intent) DO UPDATE SET answers = answers + excluded.answers",
    )?
    .execute(params![id, sign])?;
    Ok(())
}

fn write_record(tx: &Transaction<'_>, sql: &str, r: &Record, now_ms: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?.execute(params![
        r.log_id,
        r.tenant_id,
        r.call_sor_id,
        r.call_id,
        r.cti_call_id,
        r.calling_number,
        r.called_number,
        r.start_time,
        r.end_time,
        r.last_update_time,
        r.flow_inst_id,
        r.dialog_type,
        r.call_data,
        r.location_id,
        r.flag,
        r.business_info,
        r.business_info_str,
        r.record_file_name,
        r.yugao_file_name,
        r.raw_json,
        r.content_hash,
        now_ms,
    ])?;
    Ok(())
}

/// Takes record `id`'s turns out of the full-text index, then deletes its
/// turns and Q&A rows.
pub(super) fn delete_children(tx: &Transaction<'_>, id: i64, full_text: FullText) -> rusqlite::Result<()> {
    if full_text != FullText::Off {
        tx.prepare_cached(full_text.delete_sql())?.execute([id])?;
    }
    tx.prepare_cached("DELETE FROM turn_rows WHERE record_id = ?1")?.execute([id])?;
    tx.prepare_cached("DELETE FROM qa_rows WHERE record_id = ?1")?.execute([id])?;
    Ok(())
}

/// Appends a record's turns and Q&A rows under its rowid `id`; the turns
/// join `indexed` with their rowids and `id`.
fn write_children<'r>(
    tx: &Transaction<'_>,
    id: i64,
    r: &'r Record,
    indexed: &mut Vec<(i64, i64, &'r Turn)>,
) -> rusqlite::Result<()> {
    let mut turn = tx.prepare_cached(
        "INSERT INTO turn_rows (record_id, seq, inter_no, user_saying, intention, system_reply, \
         reply_time, request_time, response_source, involve_mode, extra_json) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for (seq, t) in r.details.iter().enumerate() {
        turn.execute(params![
            id,
            seq as i64,
            t.inter_no,
            t.user_saying,
            t.intention,
            t.system_reply,
            t.reply_time,
            t.request_time,
            t.response_source,
            t.involve_mode,
            t.extra_json,
        ])?;
        indexed.push((tx.last_insert_rowid(), id, t));
    }
    let mut qa = tx.prepare_cached(
        "INSERT INTO qa_rows (record_id, seq, inter_no, series_id, question_title, question_type, \
         answer_intent, original_answer, create_time, extra_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (seq, q) in r.qa.iter().enumerate() {
        qa.execute(params![
            id,
            seq as i64,
            q.inter_no,
            q.series_id,
            q.question_title,
            q.question_type,
            q.answer_intent,
            q.original_answer,
            q.create_time,
            q.extra_json,
        ])?;
    }
    Ok(())
}
