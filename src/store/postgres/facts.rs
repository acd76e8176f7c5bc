//! The measures kept exact in PostgreSQL (as in SQLite's `facts.rs`): a
//! session's figures (`session_facts`) and their sums per hour
//! (`kpi_hourly`) and per day (`kpi_dropoff`), refreshed in the
//! transaction that changes the rows they come from.
//!
//! The sessions a write touches are found first (the written ones and the
//! same callers' sessions in the day after each, old values and new); their
//! old figures leave the sums, are computed again and added back. The
//! statements take `$1` the tenant and `$2` the sessions' log ids.

use tokio_postgres::GenericClient;

use crate::store::sql::OUTCOME;

/// Which sessions a statement covers.
#[derive(Clone, Copy)]
pub(super) enum Scope {
    /// `$1` the tenant, `$2` the log ids.
    Sessions,
    /// Every session of `$1`.
    Tenant,
    /// Every session of every tenant (a migration).
    All,
}

impl Scope {
    fn filter(self, table: &str) -> String {
        match self {
            Scope::Sessions => format!("{table}.tenant_id = $1 AND {table}.log_id = ANY ($2)"),
            Scope::Tenant => format!("{table}.tenant_id = $1"),
            Scope::All => "true".to_string(),
        }
    }
}

/// The statements that refresh the sessions of `scope`, in order.
pub(super) fn refresh_sql(scope: Scope) -> Vec<String> {
    let delete = match scope {
        Scope::Sessions => "DELETE FROM session_facts WHERE tenant_id = $1 AND log_id = ANY ($2)".to_string(),
        Scope::Tenant => "DELETE FROM session_facts WHERE tenant_id = $1".to_string(),
        Scope::All => "DELETE FROM session_facts".to_string(),
    };
    let mut steps = vec![
        ADD_HOURLY.replace("{sign}", "-1").replace("{where}", &scope.filter("session_facts")),
        ADD_DROPOFF.replace("{sign}", "-1").replace("{where}", &scope.filter("session_facts")),
        delete,
        FACTS.replace("{where}", &scope.filter("r")).replace("{outcome}", OUTCOME),
        ADD_HOURLY.replace("{sign}", "1").replace("{where}", &scope.filter("session_facts")),
        ADD_DROPOFF.replace("{sign}", "1").replace("{where}", &scope.filter("session_facts")),
    ];
    if !matches!(scope, Scope::Sessions) {
        // From nothing: the sums go with the facts.
        let sums = match scope {
            Scope::Tenant => vec![
                "DELETE FROM kpi_hourly WHERE tenant_id = $1".to_string(),
                "DELETE FROM kpi_dropoff WHERE tenant_id = $1".to_string(),
            ],
            _ => vec!["DELETE FROM kpi_hourly".to_string(), "DELETE FROM kpi_dropoff".to_string()],
        };
        steps.splice(0..2, sums);
    }
    steps
}

/// Log ids of the sessions the page's records touch besides themselves:
/// `$2`/`$3` the new records' calling numbers and start times, `$4` the
/// replaced records (whose stored values count too).
pub(super) const FOLLOWERS: &str = "SELECT p.log_id FROM unnest($2::TEXT[], $3::BIGINT[]) AS k (calling, start), \
    LATERAL (SELECT log_id FROM records WHERE tenant_id = $1 AND md5(calling_number) = md5(k.calling) \
             AND calling_number = k.calling AND start_time > k.start AND start_time <= k.start + 86400000 OFFSET 0) AS p \
    UNION \
    SELECT p.log_id FROM records r, \
    LATERAL (SELECT log_id FROM records WHERE tenant_id = $1 AND md5(calling_number) = md5(r.calling_number) \
             AND calling_number = r.calling_number AND start_time > r.start_time \
             AND start_time <= r.start_time + 86400000 OFFSET 0) AS p \
    WHERE r.tenant_id = $1 AND r.log_id = ANY ($4)";

/// Log ids of the sessions that meet the CDR legs of the calls `$2`.
pub(super) const OF_CALLS: &str = "SELECT log_id FROM records WHERE tenant_id = $1 AND cti_call_id = ANY ($2) \
    UNION SELECT log_id FROM records WHERE tenant_id = $1 AND call_id = ANY ($2)";

/// Refreshes every session of the tenant (the fallback intentions changed).
pub(super) async fn rebuild_tenant(c: &impl GenericClient, tenant: &str) -> Result<(), tokio_postgres::Error> {
    for sql in refresh_sql(Scope::Tenant) {
        c.execute(&sql, &[&tenant]).await?;
    }
    Ok(())
}

/// Refreshes the sessions `ids` of the tenant.
pub(super) async fn refresh(c: &impl GenericClient, tenant: &str, ids: &[String]) -> Result<(), tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    for sql in refresh_sql(Scope::Sessions) {
        c.execute(&sql, &[&tenant, &ids]).await?;
    }
    Ok(())
}

