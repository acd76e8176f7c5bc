//! The key lifecycle under adversarial servers and careless users: every
//! configured key is backfilled, a key lives while any source names it, a
//! rewritten keys file is read again, and one bad key harms no other.

use oifde_sync::run_log::PassStatus;
use oifde_sync::simulator::SimRecord;

use crate::helpers::*;

/// Queries the server received for `key`, with a time window or without.
fn asked(sim: &oifde_sync::simulator::Simulator, key: &str, windowed: bool) -> usize {
    sim.request_log().iter().filter(|e| e.key.as_deref() == Some(key) && e.windowed == windowed).count()
}

fn state_of(store: &TestStore, key: &str) -> Option<String> {
    store.rows(&format!("SELECT state FROM query_keys WHERE query_key = '{key}'")).first().and_then(|r| r[0].clone())
}

per_store!(a_backfill_reads_every_configured_key_and_changes_no_state);

/// One mobile, one call ID and one CTI call ID of other users: the backfill
/// stores all their records, reads the done call again, moves no cursor and
/// changes no key's state.
async fn a_backfill_reads_every_configured_key_and_changes_no_state(kind: Kind) {
    let sim = simulator(options(400)).await;
    let store = TestStore::new(kind);
    let records = sim.records();
    let mobiles = sim.mobiles();
    let by_call = records.iter().find(|r| r.calling_number.as_deref() != Some(mobiles[0].as_str())).unwrap();
    let by_cti = records
        .iter()
        .find(|r| {
            r.cti_call_id.is_some()
                && r.calling_number != by_call.calling_number
                && r.calling_number.as_deref() != Some(mobiles[0].as_str())
        })
        .unwrap();
    let cti = by_cti.cti_call_id.clone().unwrap();
    let mut s = store.settings(&sim);
    s.query.user_mobiles = vec![mobiles[0].clone()];
    s.query.call_ids = vec![by_call.call_id.clone()];
    s.query.cti_call_ids = vec![cti.clone()];
    let engine = engine(s);
    let report = backfill(&engine).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    let wanted = |r: &SimRecord| {
        r.calling_number.as_deref() == Some(mobiles[0].as_str())
            || r.call_id == by_call.call_id
            || r.cti_call_id.as_deref() == Some(cti.as_str())
    };
    let expected: Vec<SimRecord> = records.iter().filter(|r| wanted(r)).cloned().collect();
    assert!(expected.iter().any(|r| r.call_id == by_call.call_id));
    assert_mirrors(&store.local(), &expected);
    // Bounded by the period, like any window.
    let call_key = format!("call:{}", by_call.call_id);
    let cti_key = format!("cti:{cti}");
    assert_eq!(asked(&sim, &call_key, false), 0, "a backfill query of a point key is bounded by the period");
    for key in [&call_key, &cti_key] {
        assert_eq!(state_of(&store, key).as_deref(), Some("active"), "{key}: a backfill changes no state");
    }
    assert_eq!(store.count("SELECT count(*) FROM sync_cursors"), 0, "a backfill moves no cursor");

    // The call is read by an incremental pass and done; a backfill reads it again.
    assert_eq!(incremental(&engine, TO + 86_400).await.status, PassStatus::Ok);
    assert_eq!(state_of(&store, &call_key).as_deref(), Some("done"));
    let before = sim.queries_for(&call_key);
    let report = backfill(&engine).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    assert!(sim.queries_for(&call_key) > before, "a done key is read again by a backfill");
    assert_eq!(state_of(&store, &call_key).as_deref(), Some("done"), "and stays done");
}

per_store!(a_key_named_by_two_sources_lives_until_neither_names_it);

