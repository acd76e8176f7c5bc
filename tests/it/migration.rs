//! A store written by the previous schema version is migrated in place, its
//! data intact, and its keys go on being polled.

use oifde_sync::store::Store;
use oifde_sync::sync::PassStatus;
use rusqlite::Connection;

use crate::helpers::*;

/// `schema.sql` up to version 1: the store the previous release wrote.
fn version_1(db: &std::path::Path) {
    let schema = include_str!("../../schema.sql");
    let v1 = &schema[..schema.find("\n-- migration: 2").expect("schema.sql has a version 2 step")];
    let conn = Connection::open(db).unwrap();
    conn.execute_batch(v1).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
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
    let version: i64 = store.connection().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 2);
    let keys = store.list_keys(None).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].kind.as_str(), keys[0].state.as_str()), ("stream", "active"));
    assert_eq!(keys[0].cursor_time, Some((TO - 3600) * 1000));
    let kept: i64 =
        store.connection().query_row("SELECT count(*) FROM records WHERE log_id = 'kept'", [], |r| r.get(0)).unwrap();
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
    let version: i64 = store.connection().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 2);
    assert!(store.list_keys(None).unwrap().is_empty());
}
