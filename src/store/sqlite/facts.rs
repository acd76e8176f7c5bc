//! The measures kept exact in SQLite: a session's figures (`session_figures`,
//! keyed by the record's rowid; `session_facts` is the view of them by
//! `log_id`) and their sums per hour (`kpi_hourly`) and per day
//! (`kpi_dropoff`), refreshed in the transaction that changes the rows they
//! come from.
//!
//! A write marks the sessions it touches (by rowid) in `temp.kpi_dirty`; [`refresh`]
//! takes their old figures out of the sums, computes them again from the
//! rows, and adds them back. Only the marked sessions are read, so a page
//! costs the same whatever the store's size.

use std::sync::LazyLock;

use rusqlite::Connection;

use crate::store::sql::OUTCOME;

/// The marks of a write connection, made once when it opens (a temporary
/// table lives as long as the connection).
pub(super) fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("CREATE TEMP TABLE IF NOT EXISTS kpi_dirty (record_id INTEGER PRIMARY KEY)")
}

/// The session and the sessions of the same caller in the day after it:
/// their repeat-caller flag depends on it. Called with the record's stored
/// values, before and after a write that may change them. `record` is the
/// record's rowid, which keys its figures.
pub(super) fn mark_with_followers(conn: &Connection, record: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO kpi_dirty (record_id) SELECT ?1 \
         UNION SELECT p.rowid FROM records r JOIN records p ON p.calling_number = r.calling_number \
         AND p.start_time > r.start_time AND p.start_time <= r.start_time + 86400000 WHERE r.rowid = ?1 \
         ON CONFLICT DO NOTHING",
    )?
    .execute([record])?;
    Ok(())
}

/// The sessions of the same caller in the day after each marked one, marked
/// too: after a page's writes, one statement for all of its sessions.
/// `CROSS JOIN` keeps the order written (the marks, then each one's record,
/// then its caller's later sessions): without statistics the planner would
/// rather read every record and look each up among the marks.
pub(super) fn mark_followers(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO kpi_dirty (record_id) SELECT p.rowid FROM kpi_dirty d CROSS JOIN records r ON r.rowid = d.record_id \
         CROSS JOIN records p ON p.calling_number = r.calling_number \
         AND p.start_time > r.start_time AND p.start_time <= r.start_time + 86400000 WHERE true \
         ON CONFLICT DO NOTHING",
    )?
    .execute([])?;
    Ok(())
}

/// The sessions that meet a call's CDR legs.
pub(super) fn mark_call(conn: &Connection, call_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO kpi_dirty (record_id) SELECT rowid FROM records WHERE cti_call_id = ?1 \
         UNION SELECT rowid FROM records WHERE call_id = ?1 ON CONFLICT DO NOTHING",
    )?
    .execute([call_id])?;
    Ok(())
}

/// Every session, from nothing: after a migration, or when the fallback
/// intentions change.
pub(super) fn rebuild(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM session_figures; DELETE FROM kpi_hourly; DELETE FROM kpi_dropoff; \
         INSERT INTO kpi_dirty (record_id) SELECT rowid FROM records WHERE true ON CONFLICT DO NOTHING;",
    )?;
    refresh(conn)
}

/// The marked sessions' figures computed again, and the sums with them.
pub(super) fn refresh(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached(ADD_HOURLY)?.execute([-1])?;
    conn.prepare_cached(ADD_DROPOFF)?.execute([-1])?;
    conn.prepare_cached("DELETE FROM session_figures WHERE record_id IN (SELECT record_id FROM kpi_dirty)")?
        .execute([])?;
    conn.prepare_cached(&FACTS_SQL)?.execute([])?;
    conn.prepare_cached(ADD_HOURLY)?.execute([1])?;
    conn.prepare_cached(ADD_DROPOFF)?.execute([1])?;
    conn.prepare_cached("DELETE FROM kpi_dirty")?.execute([])?;
    Ok(())
}

