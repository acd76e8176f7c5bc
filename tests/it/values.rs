//! Whatever values the API sends are stored, on both stores alike: NUL
//! characters, long text in indexed columns, times no calendar shows; and a
//! record the store still refuses costs no other record or key.

use oifde_sync::run_log::PassStatus;
use oifde_sync::simulator::{SimOptions, SimRecord};

use crate::helpers::*;

/// A record of user `mobile` (its `callSorId`), a copy of `base` with `id`.
fn record(base: &SimRecord, id: &str) -> SimRecord {
    let mut r = base.clone();
    r.log_id = id.into();
    r.call_id = format!("call-{id}");
    r.last_update_time = r.last_update_time.or(Some(r.start_time));
    r
}

per_store!(nul_characters_are_stored_by_one_rule);

/// NUL in callData, a turn's userSaying and intention, a Q&A answer: the
/// columns hold U+FFFD, the text as sent is beside them, the pass counts
/// them, and every other record of the tenant is stored.
async fn nul_characters_are_stored_by_one_rule(kind: Kind) {
    let sim = simulator(SimOptions { users: 3, ..options(120) }).await;
    let store = TestStore::new(kind);
    let base = sim.records().into_iter().find(|r| !r.details.is_empty() && !r.qa.is_empty()).unwrap();
    let mut r = record(&base, "nul-1");
    r.call_data = Some("a\u{0}b".into());
    r.details[0].user_saying = Some("hello\u{0}".into());
    r.details[0].intention = Some("\u{0}intent".into());
    r.qa[0].original_answer = Some("\u{0}".into());
    sim.insert(r);
    let report = incremental(&engine(store.settings(&sim)), TO + 60).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    assert_eq!(report.figures.nul_replaced, 1);
    assert_eq!(store.count("SELECT count(*) FROM records"), sim.records().len() as i64, "every record stored");
    let row = store.rows("SELECT call_data, raw_json FROM records WHERE log_id = 'nul-1'");
    assert_eq!(row[0][0].as_deref(), Some("a\u{fffd}b"));
    assert!(row[0][1].as_deref().unwrap().contains(r#""callData":"a\u0000b""#), "{row:?}");
    let turn =
        store.rows("SELECT user_saying, intention, extra_json FROM record_details WHERE log_id = 'nul-1' AND seq = 0");
    assert_eq!(turn[0][0].as_deref(), Some("hello\u{fffd}"));
    assert_eq!(turn[0][1].as_deref(), Some("\u{fffd}intent"));
    let extra: serde_json::Value = serde_json::from_str(turn[0][2].as_deref().unwrap()).unwrap();
    assert_eq!(extra["userSaying"], "hello\u{0}", "the text as sent");
    let qa = store.rows("SELECT original_answer, extra_json FROM qa_records WHERE log_id = 'nul-1' AND seq = 0");
    assert_eq!(qa[0][0].as_deref(), Some("\u{fffd}"));
    assert!(qa[0][1].as_deref().unwrap().contains(r#""originalAnswer":"\u0000""#));
    assert_summaries_exact(&rusqlite::Connection::open(store.local()).unwrap());
}

per_store!(long_text_in_indexed_columns_is_stored);

async fn long_text_in_indexed_columns_is_stored(kind: Kind) {
    let sim = simulator(SimOptions { users: 3, ..options(60) }).await;
    let store = TestStore::new(kind);
    let base = sim.records().into_iter().find(|r| !r.details.is_empty() && !r.qa.is_empty()).unwrap();
    let mut r = record(&base, "long-1");
    r.details[0].intention = Some("意图".repeat(1100));
    r.qa[0].question_title = Some("q".repeat(4000));
    r.call_id = "c".repeat(3000);
    r.calling_number = Some("1".repeat(3000));
    sim.insert(r);
    let engine = engine(store.settings(&sim));
    let report = incremental(&engine, TO + 60).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    assert_eq!(store.count("SELECT count(*) FROM records"), sim.records().len() as i64);
    assert_eq!(store.count("SELECT length(call_id) FROM records WHERE log_id = 'long-1'"), 3000);
    let found = store.count(&format!("SELECT count(*) FROM records WHERE call_id = '{}'", "c".repeat(3000)));
    assert_eq!(found, 1, "found by its call id");
    assert_summaries_exact(&rusqlite::Connection::open(store.local()).unwrap());
    // Replaced by a newer version: the summaries are taken down and up again.
    sim.update("long-1", |r| r.last_update_time = r.last_update_time.map(|t| t + 1000));
    let report = backfill(&engine).await;
    assert_eq!((report.status, report.figures.updated), (PassStatus::Ok, 1), "{:?}", report.errors);
    assert_summaries_exact(&rusqlite::Connection::open(store.local()).unwrap());
}

per_store!(times_no_calendar_shows_are_kept_and_read_as_null);

/// `Long.MAX_VALUE` as endTime and as a turn's requsetTime: stored as sent,
/// the views show NULL for them (and every other row), and the record can
/// still be updated.
async fn times_no_calendar_shows_are_kept_and_read_as_null(kind: Kind) {
    let sim = simulator(SimOptions { users: 3, ..options(60) }).await;
    let store = TestStore::new(kind);
    let base = sim.records().into_iter().find(|r| !r.details.is_empty()).unwrap();
    let mut r = record(&base, "max-1");
    r.end_time = Some(i64::MAX);
    r.details[0].request_time = Some(i64::MAX);
    sim.insert(r);
    let engine = engine(store.settings(&sim));
    assert_eq!(incremental(&engine, TO + 60).await.status, PassStatus::Ok);
    assert_eq!(store.count("SELECT count(*) FROM records WHERE end_time = 9223372036854775807"), 1);
    let calls = store.rows("SELECT log_id, end_utc, duration_s FROM v_calls");
    assert_eq!(calls.len(), sim.records().len(), "every call is listed");
    let max = calls.iter().find(|c| c[0].as_deref() == Some("max-1")).unwrap();
    assert_eq!(max[1], None);
    let turns = store.rows("SELECT log_id, request_utc FROM v_turns WHERE log_id = 'max-1' AND seq = 0");
    assert_eq!(turns[0][1], None);
    assert!(!store.rows("SELECT * FROM v_qa").is_empty() || sim.records().iter().all(|r| r.qa.is_empty()));
    sim.update("max-1", |r| {
        r.last_update_time = r.last_update_time.map(|t| t + 1000);
        r.flag = Some("later".into());
    });
    let report = backfill(&engine).await;
    assert_eq!((report.status, report.figures.updated), (PassStatus::Ok, 1), "{:?}", report.errors);
    assert_summaries_exact(&rusqlite::Connection::open(store.local()).unwrap());
}

/// A record PostgreSQL still refuses (a log id longer than its key index
/// takes): named with the reason, the rest of its page and every other key
/// stored, and the pass says some windows failed, not that the store broke.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_the_store_refuses_costs_no_other_record_or_key() {
    let sim = simulator(SimOptions { users: 3, ..options(90) }).await;
    let store = TestStore::new(Kind::Postgres);
    let base = sim.records()[0].clone();
    // Random text does not compress below the index's limit.
    let mut rng = fastrand::Rng::with_seed(9);
    let id = format!("refused-xxx{}", (0..9000).map(|_| rng.alphanumeric()).collect::<String>());
    sim.insert(record(&base, &id));
    let report = incremental(&engine(store.settings(&sim)), TO + 60).await;
    assert_eq!(report.status, PassStatus::Partial, "{:?}", report.errors);
    assert_eq!(report.figures.failed_windows, 1);
    assert!(
        report.errors[0].contains("record refused-xxx") && report.errors[0].contains("refused a value"),
        "{:?}",
        report.errors
    );
    assert_eq!(store.count("SELECT count(*) FROM records"), sim.records().len() as i64 - 1, "all the others");
}
