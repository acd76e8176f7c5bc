-- oifde-sync store, schema version 1.
-- Applied by the binary in one transaction that also sets PRAGMA user_version.
-- Times from the API stay as integer milliseconds since the epoch (UTC);
-- the v_* views add readable UTC text.

-- One row a session record, keyed by the API's logId.
CREATE TABLE records (
    log_id            TEXT PRIMARY KEY NOT NULL,
    tenant_id         TEXT,
    call_sor_id       TEXT,
    call_id           TEXT,
    cti_call_id       TEXT,
    calling_number    TEXT,
    called_number     TEXT,
    start_time        INTEGER,            -- epoch ms
    end_time          INTEGER,            -- epoch ms
    last_update_time  INTEGER,            -- epoch ms; decides which copy wins
    flow_inst_id      TEXT,
    dialog_type       TEXT,
    call_data         TEXT,
    location_id       INTEGER,            -- locationId, else the one in businessInfoStr
    flag              TEXT,
    business_info     TEXT,
    business_info_str TEXT,               -- the JSON string as received
    record_file_name  TEXT,               -- from businessInfoStr
    yugao_file_name   TEXT,               -- from businessInfoStr
    raw_json          TEXT NOT NULL,      -- the record as received, keys sorted (from version 3 without its turn and Q&A lists)
    content_hash      TEXT NOT NULL,      -- FNV-1a of the whole record as received; decides when last_update_time is missing
    first_seen_at     INTEGER NOT NULL,   -- epoch ms, when this daemon first stored it
    synced_at         INTEGER NOT NULL    -- epoch ms, when it last changed here
) STRICT;

-- Dialogue turns (API recordDetials), in their order in the list.
CREATE TABLE record_details (
    log_id          TEXT NOT NULL REFERENCES records (log_id),
    seq             INTEGER NOT NULL,     -- 0-based position in the list
    inter_no        TEXT,
    user_saying     TEXT,
    intention       TEXT,
    system_reply    TEXT,
    reply_time      INTEGER,              -- API timestamp, epoch ms
    request_time    INTEGER,              -- API requsetTime, epoch ms
    response_source INTEGER,              -- 0 chatbot, 1 silent agent
    involve_mode    INTEGER,              -- 0 common, 1 monitoring, 2 insertion
    PRIMARY KEY (log_id, seq)
) STRICT;

-- Q&A rows (API qaRecords), in their order in the list.
CREATE TABLE qa_records (
    log_id          TEXT NOT NULL REFERENCES records (log_id),
    seq             INTEGER NOT NULL,
    inter_no        TEXT,
    series_id       TEXT,
    question_title  TEXT,
    question_type   TEXT,
    answer_intent   TEXT,
    original_answer TEXT,
    create_time     INTEGER,              -- epoch ms
    PRIMARY KEY (log_id, seq)
) STRICT;

-- One row a query key: every window before cursor_time is committed.
CREATE TABLE sync_cursors (
    query_key   TEXT PRIMARY KEY NOT NULL, -- mobile:<n>, call:<id>, cti:<id>, or * for window-only
    cursor_time INTEGER NOT NULL,          -- epoch ms, exclusive end of the last complete window
    updated_at  INTEGER NOT NULL           -- epoch ms
) STRICT;

-- One row a pass, with its figures.
CREATE TABLE sync_runs (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,        -- sync, run, backfill
    started_at       INTEGER NOT NULL,     -- epoch ms
    finished_at      INTEGER,              -- epoch ms; NULL while running or if killed
    status           TEXT NOT NULL,        -- running, ok, partial, failed, interrupted
    keys             INTEGER NOT NULL DEFAULT 0,
    windows          INTEGER NOT NULL DEFAULT 0,
    pages            INTEGER NOT NULL DEFAULT 0,
    records_fetched  INTEGER NOT NULL DEFAULT 0,
    inserted         INTEGER NOT NULL DEFAULT 0,
    updated          INTEGER NOT NULL DEFAULT 0,
    unchanged        INTEGER NOT NULL DEFAULT 0,
    stale            INTEGER NOT NULL DEFAULT 0,
    failed_windows   INTEGER NOT NULL DEFAULT 0,
    rereads          INTEGER NOT NULL DEFAULT 0, -- windows read again: fewer records than the server's total
    requests         INTEGER NOT NULL DEFAULT 0,
    retries          INTEGER NOT NULL DEFAULT 0,
    error            TEXT
) STRICT;

-- Windows a backfill has finished, so an interrupted backfill resumes.
-- A backfill that completes without failures removes its rows.
CREATE TABLE backfill_progress (
    job          TEXT NOT NULL,            -- from|to|key of the backfill command
    query_key    TEXT NOT NULL,
    window_start INTEGER NOT NULL,         -- epoch s
    window_end   INTEGER NOT NULL,         -- epoch s, exclusive
    finished_at  INTEGER NOT NULL,         -- epoch ms
    PRIMARY KEY (job, query_key, window_start)
) STRICT;

CREATE INDEX records_call_id ON records (call_id);
CREATE INDEX records_cti_call_id ON records (cti_call_id);
CREATE INDEX records_calling_number ON records (calling_number);
CREATE INDEX records_start_time ON records (start_time);
CREATE INDEX records_last_update_time ON records (last_update_time);
-- Covers "top intentions in a period" without touching the table.
CREATE INDEX record_details_intention ON record_details (intention, request_time);

