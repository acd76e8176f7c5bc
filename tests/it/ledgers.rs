//! The platform's own ledgers: CDR files feed every IVR call as a point key
//! and keep their legs, on both stores.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use oifde_sync::simulator::cdr::{self, SimLeg};
use oifde_sync::simulator::{Faults, SimOptions};

use crate::cli::{run, text, write_config};
use crate::helpers::*;

/// A config that reads keys from `cdr_dir` only (no mobile).
fn cdr_config(dir: &Path, sim: &oifde_sync::simulator::Simulator, cdr_dir: &Path) -> std::path::PathBuf {
    let config = write_config(dir, sim, &sim.options().app_secret.clone(), "", "");
    let text = std::fs::read_to_string(&config).unwrap();
    let line = text.lines().find(|l| l.starts_with("user_mobiles")).unwrap().to_string();
    std::fs::write(&config, text.replace(&line, &format!("cdr_dir = \"{}\"", cdr_dir.display()))).unwrap();
    config
}

/// The IVR calls among `legs`.
fn ivr_calls(legs: &[SimLeg]) -> BTreeSet<String> {
    legs.iter().filter(|l| l.device_type == 3).map(|l| l.call_id.clone()).collect()
}

per_store!(
    a_cdr_directory_feeds_every_ivr_call_at_one_query_each,
    keys_import_reads_csv_and_zip_and_names_what_it_refuses,
    where_key_only_queries_are_refused_a_cdr_call_is_asked_for_around_its_span,
    verify_names_exactly_the_hours_the_mirror_misses_and_its_backfill_closes_them
);

