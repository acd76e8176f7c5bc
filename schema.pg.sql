-- oifde-sync store in PostgreSQL, schema version 1: the tables, columns and
-- views of the SQLite store (schema.sql), each row carrying the tenant it
-- belongs to (api.tenant_id), so that several tenants share one database.
-- Applied by the binary in one transaction that also records the version in
-- oifde_schema. Times from the API stay as integer milliseconds since the
-- epoch (UTC); the v_* views add readable UTC text.

CREATE TABLE oifde_schema (
    version INTEGER NOT NULL
);
INSERT INTO oifde_schema (version) VALUES (0);

-- One row a session record, keyed by the tenant and the API's logId. Keys
-- compare byte by byte (COLLATE "C"): fast, and the same in every database.
-- tenant_id is the configured api.tenant_id; the record's own tenantId is in records.api_tenant_id (version 2).
CREATE TABLE records (
    tenant_id         TEXT COLLATE "C" NOT NULL,
    log_id            TEXT COLLATE "C" NOT NULL,
    call_sor_id       TEXT,
    call_id           TEXT,
    cti_call_id       TEXT,
    calling_number    TEXT,
    called_number     TEXT,
    start_time        BIGINT,             -- epoch ms
    end_time          BIGINT,             -- epoch ms
    last_update_time  BIGINT,             -- epoch ms; decides which copy wins
    flow_inst_id      TEXT,
    dialog_type       TEXT,
    call_data         TEXT,
    location_id       BIGINT,
    flag              TEXT,
    business_info     TEXT,
    business_info_str TEXT,
    record_file_name  TEXT,
    yugao_file_name   TEXT,
    raw_json          TEXT NOT NULL,      -- the record as received, keys sorted, without its turn and Q&A lists
    content_hash      TEXT NOT NULL,
    first_seen_at     BIGINT NOT NULL,
    synced_at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, log_id)
);

-- Dialogue turns (API recordDetials), in their order in the list.
CREATE TABLE record_details (
    tenant_id       TEXT COLLATE "C" NOT NULL,
    log_id          TEXT COLLATE "C" NOT NULL,
    seq             BIGINT NOT NULL,
    inter_no        TEXT,
    user_saying     TEXT,
    intention       TEXT,
    system_reply    TEXT,
    reply_time      BIGINT,
    request_time    BIGINT,
    response_source BIGINT,
    involve_mode    BIGINT,
    extra_json      TEXT,
    PRIMARY KEY (tenant_id, log_id, seq)
);

-- Q&A rows (API qaRecords), in their order in the list.
CREATE TABLE qa_records (
    tenant_id       TEXT COLLATE "C" NOT NULL,
    log_id          TEXT COLLATE "C" NOT NULL,
    seq             BIGINT NOT NULL,
    inter_no        TEXT,
    series_id       TEXT,
    question_title  TEXT,
    question_type   TEXT,
    answer_intent   TEXT,
    original_answer TEXT,
    create_time     BIGINT,
    extra_json      TEXT,
    PRIMARY KEY (tenant_id, log_id, seq)
);

CREATE TABLE sync_cursors (
    tenant_id   TEXT NOT NULL,
    query_key   TEXT NOT NULL,
    cursor_time BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, query_key)
);

CREATE TABLE sync_runs (
    tenant_id        TEXT NOT NULL,
    id               BIGSERIAL NOT NULL,
    kind             TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    status           TEXT NOT NULL,
    keys             BIGINT NOT NULL DEFAULT 0,
    windows          BIGINT NOT NULL DEFAULT 0,
    pages            BIGINT NOT NULL DEFAULT 0,
    records_fetched  BIGINT NOT NULL DEFAULT 0,
    inserted         BIGINT NOT NULL DEFAULT 0,
    updated          BIGINT NOT NULL DEFAULT 0,
    unchanged        BIGINT NOT NULL DEFAULT 0,
    stale            BIGINT NOT NULL DEFAULT 0,
    failed_windows   BIGINT NOT NULL DEFAULT 0,
    rereads          BIGINT NOT NULL DEFAULT 0,
    requests         BIGINT NOT NULL DEFAULT 0,
    retries          BIGINT NOT NULL DEFAULT 0,
    error            TEXT,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE backfill_progress (
    tenant_id    TEXT NOT NULL,
    job          TEXT NOT NULL,
    query_key    TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end   BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, job, query_key, window_start)
);

CREATE TABLE query_keys (
    tenant_id     TEXT NOT NULL,
    query_key     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    source        TEXT NOT NULL,
    state         TEXT NOT NULL,
    added_at      BIGINT NOT NULL,
    last_query_at BIGINT,
    next_query_at BIGINT,
    records_found BIGINT NOT NULL DEFAULT 0,
    misses        BIGINT NOT NULL DEFAULT 0,
    failed_passes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, query_key)
);
CREATE INDEX query_keys_due ON query_keys (tenant_id, state, next_query_at);

CREATE TABLE skipped_windows (
    tenant_id    TEXT NOT NULL,
    query_key    TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end   BIGINT NOT NULL,
    reason       TEXT NOT NULL,
    skipped_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, query_key, window_start)
);