-- full-text: begin (left out when store.full_text = false)
-- Full-text search over what callers said and what the system replied.
-- The trigram tokenizer works for Chinese as for English: MATCH needs at least
-- three characters; LIKE '%…%' uses the index too. The store keeps it exact
-- in the same transaction as every write to record_details (not by triggers:
-- a trigger makes FTS5 flush its buffer at every statement, which is slow).
CREATE VIRTUAL TABLE record_details_fts USING fts5 (
    user_saying,
    system_reply,
    content="record_details",          -- written so, without spaces: how Datasette recognises the index
    content_rowid = 'rowid',
    tokenize = 'trigram'
);

-- full-text: end

-- One row a call, with readable UTC times.
CREATE VIEW v_calls AS
SELECT r.log_id,
       r.call_id,
       r.cti_call_id,
       r.calling_number,
       r.called_number,
       strftime('%Y-%m-%d %H:%M:%S', r.start_time / 1000, 'unixepoch') AS start_utc,
       strftime('%Y-%m-%d %H:%M:%S', r.end_time / 1000, 'unixepoch') AS end_utc,
       (r.end_time - r.start_time) / 1000 AS duration_s,
       (SELECT count(*) FROM record_details d WHERE d.log_id = r.log_id) AS turns,
       (SELECT count(*) FROM qa_records q WHERE q.log_id = r.log_id) AS qa_rows,
       r.record_file_name,
       r.dialog_type,
       r.flow_inst_id
FROM records r;

-- Dialogue turns in order, with their call.
CREATE VIEW v_turns AS
SELECT d.log_id,
       r.call_id,
       r.calling_number,
       d.seq,
       d.inter_no,
       strftime('%Y-%m-%d %H:%M:%S', d.request_time / 1000, 'unixepoch') AS request_utc,
       d.user_saying,
       d.intention,
       strftime('%Y-%m-%d %H:%M:%S', d.reply_time / 1000, 'unixepoch') AS reply_utc,
       d.system_reply,
       d.response_source,
       d.involve_mode,
       d.rowid AS turn_rowid
FROM record_details d
JOIN records r ON r.log_id = d.log_id;

-- Q&A answers with their question.
CREATE VIEW v_qa AS
SELECT q.log_id,
       r.call_id,
       r.calling_number,
       q.seq,
       q.series_id,
       q.question_title,
       q.question_type,
       q.answer_intent,
       q.original_answer,
       strftime('%Y-%m-%d %H:%M:%S', q.create_time / 1000, 'unixepoch') AS create_utc
FROM qa_records q
JOIN records r ON r.log_id = q.log_id;

-- migration: 2
-- Version 2: query keys live in the store, with their lifecycle.

-- One row a query key: where it came from and where it stands.
-- Stream keys (mobile:, and * for window-only queries) are read every pass
-- from their cursor; point keys (call:, cti:) name one call and are read,
-- without a time window, until the call settles.
CREATE TABLE query_keys (
    query_key     TEXT PRIMARY KEY NOT NULL, -- mobile:<n>, call:<id>, cti:<id>, or *
    kind          TEXT NOT NULL,             -- stream or point
    source        TEXT NOT NULL,             -- config, keys_file, command, auto
    state         TEXT NOT NULL,             -- active, settling, waiting, done, given_up, removed
    added_at      INTEGER NOT NULL,          -- epoch ms
    last_query_at INTEGER,                   -- epoch ms
    next_query_at INTEGER,                   -- epoch ms; a waiting key is due from then
    records_found INTEGER NOT NULL DEFAULT 0,
    misses        INTEGER NOT NULL DEFAULT 0, -- queries in a row that found no record
    failed_passes INTEGER NOT NULL DEFAULT 0  -- passes in a row that ended at a window that cannot complete
) STRICT;
CREATE INDEX query_keys_due ON query_keys (state, next_query_at);
CREATE INDEX query_keys_source ON query_keys (source, state);

-- Windows that could not complete pass after pass (a server that never
-- sends what its total promises): the key moved on without them. Read them
-- with the backfill `status` shows; a backfill that completes one removes it.
CREATE TABLE skipped_windows (
    query_key    TEXT NOT NULL,
    window_start INTEGER NOT NULL,           -- epoch s
    window_end   INTEGER NOT NULL,           -- epoch s, exclusive
    reason       TEXT NOT NULL,
    skipped_at   INTEGER NOT NULL,           -- epoch ms
    PRIMARY KEY (query_key, window_start)
) STRICT;

-- How far each keys file has been read, so a pass reads only what was appended.
CREATE TABLE key_files (
    path      TEXT PRIMARY KEY NOT NULL,
    file_id   TEXT NOT NULL,                 -- device:inode
    offset    INTEGER NOT NULL,              -- bytes taken
    lines     INTEGER NOT NULL,              -- lines taken
    head      TEXT NOT NULL,                 -- fingerprint of the first bytes
    read_at   INTEGER NOT NULL               -- epoch ms
) STRICT;

-- Keys polled before version 2 go on being polled; a pass then marks those
-- no longer configured as removed.
INSERT INTO query_keys (query_key, kind, source, state, added_at)
SELECT query_key,
       CASE WHEN query_key LIKE 'call:%' OR query_key LIKE 'cti:%' THEN 'point' ELSE 'stream' END,
       CASE WHEN query_key = '*' THEN 'auto' ELSE 'config' END,
       'active',
       updated_at
FROM sync_cursors;

-- migration: 3
-- Version 3: raw_json is the record without its turn and Q&A lists (their
-- tables hold them); each turn and Q&A row keeps what its columns do not
-- hold (unknown fields) in extra_json. Existing rows are converted in place.
ALTER TABLE record_details ADD COLUMN extra_json TEXT; -- the turn's other fields, a JSON object; NULL when none
ALTER TABLE qa_records ADD COLUMN extra_json TEXT;     -- the Q&A entry's other fields, a JSON object; NULL when none