/// Pointed at a CDR directory and nothing else, a sync mirrors every session
/// of every IVR call in it, at one query a call; every leg is stored, read
/// once; a file still being written waits; agent-only calls are no keys.
async fn a_cdr_directory_feeds_every_ivr_call_at_one_query_each(kind: Kind) {
    let sim = simulator(options(300)).await;
    let store = TestStore::new(kind);
    let cdr_dir = store.dir.path().join("cdr");
    let legs = cdr::legs(&sim.records(), 7);
    cdr::write_dir(&cdr_dir, &legs, &sim.options().timezone).unwrap();
    for f in std::fs::read_dir(&cdr_dir).unwrap() {
        settled(&f.unwrap().path());
    }
    // A file written a moment ago: left for a later pass.
    let late = SimLeg { call_id: "late-call".into(), call_id_num: -1, device_type: 3, ..legs[0].clone() };
    std::fs::write(
        cdr_dir.join("late.csv"),
        cdr::csv_text(std::slice::from_ref(&late), &sim.options().timezone, false),
    )
    .unwrap();
    let config = cdr_config(store.dir.path(), &sim, &cdr_dir);
    store.configure(&config);

    let out = run(store.dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let calls = ivr_calls(&legs);
    let keys: BTreeSet<String> =
        store.column("SELECT query_key FROM query_keys WHERE source = 'cdr'").into_iter().collect();
    assert_eq!(keys, calls.iter().map(|c| format!("cti:{c}")).collect(), "one key a call with an IVR leg");
    let expected: Vec<_> =
        sim.records().into_iter().filter(|r| r.cti_call_id.as_ref().is_some_and(|c| calls.contains(c))).collect();
    assert!(expected.len() >= 150, "most sessions have a CDR call ({})", expected.len());
    let stored: HashSet<String> = store.column("SELECT log_id FROM records").into_iter().collect();
    for r in &expected {
        assert!(stored.contains(&r.log_id), "session {} of call {:?} is mirrored", r.log_id, r.cti_call_id);
    }
    for call in &calls {
        assert_eq!(sim.queries_for(&format!("cti:{call}")), 1, "one query for call {call}");
    }
    assert_eq!(store.count("SELECT count(*) FROM cdr_legs") as usize, legs.len(), "every leg, the late file's not yet");
    let leg = &legs[0];
    let row = store.rows(&format!(
        "SELECT device_type, call_begin, call_end, device_no FROM cdr_legs WHERE call_id = '{}' AND call_id_num = {}",
        leg.call_id, leg.call_id_num
    ));
    let second = |ms: i64| (ms / 1000 * 1000).to_string();
    assert_eq!(
        row[0],
        vec![
            Some(leg.device_type.to_string()),
            Some(second(leg.call_begin)),
            Some(second(leg.call_end)),
            Some(leg.device_no.clone())
        ]
    );

    // The next pass: the files already read are not read again; the late
    // one, now settled, is.
    settled(&cdr_dir.join("late.csv"));
    let files_before = store.rows("SELECT path, read_at FROM cdr_files ORDER BY path");
    let out = run(store.dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(store.count("SELECT count(*) FROM cdr_legs") as usize, legs.len() + 1);
    assert_eq!(store.count("SELECT count(*) FROM query_keys WHERE query_key = 'cti:late-call'"), 1);
    let files_after = store.rows("SELECT path, read_at FROM cdr_files ORDER BY path");
    assert_eq!(&files_after[..files_before.len()], &files_before[..], "read files are not read again");
    // `copy` carries the legs and the files read (PostgreSQL into SQLite here).
    let copied = rusqlite::Connection::open(store.local()).unwrap();
    let n = |sql: &str| copied.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(n("SELECT count(*) FROM cdr_legs") as usize, legs.len() + 1);
    assert_eq!(n("SELECT count(*) FROM cdr_files") as usize, files_after.len());
}

/// `keys import` reads a zip, a CSV with a header and a BOM, and one
/// without a header; garbage lines are named and the rest read; a damaged
/// zip and a CSV without `call_id` are refused by name; reading twice
/// changes nothing.
async fn keys_import_reads_csv_and_zip_and_names_what_it_refuses(kind: Kind) {
    let sim = simulator(options(120)).await;
    let store = TestStore::new(kind);
    let dir = store.dir.path();
    let zone = sim.options().timezone.clone();
    let legs = cdr::legs(&sim.records(), 7);
    let (zipped, rest) = legs.split_at(legs.len() / 2);
    let (with_header, without) = rest.split_at(rest.len() / 2);
    let zips = cdr::write_dir(&dir.join("bundles"), zipped, &zone).unwrap();
    std::fs::write(dir.join("header.csv"), format!("\u{feff}{}", cdr::csv_text(with_header, &zone, true))).unwrap();
    let mut plain = cdr::csv_text(without, &zone, false);
    plain.push_str("this is not a CDR line\r\n");
    std::fs::write(dir.join("plain.csv"), plain).unwrap();
    std::fs::write(dir.join("damaged.zip"), b"PK\x03\x04 not really").unwrap();
    std::fs::write(dir.join("other.csv"), "developer,account_id\r\nx,y\r\n").unwrap();
    let config = write_config(dir, &sim, &sim.options().app_secret.clone(), "", "");
    store.configure(&config);
    let mut args: Vec<String> = vec!["keys".into(), "import".into()];
    args.extend(zips.iter().map(|z| z.display().to_string()));
    args.extend(["header.csv", "plain.csv", "damaged.zip", "other.csv"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(dir, &args, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let calls = ivr_calls(&legs);
    let summary = format!(
        "{} files, {} rows, {} IVR calls, {} keys added, 1 lines refused",
        zips.len() + 2,
        legs.len(),
        calls.len(),
        calls.len()
    );
    assert!(text(&out).contains(&summary), "{summary:?} in {}", text(&out));
    assert!(
        text(&out).contains("plain.csv:") && text(&out).contains("damaged.zip") && text(&out).contains("other.csv")
    );
    assert!(!sim.request_log().iter().any(|e| e.key.is_some()), "keys import calls no API");
    let dump = || {
        (
            store.rows("SELECT * FROM cdr_legs ORDER BY call_id, call_id_num"),
            store.column("SELECT query_key FROM query_keys ORDER BY 1"),
        )
    };
    let first = dump();
    assert_eq!(first.0.len(), legs.len());
    let again = run(dir, &args, &[]).await;
    assert!(text(&again).contains("0 keys added"), "{}", text(&again));
    assert_eq!(dump(), first, "reading the files twice changes nothing");
}

/// A server that refuses key-only queries is asked for a CDR call's span,
/// from five minutes before its first leg to five after its last, not for
/// `query.point_lookback`; and the call's sessions are mirrored.
async fn where_key_only_queries_are_refused_a_cdr_call_is_asked_for_around_its_span(kind: Kind) {
    let sim = simulator(SimOptions { require_window: true, ..options(60) }).await;
    let store = TestStore::new(kind);
    let zone = sim.options().timezone.clone();
    let legs = cdr::legs(&sim.records(), 7);
    let cdr_dir = store.dir.path().join("cdr");
    cdr::write_dir(&cdr_dir, &legs, &zone).unwrap();
    for f in std::fs::read_dir(&cdr_dir).unwrap() {
        settled(&f.unwrap().path());
    }
    let config = cdr_config(store.dir.path(), &sim, &cdr_dir);
    store.configure(&config);
    // Two passes: the first learns that the server needs windows.
    for _ in 0..2 {
        let out = run(store.dir.path(), &["sync"], &[]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let calls = ivr_calls(&legs);
    let stored: HashSet<String> = store.column("SELECT log_id FROM records").into_iter().collect();
    for r in sim.records().iter().filter(|r| r.cti_call_id.as_ref().is_some_and(|c| calls.contains(c))) {
        assert!(stored.contains(&r.log_id), "session {} is mirrored", r.log_id);
    }
    let mut windowed = 0;
    for e in sim.request_log().iter().filter(|e| e.windowed) {
        let Some(call) = e.key.as_deref().and_then(|k| k.strip_prefix("cti:")) else { continue };
        let span = legs.iter().filter(|l| l.call_id == call);
        let begin = span.clone().map(|l| l.call_begin).min().unwrap() / 1000;
        let end = span.map(|l| l.call_end).max().unwrap() / 1000;
        let (from, to) = (e.window.0.as_deref().unwrap(), e.window.1.as_deref().unwrap());
        let (from, to) = (zone.parse_time(from).unwrap(), zone.parse_time(to).unwrap());
        assert!(from >= begin - 300 && to <= end + 301, "call {call} [{begin}, {end}] asked for [{from}, {to}]");
        assert!(from <= begin && to >= end, "the window of call {call} covers its span");
        windowed += 1;
    }
    assert!(windowed >= calls.len(), "every call asked in a window ({windowed} of {})", calls.len());
}

/// Sessions the server never returns but the platform's statistics count:
/// `verify` names exactly their hours and how many each misses, exits 1,
/// and keeps the result for `status` and the metrics; an access code the
/// interface refuses is said and fails nothing; the suggested backfill,
/// once the server returns them, makes the next `verify` clean (exit 0).
async fn verify_names_exactly_the_hours_the_mirror_misses_and_its_backfill_closes_them(kind: Kind) {
    let sim = simulator(options(300)).await;
    let store = TestStore::new(kind);
    let dir = store.dir.path();
    let hour = |r: &oifde_sync::simulator::SimRecord| r.start_time / 3_600_000 * 3_600_000;
    let coded: Vec<_> = sim.records().into_iter().filter(|r| r.called_number.as_deref() == Some("10086")).collect();
    let first_hour = hour(&coded[0]);
    let second_hour = coded.iter().map(hour).find(|h| *h != first_hour).unwrap();
    let mut hidden: Vec<String> = coded.iter().filter(|r| hour(r) == first_hour).map(|r| r.log_id.clone()).collect();
    hidden.extend(coded.iter().filter(|r| hour(r) == second_hour).take(2).map(|r| r.log_id.clone()));
    let expected: Vec<(i64, i64)> = [first_hour, second_hour]
        .iter()
        .map(|h| (*h, coded.iter().filter(|r| hour(r) == *h && hidden.contains(&r.log_id)).count() as i64))
        .collect();
    sim.set_faults(Faults {
        hidden: hidden.clone(),
        refuse_statistics: vec!["4008123123".into()],
        ..Faults::default()
    });
    let reconcile = "[reconcile]\naccess_codes = [\"10086\", \"95588\", \"4008123123\"]\n";
    let config = write_config(dir, &sim, &sim.options().app_secret.clone(), "", reconcile);
    store.configure(&config);
    assert_eq!(run(dir, &["sync"], &[]).await.status.code(), Some(0));

    let period = ["verify", "--from", "2026-11-02", "--to", "2026-11-03"];
    let out = run(dir, &period, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("4008123123") && text(&out).contains("cannot be read"), "{}", text(&out));
    let total: i64 = expected.iter().map(|(_, n)| n).sum();
    assert!(text(&out).contains(&format!("{total} calls missing in 2 settled hours")), "{}", text(&out));
    let json = run(dir, &[&period[..], &["--json", "--offline"]].concat(), &[]).await;
    assert_eq!(json.status.code(), Some(1), "{}", text(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let differing: Vec<(i64, i64)> = v["differing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["hour"].as_i64().unwrap(), h["platform"].as_i64().unwrap() - h["mirrored"].as_i64().unwrap()))
        .collect();
    assert_eq!(differing, expected, "exactly the hidden sessions' hours, each with its count");
    assert_eq!((v["missing"].as_i64(), v["missing_hours"].as_i64()), (Some(total), Some(2)));
    let status = run(dir, &["status"], &[]).await;
    assert!(text(&status).contains(&format!("{total} calls missing in 2 settled hours")), "{}", text(&status));
    let engine = engine(store.settings(&sim));
    let view = engine.with_store(|s| oifde_sync::metrics::StoreView::of(s)).await.unwrap();
    let metrics = oifde_sync::metrics::Metrics::new(&engine.client.stats).render(&engine, &view);
    assert!(metrics.contains(&format!("oifde_sync_missing_calls {total}")), "{metrics}");
    drop(engine);

    // The server returns them again; the suggested backfill reads them.
    sim.set_faults(Faults::default());
    let backfill = v["backfill"].as_str().unwrap().to_string();
    let args: Vec<String> = backfill
        .split(" --")
        .skip(1)
        .flat_map(|part| {
            let (flag, value) = part.split_once(' ').unwrap_or((part, ""));
            [format!("--{flag}"), value.trim_matches('"').to_string()]
        })
        .filter(|a| !a.is_empty())
        .collect();
    let mut argv = vec!["backfill"];
    argv.extend(args.iter().map(String::as_str));
    let out = run(dir, &argv, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{backfill}: {}", text(&out));
    let out = run(dir, &period, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no settled hour misses a call"), "{}", text(&out));
}
