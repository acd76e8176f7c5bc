//! The request budget: point keys cost a query or two over their life, done
//! keys cost nothing, sparse stream keys a handful of windows; keys live in
//! the store and the keys file is read as it grows.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use oifde_sync::run_log::PassStatus;
use oifde_sync::simulator::{SimOptions, SimRecord};
use oifde_sync::sync::PassKind;
use tokio_util::sync::CancellationToken;

use crate::cli::{run, text, write_config};
use crate::helpers::*;

fn states(store: &TestStore) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = store
        .rows("SELECT query_key, state FROM query_keys")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    rows.sort();
    rows
}

fn state_of(store: &TestStore, key: &str) -> String {
    states(store).into_iter().find(|(k, _)| k == key).map(|(_, s)| s).unwrap_or_else(|| panic!("{key} is not stored"))
}

fn append(path: &std::path::Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    for line in lines {
        writeln!(f, "{line}").unwrap();
    }
}

per_store!(
    a_call_id_feed_costs_at_most_two_queries_a_key_and_nothing_once_done,
    a_call_still_in_progress_is_read_again_until_it_settles,
    where_the_server_refuses_key_only_queries_point_keys_are_read_in_windows,
    sparse_mobile_keys_cost_a_handful_of_queries_and_one_when_idle,
    the_resweep_finds_an_update_older_than_the_overlap,
    a_keys_file_is_read_once_and_then_only_what_is_appended,
    an_empty_keys_file_skips_the_pass_with_a_warning,
    keys_add_list_forget_and_a_key_removed_from_the_config
);

async fn a_call_id_feed_costs_at_most_two_queries_a_key_and_nothing_once_done(kind: Kind) {
    let sim = simulator(options(1500)).await;
    let store = TestStore::new(kind);
    let dir = &store.dir;
    let keys_file = dir.path().join("calls.txt");
    std::fs::write(&keys_file, "").unwrap();
    let mut s = store.settings(&sim);
    s.query.user_mobiles.clear();
    s.query.keys_file = Some(keys_file.clone());
    let engine = engine(s);

    // 230 call IDs the tenant has, 20 it never had, appended over three passes.
    let records = sim.records();
    let mut calls: Vec<String> = Vec::new();
    for r in &records {
        if !calls.contains(&r.call_id) {
            calls.push(r.call_id.clone());
        }
    }
    let mut keys: Vec<String> = calls[..230].iter().map(|c| format!("call:{c}")).collect();
    keys.extend((0..20).map(|i| format!("call:no-such-call-{i}")));
    fastrand::Rng::with_seed(3).shuffle(&mut keys);
    let now = TO + 86_400;
    let mut fed = 0;
    for (pass, batch) in [100, 100, 50].into_iter().enumerate() {
        append(&keys_file, &keys[fed..fed + batch]);
        fed += batch;
        let report = incremental(&engine, now + pass as i64 * 10).await;
        assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
        assert_eq!(report.figures.keys, batch as u64, "only the new keys are due");
        let wanted: HashSet<&str> = keys[..fed].iter().filter_map(|k| k.strip_prefix("call:")).collect();
        let expected: Vec<SimRecord> =
            records.iter().filter(|r| wanted.contains(r.call_id.as_str())).cloned().collect();
        assert_mirrors(&store.local(), &expected);
    }
    assert!(
        records.iter().filter(|r| keys.contains(&format!("call:{}", r.call_id))).count() > 230,
        "some calls have two records"
    );

    // Nothing new: no request at all.
    let idle = incremental(&engine, now + 40).await;
    assert_eq!((idle.figures.keys, idle.figures.requests), (0, 0), "{:?}", idle.figures);
    // The calls that were never found wait, are asked again later, and are given up.
    assert_eq!(state_of(&store, "call:no-such-call-0"), "waiting");
    let next_day = incremental(&engine, now + 25 * 3600).await;
    assert_eq!(next_day.figures.keys, 20);
    assert_eq!(state_of(&store, "call:no-such-call-0"), "given_up");
    assert_eq!(incremental(&engine, now + 30 * 3600).await.figures.requests, 0);
    for key in &keys {
        let queries = sim.queries_for(key);
        let most = if key.contains("no-such") { 2 } else { 1 };
        assert!((1..=most).contains(&queries), "{key} cost {queries} queries");
    }
    let done = states(&store).iter().filter(|(_, s)| s == "done").count();
    assert_eq!(done, 230);
    assert!(
        sim.request_log()
            .iter()
            .filter(|e| e.key.as_deref().is_some_and(|k| k.starts_with("call:")))
            .all(|e| !e.windowed)
    );
}