UPDATE record_details SET extra_json = (
    SELECT nullif(json_remove(
               coalesce(json_extract(r.raw_json, '$.recordDetials[' || record_details.seq || ']'),
                        json_extract(r.raw_json, '$.recordDetails[' || record_details.seq || ']')),
               '$.interNo', '$.userSaying', '$.intention', '$.systemReply', '$.timestamp',
               '$.requsetTime', '$.requestTime', '$.responseSource', '$.involveMode'), '{}')
    FROM records r WHERE r.log_id = record_details.log_id);

UPDATE qa_records SET extra_json = (
    SELECT nullif(json_remove(json_extract(r.raw_json, '$.qaRecords[' || qa_records.seq || ']'),
               '$.interNo', '$.seriesId', '$.questionTitle', '$.questionType', '$.answerIntent',
               '$.originalAnswer', '$.createTime'), '{}')
    FROM records r WHERE r.log_id = qa_records.log_id);

UPDATE records SET raw_json = json_remove(raw_json, '$.recordDetials', '$.recordDetails', '$.qaRecords')
WHERE json_type(raw_json, '$.recordDetials') = 'array'
   OR json_type(raw_json, '$.recordDetails') = 'array'
   OR json_type(raw_json, '$.qaRecords') = 'array';

-- migration: 4
-- Version 4: summary tables for the analysts' aggregate questions, kept
-- exact by the store in the same transaction as the rows they count. A
-- NULL key is stored as '' (read it back with nullif(…, '')); a count that
-- fell to 0 stays as a row with 0.

-- Calls per day (UTC) of start_time.
CREATE TABLE summary_calls_per_day (
    day   TEXT PRIMARY KEY NOT NULL,         -- YYYY-MM-DD
    calls INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Turns per day (UTC) of request_time and intention (turns with an intention).
CREATE TABLE summary_intentions_per_day (
    day       TEXT NOT NULL,
    intention TEXT NOT NULL,
    turns     INTEGER NOT NULL,
    PRIMARY KEY (day, intention)
) STRICT, WITHOUT ROWID;

-- Answers per question and answer intent.
CREATE TABLE summary_answers (
    question_title TEXT NOT NULL,
    answer_intent  TEXT NOT NULL,
    answers        INTEGER NOT NULL,
    PRIMARY KEY (question_title, answer_intent)
) STRICT, WITHOUT ROWID;

INSERT INTO summary_calls_per_day (day, calls)
SELECT coalesce(date(start_time / 1000, 'unixepoch'), ''), count(*) FROM records GROUP BY 1;
INSERT INTO summary_intentions_per_day (day, intention, turns)
SELECT coalesce(date(request_time / 1000, 'unixepoch'), ''), intention, count(*)
FROM record_details WHERE intention IS NOT NULL GROUP BY 1, 2;
INSERT INTO summary_answers (question_title, answer_intent, answers)
SELECT coalesce(question_title, ''), coalesce(answer_intent, ''), count(*) FROM qa_records GROUP BY 1, 2;

-- migration: 5
-- Version 5: where `oifde-sync copy` stands when this store is its target,
-- so an interrupted copy resumes.
CREATE TABLE copy_progress (
    source     TEXT NOT NULL,                -- the store copied from: its file or its URL without password
    table_name TEXT NOT NULL,
    last_key   TEXT NOT NULL,                -- JSON array: the key of the last row copied
    done       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, table_name)
) STRICT;

-- migration: 6
-- Version 6: why the server refused a key's last query (a malformed call ID,
-- say), shown by `keys list`; NULL once a query of it succeeds.
ALTER TABLE query_keys ADD COLUMN last_error TEXT;
-- Records whose text held NUL characters, stored as U+FFFD (the original in
-- raw_json / extra_json), counted per pass.
ALTER TABLE sync_runs ADD COLUMN nul_replaced INTEGER NOT NULL DEFAULT 0;

-- migration: 7
-- Huawei's CDR files: one row a leg of a call (times in epoch ms, from
-- query.cdr_timezone; the columns beyond the documented ones in extra_json),
-- the files read, and the span of a CDR call on its point key.
CREATE TABLE cdr_legs (
    call_id         TEXT NOT NULL,
    call_id_num     INTEGER NOT NULL,
    device_type     INTEGER,
    developer       TEXT,
    account_id      TEXT,
    cc_id           TEXT,
    agent_id        TEXT,
    caller_no       TEXT,
    callee_no       TEXT,
    wait_begin      INTEGER,
    wait_end        INTEGER,
    ack_begin       INTEGER,
    ack_end         INTEGER,
    call_begin      INTEGER,
    call_end        INTEGER,
    device_no       TEXT,
    call_type       TEXT,
    release_cause   TEXT,
    vdn_id          TEXT,
    pre_device_type TEXT,
    pre_device_no   TEXT,
    extra_json      TEXT,
    PRIMARY KEY (call_id, call_id_num)
) STRICT;
CREATE TABLE cdr_files (
    path        TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    modified_at INTEGER NOT NULL,
    rows        INTEGER NOT NULL,
    read_at     INTEGER NOT NULL
) STRICT;
ALTER TABLE query_keys ADD COLUMN call_begin INTEGER;
ALTER TABLE query_keys ADD COLUMN call_end INTEGER;