CREATE TABLE key_files (
    tenant_id TEXT NOT NULL,
    path      TEXT NOT NULL,
    file_id   TEXT NOT NULL,
    "offset"  BIGINT NOT NULL,
    lines     BIGINT NOT NULL,
    head      TEXT NOT NULL,
    read_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, path)
);

-- Summary tables for the analysts' aggregate questions, kept exact in the
-- same transaction as the rows they count; a NULL key is stored as ''.
CREATE TABLE summary_calls_per_day (
    tenant_id TEXT NOT NULL,
    day       TEXT NOT NULL,
    calls     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

CREATE TABLE summary_intentions_per_day (
    tenant_id TEXT NOT NULL,
    day       TEXT NOT NULL,
    intention TEXT NOT NULL,
    turns     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, intention)
);

CREATE TABLE summary_answers (
    tenant_id      TEXT NOT NULL,
    question_title TEXT NOT NULL,
    answer_intent  TEXT NOT NULL,
    answers        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, question_title, answer_intent)
);

-- Where `oifde-sync copy` stands, so an interrupted copy resumes.
CREATE TABLE copy_progress (
    tenant_id  TEXT NOT NULL,
    source     TEXT NOT NULL,
    table_name TEXT NOT NULL,
    last_key   TEXT NOT NULL,             -- JSON array: the key of the last row copied
    done       BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, source, table_name)
);

-- Who writes for each tenant: one writer holds the tenant's advisory lock
-- and names itself here, so a second one can say who holds it.
CREATE TABLE writers (
    tenant_id TEXT PRIMARY KEY NOT NULL,
    holder    TEXT NOT NULL,
    since     BIGINT NOT NULL
);

CREATE INDEX records_call_id ON records (call_id);
CREATE INDEX records_cti_call_id ON records (cti_call_id);
CREATE INDEX records_calling_number ON records (calling_number);
CREATE INDEX records_start_time ON records (tenant_id, start_time);
CREATE INDEX record_details_intention ON record_details (intention, request_time);

