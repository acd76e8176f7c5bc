//! The sync path end to end: every field mirrored, re-reads that write
//! nothing, the dedup rule, overlap, token expiry, time zones, paging,
//! window splitting and window-only queries.

use oifde_sync::keys::QueryKey;
use oifde_sync::run_log::PassStatus;
use oifde_sync::simulator::{BusinessInfoStr, Faults, SimOptions};
use oifde_sync::tz::ServerZone;

use crate::helpers::*;

per_store!(
    backfill_mirrors_every_record_field_by_field,
    reading_the_same_period_twice_writes_nothing,
    newer_records_replace_equal_times_are_ignored_older_are_stale,
    late_records_inside_the_overlap_are_picked_up,
    token_expiry_mid_pass_renews_the_token_and_loses_nothing,
    filter_times_follow_the_server_timezone_on_both_sides_of_utc,
    every_page_is_read_with_the_smallest_page_size,
    a_window_above_split_above_is_halved_until_it_fits,
    window_only_queries_work_where_the_server_allows_them,
    a_backfill_for_one_key_reads_only_that_key
);

async fn backfill_mirrors_every_record_field_by_field(kind: Kind) {
    let sim = simulator(options(1500)).await;
    let records = sim.records();
    // The dataset carries every documented quirk, so the comparison covers them.
    assert!(records.iter().any(|r| r.quirks.numbers_as_strings));
    assert!(records.iter().any(|r| r.quirks.corrected_spelling));
    assert!(records.iter().any(|r| !r.quirks.corrected_spelling));
    assert!(records.iter().any(|r| r.quirks.unknown_fields));
    assert!(records.iter().any(|r| matches!(r.business_info_str, BusinessInfoStr::Malformed(_))));
    assert!(
        records.iter().any(|r| matches!(r.business_info_str, BusinessInfoStr::Fields { yugao_file_name: None, .. }))
    );
    assert!(records.iter().any(|r| r.last_update_time.is_none()));
    assert!(records.iter().any(|r| r.called_number.is_none()));
    assert!(
        records.iter().any(|r| r.details.iter().any(|t| t.user_saying.as_deref().is_some_and(|s| s.contains('🙏'))))
    );

    let store = TestStore::new(kind);
    let engine = engine(store.settings(&sim));
    let report = backfill(&engine).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    assert_eq!(report.figures.inserted, 1500);
    assert_mirrors(&store.local(), &records);
}

async fn reading_the_same_period_twice_writes_nothing(kind: Kind) {
    let sim = simulator(options(800)).await;
    let store = TestStore::new(kind);
    let engine = engine(store.settings(&sim));
    assert_eq!(backfill(&engine).await.status, PassStatus::Ok);
    let before = dump_data(&store.local());
    let again = backfill(&engine).await;
    assert_eq!(again.status, PassStatus::Ok);
    assert_eq!(again.figures.records_fetched, 800, "the finished backfill was read again");
    assert_eq!((again.figures.inserted, again.figures.updated, again.figures.unchanged), (0, 0, 800));
    assert_eq!(dump_data(&store.local()), before);
}

