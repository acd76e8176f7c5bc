//! A store written by the previous schema version is migrated in place, its
//! data intact, and its keys go on being polled.

use oifde_sync::run_log::PassStatus;
use oifde_sync::simulator::Simulator;
use oifde_sync::store::Store;
use rusqlite::Connection;

use crate::helpers::*;

/// `schema.sql` up to version `n`: the store an earlier release wrote.
fn version(db: &std::path::Path, n: i64) {
    let schema = include_str!("../../schema.sql");
    let end = schema.find(&format!("\n-- migration: {}", n + 1)).unwrap_or(schema.len());
    let conn = Connection::open(db).unwrap();
    conn.execute_batch(&schema[..end]).unwrap();
    conn.pragma_update(None, "user_version", n).unwrap();
}

fn version_1(db: &std::path::Path) {
    version(db, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_1_store_is_migrated_with_its_data_and_keys() {
    let sim = simulator(options(300)).await;
    let (_dir, db) = temp_db();
    version_1(&db);
    // Data as the previous release left it: a synced key and its cursor.
    {
        let engine_v1 = Connection::open(&db).unwrap();
        engine_v1
            .execute(
                "INSERT INTO sync_cursors (query_key, cursor_time, updated_at) VALUES (?1, ?2, 0)",
                rusqlite::params![format!("mobile:{}", sim.mobiles()[0]), (TO - 3600) * 1000],
            )
            .unwrap();
        engine_v1
            .execute(
                "INSERT INTO records (log_id, raw_json, content_hash, first_seen_at, synced_at) VALUES ('kept', '{}', 'h', 1, 1)",
                [],
            )
            .unwrap();
    }
    let store = Store::open(&db).unwrap();
    let found: i64 = store.schema_version().unwrap();
    assert_eq!(found, oifde_sync::store::sqlite::SCHEMA_VERSION);
    let keys = store.list_keys(None).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].kind.as_str(), keys[0].state.as_str()), ("stream", "active"));
    assert_eq!(keys[0].cursor_time, Some((TO - 3600) * 1000));
    let kept: i64 = Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM records WHERE log_id = 'kept'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 1);
    drop(store);
    // The migrated store syncs; a second open migrates nothing.
    let mut s = settings(&sim, &db);
    s.query.user_mobiles = vec![sim.mobiles()[0].clone()];
    let engine = engine(s);
    assert_eq!(incremental(&engine, TO + 60).await.status, PassStatus::Ok);
    drop(engine);
    assert_eq!(Store::open(&db).unwrap().list_keys(None).unwrap().len(), 1);
}