CREATE VIEW v_calls AS
SELECT r.tenant_id,
       r.log_id,
       r.call_id,
       r.cti_call_id,
       r.calling_number,
       r.called_number,
       to_char(to_timestamp(r.start_time / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS start_utc,
       to_char(to_timestamp(r.end_time / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS end_utc,
       (r.end_time - r.start_time) / 1000 AS duration_s,
       (SELECT count(*) FROM record_details d WHERE d.tenant_id = r.tenant_id AND d.log_id = r.log_id) AS turns,
       (SELECT count(*) FROM qa_records q WHERE q.tenant_id = r.tenant_id AND q.log_id = r.log_id) AS qa_rows,
       r.record_file_name,
       r.dialog_type,
       r.flow_inst_id
FROM records r;

CREATE VIEW v_turns AS
SELECT d.tenant_id,
       d.log_id,
       r.call_id,
       r.calling_number,
       d.seq,
       d.inter_no,
       to_char(to_timestamp(d.request_time / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS request_utc,
       d.user_saying,
       d.intention,
       to_char(to_timestamp(d.reply_time / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS reply_utc,
       d.system_reply,
       d.response_source,
       d.involve_mode
FROM record_details d
JOIN records r ON r.tenant_id = d.tenant_id AND r.log_id = d.log_id;

CREATE VIEW v_qa AS
SELECT q.tenant_id,
       q.log_id,
       r.call_id,
       r.calling_number,
       q.seq,
       q.series_id,
       q.question_title,
       q.question_type,
       q.answer_intent,
       q.original_answer,
       to_char(to_timestamp(q.create_time / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS create_utc
FROM qa_records q
JOIN records r ON r.tenant_id = q.tenant_id AND r.log_id = q.log_id;

-- migration: 2
-- Version 2: why the server refused a key's last query, shown by `keys list`.
ALTER TABLE query_keys ADD COLUMN last_error TEXT;
ALTER TABLE sync_runs ADD COLUMN nul_replaced BIGINT NOT NULL DEFAULT 0;

-- Any value the API sends is stored: text columns are indexed by hash (any
-- length; equality is what they are filtered by), and the summary tables'
-- keys by a digest of their text, not the text itself (a B-tree entry holds
-- at most about 2.7 KB).
DROP INDEX records_call_id;
DROP INDEX records_cti_call_id;
DROP INDEX records_calling_number;
DROP INDEX record_details_intention;
CREATE INDEX records_call_id ON records USING hash (call_id);
CREATE INDEX records_cti_call_id ON records USING hash (cti_call_id);
CREATE INDEX records_calling_number ON records USING hash (calling_number);
CREATE INDEX record_details_intention ON record_details USING hash (intention);
ALTER TABLE summary_intentions_per_day DROP CONSTRAINT summary_intentions_per_day_pkey;
CREATE UNIQUE INDEX summary_intentions_per_day_key ON summary_intentions_per_day (tenant_id, day, md5(intention));
ALTER TABLE summary_answers DROP CONSTRAINT summary_answers_pkey;
CREATE UNIQUE INDEX summary_answers_key ON summary_answers (tenant_id, md5(question_title), md5(answer_intent));

-- Times stay the integers the API sent; a time no calendar shows (before
-- year 1 or after 9999, e.g. Long.MAX_VALUE) reads as NULL, never an error.
CREATE FUNCTION oifde_utc(ms BIGINT, fmt TEXT) RETURNS TEXT LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ms BETWEEN -62135596800000 AND 253402300799999
                THEN to_char(to_timestamp(ms / 1000) AT TIME ZONE 'UTC', fmt) END
$$;

CREATE OR REPLACE VIEW v_calls AS
SELECT r.tenant_id,
       r.log_id,
       r.call_id,
       r.cti_call_id,
       r.calling_number,
       r.called_number,
       oifde_utc(r.start_time, 'YYYY-MM-DD HH24:MI:SS') AS start_utc,
       oifde_utc(r.end_time, 'YYYY-MM-DD HH24:MI:SS') AS end_utc,
       CASE WHEN r.start_time BETWEEN -62135596800000 AND 253402300799999
             AND r.end_time BETWEEN -62135596800000 AND 253402300799999
            THEN (r.end_time - r.start_time) / 1000 END AS duration_s,
       (SELECT count(*) FROM record_details d WHERE d.tenant_id = r.tenant_id AND d.log_id = r.log_id) AS turns,
       (SELECT count(*) FROM qa_records q WHERE q.tenant_id = r.tenant_id AND q.log_id = r.log_id) AS qa_rows,
       r.record_file_name,
       r.dialog_type,
       r.flow_inst_id
FROM records r;

CREATE OR REPLACE VIEW v_turns AS
SELECT d.tenant_id,
       d.log_id,
       r.call_id,
       r.calling_number,
       d.seq,
       d.inter_no,
       oifde_utc(d.request_time, 'YYYY-MM-DD HH24:MI:SS') AS request_utc,
       d.user_saying,
       d.intention,
       oifde_utc(d.reply_time, 'YYYY-MM-DD HH24:MI:SS') AS reply_utc,
       d.system_reply,
       d.response_source,
       d.involve_mode
FROM record_details d
JOIN records r ON r.tenant_id = d.tenant_id AND r.log_id = d.log_id;

CREATE OR REPLACE VIEW v_qa AS
SELECT q.tenant_id,
       q.log_id,
       r.call_id,
       r.calling_number,
       q.seq,
       q.series_id,
       q.question_title,
       q.question_type,
       q.answer_intent,
       q.original_answer,
       oifde_utc(q.create_time, 'YYYY-MM-DD HH24:MI:SS') AS create_utc
FROM qa_records q
JOIN records r ON r.tenant_id = q.tenant_id AND r.log_id = q.log_id;

-- The record's own tenantId as the API sent it (null, or another value),
-- beside the partition column tenant_id (the configured tenant): a copy into
-- SQLite gives it back. Rows written before keep it in raw_json.
ALTER TABLE records ADD COLUMN api_tenant_id TEXT;
UPDATE records SET api_tenant_id = raw_json::json ->> 'tenantId' WHERE raw_json IS NOT NULL;

-- migration: 3
-- The indexes the SQLite store has and this one lacked: keys by source (a
-- config change, a keys file's keys) and records by their last update.
CREATE INDEX IF NOT EXISTS query_keys_source ON query_keys (tenant_id, source, state);
CREATE INDEX IF NOT EXISTS records_last_update_time ON records (tenant_id, last_update_time);

-- migration: 4
-- Huawei's CDR files: one row a leg of a call, the files read, and the span
-- of a CDR call on its point key (as SQLite's version 7).
CREATE TABLE IF NOT EXISTS cdr_legs (
    tenant_id       TEXT NOT NULL,
    call_id         TEXT NOT NULL,
    call_id_num     BIGINT NOT NULL,
    device_type     BIGINT,
    developer       TEXT,
    account_id      TEXT,
    cc_id           TEXT,
    agent_id        TEXT,
    caller_no       TEXT,
    callee_no       TEXT,
    wait_begin      BIGINT,
    wait_end        BIGINT,
    ack_begin       BIGINT,
    ack_end         BIGINT,
    call_begin      BIGINT,
    call_end        BIGINT,
    device_no       TEXT,
    call_type       TEXT,
    release_cause   TEXT,
    vdn_id          TEXT,
    pre_device_type TEXT,
    pre_device_no   TEXT,
    extra_json      TEXT,
    PRIMARY KEY (tenant_id, call_id, call_id_num)
);
CREATE TABLE IF NOT EXISTS cdr_files (
    tenant_id   TEXT NOT NULL,
    path        TEXT NOT NULL,
    size        BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    rows        BIGINT NOT NULL,
    read_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, path)
);
ALTER TABLE query_keys ADD COLUMN IF NOT EXISTS call_begin BIGINT;
ALTER TABLE query_keys ADD COLUMN IF NOT EXISTS call_end BIGINT;

-- migration: 5
-- The platform's own count of calls and the last verification of the
-- mirror against it (as SQLite's version 8).
CREATE TABLE IF NOT EXISTS platform_stats (
    tenant_id                   TEXT NOT NULL,
    access_code                 TEXT NOT NULL,
    record_time                 BIGINT NOT NULL,
    call_count                  BIGINT NOT NULL,
    exit_no_consult_count       BIGINT NOT NULL,
    call_staff_no_consult_count BIGINT NOT NULL,
    call_staff_consult_count    BIGINT NOT NULL,
    exit_consulting_count       BIGINT NOT NULL,
    interact_count              BIGINT NOT NULL,
    autonomy_rate               TEXT,
    average_interact_per_call   TEXT,
    db_record_time              BIGINT,
    interface_request_count     BIGINT,
    interface_success_count     BIGINT,
    interface_success_rate      TEXT,
    extra_json                  TEXT,
    fetched_at                  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, access_code, record_time)
);
CREATE INDEX IF NOT EXISTS records_called_number ON records (tenant_id, called_number, start_time);
CREATE TABLE IF NOT EXISTS verifications (
    tenant_id      TEXT PRIMARY KEY,
    verified_at    BIGINT NOT NULL,
    period_from    BIGINT NOT NULL,
    period_to      BIGINT NOT NULL,
    platform_calls BIGINT NOT NULL,
    mirrored       BIGINT NOT NULL,
    missing        BIGINT NOT NULL,
    missing_hours  BIGINT NOT NULL
);

-- migration: 6
-- The IVR's own measures (as SQLite's version 9), per tenant.
CREATE TABLE IF NOT EXISTS fallback_intentions (
    tenant_id TEXT NOT NULL,
    intention TEXT NOT NULL,
    PRIMARY KEY (tenant_id, intention)
);

CREATE VIEW v_session_outcomes AS
SELECT s.tenant_id,
       s.log_id,
       s.call_id,
       s.cti_call_id,
       s.called_number,
       s.calling_number,
       s.start_time,
       oifde_utc(s.start_time, 'YYYY-MM-DD') AS day,
       oifde_utc(s.start_time, 'HH24') AS hour,
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
           CASE WHEN NOT EXISTS (SELECT 1 FROM cdr_legs l WHERE l.tenant_id = k.tenant_id AND l.call_id = k.cdr_call)
                    THEN NULL
                WHEN EXISTS (
                    SELECT 1 FROM cdr_legs l
                    WHERE l.tenant_id = k.tenant_id AND l.call_id = k.cdr_call AND l.device_type IN (1, 2)
                      AND (CASE WHEN l.call_id_num = -1 THEN 2147483647 ELSE l.call_id_num END) > (
                          SELECT min(CASE WHEN i.call_id_num = -1 THEN 2147483647 ELSE i.call_id_num END)
                          FROM cdr_legs i WHERE i.tenant_id = k.tenant_id AND i.call_id = k.cdr_call
                            AND i.device_type = 3)
                ) THEN 1
                ELSE 0 END AS transferred
    FROM (
        SELECT r.tenant_id, r.log_id, r.call_id, r.cti_call_id, r.called_number, r.calling_number, r.start_time,
               CASE WHEN EXISTS (SELECT 1 FROM cdr_legs l WHERE l.tenant_id = r.tenant_id AND l.call_id = r.cti_call_id)
                    THEN r.cti_call_id ELSE r.call_id END AS cdr_call,
               (SELECT count(*) FROM record_details d WHERE d.tenant_id = r.tenant_id AND d.log_id = r.log_id) AS turns,
               (SELECT count(*) FROM record_details d WHERE d.tenant_id = r.tenant_id AND d.log_id = r.log_id
                  AND (coalesce(d.intention, '') = '' OR d.intention IN (
                      SELECT f.intention FROM fallback_intentions f WHERE f.tenant_id = r.tenant_id)))
                   AS fallback_turns,
               (SELECT count(*) FROM record_details d WHERE d.tenant_id = r.tenant_id AND d.log_id = r.log_id
                  AND d.response_source = 1) AS silent_turns,
               CASE WHEN EXISTS (SELECT 1 FROM records p WHERE p.tenant_id = r.tenant_id
                         AND p.calling_number = r.calling_number AND p.call_id <> r.call_id
                         AND p.start_time >= r.start_time - 86400000 AND p.start_time < r.start_time)
                    THEN 1 ELSE 0 END AS repeat_caller,
               (SELECT d.intention FROM record_details d WHERE d.tenant_id = r.tenant_id AND d.log_id = r.log_id
                ORDER BY d.seq DESC LIMIT 1) AS last_intention
        FROM records r
    ) k
) s;

CREATE VIEW v_hourly_kpis AS
SELECT k.tenant_id,
       k.day,
       k.hour,
       k.called_number,
       k.sessions,
       k.exit_no_consult,
       k.staff_no_consult,
       k.staff_consult,
       k.bot_only,
       k.unknown,
       k.bot_only::DOUBLE PRECISION / nullif(k.staff_no_consult + k.staff_consult + k.bot_only, 0) AS autonomy_rate,
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
       CASE WHEN p.autonomy_rate::DOUBLE PRECISION < 0 THEN NULL ELSE p.autonomy_rate::DOUBLE PRECISION END
           AS platform_autonomy_rate,
       k.sessions - p.call_count AS platform_difference
FROM (
    SELECT tenant_id, day, hour, hour_start, called_number,
           count(*) AS sessions,
           sum(CASE WHEN outcome = 'exit_no_consult' THEN 1 ELSE 0 END) AS exit_no_consult,
           sum(CASE WHEN outcome = 'staff_no_consult' THEN 1 ELSE 0 END) AS staff_no_consult,
           sum(CASE WHEN outcome = 'staff_consult' THEN 1 ELSE 0 END) AS staff_consult,
           sum(CASE WHEN outcome = 'bot_only' THEN 1 ELSE 0 END) AS bot_only,
           sum(CASE WHEN outcome = 'unknown' THEN 1 ELSE 0 END) AS unknown,
           sum(turns) AS turns,
           avg(turns)::DOUBLE PRECISION AS avg_turns,
           sum(fallback_turns)::DOUBLE PRECISION / nullif(sum(turns), 0) AS fallback_rate,
           sum(silent_turns)::DOUBLE PRECISION / nullif(sum(turns), 0) AS silent_agent_share,
           sum(repeat_caller) AS repeat_callers
    FROM v_session_outcomes
    GROUP BY tenant_id, day, hour, hour_start, called_number
) k
LEFT JOIN platform_stats p
    ON p.tenant_id = k.tenant_id AND p.access_code = k.called_number AND p.record_time = k.hour_start;

CREATE VIEW v_daily_kpis AS
SELECT k.tenant_id,
       k.day,
       k.called_number,
       k.sessions,
       k.exit_no_consult,
       k.staff_no_consult,
       k.staff_consult,
       k.bot_only,
       k.unknown,
       k.bot_only::DOUBLE PRECISION / nullif(k.staff_no_consult + k.staff_consult + k.bot_only, 0) AS autonomy_rate,
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
       p.bot_only::DOUBLE PRECISION / nullif(p.staff_no_consult + p.staff_consult + p.bot_only, 0)
           AS platform_autonomy_rate,
       k.sessions - p.sessions AS platform_difference
FROM (
    SELECT tenant_id, day, called_number,
           count(*) AS sessions,
           sum(CASE WHEN outcome = 'exit_no_consult' THEN 1 ELSE 0 END) AS exit_no_consult,
           sum(CASE WHEN outcome = 'staff_no_consult' THEN 1 ELSE 0 END) AS staff_no_consult,
           sum(CASE WHEN outcome = 'staff_consult' THEN 1 ELSE 0 END) AS staff_consult,
           sum(CASE WHEN outcome = 'bot_only' THEN 1 ELSE 0 END) AS bot_only,
           sum(CASE WHEN outcome = 'unknown' THEN 1 ELSE 0 END) AS unknown,
           sum(turns) AS turns,
           avg(turns)::DOUBLE PRECISION AS avg_turns,
           sum(fallback_turns)::DOUBLE PRECISION / nullif(sum(turns), 0) AS fallback_rate,
           sum(silent_turns)::DOUBLE PRECISION / nullif(sum(turns), 0) AS silent_agent_share,
           sum(repeat_caller) AS repeat_callers
    FROM v_session_outcomes
    GROUP BY tenant_id, day, called_number
) k
LEFT JOIN (
    SELECT tenant_id, oifde_utc(record_time, 'YYYY-MM-DD') AS day, access_code,
           sum(call_count) AS sessions,
           sum(exit_no_consult_count) AS exit_no_consult,
           sum(call_staff_no_consult_count) AS staff_no_consult,
           sum(call_staff_consult_count) AS staff_consult,
           sum(exit_consulting_count) AS bot_only
    FROM platform_stats
    GROUP BY 1, 2, 3
) p ON p.tenant_id = k.tenant_id AND p.access_code = k.called_number AND p.day = k.day;

CREATE VIEW v_dropoff AS
SELECT tenant_id, day, called_number, coalesce(last_intention, '') AS intention, count(*) AS sessions
FROM v_session_outcomes
WHERE transferred = 0
GROUP BY tenant_id, day, called_number, coalesce(last_intention, '');

-- migration: 7
-- The measures kept exact as the rows change (as SQLite's version 10): one
-- row of figures a session, and their sums per UTC hour and access code (and
-- per day for the drop-off), updated in the transaction of every write to the
-- rows they come from. The sums are keyed by a digest of their text. Every
-- tenant_id the measures compare with records' is collated "C" as that one is:
-- a comparison across collations cannot use the other table's key.
CREATE TABLE session_facts (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    log_id         TEXT COLLATE "C" NOT NULL,
    called_number  TEXT NOT NULL,
    hour_start     BIGINT NOT NULL,
    turns          BIGINT NOT NULL,
    transferred    BIGINT,
    outcome        TEXT NOT NULL,
    fallback_turns BIGINT NOT NULL,
    silent_turns   BIGINT NOT NULL,
    repeat_caller  BIGINT NOT NULL,
    last_intention TEXT,
    PRIMARY KEY (tenant_id, log_id)
);
CREATE TABLE kpi_hourly (
    tenant_id        TEXT COLLATE "C" NOT NULL,
    hour_start       BIGINT NOT NULL,
    called_number    TEXT NOT NULL,
    sessions         BIGINT NOT NULL,
    exit_no_consult  BIGINT NOT NULL,
    staff_no_consult BIGINT NOT NULL,
    staff_consult    BIGINT NOT NULL,
    bot_only         BIGINT NOT NULL,
    unknown          BIGINT NOT NULL,
    turns            BIGINT NOT NULL,
    fallback_turns   BIGINT NOT NULL,
    silent_turns     BIGINT NOT NULL,
    repeat_callers   BIGINT NOT NULL
);
CREATE UNIQUE INDEX kpi_hourly_key ON kpi_hourly (tenant_id, hour_start, md5(called_number));
CREATE TABLE kpi_dropoff (
    tenant_id     TEXT COLLATE "C" NOT NULL,
    day_start     BIGINT NOT NULL,
    called_number TEXT NOT NULL,
    intention     TEXT NOT NULL,
    sessions      BIGINT NOT NULL
);
CREATE UNIQUE INDEX kpi_dropoff_key ON kpi_dropoff (tenant_id, day_start, md5(called_number), md5(intention));
-- A caller's sessions by time (what finds the repeat callers), keyed by a
-- digest of the number like the summaries; the hash index stays for equality.
CREATE INDEX records_caller_time ON records (tenant_id, md5(calling_number), start_time);

DROP VIEW v_dropoff;
DROP VIEW v_daily_kpis;
DROP VIEW v_hourly_kpis;
DROP VIEW v_session_outcomes;
ALTER TABLE cdr_legs ALTER COLUMN tenant_id TYPE TEXT COLLATE "C";
ALTER TABLE fallback_intentions ALTER COLUMN tenant_id TYPE TEXT COLLATE "C";
ALTER TABLE platform_stats ALTER COLUMN tenant_id TYPE TEXT COLLATE "C";

CREATE VIEW v_session_outcomes AS
SELECT r.tenant_id,
       r.log_id,
       r.call_id,
       r.cti_call_id,
       r.called_number,
       r.calling_number,
       r.start_time,
       oifde_utc(f.hour_start, 'YYYY-MM-DD') AS day,
       oifde_utc(f.hour_start, 'HH24') AS hour,
       f.hour_start,
       f.turns,
       f.transferred,
       f.outcome,
       f.fallback_turns,
       f.silent_turns,
       f.repeat_caller,
       f.last_intention
FROM records r
JOIN session_facts f ON f.tenant_id = r.tenant_id AND f.log_id = r.log_id;

CREATE VIEW v_hourly_kpis AS
SELECT k.tenant_id,
       oifde_utc(k.hour_start, 'YYYY-MM-DD') AS day,
       oifde_utc(k.hour_start, 'HH24') AS hour,
       nullif(k.called_number, '') AS called_number,
       k.sessions,
       k.exit_no_consult,
       k.staff_no_consult,
       k.staff_consult,
       k.bot_only,
       k.unknown,
       k.bot_only::DOUBLE PRECISION / nullif(k.staff_no_consult + k.staff_consult + k.bot_only, 0) AS autonomy_rate,
       k.turns,
       k.turns::DOUBLE PRECISION / k.sessions AS avg_turns,
       k.fallback_turns::DOUBLE PRECISION / nullif(k.turns, 0) AS fallback_rate,
       k.silent_turns::DOUBLE PRECISION / nullif(k.turns, 0) AS silent_agent_share,
       k.repeat_callers,
       p.call_count AS platform_sessions,
       p.exit_no_consult_count AS platform_exit_no_consult,
       p.call_staff_no_consult_count AS platform_staff_no_consult,
       p.call_staff_consult_count AS platform_staff_consult,
       p.exit_consulting_count AS platform_bot_only,
       CASE WHEN p.autonomy_rate::DOUBLE PRECISION < 0 THEN NULL ELSE p.autonomy_rate::DOUBLE PRECISION END
           AS platform_autonomy_rate,
       k.sessions - p.call_count AS platform_difference
FROM kpi_hourly k
LEFT JOIN platform_stats p
    ON p.tenant_id = k.tenant_id AND p.access_code = k.called_number AND p.record_time = k.hour_start
WHERE k.sessions > 0;

CREATE VIEW v_daily_kpis AS
SELECT k.tenant_id,
       k.day,
       nullif(k.called_number, '') AS called_number,
       k.sessions,
       k.exit_no_consult,
       k.staff_no_consult,
       k.staff_consult,
       k.bot_only,
       k.unknown,
       k.bot_only::DOUBLE PRECISION / nullif(k.staff_no_consult + k.staff_consult + k.bot_only, 0) AS autonomy_rate,
       k.turns,
       k.turns::DOUBLE PRECISION / k.sessions AS avg_turns,
       k.fallback_turns::DOUBLE PRECISION / nullif(k.turns, 0) AS fallback_rate,
       k.silent_turns::DOUBLE PRECISION / nullif(k.turns, 0) AS silent_agent_share,
       k.repeat_callers,
       p.sessions AS platform_sessions,
       p.exit_no_consult AS platform_exit_no_consult,
       p.staff_no_consult AS platform_staff_no_consult,
       p.staff_consult AS platform_staff_consult,
       p.bot_only AS platform_bot_only,
       p.bot_only::DOUBLE PRECISION / nullif(p.staff_no_consult + p.staff_consult + p.bot_only, 0)
           AS platform_autonomy_rate,
       k.sessions - p.sessions AS platform_difference
FROM (
    SELECT tenant_id, oifde_utc(hour_start, 'YYYY-MM-DD') AS day, called_number,
           sum(sessions)::BIGINT AS sessions,
           sum(exit_no_consult)::BIGINT AS exit_no_consult,
           sum(staff_no_consult)::BIGINT AS staff_no_consult,
           sum(staff_consult)::BIGINT AS staff_consult,
           sum(bot_only)::BIGINT AS bot_only,
           sum(unknown)::BIGINT AS unknown,
           sum(turns)::BIGINT AS turns,
           sum(fallback_turns)::BIGINT AS fallback_turns,
           sum(silent_turns)::BIGINT AS silent_turns,
           sum(repeat_callers)::BIGINT AS repeat_callers
    FROM kpi_hourly
    WHERE sessions > 0
    GROUP BY 1, 2, 3
) k
LEFT JOIN (
    SELECT tenant_id, oifde_utc(record_time, 'YYYY-MM-DD') AS day, access_code,
           sum(call_count) AS sessions,
           sum(exit_no_consult_count) AS exit_no_consult,
           sum(call_staff_no_consult_count) AS staff_no_consult,
           sum(call_staff_consult_count) AS staff_consult,
           sum(exit_consulting_count) AS bot_only
    FROM platform_stats
    GROUP BY 1, 2, 3
) p ON p.tenant_id = k.tenant_id AND p.access_code = k.called_number AND p.day = k.day;

CREATE VIEW v_dropoff AS
SELECT tenant_id,
       oifde_utc(day_start, 'YYYY-MM-DD') AS day,
       nullif(called_number, '') AS called_number,
       intention,
       sessions
FROM kpi_dropoff
WHERE sessions > 0;

-- migration: 8
-- Turns by intention in a B-tree on a digest of the text, as a caller's
-- sessions are (records_caller_time): a hash index on a column with few
-- distinct values keeps each value's entries in one chain of overflow pages
-- that every insert walks, so a page's turns took seconds to write by a
-- million sessions. Analysts filter with md5(intention) = md5('…') AND
-- intention = '…' (docs/postgresql.md).
DROP INDEX record_details_intention;
CREATE INDEX record_details_intention ON record_details (tenant_id, md5(intention), request_time);

-- migration: 9
-- A session's turns and Q&A rows keyed by its record's number (records.id),
-- as on SQLite: a page's rows are appended where the last page's ended,
-- instead of inserted at random places of a key on the text log_id, which by
-- a million sessions made every checkpoint write a full image of most of
-- that key's pages into the WAL. record_details and qa_records stay, as views
-- with the same columns; their triggers take what `copy` writes to them.
ALTER TABLE records ADD COLUMN id BIGINT GENERATED BY DEFAULT AS IDENTITY;
CREATE UNIQUE INDEX records_id_key ON records (id);
CREATE TABLE turn_rows (
    record_id       BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    inter_no        TEXT,
    user_saying     TEXT,
    intention       TEXT,
    system_reply    TEXT,
    reply_time      BIGINT,
    request_time    BIGINT,
    response_source BIGINT,
    involve_mode    BIGINT,
    extra_json      TEXT,
    PRIMARY KEY (record_id, seq)
);
INSERT INTO turn_rows
SELECT r.id, d.seq, d.inter_no, d.user_saying, d.intention, d.system_reply, d.reply_time, d.request_time,
       d.response_source, d.involve_mode, d.extra_json
FROM record_details d
JOIN records r ON r.tenant_id = d.tenant_id AND r.log_id = d.log_id
ORDER BY r.id, d.seq;
CREATE TABLE qa_rows (
    record_id       BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    inter_no        TEXT,
    series_id       TEXT,
    question_title  TEXT,
    question_type   TEXT,
    answer_intent   TEXT,
    original_answer TEXT,
    create_time     BIGINT,
    extra_json      TEXT,
    PRIMARY KEY (record_id, seq)
);
INSERT INTO qa_rows
SELECT r.id, q.seq, q.inter_no, q.series_id, q.question_title, q.question_type, q.answer_intent, q.original_answer,
       q.create_time, q.extra_json
FROM qa_records q
JOIN records r ON r.tenant_id = q.tenant_id AND r.log_id = q.log_id
ORDER BY r.id, q.seq;
DROP VIEW v_turns;
DROP VIEW v_qa;
DROP VIEW v_calls;
DROP TABLE record_details;
DROP TABLE qa_records;
CREATE INDEX record_details_intention ON turn_rows (md5(intention), request_time);

CREATE VIEW record_details AS
SELECT r.tenant_id, r.log_id, t.seq, t.inter_no, t.user_saying, t.intention, t.system_reply, t.reply_time,
       t.request_time, t.response_source, t.involve_mode, t.extra_json
FROM turn_rows t
JOIN records r ON r.id = t.record_id;

CREATE FUNCTION record_details_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO turn_rows (record_id, seq, inter_no, user_saying, intention, system_reply, reply_time, request_time,
                           response_source, involve_mode, extra_json)
    SELECT r.id, NEW.seq, NEW.inter_no, NEW.user_saying, NEW.intention, NEW.system_reply, NEW.reply_time,
           NEW.request_time, NEW.response_source, NEW.involve_mode, NEW.extra_json
    FROM records r WHERE r.tenant_id = NEW.tenant_id AND r.log_id = NEW.log_id
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;
CREATE TRIGGER record_details_insert INSTEAD OF INSERT ON record_details
    FOR EACH ROW EXECUTE FUNCTION record_details_insert();

CREATE FUNCTION record_details_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM turn_rows t USING records r
    WHERE r.id = t.record_id AND r.tenant_id = OLD.tenant_id AND r.log_id = OLD.log_id AND t.seq = OLD.seq;
    RETURN OLD;
END
$$;
CREATE TRIGGER record_details_delete INSTEAD OF DELETE ON record_details
    FOR EACH ROW EXECUTE FUNCTION record_details_delete();

CREATE VIEW qa_records AS
SELECT r.tenant_id, r.log_id, q.seq, q.inter_no, q.series_id, q.question_title, q.question_type, q.answer_intent,
       q.original_answer, q.create_time, q.extra_json
FROM qa_rows q
JOIN records r ON r.id = q.record_id;

CREATE FUNCTION qa_records_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO qa_rows (record_id, seq, inter_no, series_id, question_title, question_type, answer_intent,
                         original_answer, create_time, extra_json)
    SELECT r.id, NEW.seq, NEW.inter_no, NEW.series_id, NEW.question_title, NEW.question_type, NEW.answer_intent,
           NEW.original_answer, NEW.create_time, NEW.extra_json
    FROM records r WHERE r.tenant_id = NEW.tenant_id AND r.log_id = NEW.log_id
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;
CREATE TRIGGER qa_records_insert INSTEAD OF INSERT ON qa_records
    FOR EACH ROW EXECUTE FUNCTION qa_records_insert();

CREATE FUNCTION qa_records_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM qa_rows q USING records r
    WHERE r.id = q.record_id AND r.tenant_id = OLD.tenant_id AND r.log_id = OLD.log_id AND q.seq = OLD.seq;
    RETURN OLD;
END
$$;
CREATE TRIGGER qa_records_delete INSTEAD OF DELETE ON qa_records
    FOR EACH ROW EXECUTE FUNCTION qa_records_delete();

CREATE VIEW v_calls AS
SELECT r.tenant_id,
       r.log_id,
       r.call_id,
       r.cti_call_id,
       r.calling_number,
       r.called_number,
       oifde_utc(r.start_time, 'YYYY-MM-DD HH24:MI:SS') AS start_utc,
       oifde_utc(r.end_time, 'YYYY-MM-DD HH24:MI:SS') AS end_utc,
       CASE WHEN r.start_time BETWEEN -62135596800000 AND 253402300799999
             AND r.end_time BETWEEN -62135596800000 AND 253402300799999
            THEN (r.end_time - r.start_time) / 1000 END AS duration_s,
       (SELECT count(*) FROM turn_rows t WHERE t.record_id = r.id) AS turns,
       (SELECT count(*) FROM qa_rows q WHERE q.record_id = r.id) AS qa_rows,
       r.record_file_name,
       r.dialog_type,
       r.flow_inst_id
FROM records r;

CREATE VIEW v_turns AS
SELECT r.tenant_id,
       r.log_id,
       r.call_id,
       r.calling_number,
       t.seq,
       t.inter_no,
       oifde_utc(t.request_time, 'YYYY-MM-DD HH24:MI:SS') AS request_utc,
       t.user_saying,
       t.intention,
       oifde_utc(t.reply_time, 'YYYY-MM-DD HH24:MI:SS') AS reply_utc,
       t.system_reply,
       t.response_source,
       t.involve_mode
FROM turn_rows t
JOIN records r ON r.id = t.record_id;

CREATE VIEW v_qa AS
SELECT r.tenant_id,
       r.log_id,
       r.call_id,
       r.calling_number,
       q.seq,
       q.series_id,
       q.question_title,
       q.question_type,
       q.answer_intent,
       q.original_answer,
       oifde_utc(q.create_time, 'YYYY-MM-DD HH24:MI:SS') AS create_utc
FROM qa_rows q
JOIN records r ON r.id = q.record_id;