/// A call in the config and in the keys file, and a mobile in the config and
/// added with `keys add`: both stay when the config lines go; the keys file
/// keeps the pass going; a key only the config named is removed.
async fn a_key_named_by_two_sources_lives_until_neither_names_it(kind: Kind) {
    let sim = simulator(options(200)).await;
    let store = TestStore::new(kind);
    let records = sim.records();
    let (call, other) = (records[0].call_id.clone(), records[1].call_id.clone());
    let keys_file = store.dir.path().join("keys.txt");
    std::fs::write(&keys_file, format!("call:{call}\n")).unwrap();
    let mobile = sim.mobiles()[0].clone();
    let mut s = store.settings(&sim);
    s.query.user_mobiles = vec![mobile.clone()];
    s.query.call_ids = vec![call.clone(), other.clone()];
    s.query.keys_file = Some(keys_file.clone());
    let now = TO + 60;
    assert_eq!(incremental(&engine(s.clone()), now).await.status, PassStatus::Ok);
    let mut both = engine(s.clone());
    let added = both
        .with_store(move |st| {
            st.add_keys(&[oifde_sync::keys::QueryKey::parse(&format!("mobile:{mobile}")).unwrap()], 0)
        })
        .await
        .unwrap();
    assert_eq!(added, 0, "already active: not new");
    drop(both);

    // The config lists nothing any more.
    s.query.user_mobiles.clear();
    s.query.call_ids.clear();
    both = engine(s);
    let report = incremental(&both, now + 30).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    assert!(report.warnings.is_empty(), "the keys file still names a key: {:?}", report.warnings);
    assert_ne!(state_of(&store, &format!("call:{call}")).as_deref(), Some("removed"), "still in the keys file");
    assert_eq!(state_of(&store, &format!("mobile:{}", sim.mobiles()[0])).as_deref(), Some("active"));
    assert_eq!(state_of(&store, &format!("call:{other}")).as_deref(), Some("removed"), "named by no source");
    let sources = store.column(&format!("SELECT source FROM query_keys WHERE query_key = 'call:{call}'"));
    assert_eq!(sources, ["keys_file"]);
}

per_store!(a_keys_file_that_is_missing_for_a_while_stops_no_other_key);

async fn a_keys_file_that_is_missing_for_a_while_stops_no_other_key(kind: Kind) {
    let sim = simulator(options(200)).await;
    let store = TestStore::new(kind);
    let mut s = store.settings(&sim);
    s.query.keys_file = Some(store.dir.path().join("rotating.txt"));
    let report = incremental(&engine(s), TO + 60).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    assert!(
        report.warnings.iter().any(|w| w.contains("rotating.txt") && w.contains("other keys")),
        "{:?}",
        report.warnings
    );
    assert_mirrors(&store.local(), &sim.records());
}

per_store!(a_month_of_silence_then_a_crowded_hour_is_cut_down_and_read_in_one_sync);

/// A mobile silent for 30 days, then 5,000 records in one hour, on a server
/// that refuses pages past `split_above`: the crowded hour is cut until each
/// part fits, and the first sync stores every record.
async fn a_month_of_silence_then_a_crowded_hour_is_cut_down_and_read_in_one_sync(kind: Kind) {
    let month = 30 * 86_400;
    let faults = oifde_sync::simulator::Faults { max_paging_depth: Some(1000), ..Default::default() };
    let sim = simulator(oifde_sync::simulator::SimOptions {
        users: 1,
        from: TO - month,
        to: TO - month + 86_400,
        faults,
        ..options(2)
    })
    .await;
    let base = sim.records()[0].clone();
    for i in 0..5000i64 {
        let mut r = base.clone();
        r.log_id = format!("crowd-{i:05}");
        r.start_time = (TO - 3600) * 1000 + i * 700;
        r.end_time = Some(r.start_time + 500);
        r.last_update_time = r.end_time;
        sim.insert(r);
    }
    let store = TestStore::new(kind);
    let mut s = store.settings(&sim);
    s.sync.start = oifde_sync::config::Start::At(TO - month);
    s.sync.split_above = 1000;
    let report = incremental(&engine(s), TO + 60).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    assert_eq!(sim.records().len(), 5002);
    assert_mirrors(&store.local(), &sim.records());
}

per_store!(one_malformed_call_id_harms_no_other_key);