#[test]
fn a_migration_killed_half_way_leaves_version_1_and_runs_again() {
    let (_dir, db) = temp_db();
    version_1(&db);
    // Killed inside the migration's transaction: SQLite rolls it back on the next open.
    let script = format!(
        "import sqlite3, os\nc = sqlite3.connect({:?}, isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\n\
         c.execute('CREATE TABLE query_keys (x)')\nos._exit(9)\n",
        db.display().to_string()
    );
    if let Ok(status) = std::process::Command::new("python3").args(["-c", &script]).status() {
        assert_eq!(status.code(), Some(9));
    }
    let store = Store::open(&db).unwrap();
    let found: i64 = store.schema_version().unwrap();
    assert_eq!(found, oifde_sync::store::sqlite::SCHEMA_VERSION);
    assert!(store.list_keys(None).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_2_store_gets_lean_raw_json_and_extra_fields_beside_the_rows() {
    // A store the previous release filled: raw_json with the lists inside.
    let sim = simulator(options(400)).await;
    let (_dir, db) = temp_db();
    version(&db, 2);
    let records = sim.records();
    {
        let conn = Connection::open(&db).unwrap();
        for r in &records {
            let parsed = oifde_sync::record::Record::from_value(0, &r.to_wire()).unwrap();
            conn.execute(
                "INSERT INTO records (log_id, tenant_id, call_sor_id, call_id, cti_call_id, calling_number, called_number, \
                 start_time, end_time, last_update_time, flow_inst_id, dialog_type, call_data, location_id, flag, \
                 business_info, business_info_str, record_file_name, yugao_file_name, raw_json, content_hash, \
                 first_seen_at, synced_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
                 ?16, ?17, ?18, ?19, ?20, ?21, 1, 1)",
                rusqlite::params![
                    parsed.log_id, parsed.tenant_id, parsed.call_sor_id, parsed.call_id, parsed.cti_call_id,
                    parsed.calling_number, parsed.called_number, parsed.start_time, parsed.end_time,
                    parsed.last_update_time, parsed.flow_inst_id, parsed.dialog_type, parsed.call_data,
                    parsed.location_id, parsed.flag, parsed.business_info, parsed.business_info_str,
                    parsed.record_file_name, parsed.yugao_file_name, r.to_wire().to_string(), parsed.content_hash
                ],
            )
            .unwrap();
            for (seq, t) in parsed.details.iter().enumerate() {
                conn.execute(
                    "INSERT INTO record_details (log_id, seq, inter_no, user_saying, intention, system_reply, reply_time, \
                     request_time, response_source, involve_mode) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    rusqlite::params![parsed.log_id, seq as i64, t.inter_no, t.user_saying, t.intention, t.system_reply,
                        t.reply_time, t.request_time, t.response_source, t.involve_mode],
                )
                .unwrap();
            }
            for (seq, q) in parsed.qa.iter().enumerate() {
                conn.execute(
                    "INSERT INTO qa_records (log_id, seq, inter_no, series_id, question_title, question_type, \
                     answer_intent, original_answer, create_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    rusqlite::params![
                        parsed.log_id,
                        seq as i64,
                        q.inter_no,
                        q.series_id,
                        q.question_title,
                        q.question_type,
                        q.answer_intent,
                        q.original_answer,
                        q.create_time
                    ],
                )
                .unwrap();
            }
        }
    }
    drop(Store::open(&db).unwrap());
    // Everything the API sent is still there: the store equals the tenant,
    // unknown turn and Q&A fields included, and a re-read writes nothing.
    assert!(records.iter().any(|r| r.details.iter().any(|t| t.extra_json.is_some())));
    assert_mirrors(&db, &records);
    let engine = engine(settings(&sim, &db));
    let again = backfill(&engine).await;
    assert_eq!((again.figures.inserted, again.figures.updated), (0, 0), "{:?}", again.figures);
}

/// A store of the version before this one is migrated in place: its keys
/// kept (with no CDR span), the ledger tables there and empty.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_of_the_previous_version_gains_the_ledger_tables() {
    let (_dir, db) = temp_db();
    let previous = oifde_sync::store::sqlite::SCHEMA_VERSION - 1;
    version(&db, previous);
    Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO query_keys (query_key, kind, source, state, added_at) VALUES ('call:kept', 'point', 'config', 'waiting', 1)",
            [],
        )
        .unwrap();
    let store = Store::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), oifde_sync::store::sqlite::SCHEMA_VERSION);
    let keys = store.list_keys(None).unwrap();
    assert_eq!((keys.len(), keys[0].call_begin, keys[0].state.as_str()), (1, None, "waiting"));
    drop(store);
    let conn = Connection::open(&db).unwrap();
    for table in ["cdr_legs", "cdr_files", "platform_stats", "verifications"] {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "{table}");
    }
}

/// `report` reads a store without changing it: one of a version before the
/// analyst views is refused with the fix (let a sync migrate it), not an SQL error.
#[tokio::test(flavor = "multi_thread")]
async fn report_on_a_store_older_than_the_views_says_to_sync_first() {
    let (dir, db) = temp_db();
    version(&db, oifde_sync::store::sqlite::MEASURES_SINCE - 1);
    let config = dir.path().join("oifde-sync.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nbase_url = \"http://127.0.0.1:9\"\ntenant_id = \"t\"\napp_secret = \"x\"\n[store]\npath = \"{}\"\n",
            db.display()
        ),
    )
    .unwrap();
    let out = crate::cli::run(dir.path(), &["report", "--out", "r.html"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", crate::cli::text(&out));
    assert!(crate::cli::text(&out).contains("run `oifde-sync sync`"), "{}", crate::cli::text(&out));
    assert!(!dir.path().join("r.html").exists());
}

/// The text of `schema.sql`'s step to version `n`.
fn step(n: i64) -> &'static str {
    let schema = include_str!("../../schema.sql");
    let start = schema.find(&format!("\n-- migration: {n}\n")).unwrap_or_else(|| panic!("migration {n}"));
    let end = schema[start + 1..].find("\n-- migration: ").map_or(schema.len(), |e| start + 1 + e);
    &schema[start..end]
}