const ADD_HOURLY: &str = "INSERT INTO kpi_hourly (tenant_id, hour_start, called_number, sessions, exit_no_consult, \
    staff_no_consult, staff_consult, bot_only, unknown, turns, fallback_turns, silent_turns, repeat_callers) \
    SELECT tenant_id, hour_start, called_number, {sign} * count(*), \
    {sign} * sum(CASE WHEN outcome = 'exit_no_consult' THEN 1 ELSE 0 END), \
    {sign} * sum(CASE WHEN outcome = 'staff_no_consult' THEN 1 ELSE 0 END), \
    {sign} * sum(CASE WHEN outcome = 'staff_consult' THEN 1 ELSE 0 END), \
    {sign} * sum(CASE WHEN outcome = 'bot_only' THEN 1 ELSE 0 END), \
    {sign} * sum(CASE WHEN outcome = 'unknown' THEN 1 ELSE 0 END), \
    {sign} * sum(turns), {sign} * sum(fallback_turns), {sign} * sum(silent_turns), {sign} * sum(repeat_caller) \
    FROM session_facts WHERE {where} GROUP BY tenant_id, hour_start, called_number \
    ON CONFLICT (tenant_id, hour_start, md5(called_number)) DO UPDATE SET \
    sessions = kpi_hourly.sessions + excluded.sessions, \
    exit_no_consult = kpi_hourly.exit_no_consult + excluded.exit_no_consult, \
    staff_no_consult = kpi_hourly.staff_no_consult + excluded.staff_no_consult, \
    staff_consult = kpi_hourly.staff_consult + excluded.staff_consult, \
    bot_only = kpi_hourly.bot_only + excluded.bot_only, unknown = kpi_hourly.unknown + excluded.unknown, \
    turns = kpi_hourly.turns + excluded.turns, fallback_turns = kpi_hourly.fallback_turns + excluded.fallback_turns, \
    silent_turns = kpi_hourly.silent_turns + excluded.silent_turns, \
    repeat_callers = kpi_hourly.repeat_callers + excluded.repeat_callers";

const ADD_DROPOFF: &str = "INSERT INTO kpi_dropoff (tenant_id, day_start, called_number, intention, sessions) \
    SELECT tenant_id, hour_start / 86400000 * 86400000, called_number, coalesce(last_intention, ''), {sign} * count(*) \
    FROM session_facts WHERE transferred = 0 AND {where} GROUP BY 1, 2, 3, 4 \
    ON CONFLICT (tenant_id, day_start, md5(called_number), md5(intention)) DO UPDATE SET \
    sessions = kpi_dropoff.sessions + excluded.sessions";

/// The sessions' figures, by the definitions of the platform's statistics
/// report (see `v_session_outcomes` in the contract).
const FACTS: &str = "INSERT INTO session_facts (tenant_id, log_id, called_number, hour_start, turns, transferred, \
    outcome, fallback_turns, silent_turns, repeat_caller, last_intention) \
    SELECT tenant_id, log_id, called_number, hour_start, turns, transferred, \
           {outcome}, \
           fallback_turns, silent_turns, repeat_caller, last_intention \
    FROM ( \
        SELECT k.*, \
               CASE WHEN NOT EXISTS (SELECT 1 FROM cdr_legs l WHERE l.tenant_id = k.tenant_id AND l.call_id = k.cdr_call) \
                        THEN NULL \
                    WHEN EXISTS ( \
                        SELECT 1 FROM cdr_legs l \
                        WHERE l.tenant_id = k.tenant_id AND l.call_id = k.cdr_call AND l.device_type IN (1, 2) \
                          AND (CASE WHEN l.call_id_num = -1 THEN 2147483647 ELSE l.call_id_num END) > ( \
                              SELECT min(CASE WHEN i.call_id_num = -1 THEN 2147483647 ELSE i.call_id_num END) \
                              FROM cdr_legs i WHERE i.tenant_id = k.tenant_id AND i.call_id = k.cdr_call \
                                AND i.device_type = 3) \
                    ) THEN 1 \
                    ELSE 0 END AS transferred \
        FROM ( \
            SELECT r.tenant_id, r.log_id, coalesce(r.called_number, '') AS called_number, \
                   coalesce(r.start_time, 0) / 3600000 * 3600000 AS hour_start, \
                   CASE WHEN EXISTS (SELECT 1 FROM cdr_legs l WHERE l.tenant_id = r.tenant_id \
                                     AND l.call_id = r.cti_call_id) \
                        THEN r.cti_call_id ELSE r.call_id END AS cdr_call, \
                   (SELECT count(*) FROM turn_rows d WHERE d.record_id = r.id) \
                       AS turns, \
                   (SELECT count(*) FROM turn_rows d WHERE d.record_id = r.id \
                      AND (coalesce(d.intention, '') = '' OR d.intention IN ( \
                          SELECT f.intention FROM fallback_intentions f WHERE f.tenant_id = r.tenant_id))) \
                       AS fallback_turns, \
                   (SELECT count(*) FROM turn_rows d WHERE d.record_id = r.id \
                      AND d.response_source = 1) AS silent_turns, \
                   CASE WHEN EXISTS (SELECT 1 FROM records p WHERE p.tenant_id = r.tenant_id \
                             AND md5(p.calling_number) = md5(r.calling_number) \
                             AND p.calling_number = r.calling_number AND p.call_id <> r.call_id \
                             AND p.start_time >= r.start_time - 86400000 AND p.start_time < r.start_time) \
                        THEN 1 ELSE 0 END AS repeat_caller, \
                   (SELECT d.intention FROM turn_rows d WHERE d.record_id = r.id \
                    ORDER BY d.seq DESC LIMIT 1) AS last_intention \
            FROM records r WHERE {where} \
        ) k \
    ) s";