/// A server that refuses one call ID (key-only and in windows alike): that
/// key waits with the server's message, the pass is ok, and every other
/// point key, then and later, is still asked key-only.
async fn one_malformed_call_id_harms_no_other_key(kind: Kind) {
    let faults = oifde_sync::simulator::Faults { refuse_values: vec!["BAD-ID-0000".into()], ..Default::default() };
    let sim = simulator(oifde_sync::simulator::SimOptions { faults, ..options(200) }).await;
    let store = TestStore::new(kind);
    let mut calls: Vec<String> = sim.records().iter().map(|r| r.call_id.clone()).collect();
    calls.dedup();
    calls.truncate(6);
    let mut s = store.settings(&sim);
    s.query.user_mobiles.clear();
    s.query.call_ids = vec!["BAD-ID-0000".into()];
    s.query.call_ids.extend(calls[..3].iter().cloned());
    let now = TO + 86_400;
    let report = incremental(&engine(s.clone()), now).await;
    assert_eq!(report.status, PassStatus::Ok, "the pass is ok for a refused key: {:?}", report.errors);
    assert_eq!(report.figures.failed_windows, 0);
    assert_eq!(state_of(&store, "call:BAD-ID-0000").as_deref(), Some("waiting"));
    let why = store.column("SELECT last_error FROM query_keys WHERE query_key = 'call:BAD-ID-0000'");
    assert!(why[0].contains("10000002") && why[0].contains("not a valid key"), "{why:?}");
    // Later keys, in a later pass, are still asked key-only.
    s.query.call_ids.extend(calls[3..].iter().cloned());
    let later = incremental(&engine(s), now + 120).await;
    assert_eq!(later.status, PassStatus::Ok, "{:?}", later.errors);
    for c in &calls {
        assert_eq!(state_of(&store, &format!("call:{c}")).as_deref(), Some("done"), "{c}");
        let windowed = asked(&sim, &format!("call:{c}"), true);
        assert_eq!(windowed, 0, "call:{c} was asked in windows");
    }
    let expected: Vec<SimRecord> = sim.records().into_iter().filter(|r| calls.contains(&r.call_id)).collect();
    assert_mirrors(&store.local(), &expected);
}

per_store!(a_passing_refusal_of_a_key_only_query_switches_nothing);

async fn a_passing_refusal_of_a_key_only_query_switches_nothing(kind: Kind) {
    let faults = oifde_sync::simulator::Faults { refuse_key_only: 1, ..Default::default() };
    let sim = simulator(oifde_sync::simulator::SimOptions { faults, ..options(200) }).await;
    let store = TestStore::new(kind);
    let mut calls: Vec<String> = sim.records().iter().map(|r| r.call_id.clone()).collect();
    calls.dedup();
    calls.truncate(4);
    let mut s = store.settings(&sim);
    s.query.user_mobiles.clear();
    s.query.call_ids = vec![calls[0].clone()];
    let engine = engine(s.clone());
    let first = incremental(&engine, TO + 86_400).await;
    assert_eq!(first.status, PassStatus::Ok, "{:?}", first.errors);
    assert_eq!(state_of(&store, &format!("call:{}", calls[0])).as_deref(), Some("done"), "found in a window");
    // The same engine (a daemon) asks new keys key-only.
    engine
        .with_store({
            let keys: Vec<_> =
                calls[1..].iter().map(|c| oifde_sync::keys::QueryKey::parse(&format!("call:{c}")).unwrap()).collect();
            move |st| st.add_keys(&keys, 0)
        })
        .await
        .unwrap();
    assert_eq!(incremental(&engine, TO + 86_400 + 60).await.status, PassStatus::Ok);
    for c in &calls[1..] {
        assert_eq!(state_of(&store, &format!("call:{c}")).as_deref(), Some("done"));
        let windowed = asked(&sim, &format!("call:{c}"), true);
        assert_eq!(windowed, 0, "call:{c} was asked in windows");
    }
}

per_store!(a_server_that_needed_windows_is_asked_again_an_hour_later);