/// The statement of `text` that starts with `head` and ends with `end`.
fn statement(text: &str, head: &str, end: &str) -> String {
    let start = text.find(head).unwrap_or_else(|| panic!("{head}"));
    text[start..start + text[start..].find(end).unwrap() + end.len()].to_string()
}

/// A turn's and a Q&A row's columns beside their keys, in every schema.
const TURN_COLUMNS: &str = "seq, inter_no, user_saying, intention, system_reply, reply_time, request_time, \
                            response_source, involve_mode, extra_json";
const QA_COLUMNS: &str = "seq, inter_no, series_id, question_title, question_type, answer_intent, original_answer, \
                          create_time, extra_json";

/// `columns` ("a, b") read from `alias` ("t.a, t.b").
fn aliased(columns: &str, alias: &str) -> String {
    columns.split(", ").map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

/// SQL that sets a store of this version back to schema 11, as the previous
/// release wrote it: a session's figures in `session_facts`, a table keyed
/// by the text `log_id`, and `v_session_outcomes` over it.
pub fn back_to_11() -> String {
    let v10 = step(10);
    let columns = "called_number, hour_start, turns, transferred, outcome, fallback_turns, silent_turns, \
                   repeat_caller, last_intention";
    format!(
        "DROP VIEW v_session_outcomes; DROP VIEW session_facts;\n{facts}\n\
         INSERT INTO session_facts (log_id, {columns}) \
         SELECT r.log_id, {aliased} FROM session_figures f JOIN records r ON r.rowid = f.record_id;\n\
         DROP TABLE session_figures;\n{outcomes}\nPRAGMA user_version = 11;",
        aliased = aliased(columns, "f"),
        facts = statement(v10, "CREATE TABLE session_facts (", ") STRICT, WITHOUT ROWID;"),
        outcomes = statement(v10, "CREATE VIEW v_session_outcomes AS", ";\n"),
    )
}

/// SQL that sets a store of this version back to schema 10, as the release
/// before wrote it: turns and Q&A rows in tables keyed by the text `log_id`,
/// keeping their rowids (the full-text index's), and the views over them as
/// version 1 defined them.
pub fn back_to_10() -> String {
    let schema = include_str!("../../schema.sql");
    let v1 = &schema[..schema.find("\n-- migration: 2\n").unwrap()];
    format!(
        "{facts}\nDROP VIEW v_calls; DROP VIEW v_turns; DROP VIEW v_qa; DROP VIEW record_details; DROP VIEW qa_records;\n\
         {details}\nALTER TABLE record_details ADD COLUMN extra_json TEXT;\n\
         {qa}\nALTER TABLE qa_records ADD COLUMN extra_json TEXT;\n\
         INSERT INTO record_details (rowid, log_id, {turn_columns}) \
         SELECT t.id, r.log_id, {t} FROM turn_rows t JOIN records r ON r.rowid = t.record_id;\n\
         INSERT INTO qa_records (rowid, log_id, {qa_columns}) \
         SELECT q.id, r.log_id, {q} FROM qa_rows q JOIN records r ON r.rowid = q.record_id;\n\
         DROP TABLE turn_rows; DROP TABLE qa_rows;\n\
         CREATE INDEX record_details_intention ON record_details (intention, request_time);\n\
         {v_calls}\n{v_turns}\n{v_qa}\nPRAGMA user_version = 10;",
        facts = back_to_11(),
        details = statement(v1, "CREATE TABLE record_details (", ") STRICT;"),
        qa = statement(v1, "CREATE TABLE qa_records (", ") STRICT;"),
        turn_columns = TURN_COLUMNS,
        qa_columns = QA_COLUMNS,
        t = aliased(TURN_COLUMNS, "t"),
        q = aliased(QA_COLUMNS, "q"),
        v_calls = statement(v1, "CREATE VIEW v_calls AS", ";\n"),
        v_turns = statement(v1, "CREATE VIEW v_turns AS", ";\n"),
        v_qa = statement(v1, "CREATE VIEW v_qa AS", ";\n"),
    )
}

/// SQL that sets a PostgreSQL database of this version back to schema 8, as
/// the previous release wrote it: turns and Q&A rows in `record_details` and
/// `qa_records`, tables keyed by (`tenant_id`, the text `log_id`, `seq`),
/// and the views over them.
pub fn pg_back_to_8() -> String {
    let schema = include_str!("../../schema.pg.sql");
    let v1 = &schema[..schema.find("\n-- migration: 2\n").unwrap()];
    let v2 = &schema[schema.find("\n-- migration: 2\n").unwrap()..schema.find("\n-- migration: 3\n").unwrap()];
    format!(
        "DROP VIEW v_turns; DROP VIEW v_qa; DROP VIEW v_calls; DROP VIEW record_details; DROP VIEW qa_records;\n\
         DROP FUNCTION record_details_insert(); DROP FUNCTION record_details_delete();\n\
         DROP FUNCTION qa_records_insert(); DROP FUNCTION qa_records_delete();\n{details}\n{qa}\n\
         INSERT INTO record_details (tenant_id, log_id, {turn_columns}) \
         SELECT r.tenant_id, r.log_id, {t} FROM turn_rows t JOIN records r ON r.id = t.record_id;\n\
         INSERT INTO qa_records (tenant_id, log_id, {qa_columns}) \
         SELECT r.tenant_id, r.log_id, {q} FROM qa_rows q JOIN records r ON r.id = q.record_id;\n\
         DROP TABLE turn_rows; DROP TABLE qa_rows; ALTER TABLE records DROP COLUMN id;\n\
         CREATE INDEX record_details_intention ON record_details (tenant_id, md5(intention), request_time);\n\
         {v_calls}\n{v_turns}\n{v_qa}\nUPDATE oifde_schema SET version = 8;",
        details = statement(v1, "CREATE TABLE record_details (", ");"),
        qa = statement(v1, "CREATE TABLE qa_records (", ");"),
        turn_columns = TURN_COLUMNS,
        qa_columns = QA_COLUMNS,
        t = aliased(TURN_COLUMNS, "t"),
        q = aliased(QA_COLUMNS, "q"),
        v_calls = statement(v2, "CREATE OR REPLACE VIEW v_calls AS", ";\n"),
        v_turns = statement(v2, "CREATE OR REPLACE VIEW v_turns AS", ";\n"),
        v_qa = statement(v2, "CREATE OR REPLACE VIEW v_qa AS", ";\n"),
    )
}

/// Every turn and Q&A row with its rowid, and every session's figures, as
/// text: the same SQL reads the tables of schema 10 and the views of schemas
/// 11 and 12.
fn children(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT rowid, log_id, seq, inter_no, user_saying, intention, system_reply, reply_time, request_time, \
         response_source, involve_mode, extra_json FROM record_details ORDER BY rowid",
        "SELECT log_id, seq, inter_no, series_id, question_title, question_type, answer_intent, original_answer, \
         create_time, extra_json FROM qa_records ORDER BY log_id, seq",
        "SELECT log_id, called_number, hour_start, turns, transferred, outcome, fallback_turns, silent_turns, \
         repeat_caller, last_intention FROM session_facts ORDER BY log_id",
    ] {
        out.extend(rows_text(conn, sql));
    }
    out
}