async fn a_call_still_in_progress_is_read_again_until_it_settles(kind: Kind) {
    let sim = simulator(options(50)).await;
    let store = TestStore::new(kind);
    let mut live = sim.records()[0].clone();
    let now = TO + 3600;
    live.log_id = "live-call".into();
    live.call_id = "live-call-id".into();
    live.start_time = (now - 600) * 1000;
    live.end_time = Some((now - 300) * 1000);
    live.last_update_time = Some((now - 300) * 1000);
    sim.insert(live.clone());
    let mut s = store.settings(&sim);
    s.query.user_mobiles.clear();
    s.query.call_ids = vec!["live-call-id".into()];
    let engine = engine(s);
    assert_eq!(incremental(&engine, now).await.status, PassStatus::Ok);
    assert_eq!(state_of(&store, "call:live-call-id"), "settling", "ended 5 minutes ago: may still change");
    // The call gains a Q&A row a minute later; the next pass sees it.
    sim.update("live-call", |r| {
        r.last_update_time = r.last_update_time.map(|t| t + 60_000);
        r.qa.clear();
    });
    assert_eq!(incremental(&engine, now + 300).await.figures.updated, 1);
    assert_eq!(state_of(&store, "call:live-call-id"), "settling");
    assert_eq!(incremental(&engine, now + 1200).await.figures.keys, 1);
    assert_eq!(state_of(&store, "call:live-call-id"), "done", "ended 15 minutes ago: settled");
    assert_eq!(incremental(&engine, now + 1500).await.figures.requests, 0);
    assert_eq!(sim.queries_for("call:live-call-id"), 3);
    assert_mirrors(&store.local(), &sim.records().into_iter().filter(|r| r.log_id == "live-call").collect::<Vec<_>>());
}

async fn where_the_server_refuses_key_only_queries_point_keys_are_read_in_windows(kind: Kind) {
    let sim = simulator(SimOptions { require_window: true, ..options(300) }).await;
    let store = TestStore::new(kind);
    let records = sim.records();
    let calls: Vec<String> = records.iter().take(5).map(|r| r.call_id.clone()).collect();
    let mut s = store.settings(&sim);
    s.query.user_mobiles.clear();
    s.query.call_ids = calls.clone();
    let engine = engine(s);
    let report = incremental(&engine, TO + 3600).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    let expected: Vec<SimRecord> = records.iter().filter(|r| calls.contains(&r.call_id)).cloned().collect();
    assert_mirrors(&store.local(), &expected);
    for c in &calls {
        assert_eq!(state_of(&store, &format!("call:{c}")), "done");
    }
    // Key-only queries already in flight when the first refusal came (at most
    // api.concurrency) are refused too; every later one is windowed.
    let refused = sim.request_log().iter().filter(|e| e.key.is_some() && !e.windowed).count();
    assert!((1..=4).contains(&refused), "{refused} refused key-only queries, then windows");
}