async fn a_server_that_needed_windows_is_asked_again_an_hour_later(kind: Kind) {
    let faults = oifde_sync::simulator::Faults { refuse_key_only: 1000, ..Default::default() };
    let sim = simulator(oifde_sync::simulator::SimOptions { faults, ..options(200) }).await;
    let store = TestStore::new(kind);
    let mut calls: Vec<String> = sim.records().iter().map(|r| r.call_id.clone()).collect();
    calls.dedup();
    calls.truncate(5);
    let mut s = store.settings(&sim);
    s.query.user_mobiles.clear();
    s.query.call_ids = calls[..2].to_vec();
    s.api.concurrency = 1;
    let engine = engine(s);
    let key_only = |c: &str| asked(&sim, &format!("call:{c}"), false);
    let add = |c: &str| {
        let key = oifde_sync::keys::QueryKey::parse(&format!("call:{c}")).unwrap();
        engine.with_store(move |st| st.add_keys(&[key], 0))
    };
    let now = TO + 86_400;
    assert_eq!(incremental(&engine, now).await.status, PassStatus::Ok);
    // Two keys with records refused key-only: windows from now on.
    add(&calls[2]).await.unwrap();
    assert_eq!(incremental(&engine, now + 600).await.status, PassStatus::Ok);
    assert_eq!(key_only(&calls[2]), 0, "read in windows without asking key-only first");
    // The server is upgraded; an hour later a key-only query is tried again.
    sim.set_faults(oifde_sync::simulator::Faults::default());
    add(&calls[3]).await.unwrap();
    assert_eq!(incremental(&engine, now + 2 * 3600).await.status, PassStatus::Ok);
    assert_eq!(key_only(&calls[3]), 1);
    add(&calls[4]).await.unwrap();
    assert_eq!(incremental(&engine, now + 2 * 3600 + 60).await.status, PassStatus::Ok);
    assert_eq!(key_only(&calls[4]), 1, "key-only again");
    for c in &calls {
        assert_eq!(state_of(&store, &format!("call:{c}")).as_deref(), Some("done"), "{c}");
    }
}

per_store!(a_server_that_ignores_the_call_filter_costs_no_key_its_state);

/// Every call key's query answers the whole tenant: the records are stored,
/// but each key counts and settles on its own call's records only.
async fn a_server_that_ignores_the_call_filter_costs_no_key_its_state(kind: Kind) {
    let faults = oifde_sync::simulator::Faults { ignore_call_filter: true, ..Default::default() };
    let sim = simulator(oifde_sync::simulator::SimOptions { faults, ..options(60) }).await;
    let store = TestStore::new(kind);
    // One call that is still going on: its key must settle, not the others'.
    let now = TO + 3600;
    let mut live = sim.records()[0].clone();
    live.log_id = "live".into();
    live.call_id = "live-call".into();
    live.start_time = (now - 600) * 1000;
    live.end_time = Some((now - 300) * 1000);
    live.last_update_time = live.end_time;
    sim.insert(live);
    let old_call = sim.records().iter().find(|r| r.call_id != "live-call").unwrap().call_id.clone();
    let mut s = store.settings(&sim);
    s.query.user_mobiles.clear();
    s.query.call_ids = vec![old_call.clone()];
    let report = incremental(&engine(s), now).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    assert_eq!(state_of(&store, &format!("call:{old_call}")).as_deref(), Some("done"), "not held by another call");
    let found = store.column(&format!("SELECT records_found FROM query_keys WHERE query_key = 'call:{old_call}'"));
    let own = sim.records().iter().filter(|r| r.call_id == old_call).count();
    assert_eq!(found, [own.to_string()], "counts only its own call's records");
    assert_mirrors(&store.local(), &sim.records());
}

per_store!(a_large_import_beside_the_daemon_starves_nothing);