/// The rows `sql` reads, each as text.
fn rows_text(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |row| Ok((0..n).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect::<Vec<_>>().join("|")))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// FTS5's own check of the full-text index against the turns it indexes:
/// every rowid and every token where the content says.
fn assert_full_text_whole(conn: &Connection, step: &str) {
    conn.execute("INSERT INTO record_details_fts (record_details_fts, rank) VALUES ('integrity-check', 1)", [])
        .unwrap_or_else(|e| panic!("{step}: the full-text index does not match the turns: {e}"));
}

/// The next sync of a mirror set back to an earlier schema: it migrates the
/// store to this version, and says so.
async fn sync_migrates(dir: &std::path::Path, db: &std::path::Path) -> Connection {
    let out = crate::cli::run(dir, &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::text(&out));
    assert!(crate::cli::text(&out).contains("store schema migrated"), "{}", crate::cli::text(&out));
    let conn = Connection::open(db).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, oifde_sync::store::sqlite::SCHEMA_VERSION);
    conn
}

/// A migrated mirror equals the tenant, and the sync after writes nothing.
async fn mirrors_and_syncs_nothing(dir: &std::path::Path, db: &std::path::Path, sim: &Simulator) {
    assert_mirrors(db, &sim.records());
    let before = dump_data(db);
    let out = crate::cli::run(dir, &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::text(&out));
    assert_eq!(dump_data(db), before, "a second sync writes nothing");
}