async fn sparse_mobile_keys_cost_a_handful_of_queries_and_one_when_idle(kind: Kind) {
    let month = 30 * 86_400;
    let sim = simulator(SimOptions { records: 120, users: 40, from: TO - month, to: TO, ..options(0) }).await;
    let store = TestStore::new(kind);
    let mut s = store.settings(&sim);
    let mut mobiles = sim.mobiles();
    mobiles.extend((0..5).map(|i| format!("1990000000{i}")));
    s.query.user_mobiles = mobiles.clone();
    s.sync.start = oifde_sync::config::Start::At(TO - month);
    s.sync.window = Duration::from_secs(3600);
    let engine = engine(s);
    let first = incremental(&engine, TO + 60).await;
    assert_eq!(first.status, PassStatus::Ok, "{:?}", first.errors);
    assert_mirrors(&store.local(), &sim.records());
    for m in &mobiles {
        let n = sim.queries_for(&format!("mobile:{m}"));
        assert!(n <= 8, "mobile:{m}: {n} queries for 30 days of history");
    }
    let before = sim.query_calls();
    let idle = incremental(&engine, TO + 360).await;
    assert_eq!(idle.status, PassStatus::Ok);
    assert!(sim.query_calls() - before <= mobiles.len() as u64, "idle pass: {} queries", sim.query_calls() - before);
}

async fn the_resweep_finds_an_update_older_than_the_overlap(kind: Kind) {
    let sim = simulator(options(300)).await;
    let store = TestStore::new(kind);
    let mut s = store.settings(&sim);
    s.sync.resweep = Some(Duration::from_secs(3 * 86_400));
    let engine = engine(s);
    assert_eq!(incremental(&engine, TO + 60).await.status, PassStatus::Ok);
    let old = sim.records().into_iter().find(|r| r.last_update_time.is_some()).unwrap();
    assert!(old.start_time < (TO - 86_400) * 1000, "older than the overlap");
    sim.update(&old.log_id, |r| {
        r.last_update_time = r.last_update_time.map(|t| t + 1000);
        r.flag = Some("changed".into());
    });
    assert_eq!(incremental(&engine, TO + 120).await.figures.updated, 0, "outside the overlap");
    let resweep = engine.pass(PassKind::Resweep { now: TO + 180 }, &CancellationToken::new()).await.unwrap();
    assert_eq!((resweep.status, resweep.figures.updated), (PassStatus::Ok, 1));
    assert_mirrors(&store.local(), &sim.records());
}

async fn a_keys_file_is_read_once_and_then_only_what_is_appended(kind: Kind) {
    let sim = simulator(options(100)).await;
    let store = TestStore::new(kind);
    let dir = &store.dir;
    let keys_file = dir.path().join("calls.txt");
    let lines: Vec<String> = (0..5_000).map(|i| format!("call:old-{i:08}")).collect();
    std::fs::write(&keys_file, format!("\u{feff}{}\r\n", lines.join("\r\n"))).unwrap();
    let mut s = store.settings(&sim);
    s.query.user_mobiles.clear();
    s.query.keys_file = Some(keys_file.clone());
    s.api.max_requests_per_second = 100_000;
    s.api.concurrency = 8;
    let engine = engine(s);
    let first = incremental(&engine, TO + 30 * 3600).await;
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    assert_eq!(first.figures.keys, 5_000);
    assert_eq!(state_of(&store, "call:old-00000000"), "waiting", "the BOM is not part of the first key");
    // A line far past the file's start is changed in place: the file is read
    // again whole, so the changed line is a key of its own.
    let mut text = std::fs::read(&keys_file).unwrap();
    let at = text.len() / 2;
    text[at..at + 4].copy_from_slice(b"????");
    std::fs::write(&keys_file, &text).unwrap();
    append(&keys_file, &["# two more".into(), "call:new-1".into(), "bogus".into()]);
    let second = incremental(&engine, TO + 30 * 3600 + 10).await;
    assert_eq!(second.figures.keys, 2, "the changed line and the appended key are due: {:?}", second.figures);
    assert_eq!(second.warnings.len(), 1, "{:?}", second.warnings);
    let bogus = std::fs::read_to_string(&keys_file).unwrap().lines().position(|l| l == "bogus").unwrap() + 1;
    assert!(second.warnings[0].contains(&format!("line {bogus}:")), "{:?}", second.warnings);
    // A file replaced by a shorter one is read again from its start.
    std::fs::write(&keys_file, "call:replaced\n").unwrap();
    let third = incremental(&engine, TO + 30 * 3600 + 20).await;
    assert_eq!(third.figures.keys, 1);
    assert_eq!(state_of(&store, "call:replaced"), "waiting");
}

