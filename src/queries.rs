//! The five questions analysts ask first, as SQL. The README shows the same
//! blocks; a test runs every SQL block of the README against a synced store.

/// (question, SQL)
pub const CANONICAL: &[(&str, &str)] = &[
    (
        "Calls per day",
        "SELECT date(start_time / 1000, 'unixepoch') AS day, count(*) AS calls
FROM records
GROUP BY day
ORDER BY day;",
    ),
    (
        "Top intentions of the last 7 days",
        "SELECT intention, count(*) AS turns
FROM record_details
WHERE request_time >= unixepoch('now', '-7 days') * 1000
  AND intention IS NOT NULL
GROUP BY intention
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
        "SELECT question_title, answer_intent, count(*) AS answers,
       round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY question_title), 1) AS pct
FROM qa_records
GROUP BY question_title, answer_intent
ORDER BY question_title, answers DESC;",
    ),
];