async fn newer_records_replace_equal_times_are_ignored_older_are_stale(kind: Kind) {
    let sim = simulator(options(400)).await;
    let store = TestStore::new(kind);
    let engine = engine(store.settings(&sim));
    assert_eq!(backfill(&engine).await.status, PassStatus::Ok);

    let original = sim.records();
    let timed: Vec<_> = original.iter().filter(|r| r.last_update_time.is_some() && r.details.len() > 1).collect();
    let (newer, same_time, older) = (timed[0].clone(), timed[1].clone(), timed[2].clone());
    let untimed = original.iter().find(|r| r.last_update_time.is_none()).unwrap().clone();
    let seen_sql = format!("SELECT first_seen_at, synced_at FROM records WHERE log_id = '{}'", newer.log_id);
    let before = store.rows(&seen_sql);
    sim.update(&newer.log_id, |r| {
        r.last_update_time = r.last_update_time.map(|t| t + 60_000);
        r.details[0].user_saying = Some("我要改套餐 (changed)".into());
        r.details.pop();
        r.qa.clear();
    });
    sim.update(&same_time.log_id, |r| r.details[0].user_saying = Some("same time, new text".into()));
    sim.update(&older.log_id, |r| {
        r.last_update_time = r.last_update_time.map(|t| t - 60_000);
        r.flag = Some("older".into());
    });
    sim.update(&untimed.log_id, |r| r.details[0].system_reply = Some("content changed".into()));

    let report = backfill(&engine).await;
    assert_eq!(report.status, PassStatus::Ok);
    assert_eq!((report.figures.updated, report.figures.stale, report.figures.inserted), (2, 1, 0));
    let after = store.rows(&seen_sql);
    assert_eq!(after[0][0], before[0][0], "a replaced record keeps when it was first seen");
    assert_ne!(after[0][1], before[0][1], "and says when it last changed");
    // Expected: the server's data, except where the store rightly kept its copy.
    let expected: Vec<_> = sim
        .records()
        .into_iter()
        .map(|r| {
            if r.log_id == same_time.log_id {
                same_time.clone()
            } else if r.log_id == older.log_id {
                older.clone()
            } else {
                r
            }
        })
        .collect();
    assert_mirrors(&store.local(), &expected);
}

async fn late_records_inside_the_overlap_are_picked_up(kind: Kind) {
    let sim = simulator(options(300)).await;
    let store = TestStore::new(kind);
    let mut s = store.settings(&sim);
    s.sync.start = oifde_sync::config::Start::At(FROM);
    s.sync.lag = std::time::Duration::ZERO;
    s.sync.overlap = std::time::Duration::from_secs(15 * 60);
    let engine = engine(s);
    let now = TO + 3600;
    assert_eq!(incremental(&engine, now).await.status, PassStatus::Ok);
    assert_mirrors(&store.local(), &sim.records());

    let template = sim.records()[0].clone();
    let late = |suffix: &str, start_s: i64| {
        let mut r = template.clone();
        r.log_id = format!("late-{suffix}");
        r.call_id = format!("late-call-{suffix}");
        r.start_time = start_s * 1000;
        r
    };
    // Committed after the first pass, started 10 minutes before its cursor.
    sim.insert(late("inside", now - 600));
    // Started an hour before the cursor: beyond the overlap; only a backfill finds it.
    sim.insert(late("beyond", now - 3600));
    let report = incremental(&engine, now + 60).await;
    assert_eq!(report.status, PassStatus::Ok);
    assert_eq!(report.figures.inserted, 1);
    let ids = store.rows("SELECT log_id FROM records WHERE log_id LIKE 'late-%'");
    assert_eq!(ids, vec![vec![Some("late-inside".to_string())]]);
    let cursor = store.count("SELECT min(cursor_time) FROM sync_cursors");
    assert_eq!(cursor, (now + 60) * 1000, "cursors reach now less the lag");
}

async fn token_expiry_mid_pass_renews_the_token_and_loses_nothing(kind: Kind) {
    let faults = Faults { token_expires_after_queries: Some(5), ..Faults::default() };
    let sim = simulator(SimOptions { faults, ..options(600) }).await;
    let store = TestStore::new(kind);
    let mut s = store.settings(&sim);
    s.api.page_size = 20;
    let engine = engine(s);
    let report = backfill(&engine).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    assert!(sim.token_calls() >= 4, "the token was renewed ({} gettoken calls)", sim.token_calls());
    assert_mirrors(&store.local(), &sim.records());

    sim.expire_tokens();
    let again = backfill(&engine).await;
    assert_eq!(again.status, PassStatus::Ok, "{:?}", again.errors);
}