-- migration: 8
-- The platform's own count of calls (queryCallStatisticsReport, by hour and
-- access code; a re-read replaces the hour), and the last verification of
-- the mirror against it.
CREATE TABLE platform_stats (
    access_code                 TEXT NOT NULL,
    record_time                 INTEGER NOT NULL,
    call_count                  INTEGER NOT NULL,
    exit_no_consult_count       INTEGER NOT NULL,
    call_staff_no_consult_count INTEGER NOT NULL,
    call_staff_consult_count    INTEGER NOT NULL,
    exit_consulting_count       INTEGER NOT NULL,
    interact_count              INTEGER NOT NULL,
    autonomy_rate               TEXT,
    average_interact_per_call   TEXT,
    db_record_time              INTEGER,
    interface_request_count     INTEGER,
    interface_success_count     INTEGER,
    interface_success_rate      TEXT,
    extra_json                  TEXT,
    fetched_at                  INTEGER NOT NULL,
    PRIMARY KEY (access_code, record_time)
) STRICT;
CREATE INDEX records_called_number ON records (called_number, start_time);
CREATE TABLE verifications (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    verified_at    INTEGER NOT NULL,
    period_from    INTEGER NOT NULL,
    period_to      INTEGER NOT NULL,
    platform_calls INTEGER NOT NULL,
    mirrored       INTEGER NOT NULL,
    missing        INTEGER NOT NULL,
    missing_hours  INTEGER NOT NULL
) STRICT;

-- migration: 9
-- The IVR's own measures, as the platform's console defines them
-- (queryCallStatisticsReport), so an analyst's numbers and the platform's
-- agree. A session meets its call's CDR legs through cti_call_id, else call_id.
CREATE TABLE fallback_intentions (
    intention TEXT PRIMARY KEY
) STRICT;

-- One row a session: its turns, whether its call went on to a skill queue
-- or an agent after its first IVR leg (NULL without CDR legs), and its
-- outcome bucket; with what the hourly measures add up.
CREATE VIEW v_session_outcomes AS
SELECT s.log_id,
       s.call_id,
       s.cti_call_id,
       s.called_number,
       s.calling_number,
       s.start_time,
       strftime('%Y-%m-%d', s.start_time / 1000, 'unixepoch') AS day,
       strftime('%H', s.start_time / 1000, 'unixepoch') AS hour,
       s.start_time / 3600000 * 3600000 AS hour_start,
       s.turns,
       s.transferred,
       CASE WHEN s.turns <= 1 THEN 'exit_no_consult'
            WHEN s.transferred IS NULL THEN 'unknown'
            WHEN s.transferred = 1 AND s.turns <= 3 THEN 'staff_no_consult'
            WHEN s.transferred = 1 THEN 'staff_consult'
            ELSE 'bot_only' END AS outcome,
       s.fallback_turns,
       s.silent_turns,
       s.repeat_caller,
       s.last_intention
FROM (
    SELECT k.*,
           CASE WHEN NOT EXISTS (SELECT 1 FROM cdr_legs l WHERE l.call_id = k.cdr_call) THEN NULL
                WHEN EXISTS (
                    SELECT 1 FROM cdr_legs l
                    WHERE l.call_id = k.cdr_call AND l.device_type IN (1, 2)
                      AND (CASE WHEN l.call_id_num = -1 THEN 2147483647 ELSE l.call_id_num END) > (
                          SELECT min(CASE WHEN i.call_id_num = -1 THEN 2147483647 ELSE i.call_id_num END)
                          FROM cdr_legs i WHERE i.call_id = k.cdr_call AND i.device_type = 3)
                ) THEN 1
                ELSE 0 END AS transferred
    FROM (
        SELECT r.log_id, r.call_id, r.cti_call_id, r.called_number, r.calling_number, r.start_time,
               CASE WHEN EXISTS (SELECT 1 FROM cdr_legs l WHERE l.call_id = r.cti_call_id)
                    THEN r.cti_call_id ELSE r.call_id END AS cdr_call,
               (SELECT count(*) FROM record_details d WHERE d.log_id = r.log_id) AS turns,
               (SELECT count(*) FROM record_details d WHERE d.log_id = r.log_id
                  AND (coalesce(d.intention, '') = '' OR d.intention IN (SELECT intention FROM fallback_intentions)))
                   AS fallback_turns,
               (SELECT count(*) FROM record_details d WHERE d.log_id = r.log_id AND d.response_source = 1)
                   AS silent_turns,
               EXISTS (SELECT 1 FROM records p WHERE p.calling_number = r.calling_number AND p.call_id <> r.call_id
                         AND p.start_time >= r.start_time - 86400000 AND p.start_time < r.start_time)
                   AS repeat_caller,
               (SELECT d.intention FROM record_details d WHERE d.log_id = r.log_id ORDER BY d.seq DESC LIMIT 1)
                   AS last_intention
        FROM records r
    ) k
) s;

-- Per UTC hour and access code: the measures, and beside them the
-- platform's own figures for the same hour (platform_*), with the difference.
CREATE VIEW v_hourly_kpis AS
SELECT k.day,
       k.hour,
       k.called_number,
       k.sessions,
       k.exit_no_consult,
       k.staff_no_consult,
       k.staff_consult,
       k.bot_only,
       k.unknown,
       CAST(k.bot_only AS REAL) / nullif(k.staff_no_consult + k.staff_consult + k.bot_only, 0) AS autonomy_rate,
       k.turns,
       k.avg_turns,
       k.fallback_rate,
       k.silent_agent_share,
       k.repeat_callers,
       p.call_count AS platform_sessions,
       p.exit_no_consult_count AS platform_exit_no_consult,
       p.call_staff_no_consult_count AS platform_staff_no_consult,
       p.call_staff_consult_count AS platform_staff_consult,
       p.exit_consulting_count AS platform_bot_only,
       CASE WHEN CAST(p.autonomy_rate AS REAL) < 0 THEN NULL ELSE CAST(p.autonomy_rate AS REAL) END
           AS platform_autonomy_rate,
       k.sessions - p.call_count AS platform_difference
