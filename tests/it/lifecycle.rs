//! The key lifecycle under adversarial servers and careless users: every
//! configured key is backfilled, a key lives while any source names it, a
//! rewritten keys file is read again, and one bad key harms no other.

use oifde_sync::simulator::SimRecord;
use oifde_sync::sync::PassStatus;

use crate::helpers::*;

fn state_of(store: &TestStore, key: &str) -> Option<String> {
    store.rows(&format!("SELECT state FROM query_keys WHERE query_key = '{key}'")).first().and_then(|r| r[0].clone())
}

per_store!(a_backfill_reads_every_configured_key_and_changes_no_state);

/// One mobile, one call ID and one CTI call ID of other users: the backfill
/// stores all their records, reads the done call again, moves no cursor and
/// changes no key's state.
async fn a_backfill_reads_every_configured_key_and_changes_no_state(kind: Kind) {
    let sim = simulator(options(400)).await;
    let Some(store) = TestStore::new(kind) else { return };
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
    for e in sim.request_log().iter().filter(|e| e.key.as_deref() == Some(&call_key)) {
        assert!(e.windowed, "a backfill query of a point key is bounded by the period");
    }
    for key in [&call_key, &cti_key] {
        assert_eq!(state_of(&store, key).as_deref(), Some("active"), "{key}: a backfill changes no state");
    }
    assert_eq!(store.count("SELECT count(*) FROM sync_cursors"), 0, "a backfill moves no cursor");

    // The call is read by an incremental pass and done; a backfill reads it again.
    assert_eq!(incremental(&engine, TO + 86_400).await.status, PassStatus::Ok);
    assert_eq!(state_of(&store, &call_key).as_deref(), Some("done"));
    let before = sim.queries_for(&call_key);
    let again = oifde_sync::sync::PassKind::Backfill { from: FROM, to: TO - 1, key: None };
    let report = engine.pass(again, &tokio_util::sync::CancellationToken::new()).await.unwrap();
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
    let Some(store) = TestStore::new(kind) else { return };
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
    let Some(store) = TestStore::new(kind) else { return };
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
    let Some(store) = TestStore::new(kind) else { return };
    let mut s = store.settings(&sim);
    s.sync.start = oifde_sync::config::Start::At(TO - month);
    s.sync.split_above = 1000;
    let report = incremental(&engine(s), TO + 60).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    assert_eq!(sim.records().len(), 5002);
    assert_mirrors(&store.local(), &sim.records());
}
