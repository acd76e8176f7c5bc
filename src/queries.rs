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