/// A mirror of the previous schema (turns keyed by the text log_id) is
/// migrated by the next sync: afterwards it equals the tenant field by field,
/// its full-text index still matches its turns without being rebuilt, and
/// the sync after writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_schema_10_mirror_gets_integer_keyed_turns_and_still_equals_the_tenant() {
    let sim = simulator(options(400)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mirror.db");
    crate::cli::write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "full_text = \"all\"");
    let out = crate::cli::run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::text(&out));
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(&back_to_10()).unwrap();
    let before = children(&conn);
    assert!(before.len() > 1_000, "{} turns and Q&A rows", before.len());
    assert_full_text_whole(&conn, "schema 10");
    let fts_sql = "SELECT rowid FROM record_details_fts WHERE record_details_fts MATCH '转人工' ORDER BY rowid";
    let found_before: Vec<i64> =
        conn.prepare(fts_sql).unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert!(!found_before.is_empty());
    drop(conn);

    let conn = sync_migrates(dir.path(), &db).await;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('record_details', 'qa_records')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "the text-keyed tables are gone");
    assert_eq!(children(&conn), before, "every turn and Q&A row, with its rowid");
    assert_full_text_whole(&conn, "migrated");
    let found: Vec<i64> =
        conn.prepare(fts_sql).unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(found, found_before, "the same turns are found");
    drop(conn);
    mirrors_and_syncs_nothing(dir.path(), &db, &sim).await;
}