FROM (
    SELECT day, hour, hour_start, called_number,
           count(*) AS sessions,
           sum(outcome = 'exit_no_consult') AS exit_no_consult,
           sum(outcome = 'staff_no_consult') AS staff_no_consult,
           sum(outcome = 'staff_consult') AS staff_consult,
           sum(outcome = 'bot_only') AS bot_only,
           sum(outcome = 'unknown') AS unknown,
           sum(turns) AS turns,
           avg(turns) AS avg_turns,
           CAST(sum(fallback_turns) AS REAL) / nullif(sum(turns), 0) AS fallback_rate,
           CAST(sum(silent_turns) AS REAL) / nullif(sum(turns), 0) AS silent_agent_share,
           sum(repeat_caller) AS repeat_callers
    FROM v_session_outcomes
    GROUP BY hour_start, called_number
) k
LEFT JOIN platform_stats p ON p.access_code = k.called_number AND p.record_time = k.hour_start;

-- The same per UTC day.
CREATE VIEW v_daily_kpis AS
SELECT k.day,
       k.called_number,
       k.sessions,
       k.exit_no_consult,
       k.staff_no_consult,
       k.staff_consult,
       k.bot_only,
       k.unknown,
       CAST(k.bot_only AS REAL) / nullif(k.staff_no_consult + k.staff_consult + k.bot_only, 0) AS autonomy_rate,
       k.turns,
       k.avg_turns,
       k.fallback_rate,
       k.silent_agent_share,
       k.repeat_callers,
       p.sessions AS platform_sessions,
       p.exit_no_consult AS platform_exit_no_consult,
       p.staff_no_consult AS platform_staff_no_consult,
       p.staff_consult AS platform_staff_consult,
       p.bot_only AS platform_bot_only,
       CAST(p.bot_only AS REAL) / nullif(p.staff_no_consult + p.staff_consult + p.bot_only, 0) AS platform_autonomy_rate,
       k.sessions - p.sessions AS platform_difference
FROM (
    SELECT day, called_number,
           count(*) AS sessions,
           sum(outcome = 'exit_no_consult') AS exit_no_consult,
           sum(outcome = 'staff_no_consult') AS staff_no_consult,
           sum(outcome = 'staff_consult') AS staff_consult,
           sum(outcome = 'bot_only') AS bot_only,
           sum(outcome = 'unknown') AS unknown,
           sum(turns) AS turns,
           avg(turns) AS avg_turns,
           CAST(sum(fallback_turns) AS REAL) / nullif(sum(turns), 0) AS fallback_rate,
           CAST(sum(silent_turns) AS REAL) / nullif(sum(turns), 0) AS silent_agent_share,
           sum(repeat_caller) AS repeat_callers
    FROM v_session_outcomes
    GROUP BY day, called_number
) k
LEFT JOIN (
    SELECT strftime('%Y-%m-%d', record_time / 1000, 'unixepoch') AS day, access_code,
           sum(call_count) AS sessions,
           sum(exit_no_consult_count) AS exit_no_consult,
           sum(call_staff_no_consult_count) AS staff_no_consult,
           sum(call_staff_consult_count) AS staff_consult,
           sum(exit_consulting_count) AS bot_only
    FROM platform_stats
    GROUP BY 1, 2
) p ON p.access_code = k.called_number AND p.day = k.day;

-- Where callers gave up: the last intention of sessions whose call ended in
-- the IVR, counted per UTC day and access code.
CREATE VIEW v_dropoff AS
SELECT day, called_number, coalesce(last_intention, '') AS intention, count(*) AS sessions
FROM v_session_outcomes
WHERE transferred = 0
GROUP BY day, called_number, coalesce(last_intention, '');

-- migration: 10
-- The measures kept exact as the rows change, so that they answer at any
-- size: one row of figures a session, and their sums per UTC hour and access
-- code (and per day for the drop-off). The store updates them in the same
-- transaction as every write to the rows they come from (records, turns,
-- CDR legs, the fallback intentions), and fills them from the rows here.
CREATE TABLE session_facts (
    log_id         TEXT PRIMARY KEY,
    called_number  TEXT NOT NULL,             -- '' when the record has none
    hour_start     INTEGER NOT NULL,          -- start_time's UTC hour, epoch ms
    turns          INTEGER NOT NULL,
    transferred    INTEGER,                   -- NULL without CDR legs
    outcome        TEXT NOT NULL,
    fallback_turns INTEGER NOT NULL,
    silent_turns   INTEGER NOT NULL,
    repeat_caller  INTEGER NOT NULL,
    last_intention TEXT
) STRICT, WITHOUT ROWID;
CREATE TABLE kpi_hourly (
    hour_start       INTEGER NOT NULL,
    called_number    TEXT NOT NULL,
    sessions         INTEGER NOT NULL,
    exit_no_consult  INTEGER NOT NULL,
    staff_no_consult INTEGER NOT NULL,
    staff_consult    INTEGER NOT NULL,
    bot_only         INTEGER NOT NULL,
    unknown          INTEGER NOT NULL,
    turns            INTEGER NOT NULL,
    fallback_turns   INTEGER NOT NULL,
    silent_turns     INTEGER NOT NULL,
    repeat_callers   INTEGER NOT NULL,
    PRIMARY KEY (hour_start, called_number)
) STRICT, WITHOUT ROWID;
CREATE TABLE kpi_dropoff (
    day_start     INTEGER NOT NULL,
    called_number TEXT NOT NULL,
    intention     TEXT NOT NULL,
    sessions      INTEGER NOT NULL,
    PRIMARY KEY (day_start, called_number, intention)
) STRICT, WITHOUT ROWID;
-- A caller's sessions by time: what finds the repeat callers.
DROP INDEX records_calling_number;
CREATE INDEX records_calling_number ON records (calling_number, start_time);