/// The marked sessions' figures added to (`?1` = 1) or taken from (−1) the hours.
const ADD_HOURLY: &str = "INSERT INTO kpi_hourly (hour_start, called_number, sessions, exit_no_consult, \
    staff_no_consult, staff_consult, bot_only, unknown, turns, fallback_turns, silent_turns, repeat_callers) \
    SELECT hour_start, called_number, ?1 * count(*), ?1 * sum(outcome = 'exit_no_consult'), \
    ?1 * sum(outcome = 'staff_no_consult'), ?1 * sum(outcome = 'staff_consult'), ?1 * sum(outcome = 'bot_only'), \
    ?1 * sum(outcome = 'unknown'), ?1 * sum(turns), ?1 * sum(fallback_turns), ?1 * sum(silent_turns), \
    ?1 * sum(repeat_caller) \
    FROM session_figures WHERE record_id IN (SELECT record_id FROM kpi_dirty) GROUP BY hour_start, called_number \
    ON CONFLICT (hour_start, called_number) DO UPDATE SET sessions = sessions + excluded.sessions, \
    exit_no_consult = exit_no_consult + excluded.exit_no_consult, \
    staff_no_consult = staff_no_consult + excluded.staff_no_consult, \
    staff_consult = staff_consult + excluded.staff_consult, bot_only = bot_only + excluded.bot_only, \
    unknown = unknown + excluded.unknown, turns = turns + excluded.turns, \
    fallback_turns = fallback_turns + excluded.fallback_turns, silent_turns = silent_turns + excluded.silent_turns, \
    repeat_callers = repeat_callers + excluded.repeat_callers";

/// The same for the drop-off: sessions whose call ended in the IVR, by last intention.
const ADD_DROPOFF: &str = "INSERT INTO kpi_dropoff (day_start, called_number, intention, sessions) \
    SELECT hour_start / 86400000 * 86400000, called_number, coalesce(last_intention, ''), ?1 * count(*) \
    FROM session_figures WHERE transferred = 0 AND record_id IN (SELECT record_id FROM kpi_dirty) GROUP BY 1, 2, 3 \
    ON CONFLICT (day_start, called_number, intention) DO UPDATE SET sessions = sessions + excluded.sessions";

/// The marked sessions' figures, by the definitions of the platform's
/// statistics report (see `v_session_outcomes` in the contract); `{outcome}`
/// is [`OUTCOME`].
static FACTS_SQL: LazyLock<String> = LazyLock::new(|| FACTS.replace("{outcome}", OUTCOME));

const FACTS: &str = "INSERT INTO session_figures (record_id, called_number, hour_start, turns, transferred, outcome, \
    fallback_turns, silent_turns, repeat_caller, last_intention) \
    SELECT record_id, called_number, hour_start, turns, transferred, \
           {outcome}, \
           fallback_turns, silent_turns, repeat_caller, last_intention \
    FROM ( \
        SELECT k.*, \
               CASE WHEN NOT EXISTS (SELECT 1 FROM cdr_legs l WHERE l.call_id = k.cdr_call) THEN NULL \
                    WHEN EXISTS ( \
                        SELECT 1 FROM cdr_legs l \
                        WHERE l.call_id = k.cdr_call AND l.device_type IN (1, 2) \
                          AND (CASE WHEN l.call_id_num = -1 THEN 2147483647 ELSE l.call_id_num END) > ( \
                              SELECT min(CASE WHEN i.call_id_num = -1 THEN 2147483647 ELSE i.call_id_num END) \
                              FROM cdr_legs i WHERE i.call_id = k.cdr_call AND i.device_type = 3) \
                    ) THEN 1 \
                    ELSE 0 END AS transferred \
        FROM ( \
            SELECT r.rowid AS record_id, coalesce(r.called_number, '') AS called_number, \
                   coalesce(r.start_time, 0) / 3600000 * 3600000 AS hour_start, \
                   CASE WHEN EXISTS (SELECT 1 FROM cdr_legs l WHERE l.call_id = r.cti_call_id) \
                        THEN r.cti_call_id ELSE r.call_id END AS cdr_call, \
                   (SELECT count(*) FROM turn_rows d WHERE d.record_id = r.rowid) AS turns, \
                   (SELECT count(*) FROM turn_rows d WHERE d.record_id = r.rowid \
                      AND (coalesce(d.intention, '') = '' OR d.intention IN (SELECT intention FROM fallback_intentions))) \
                       AS fallback_turns, \
                   (SELECT count(*) FROM turn_rows d WHERE d.record_id = r.rowid AND d.response_source = 1) \
                       AS silent_turns, \
                   EXISTS (SELECT 1 FROM records p WHERE p.calling_number = r.calling_number AND p.call_id <> r.call_id \
                             AND p.start_time >= r.start_time - 86400000 AND p.start_time < r.start_time) \
                       AS repeat_caller, \
                   (SELECT d.intention FROM turn_rows d WHERE d.record_id = r.rowid ORDER BY d.seq DESC LIMIT 1) \
                       AS last_intention \
            FROM records r WHERE r.rowid IN (SELECT record_id FROM kpi_dirty) \
        ) k \
    )";