/// A mirror of the previous schema (a session's figures keyed by the text
/// log_id) is migrated by the next sync: every session's figures are there
/// as they were, keyed by the record, the measures and the outcomes view
/// unchanged, the mirror still equals the tenant, and the sync after writes
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_schema_11_mirror_gets_figures_keyed_by_record_and_still_equals_the_tenant() {
    let sim = simulator(options(400)).await;
    // With the CDR legs, so that sessions have outcomes and drop-offs.
    let store = TestStore::new(Kind::Sqlite);
    mirror_with_ledgers(&store, &sim, "").await;
    let (dir, db) = (&store.dir, store.db.clone());
    let measures = |conn: &Connection| {
        [
            "SELECT * FROM kpi_hourly ORDER BY hour_start, called_number",
            "SELECT * FROM kpi_dropoff ORDER BY day_start, called_number, intention",
            "SELECT * FROM v_session_outcomes ORDER BY log_id",
        ]
        .map(|sql| rows_text(conn, sql))
    };
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(&back_to_11()).unwrap();
    let kind = |conn: &Connection| -> String {
        conn.query_row("SELECT type FROM sqlite_master WHERE name = 'session_facts'", [], |r| r.get(0)).unwrap()
    };
    assert_eq!(kind(&conn), "table", "schema 11 keeps the figures in a table");
    let before = children(&conn);
    let measured = measures(&conn);
    let facts: i64 = conn.query_row("SELECT count(*) FROM session_facts", [], |r| r.get(0)).unwrap();
    assert!(facts >= 400, "{facts} sessions' figures");
    assert!(measured.iter().all(|rows| !rows.is_empty()), "every measure has rows");
    drop(conn);

    let conn = sync_migrates(dir.path(), &db).await;
    assert_eq!(kind(&conn), "view", "session_facts reads the table keyed by the record");
    let keyed: i64 = conn
        .query_row("SELECT count(*) FROM session_figures f JOIN records r ON r.rowid = f.record_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(keyed, facts, "every session's figures, under its record");
    assert_eq!(children(&conn), before, "every turn, Q&A row and session's figures");
    assert_eq!(measures(&conn), measured, "the measures and the outcomes view");
    drop(conn);
    mirrors_and_syncs_nothing(dir.path(), &db, &sim).await;
}

/// A PostgreSQL mirror of the previous schema (turns and Q&A rows keyed by
/// the tenant and the text log_id) is migrated by the next sync: every row is
/// there as it was, under its record's number, the views and measures read the same, the
/// full-text index is back on the new table, the mirror still equals the
/// tenant, and the sync after rewrites no record.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn a_schema_8_postgres_mirror_gets_rows_keyed_by_record_and_still_equals_the_tenant() {
    let sim = simulator(options(400)).await;
    let store = TestStore::new(Kind::Postgres);
    mirror_with_ledgers(&store, &sim, "").await;
    let url = store.url.clone().unwrap();
    let read = || {
        [
            "SELECT tenant_id, log_id, seq, inter_no, user_saying, intention, system_reply, reply_time, request_time, \
             response_source, involve_mode, extra_json FROM record_details ORDER BY tenant_id, log_id, seq",
            "SELECT tenant_id, log_id, seq, inter_no, series_id, question_title, question_type, answer_intent, \
             original_answer, create_time, extra_json FROM qa_records ORDER BY tenant_id, log_id, seq",
            "SELECT * FROM v_turns ORDER BY tenant_id, log_id, seq",
            "SELECT * FROM v_qa ORDER BY tenant_id, log_id, seq",
            "SELECT * FROM v_calls ORDER BY tenant_id, log_id",
            "SELECT * FROM v_session_outcomes ORDER BY tenant_id, log_id",
            "SELECT * FROM kpi_hourly ORDER BY tenant_id, hour_start, called_number",
            "SELECT * FROM summary_intentions_per_day ORDER BY tenant_id, day, intention",
            "SELECT * FROM summary_answers ORDER BY tenant_id, question_title, answer_intent",
        ]
        .map(|sql| pg_rows(&url, sql))
    };
    let kind = || {
        pg_rows(
            &url,
            "SELECT table_type FROM information_schema.tables \
             WHERE table_name IN ('record_details', 'qa_records') GROUP BY 1",
        )
    };
    pg_rows(&url, &pg_back_to_8());
    assert_eq!(kind(), vec![vec![Some("BASE TABLE".to_string())]], "schema 8 keeps turns and Q&A rows in tables");
    let before = read();
    assert!(before[0].len() >= 400, "{} turns", before[0].len());
    assert!(before.iter().all(|rows| !rows.is_empty()), "every view and measure has rows");

    let out = crate::cli::run(store.dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::text(&out));
    assert!(crate::cli::text(&out).contains("store schema migrated"), "{}", crate::cli::text(&out));
    let version = oifde_sync::store::postgres::SCHEMA_VERSION.to_string();
    assert_eq!(pg_rows(&url, "SELECT version FROM oifde_schema")[0][0].as_deref(), Some(version.as_str()));
    assert_eq!(kind(), vec![vec![Some("VIEW".to_string())]], "both read the tables keyed by the record");
    let keyed = store.count("SELECT count(*) FROM turn_rows t JOIN records r ON r.id = t.record_id");
    assert_eq!(keyed as usize, before[0].len(), "every turn, under its record");
    let keyed = store.count("SELECT count(*) FROM qa_rows q JOIN records r ON r.id = q.record_id");
    assert_eq!(keyed as usize, before[1].len(), "every Q&A row, under its record");
    assert_eq!(read(), before, "the turns, the Q&A rows, the views and the measures");
    let trigram =
        store.column("SELECT indexname FROM pg_indexes WHERE tablename = 'turn_rows' AND indexname LIKE '%trgm'");
    assert_eq!(trigram, vec!["record_details_user_saying_trgm".to_string()], "the full-text index");

    assert_mirrors(&store.local(), &sim.records());
    let records = || pg_rows(&url, "SELECT log_id, id, last_update_time, synced_at FROM records ORDER BY log_id");
    let written = records();
    let out = crate::cli::run(store.dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::text(&out));
    assert_eq!(records(), written, "the sync after rewrites no record");
}

