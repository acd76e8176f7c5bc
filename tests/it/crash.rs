//! Crash safety: `sync` killed with SIGKILL at random moments and restarted
//! loses nothing, corrupts nothing, and never has a cursor ahead of the data.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use oifde_sync::simulator::{Faults, SimOptions};
use rusqlite::Connection;

use crate::cli::{run, text, write_config};
use crate::helpers::*;

/// Every record of a key before its cursor is stored; a SQLite file is sound.
fn assert_cursors_behind_data(store: &TestStore, sim: &oifde_sync::simulator::Simulator) {
    if store.kind == Kind::Sqlite {
        let conn = Connection::open(&store.db).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
    let stored: HashSet<String> = store.column("SELECT log_id FROM records").into_iter().collect();
    let cursors: Vec<(String, i64)> = store
        .rows("SELECT query_key, cursor_time FROM sync_cursors")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].as_deref().unwrap().parse().unwrap()))
        .collect();
    let records = sim.records();
    for (key, cursor) in cursors {
        let mobile = key.strip_prefix("mobile:").unwrap();
        for r in records.iter().filter(|r| r.call_sor_id == mobile && r.start_time < cursor) {
            assert!(stored.contains(&r.log_id), "cursor of {key} passed record {} that is not stored", r.log_id);
        }
    }
}

per_store!(
    sync_killed_at_twenty_random_moments_loses_nothing,
    an_interrupted_backfill_resumes_where_it_stopped,
    sync_killed_while_reading_point_keys_marks_no_key_done_before_its_records
);

async fn sync_killed_at_twenty_random_moments_loses_nothing(kind: Kind) {
    let faults = Faults { slow_rate: 1.0, slow_delay: Duration::from_millis(25), ..Faults::default() };
    let sim = simulator(SimOptions { faults, users: 8, ..options(20_000) }).await;
    let store = TestStore::new(kind);
    let dir = &store.dir;
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "[log]\nlevel = \"warn\"\n");
    store.configure(&config);
    let mut rng = fastrand::Rng::with_seed(20);
    for kill in 0..20 {
        let mut child = spawn(dir.path(), &["sync"], &[], Stdio::null());
        let after = Duration::from_millis(rng.u64(200..1500));
        tokio::time::sleep(after).await;
        let _ = child.0.kill();
        let status = tokio::task::spawn_blocking(move || child.0.wait().unwrap()).await.unwrap();
        assert_cursors_behind_data(&store, &sim);
        eprintln!("kill {kill} after {after:?}: {status}");
    }
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_cursors_behind_data(&store, &sim);
    assert_mirrors(&store.local(), &sim.records());
    if kind == Kind::Sqlite {
        let conn = Connection::open(&store.db).unwrap();
        conn.execute("INSERT INTO record_details_fts (record_details_fts, rank) VALUES ('integrity-check', 1)", [])
            .unwrap();
    }
    // A pass killed in flight leaves its run `running` until the next one
    // marks it failed.
    assert_eq!(store.count("SELECT count(*) FROM sync_runs WHERE status = 'running'"), 0);
    let killed = store.count(
        "SELECT count(*) FROM sync_runs WHERE status = 'failed' AND error LIKE '%ended before the pass finished%'",
    );
    // Once the store has caught up a pass is short, so later kills may miss
    // one; the early ones land mid-pass.
    assert!(killed >= 3, "kills hit passes in flight ({killed})");
}

async fn an_interrupted_backfill_resumes_where_it_stopped(kind: Kind) {
    let faults = Faults { slow_rate: 1.0, slow_delay: Duration::from_millis(20), ..Faults::default() };
    let sim = simulator(SimOptions { faults, users: 4, ..options(3000) }).await;
    let store = TestStore::new(kind);
    let dir = &store.dir;
    // Small windows, so that the backfill finishes many of them before it is killed.
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let small =
        std::fs::read_to_string(&config).unwrap().replace("window = \"12h\"", "window = \"12h\"\nsplit_above = 100");
    std::fs::write(&config, small).unwrap();
    store.configure(&config);
    let args = ["backfill", "--from", "2026-11-02 00:00:00", "--to", "2026-11-03 23:59:59"];
    let mut child = spawn(dir.path(), &args, &[], Stdio::null());
    let progress = || store.count("SELECT count(*) FROM backfill_progress");
    while progress() < 3 {
        assert!(child.0.try_wait().unwrap().is_none(), "the backfill ended before it could be interrupted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let done = progress();
    let fetched = |out: &std::process::Output| -> u64 {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let before = stdout.split(" records fetched").next().unwrap_or("");
        before.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("the summary line names the records fetched")
    };
    let out = run(dir.path(), &args, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_mirrors(&store.local(), &sim.records());
    let resumed = fetched(&out);
    assert_eq!(progress(), 0, "a finished backfill forgets its progress");
    // Run again, it reads the whole period: the resumed run read less.
    let full_out = run(dir.path(), &args, &[]).await;
    assert_eq!(full_out.status.code(), Some(0));
    let full = fetched(&full_out);
    assert!(resumed < full, "resumed after {done} finished windows: {resumed} records read, a full read {full}");
}

async fn sync_killed_while_reading_point_keys_marks_no_key_done_before_its_records(kind: Kind) {
    let faults = Faults { slow_rate: 1.0, slow_delay: Duration::from_millis(10), ..Faults::default() };
    let sim = simulator(SimOptions { faults, ..options(3000) }).await;
    let store = TestStore::new(kind);
    let dir = &store.dir;
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "[log]\nlevel = \"warn\"\n");
    store.configure(&config);
    let keys_file = dir.path().join("calls.txt");
    let calls: Vec<String> =
        sim.records().iter().map(|r| r.call_id.clone()).collect::<HashSet<_>>().into_iter().collect();
    std::fs::write(&keys_file, calls.iter().map(|c| format!("call:{c}\n")).collect::<String>()).unwrap();
    use_keys_file(&config, &keys_file);
    let records = sim.records();
    let done_keys_are_stored = || {
        let stored: HashSet<String> = store.column("SELECT log_id FROM records").into_iter().collect();
        let done = store.column("SELECT query_key FROM query_keys WHERE state = 'done'");
        for key in &done {
            let call = key.strip_prefix("call:").unwrap();
            for r in records.iter().filter(|r| r.call_id == call) {
                assert!(stored.contains(&r.log_id), "{key} is done but its record {} is not stored", r.log_id);
            }
        }
        done.len()
    };
    let mut rng = fastrand::Rng::with_seed(21);
    let mut done_before = 0;
    for _ in 0..8 {
        let mut child = spawn(dir.path(), &["sync"], &[], Stdio::null());
        tokio::time::sleep(Duration::from_millis(rng.u64(300..1200))).await;
        let _ = child.0.kill();
        tokio::task::spawn_blocking(move || child.0.wait().unwrap()).await.unwrap();
        let done = done_keys_are_stored();
        assert!(done >= done_before, "done keys never go back");
        done_before = done;
    }
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(done_keys_are_stored(), calls.len());
    assert_mirrors(&store.local(), &records);
    // Done keys cost nothing: each call was asked about once, give or take
    // the queries in flight when a kill came.
    let queries: usize = calls.iter().map(|c| sim.queries_for(&format!("call:{c}"))).sum();
    assert!(queries <= calls.len() + 8 * 4, "{queries} queries for {} calls", calls.len());
}