DROP VIEW v_dropoff;
DROP VIEW v_daily_kpis;
DROP VIEW v_hourly_kpis;
DROP VIEW v_session_outcomes;

-- One row a session: its turns, whether its call went on to a skill queue
-- or an agent after its first IVR leg (NULL without CDR legs), and its
-- outcome bucket; with what the hourly measures add up.
CREATE VIEW v_session_outcomes AS
SELECT r.log_id,
       r.call_id,
       r.cti_call_id,
       r.called_number,
       r.calling_number,
       r.start_time,
       strftime('%Y-%m-%d', f.hour_start / 1000, 'unixepoch') AS day,
       strftime('%H', f.hour_start / 1000, 'unixepoch') AS hour,
       f.hour_start,
       f.turns,
       f.transferred,
       f.outcome,
       f.fallback_turns,
       f.silent_turns,
       f.repeat_caller,
       f.last_intention
FROM records r
JOIN session_facts f ON f.log_id = r.log_id;

-- Per UTC hour and access code: the measures, and beside them the
-- platform's own figures for the same hour (platform_*), with the difference.
CREATE VIEW v_hourly_kpis AS
SELECT strftime('%Y-%m-%d', k.hour_start / 1000, 'unixepoch') AS day,
       strftime('%H', k.hour_start / 1000, 'unixepoch') AS hour,
       nullif(k.called_number, '') AS called_number,
       k.sessions,
       k.exit_no_consult,
       k.staff_no_consult,
       k.staff_consult,
       k.bot_only,
       k.unknown,
       CAST(k.bot_only AS REAL) / nullif(k.staff_no_consult + k.staff_consult + k.bot_only, 0) AS autonomy_rate,
       k.turns,
       CAST(k.turns AS REAL) / k.sessions AS avg_turns,
       CAST(k.fallback_turns AS REAL) / nullif(k.turns, 0) AS fallback_rate,
       CAST(k.silent_turns AS REAL) / nullif(k.turns, 0) AS silent_agent_share,
       k.repeat_callers,
       p.call_count AS platform_sessions,
       p.exit_no_consult_count AS platform_exit_no_consult,
       p.call_staff_no_consult_count AS platform_staff_no_consult,
       p.call_staff_consult_count AS platform_staff_consult,
       p.exit_consulting_count AS platform_bot_only,
       CASE WHEN CAST(p.autonomy_rate AS REAL) < 0 THEN NULL ELSE CAST(p.autonomy_rate AS REAL) END
           AS platform_autonomy_rate,
       k.sessions - p.call_count AS platform_difference
FROM kpi_hourly k
LEFT JOIN platform_stats p ON p.access_code = k.called_number AND p.record_time = k.hour_start
WHERE k.sessions > 0;

-- The same per UTC day.
CREATE VIEW v_daily_kpis AS
SELECT k.day,
       nullif(k.called_number, '') AS called_number,
       k.sessions,
       k.exit_no_consult,
       k.staff_no_consult,
       k.staff_consult,
       k.bot_only,
       k.unknown,
       CAST(k.bot_only AS REAL) / nullif(k.staff_no_consult + k.staff_consult + k.bot_only, 0) AS autonomy_rate,
       k.turns,
       CAST(k.turns AS REAL) / k.sessions AS avg_turns,
       CAST(k.fallback_turns AS REAL) / nullif(k.turns, 0) AS fallback_rate,
       CAST(k.silent_turns AS REAL) / nullif(k.turns, 0) AS silent_agent_share,
       k.repeat_callers,
       p.sessions AS platform_sessions,
       p.exit_no_consult AS platform_exit_no_consult,
       p.staff_no_consult AS platform_staff_no_consult,
       p.staff_consult AS platform_staff_consult,
       p.bot_only AS platform_bot_only,
       CAST(p.bot_only AS REAL) / nullif(p.staff_no_consult + p.staff_consult + p.bot_only, 0) AS platform_autonomy_rate,
       k.sessions - p.sessions AS platform_difference
FROM (
    SELECT strftime('%Y-%m-%d', hour_start / 1000, 'unixepoch') AS day, called_number,
           sum(sessions) AS sessions,
           sum(exit_no_consult) AS exit_no_consult,
           sum(staff_no_consult) AS staff_no_consult,
           sum(staff_consult) AS staff_consult,
           sum(bot_only) AS bot_only,
           sum(unknown) AS unknown,
           sum(turns) AS turns,
           sum(fallback_turns) AS fallback_turns,
           sum(silent_turns) AS silent_turns,
           sum(repeat_callers) AS repeat_callers
    FROM kpi_hourly
    WHERE sessions > 0
    GROUP BY 1, 2
) k
LEFT JOIN (
    SELECT strftime('%Y-%m-%d', record_time / 1000, 'unixepoch') AS day, access_code,
           sum(call_count) AS sessions,
           sum(exit_no_consult_count) AS exit_no_consult,
           sum(call_staff_no_consult_count) AS staff_no_consult,
           sum(call_staff_consult_count) AS staff_consult,
           sum(exit_consulting_count) AS bot_only
    FROM platform_stats
    GROUP BY 1, 2
) p ON p.access_code = k.called_number AND p.day = k.day;