/// The PostgreSQL migration to turns and Q&A rows keyed by the record,
/// killed at random moments on a database of schema 8 with 20,000 sessions:
/// after each kill it is whole at one version or the other (the migration is
/// one transaction), and the next open finishes it, every row intact.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn the_postgres_migration_killed_midway_leaves_one_version_or_the_other() {
    let sim = simulator(options(10)).await;
    let store = TestStore::new(Kind::Postgres);
    let config = crate::cli::write_config(store.dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    store.configure(&config);
    let url = store.url.clone().unwrap();
    drop(Store::open_postgres(&store.pg().unwrap(), oifde_sync::config::FullText::Callers).unwrap());
    pg_rows(&url, &pg_back_to_8());
    pg_rows(
        &url,
        "INSERT INTO records (tenant_id, log_id, calling_number, start_time, raw_json, content_hash, first_seen_at, \
                              synced_at) \
         SELECT 'tenant001', md5(random()::TEXT), '13800' || (i % 1000), 1762000000000 + i * 1000, '{}', 'h', 1, 1 \
         FROM generate_series(0, 19999) AS i; \
         INSERT INTO record_details (tenant_id, log_id, seq, user_saying, intention, system_reply, request_time) \
         SELECT r.tenant_id, r.log_id, s, '我想查询一下话费 ' || r.log_id || ' ' || s, 'intent' || (r.start_time % 7), \
                'reply', r.start_time + s \
         FROM records r, generate_series(0, 4) AS s ORDER BY random(); \
         INSERT INTO qa_records (tenant_id, log_id, seq, question_title, answer_intent) \
         SELECT tenant_id, log_id, 0, 'q' || (start_time % 11), 'a' FROM records ORDER BY random();",
    );
    let rows = || {
        [
            "SELECT log_id, seq, user_saying, intention, request_time FROM record_details ORDER BY log_id, seq",
            "SELECT log_id, seq, question_title FROM qa_records ORDER BY log_id, seq",
        ]
        .map(|sql| pg_rows(&url, sql))
    };
    let version = || pg_rows(&url, "SELECT version FROM oifde_schema")[0][0].clone().unwrap();
    let current = oifde_sync::store::postgres::SCHEMA_VERSION.to_string();
    let before = rows();
    assert_eq!(before[0].len(), 100_000);
    // The migration holds this advisory lock for its transaction.
    let migrating = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                     AND classid = x'6f696664'::INT AND objid = x'65736368'::BIGINT::OID";
    let mut rng = fastrand::Rng::with_seed(11);
    let mut cut_short = 0;
    for kill in 0..8 {
        let mut child =
            spawn(store.dir.path(), &["prune", "--before", "2000-01-01 00:00:00"], &[], std::process::Stdio::null());
        let started = std::time::Instant::now();
        let mut in_migration = false;
        while started.elapsed() < std::time::Duration::from_secs(20) {
            if store.count(migrating) > 0 {
                in_migration = true;
                break;
            }
            if matches!(child.0.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let wait = std::time::Duration::from_millis(rng.u64(0..300));
        tokio::time::sleep(wait).await;
        let _ = child.0.kill();
        let status = tokio::task::spawn_blocking(move || child.0.wait().unwrap()).await.unwrap();
        // The server sees the connection end and rolls back.
        while store.count(migrating) > 0 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let found = version();
        eprintln!("kill {kill}: {status} {wait:?} after the migration began ({in_migration}), schema {found}");
        assert!(found == "8" || found == current, "schema {found}");
        cut_short += i64::from(found == "8" && !status.success() && in_migration);
        assert_eq!(rows(), before, "kill {kill}: every turn and Q&A row");
        if found == current {
            pg_rows(&url, &pg_back_to_8());
        }
        if cut_short == 3 {
            break;
        }
    }
    assert!(cut_short >= 1, "a kill landed inside the migration's transaction");
    drop(Store::open_postgres(&store.pg().unwrap(), oifde_sync::config::FullText::Callers).unwrap());
    assert_eq!(version(), current);
    assert_eq!(rows(), before, "after the migration: every turn and Q&A row");
}

/// The migration to integer-keyed turns and figures, killed at random
/// moments on a large store of schema 10: after each kill the store is whole
/// at one version or the other (the migration is one transaction), and the
/// next open finishes it, every turn, Q&A row and session's figures and the
/// full-text index intact.
#[tokio::test(flavor = "multi_thread")]
async fn the_migration_to_integer_keyed_turns_killed_midway_resumes_and_loses_nothing() {
    let sim = simulator(options(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mirror.db");
    crate::cli::write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "full_text = \"all\"");
    version(&db, 10);
    // 20,000 sessions of 5 turns and 1 Q&A row, their turns written in a
    // shuffled order, so that a turn's rowid says nothing of its record.
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19999) \
             INSERT INTO records (log_id, calling_number, start_time, raw_json, content_hash, first_seen_at, synced_at) \
             SELECT lower(hex(randomblob(16))), '13800' || (i % 1000), 1762000000000 + i * 1000, '{}', 'h', 1, 1 FROM n; \
             INSERT INTO record_details (log_id, seq, user_saying, intention, system_reply, request_time) \
             SELECT r.log_id, s.seq, '我想查询一下话费 ' || r.rowid || ' ' || s.seq, 'intent' || (r.rowid % 7), \
                    'reply ' || r.rowid, r.start_time + s.seq \
             FROM records r, (SELECT 0 AS seq UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) s \
             ORDER BY random(); \
             INSERT INTO qa_records (log_id, seq, question_title, answer_intent) \
             SELECT log_id, 0, 'q' || (rowid % 11), 'a' FROM records ORDER BY random(); \
             INSERT INTO session_facts (log_id, called_number, hour_start, turns, transferred, outcome, \
                                        fallback_turns, silent_turns, repeat_caller, last_intention) \
             SELECT log_id, '', start_time / 3600000 * 3600000, 5, NULL, 'unknown', rowid % 3, 0, rowid % 2, \
                    'intent' || (rowid % 7) FROM records; \
             INSERT INTO record_details_fts (record_details_fts) VALUES ('rebuild');",
        )
        .unwrap();
    let watch = Connection::open(&db).unwrap();
    // The store in WAL mode, as the binary keeps it: from then on, the only
    // write lock it takes at start is the migration's transaction.
    watch.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
    watch.busy_timeout(std::time::Duration::ZERO).unwrap();
    let before = children(&watch);
    let mut rng = fastrand::Rng::with_seed(11);
    let mut cut_short = 0;
    for kill in 0..8 {
        let mut child =
            spawn(dir.path(), &["prune", "--before", "2000-01-01 00:00:00"], &[], std::process::Stdio::null());
        // Wait until the binary holds the write lock (its migration runs),
        // then a moment more, and kill it.
        let started = std::time::Instant::now();
        let mut in_migration = false;
        while started.elapsed() < std::time::Duration::from_secs(20) {
            match watch.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                    in_migration = true;
                    break;
                }
                _ if matches!(child.0.try_wait(), Ok(Some(_))) => break,
                _ => std::thread::sleep(std::time::Duration::from_millis(2)),
            }
        }
        let wait = std::time::Duration::from_millis(rng.u64(0..60));
        tokio::time::sleep(wait).await;
        let _ = child.0.kill();
        let status = tokio::task::spawn_blocking(move || child.0.wait().unwrap()).await.unwrap();
        let conn = Connection::open(&db).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        eprintln!("kill {kill}: {status} {wait:?} after the migration began ({in_migration}), schema {version}");
        assert!(version == 10 || version == oifde_sync::store::sqlite::SCHEMA_VERSION, "schema {version}");
        cut_short += i64::from(version == 10 && !status.success() && in_migration);
        assert_eq!(children(&conn), before, "kill {kill}: every turn and Q&A row, with its rowid");
        assert_full_text_whole(&conn, &format!("kill {kill}"));
        if version > 10 {
            // The migration finished before the kill: back to schema 10
            // (rowids kept), for the next try.
            conn.execute_batch(&back_to_10()).unwrap();
        }
        if cut_short == 3 {
            break;
        }
    }
    assert!(cut_short >= 1, "a kill landed inside the migration's transaction");
    let store = Store::open_with(&db, oifde_sync::config::FullText::All).unwrap();
    assert_eq!(store.schema_version().unwrap(), oifde_sync::store::sqlite::SCHEMA_VERSION);
    drop(store);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(children(&conn), before, "after the migration: every turn and Q&A row, with its rowid");
    assert_full_text_whole(&conn, "migrated");
}