/// Two `keys add -` of many call IDs at once, while passes run: every pass
/// succeeds, both imports finish, and every key is stored.
async fn a_large_import_beside_the_daemon_starves_nothing(kind: Kind) {
    let sim = simulator(options(300)).await;
    let store = TestStore::new(kind);
    let config = crate::cli::write_config(store.dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    store.configure(&config);
    let engine = engine(store.settings(&sim));
    assert_eq!(incremental(&engine, TO + 60).await.status, PassStatus::Ok);
    let import = |prefix: &'static str, n: usize| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_oifde-sync"))
            .current_dir(store.dir.path())
            .args(["keys", "add", "-"])
            .env_remove("OIFDE_SYNC_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut w = std::io::BufWriter::new(&mut stdin);
            for i in 0..n {
                writeln!(w, "call:{prefix}-{i:07}").unwrap();
            }
        });
        child
    };
    let (a, b) = (import("big", 16_000), import("other", 6_000));
    // Passes of the daemon meanwhile: none waits past its busy limit.
    // Keys imported meanwhile are due at once: the pass in flight when the
    // imports end is cancelled (interrupted, not failed).
    let stop = tokio_util::sync::CancellationToken::new();
    let daemon = tokio::spawn({
        let (engine, stop) = (engine.clone(), stop.clone());
        async move {
            let mut passes = 0;
            while !stop.is_cancelled() {
                let kind = oifde_sync::sync::PassKind::Incremental { now: TO + 120 + passes, label: "run" };
                let report = engine.pass(kind, &stop).await.expect("the pass runs: the store is never too busy");
                assert_ne!(report.status, PassStatus::Failed, "{:?}", report.errors);
                passes += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            passes
        }
    });
    let (mut a, mut b) = (Some(a), Some(b));
    let mut outputs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    while a.is_some() || b.is_some() {
        seen.insert(store.count("SELECT count(*) FROM query_keys WHERE query_key LIKE 'call:big-%'"));
        for child in [&mut a, &mut b] {
            if child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_some()) {
                outputs.push(child.take().unwrap().wait_with_output().unwrap());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.cancel();
    let passes = daemon.await.expect("every pass of the daemon succeeded");
    for out in &outputs {
        assert!(out.status.success(), "{}", crate::cli::text(out));
    }
    assert!(passes >= 1, "passes ran during the import");
    let partial = seen.iter().filter(|n| **n > 0 && **n < 16_000).count();
    assert!(partial >= 2, "written in bounded transactions, seen growing: {seen:?}");
    assert_eq!(store.count("SELECT count(*) FROM query_keys WHERE query_key LIKE 'call:big-%'"), 16_000);
    assert_eq!(store.count("SELECT count(*) FROM query_keys WHERE query_key LIKE 'call:other-%'"), 6_000);
}

/// The same backfill over HTTPS with a private CA: every configured key.
#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_over_https_reads_every_configured_key() {
    let (ca, identity) = crate::network::private_ca();
    let sim = simulator(oifde_sync::simulator::SimOptions { tls: Some(identity), ..options(300) }).await;
    let store = TestStore::new(Kind::Sqlite);
    let ca_file = store.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let records = sim.records();
    let mobile = sim.mobiles()[0].clone();
    let other = records.iter().find(|r| r.calling_number.as_deref() != Some(mobile.as_str())).unwrap();
    let mut s = store.settings(&sim);
    s.api.ca_file = Some(ca_file);
    s.query.user_mobiles = vec![mobile.clone()];
    s.query.call_ids = vec![other.call_id.clone()];
    let report = backfill(&engine(s)).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    let expected: Vec<SimRecord> = records
        .iter()
        .filter(|r| r.calling_number.as_deref() == Some(mobile.as_str()) || r.call_id == other.call_id)
        .cloned()
        .collect();
    assert_mirrors(&store.local(), &expected);
}

per_store!(a_run_left_running_by_a_killed_process_is_marked_failed);

async fn a_run_left_running_by_a_killed_process_is_marked_failed(kind: Kind) {
    let sim = simulator(options(50)).await;
    let store = TestStore::new(kind);
    let engine = engine(store.settings(&sim));
    // What a process killed mid-pass leaves behind.
    let id = engine.with_store(|s| s.begin_run("sync", 1_000)).await.unwrap();
    assert_eq!(incremental(&engine, TO + 60).await.status, PassStatus::Ok);
    let row = store.rows(&format!("SELECT status, error FROM sync_runs WHERE id = {id}"));
    assert_eq!(row[0][0].as_deref(), Some("failed"));
    assert!(row[0][1].as_deref().unwrap().contains("ended before the pass finished"), "{row:?}");
    assert_eq!(store.count("SELECT count(*) FROM sync_runs WHERE status = 'running'"), 0);
}
