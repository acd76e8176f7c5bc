//! A store written by the previous schema version is migrated in place, its
//! data intact, and its keys go on being polled.

use oifde_sync::run_log::PassStatus;
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