-- Where callers gave up: the last intention of sessions whose call ended in
-- the IVR, counted per UTC day and access code.
CREATE VIEW v_dropoff AS
SELECT strftime('%Y-%m-%d', day_start / 1000, 'unixepoch') AS day,
       nullif(called_number, '') AS called_number,
       intention,
       sessions
FROM kpi_dropoff
WHERE sessions > 0;

-- migration: 11
-- Turns and Q&A rows keyed by their record's rowid and their place in its
-- list, so that a page appends to their tables and indexes instead of
-- writing at random places of indexes keyed by the text log_id. The rows keep
-- their rowids (the full-text index's), and the records theirs: SQLite's
-- VACUUM copies a table's rowids with its rows. record_details and qa_records
-- remain, as views with the same columns, and rowid (the row's id; the
-- full-text index refers to the turn's). Rows written to them land in the
-- new tables.
CREATE TABLE turn_rows (
    id              INTEGER PRIMARY KEY,  -- the full-text index's rowid
    record_id       INTEGER NOT NULL,     -- records.rowid
    seq             INTEGER NOT NULL,     -- 0-based position in the list
    inter_no        TEXT,
    user_saying     TEXT,
    intention       TEXT,
    system_reply    TEXT,
    reply_time      INTEGER,              -- API timestamp, epoch ms
    request_time    INTEGER,              -- API requsetTime, epoch ms
    response_source INTEGER,              -- 0 chatbot, 1 silent agent
    involve_mode    INTEGER,              -- 0 common, 1 monitoring, 2 insertion
    extra_json      TEXT,                 -- the turn's other fields, a JSON object; NULL when none
    UNIQUE (record_id, seq)
) STRICT;

CREATE TABLE qa_rows (
    id              INTEGER PRIMARY KEY,
    record_id       INTEGER NOT NULL,     -- records.rowid
    seq             INTEGER NOT NULL,
    inter_no        TEXT,
    series_id       TEXT,
    question_title  TEXT,
    question_type   TEXT,
    answer_intent   TEXT,
    original_answer TEXT,
    create_time     INTEGER,              -- epoch ms
    extra_json      TEXT,
    UNIQUE (record_id, seq)
) STRICT;

INSERT INTO turn_rows (id, record_id, seq, inter_no, user_saying, intention, system_reply, reply_time,
                       request_time, response_source, involve_mode, extra_json)
SELECT d.rowid, r.rowid, d.seq, d.inter_no, d.user_saying, d.intention, d.system_reply, d.reply_time,
       d.request_time, d.response_source, d.involve_mode, d.extra_json
FROM records r JOIN record_details d ON d.log_id = r.log_id
ORDER BY r.rowid, d.seq;

INSERT INTO qa_rows (id, record_id, seq, inter_no, series_id, question_title, question_type, answer_intent,
                     original_answer, create_time, extra_json)
SELECT q.rowid, r.rowid, q.seq, q.inter_no, q.series_id, q.question_title, q.question_type, q.answer_intent,
       q.original_answer, q.create_time, q.extra_json
FROM records r JOIN qa_records q ON q.log_id = r.log_id
ORDER BY r.rowid, q.seq;

DROP TABLE record_details;
DROP TABLE qa_records;
CREATE INDEX record_details_intention ON turn_rows (intention, request_time);

CREATE VIEW record_details AS
SELECT r.log_id, t.seq, t.inter_no, t.user_saying, t.intention, t.system_reply, t.reply_time, t.request_time,
       t.response_source, t.involve_mode, t.extra_json, t.id AS rowid
FROM turn_rows t
JOIN records r ON r.rowid = t.record_id;

CREATE VIEW qa_records AS
SELECT r.log_id, q.seq, q.inter_no, q.series_id, q.question_title, q.question_type, q.answer_intent,
       q.original_answer, q.create_time, q.extra_json, q.id AS rowid
FROM qa_rows q
JOIN records r ON r.rowid = q.record_id;

-- What is written to the views (as `oifde-sync copy` does) goes to the
-- tables, under the record of that log_id, which must be there.
CREATE TRIGGER record_details_insert INSTEAD OF INSERT ON record_details BEGIN
    SELECT RAISE(ABORT, 'record_details: no record with this log_id; write the record first')
    WHERE NOT EXISTS (SELECT 1 FROM records WHERE log_id = NEW.log_id);
    INSERT INTO turn_rows (record_id, seq, inter_no, user_saying, intention, system_reply, reply_time,
                           request_time, response_source, involve_mode, extra_json)
    SELECT r.rowid, NEW.seq, NEW.inter_no, NEW.user_saying, NEW.intention, NEW.system_reply, NEW.reply_time,
           NEW.request_time, NEW.response_source, NEW.involve_mode, NEW.extra_json
    FROM records r WHERE r.log_id = NEW.log_id
    ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER record_details_delete INSTEAD OF DELETE ON record_details BEGIN
    DELETE FROM turn_rows WHERE id = OLD.rowid;
END;
CREATE TRIGGER qa_records_insert INSTEAD OF INSERT ON qa_records BEGIN
    SELECT RAISE(ABORT, 'qa_records: no record with this log_id; write the record first')
    WHERE NOT EXISTS (SELECT 1 FROM records WHERE log_id = NEW.log_id);
    INSERT INTO qa_rows (record_id, seq, inter_no, series_id, question_title, question_type, answer_intent,
                         original_answer, create_time, extra_json)
    SELECT r.rowid, NEW.seq, NEW.inter_no, NEW.series_id, NEW.question_title, NEW.question_type,
           NEW.answer_intent, NEW.original_answer, NEW.create_time, NEW.extra_json
    FROM records r WHERE r.log_id = NEW.log_id
    ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER qa_records_delete INSTEAD OF DELETE ON qa_records BEGIN
    DELETE FROM qa_rows WHERE id = OLD.rowid;
END;

-- The views over turns read the tables directly; their columns are unchanged.
DROP VIEW v_calls;
DROP VIEW v_turns;
DROP VIEW v_qa;

CREATE VIEW v_calls AS
SELECT r.log_id,
       r.call_id,
       r.cti_call_id,
       r.calling_number,
       r.called_number,
       strftime('%Y-%m-%d %H:%M:%S', r.start_time / 1000, 'unixepoch') AS start_utc,
       strftime('%Y-%m-%d %H:%M:%S', r.end_time / 1000, 'unixepoch') AS end_utc,
       (r.end_time - r.start_time) / 1000 AS duration_s,
       (SELECT count(*) FROM turn_rows d WHERE d.record_id = r.rowid) AS turns,
       (SELECT count(*) FROM qa_rows q WHERE q.record_id = r.rowid) AS qa_rows,
       r.record_file_name,
       r.dialog_type,
       r.flow_inst_id
FROM records r;

CREATE VIEW v_turns AS
SELECT r.log_id,
       r.call_id,
       r.calling_number,
       d.seq,
       d.inter_no,
       strftime('%Y-%m-%d %H:%M:%S', d.request_time / 1000, 'unixepoch') AS request_utc,
       d.user_saying,
       d.intention,
       strftime('%Y-%m-%d %H:%M:%S', d.reply_time / 1000, 'unixepoch') AS reply_utc,
       d.system_reply,
       d.response_source,
       d.involve_mode,
       d.id AS turn_rowid
FROM turn_rows d
JOIN records r ON r.rowid = d.record_id;

CREATE VIEW v_qa AS
SELECT r.log_id,
       r.call_id,
       r.calling_number,
       q.seq,
       q.series_id,
       q.question_title,
       q.question_type,
       q.answer_intent,
       q.original_answer,
       strftime('%Y-%m-%d %H:%M:%S', q.create_time / 1000, 'unixepoch') AS create_utc
FROM qa_rows q
JOIN records r ON r.rowid = q.record_id;

-- migration: 12
-- A session's figures keyed by its record's rowid instead of the text
-- log_id, so that new sessions append to their table instead of writing at
-- random places of a key that grows with the store. session_facts remains,
-- as a view with the same columns; rows written to it (as `oifde-sync copy`
-- does) land in the table, under the record of that log_id.
CREATE TABLE session_figures (
    record_id      INTEGER PRIMARY KEY,       -- records.rowid
    called_number  TEXT NOT NULL,             -- '' when the record has none
    hour_start     INTEGER NOT NULL,          -- start_time's UTC hour, epoch ms
    turns          INTEGER NOT NULL,
    transferred    INTEGER,                   -- NULL without CDR legs
    outcome        TEXT NOT NULL,
    fallback_turns INTEGER NOT NULL,
    silent_turns   INTEGER NOT NULL,
    repeat_caller  INTEGER NOT NULL,
    last_intention TEXT
) STRICT;
INSERT INTO session_figures (record_id, called_number, hour_start, turns, transferred, outcome, fallback_turns,
                             silent_turns, repeat_caller, last_intention)
SELECT r.rowid, f.called_number, f.hour_start, f.turns, f.transferred, f.outcome, f.fallback_turns,
       f.silent_turns, f.repeat_caller, f.last_intention
FROM session_facts f
JOIN records r ON r.log_id = f.log_id
ORDER BY r.rowid;
DROP TABLE session_facts;

CREATE VIEW session_facts AS
SELECT r.log_id, f.called_number, f.hour_start, f.turns, f.transferred, f.outcome, f.fallback_turns,
       f.silent_turns, f.repeat_caller, f.last_intention
FROM session_figures f
JOIN records r ON r.rowid = f.record_id;

CREATE TRIGGER session_facts_insert INSTEAD OF INSERT ON session_facts BEGIN
    SELECT RAISE(ABORT, 'session_facts: no record with this log_id; write the record first')
    WHERE NOT EXISTS (SELECT 1 FROM records WHERE log_id = NEW.log_id);
    INSERT INTO session_figures (record_id, called_number, hour_start, turns, transferred, outcome,
                                 fallback_turns, silent_turns, repeat_caller, last_intention)
    SELECT r.rowid, NEW.called_number, NEW.hour_start, NEW.turns, NEW.transferred, NEW.outcome,
           NEW.fallback_turns, NEW.silent_turns, NEW.repeat_caller, NEW.last_intention
    FROM records r WHERE r.log_id = NEW.log_id
    ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER session_facts_delete INSTEAD OF DELETE ON session_facts BEGIN
    DELETE FROM session_figures WHERE record_id = (SELECT rowid FROM records WHERE log_id = OLD.log_id);
END;

DROP VIEW v_session_outcomes;
CREATE VIEW v_session_outcomes AS
SELECT r.log_id,
       r.call_id,
       r.cti_call_id,
       r.called_number,
       r.calling_number,
       r.start_time,
       strftime('%Y-%m-%d', f.hour_start / 1000, 'unixepoch') AS day,
       strftime('%H', f.hour_start / 1000, 'unixepoch') AS hour,
       f.hour_start,
       f.turns,
       f.transferred,
       f.outcome,
       f.fallback_turns,
       f.silent_turns,
       f.repeat_caller,
       f.last_intention
FROM records r
JOIN session_figures f ON f.record_id = r.rowid;
