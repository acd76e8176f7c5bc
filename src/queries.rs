//! The five questions analysts ask first, as SQL. The README shows the same
//! blocks; a test runs every SQL block of the README against a synced store.
//! The aggregates read the summary tables the store keeps exact; the same
//! questions over the base tables are in the README too.

/// (question, SQL)
pub const CANONICAL: &[(&str, &str)] = &[
    (
        "Calls per day",
        "SELECT nullif(day, '') AS day, calls
FROM summary_calls_per_day
WHERE calls > 0
ORDER BY day;",
    ),
    (
        "Top intentions of the last 7 days",
        "SELECT intention, sum(turns) AS turns
FROM summary_intentions_per_day
WHERE day >= date('now', '-7 days')
GROUP BY intention
HAVING sum(turns) > 0
ORDER BY turns DESC
LIMIT 10;",
    ),
    (
        "The turns of one call, in order",
        "SELECT seq, request_utc, user_saying, intention, system_reply
FROM v_turns
WHERE call_id = (SELECT call_id FROM records ORDER BY start_time DESC LIMIT 1)
ORDER BY seq;",
    ),
    (
        "What callers said: full-text search",
        "SELECT t.call_id, t.calling_number, t.request_utc, t.user_saying
FROM (SELECT rowid FROM record_details_fts WHERE record_details_fts MATCH '转人工' LIMIT 20) f
JOIN v_turns t ON t.turn_rowid = f.rowid;",
    ),
    (
        "Answer distribution per question",
        "SELECT nullif(question_title, '') AS question_title, nullif(answer_intent, '') AS answer_intent, answers,
       round(100.0 * answers / sum(answers) OVER (PARTITION BY question_title), 1) AS pct
FROM summary_answers
WHERE answers > 0
ORDER BY question_title, answers DESC;",
    ),
];

/// The same questions in PostgreSQL, where several tenants share the
/// tables (`tenant_id`) and `pg_trgm` serves substring search.
pub const CANONICAL_POSTGRES: &[(&str, &str)] = &[
    (
        "Calls per day",
        "SELECT tenant_id, nullif(day, '') AS day, calls
FROM summary_calls_per_day
WHERE calls > 0
ORDER BY tenant_id, day;",
    ),
    (
        "Top intentions of the last 7 days",
        "SELECT tenant_id, intention, sum(turns) AS turns
FROM summary_intentions_per_day
WHERE day >= to_char(now() AT TIME ZONE 'UTC' - interval '7 days', 'YYYY-MM-DD')
GROUP BY tenant_id, intention
HAVING sum(turns) > 0
ORDER BY turns DESC
LIMIT 10;",
    ),
    (
        "The turns of one call, in order",
        "SELECT seq, request_utc, user_saying, intention, system_reply
FROM v_turns
WHERE tenant_id = 'tenant001'
  AND call_id = (SELECT call_id FROM records WHERE tenant_id = 'tenant001' ORDER BY start_time DESC LIMIT 1)
ORDER BY seq;",
    ),
    (
        "What callers said: substring search (pg_trgm index)",
        "SELECT tenant_id, call_id, calling_number, request_utc, user_saying
FROM v_turns
WHERE user_saying LIKE '%转人工%'
LIMIT 20;",
    ),
    (
        "Answer distribution per question",
        "SELECT tenant_id, nullif(question_title, '') AS question_title, nullif(answer_intent, '') AS answer_intent, answers,
       round(100.0 * answers / sum(answers) OVER (PARTITION BY tenant_id, question_title), 1) AS pct
FROM summary_answers
WHERE answers > 0
ORDER BY tenant_id, question_title, answers DESC;",
    ),
];