async fn an_empty_keys_file_skips_the_pass_with_a_warning(kind: Kind) {
    let sim = simulator(options(100)).await;
    let store = TestStore::new(kind);
    let dir = &store.dir;
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    store.configure(&config);
    let keys_file = dir.path().join("keys.txt");
    std::fs::write(&keys_file, "").unwrap();
    use_keys_file(&config, &keys_file);
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("is empty yet"), "{}", text(&out));
    assert!(text(&out).contains("skipped"), "{}", text(&out));
    assert_eq!(sim.query_calls(), 0, "no window-only query");
}

async fn keys_add_list_forget_and_a_key_removed_from_the_config(kind: Kind) {
    let sim = simulator(options(200)).await;
    let store = TestStore::new(kind);
    let dir = &store.dir;
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    store.configure(&config);
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let call = sim.records()[0].call_id.clone();

    // `keys add -` from a pipe.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_oifde-sync"))
        .current_dir(dir.path())
        .args(["keys", "add", "-"])
        .env_remove("OIFDE_SYNC_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("call:{call}\r\n# comment\ncti:424242\n").as_bytes()).unwrap();
    let added = child.wait_with_output().unwrap();
    assert!(added.status.success());
    assert!(String::from_utf8_lossy(&added.stdout).contains("2 keys read, 2 added"), "{}", text(&added));
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    assert_eq!(state_of(&store, &format!("call:{call}")), "done");

    let list = run(dir.path(), &["keys", "list", "--json", "--state", "done"], &[]).await;
    let rows: Vec<serde_json::Value> =
        String::from_utf8_lossy(&list.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{}", text(&list));
    assert_eq!(rows[0]["query_key"], format!("call:{call}"));
    assert_eq!(rows[0]["kind"], "point");
    assert_eq!(rows[0]["source"], "command");
    assert!(rows[0]["records_found"].as_i64().unwrap() >= 1);
    assert!(run(dir.path(), &["keys", "list", "--state", "nope"], &[]).await.status.code() == Some(2));

    // Adding a done key again makes it active.
    assert_eq!(run(dir.path(), &["keys", "add", &format!("call:{call}")], &[]).await.status.code(), Some(0));
    assert_eq!(state_of(&store, &format!("call:{call}")), "active");
    let out = run(dir.path(), &["keys", "forget", "cti:424242"], &[]).await;
    assert!(text(&out).contains("1 of 1 keys forgotten"), "{}", text(&out));
    assert!(!states(&store).iter().any(|(k, _)| k == "cti:424242"));

    // A mobile removed from the config leaves status's active keys.
    let gone = sim.mobiles()[0].clone();
    let cfg = std::fs::read_to_string(&config).unwrap().replace(&format!("\"{gone}\", "), "");
    std::fs::write(&config, cfg).unwrap();
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    assert_eq!(state_of(&store, &format!("mobile:{gone}")), "removed");
    let status = run(dir.path(), &["status", "--json"], &[]).await;
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let active: Vec<&str> =
        doc["cursors"].as_array().unwrap().iter().map(|c| c["query_key"].as_str().unwrap()).collect();
    assert_eq!(active.len(), sim.mobiles().len() - 1);
    assert!(!active.contains(&format!("mobile:{gone}").as_str()));
    assert_eq!(doc["keys"]["removed"], 1);
    let plain = run(dir.path(), &["status"], &[]).await;
    assert!(text(&plain).contains("1 removed"), "{}", text(&plain));
    assert!(text(&plain).contains("requests"), "{}", text(&plain));

    // The metrics count keys by state and name none.
    let settings = oifde_sync::config::Settings::load(&config).unwrap();
    let engine = oifde_sync::commands::engine(std::sync::Arc::new(settings), "test").unwrap();
    let view = engine.with_store(|s| oifde_sync::metrics::StoreView::of(s)).await.unwrap();
    let body = oifde_sync::metrics::Metrics::new(&engine.client.stats).render(&engine, &view);
    assert!(body.contains("oifde_sync_keys{state=\"removed\"} 1"), "{body}");
    assert!(!body.contains(&gone), "{body}");
}