async fn filter_times_follow_the_server_timezone_on_both_sides_of_utc(kind: Kind) {
    for zone in ["+08:00", "-05:00", "Asia/Shanghai"] {
        let timezone = ServerZone::parse(zone).unwrap();
        let sim = simulator(SimOptions { timezone: timezone.clone(), ..options(300) }).await;
        let store = TestStore::new(kind);
        let engine = engine(store.settings(&sim));
        assert_eq!(backfill(&engine).await.status, PassStatus::Ok, "{zone}");
        assert_mirrors(&store.local(), &sim.records());
    }
    // The zone matters: a server on +08:00 read as if it were UTC misses records.
    let sim = simulator(SimOptions { timezone: ServerZone::parse("+08:00").unwrap(), ..options(300) }).await;
    let store = TestStore::new(kind);
    let mut s = store.settings(&sim);
    s.api.server_timezone = ServerZone::utc();
    let report = backfill(&engine(s)).await;
    assert!(report.figures.records_fetched < 300, "fetched {}", report.figures.records_fetched);
}

async fn every_page_is_read_with_the_smallest_page_size(kind: Kind) {
    let sim = simulator(SimOptions { users: 2, ..options(300) }).await;
    let store = TestStore::new(kind);
    let mut s = store.settings(&sim);
    s.api.page_size = 5;
    let report = backfill(&engine(s)).await;
    assert_eq!(report.status, PassStatus::Ok);
    assert!(report.figures.pages >= 60, "{} pages", report.figures.pages);
    assert_mirrors(&store.local(), &sim.records());
}

async fn a_window_above_split_above_is_halved_until_it_fits(kind: Kind) {
    let sim = simulator(SimOptions { users: 1, ..options(600) }).await;
    let store = TestStore::new(kind);
    let mut s = store.settings(&sim);
    s.sync.split_above = 40;
    s.api.page_size = 20;
    let report = backfill(&engine(s)).await;
    assert_eq!(report.status, PassStatus::Ok);
    assert_mirrors(&store.local(), &sim.records());
    // 600 records in leaves of at most 40: at least 15 leaves were read.
    assert!(report.figures.pages >= 15, "{} pages", report.figures.pages);
}

async fn window_only_queries_work_where_the_server_allows_them(kind: Kind) {
    let strict = simulator(options(100)).await;
    let store = TestStore::new(kind);
    let mut s = store.settings(&strict);
    s.query.user_mobiles.clear();
    let report = backfill(&engine(s)).await;
    assert_eq!(report.status, PassStatus::Failed);
    assert!(report.fatal.as_deref().unwrap_or("").contains("configure query keys"), "{:?}", report.fatal);

    let lenient = simulator(SimOptions { lenient_keys: true, ..options(100) }).await;
    let store2 = TestStore::new(kind);
    let mut s = store2.settings(&lenient);
    s.query.user_mobiles.clear();
    let report = backfill(&engine(s)).await;
    assert_eq!(report.status, PassStatus::Ok);
    assert_mirrors(&store2.local(), &lenient.records());
}

async fn a_backfill_for_one_key_reads_only_that_key(kind: Kind) {
    let sim = simulator(options(400)).await;
    let store = TestStore::new(kind);
    let engine = engine(store.settings(&sim));
    let mobile = sim.mobiles()[0].clone();
    let key = QueryKey::parse(&format!("mobile:{mobile}")).unwrap();
    let kind = oifde_sync::sync::PassKind::Backfill { from: FROM, to: TO - 1, key: Some(key) };
    let report = engine.pass(kind, &tokio_util::sync::CancellationToken::new()).await.unwrap();
    assert_eq!(report.status, PassStatus::Ok);
    let expected: Vec<_> = sim.records().into_iter().filter(|r| r.call_sor_id == mobile).collect();
    assert!(!expected.is_empty());
    assert_mirrors(&store.local(), &expected);
}
