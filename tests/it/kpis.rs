//! The analyst measures: the views agree with the platform's own count for
//! the same hours, exactly, and with the simulated tenant's ground truth.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use oifde_sync::simulator::SimRecord;
use oifde_sync::simulator::cdr;

use crate::cli::{run, text, write_config};
use crate::helpers::*;

per_store!(the_views_agree_with_the_platform_and_the_ground_truth);

fn hour_of(r: &SimRecord) -> i64 {
    r.start_time / 3_600_000 * 3_600_000
}

async fn the_views_agree_with_the_platform_and_the_ground_truth(kind: Kind) {
    let sim = simulator(options(400)).await;
    let store = TestStore::new(kind);
    let dir = store.dir.path();
    let records = sim.records();
    let legs = cdr::legs(&records, sim.options().seed);
    let cdr_dir = dir.join("cdr");
    for f in cdr::write_dir(&cdr_dir, &legs, &sim.options().timezone).unwrap() {
        let file = std::fs::File::options().append(true).open(&f).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(60)).unwrap();
    }
    let fallback = "Billing complaint";
    let rest = format!(
        "[reconcile]\naccess_codes = [\"10086\", \"95588\", \"4008123123\"]\n\n\
         [analytics]\nfallback_intentions = [\"{fallback}\"]\n"
    );
    let config = write_config(dir, &sim, &sim.options().app_secret.clone(), "", &rest);
    let text_cfg = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text_cfg.replace("[query]\n", &format!("[query]\ncdr_dir = \"{}\"\n", cdr_dir.display())))
        .unwrap();
    store.configure(&config);
    assert_eq!(run(dir, &["sync"], &[]).await.status.code(), Some(0));
    let out = run(dir, &["verify", "--from", "2026-11-02", "--to", "2026-11-04"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The platform's figures, hour by hour, equal the views'.
    let rows = store.rows(
        "SELECT called_number, day, hour, sessions, exit_no_consult, staff_no_consult, staff_consult, bot_only, unknown, \
         autonomy_rate, platform_sessions, platform_exit_no_consult, platform_staff_no_consult, platform_staff_consult, \
         platform_bot_only, platform_autonomy_rate FROM v_hourly_kpis WHERE called_number IS NOT NULL",
    );
    assert!(rows.len() > 20, "hours with sessions ({})", rows.len());
    for r in &rows {
        let n = |i: usize| r[i].as_deref().map(|v| v.parse::<f64>().unwrap());
        assert_eq!((n(3), n(4), n(5), n(6), n(7)), (n(10), n(11), n(12), n(13), n(14)), "outcomes of {r:?}");
        assert_eq!(n(8), Some(0.0), "no unknown outcome with every call's CDR legs: {r:?}");
        match (n(9), n(15)) {
            (None, None) => {}
            (Some(a), Some(p)) => assert!((a - p).abs() < 0.0005, "autonomy {a} against the platform's {p}: {r:?}"),
            other => panic!("autonomy {other:?}: {r:?}"),
        }
    }

    // Fallback rate, silent-agent share and repeat callers against the tenant itself.
    let mut truth: BTreeMap<(String, i64), (f64, f64, f64, i64)> = BTreeMap::new();
    for r in records.iter().filter(|r| r.called_number.is_some()) {
        let e = truth.entry((r.called_number.clone().unwrap(), hour_of(r))).or_default();
        for t in &r.details {
            e.0 += 1.0;
            if t.intention.as_deref().is_none_or(|i| i.is_empty() || i == fallback) {
                e.1 += 1.0;
            }
            if t.response_source == Some(1) {
                e.2 += 1.0;
            }
        }
        let repeat = records.iter().any(|p| {
            p.calling_number == r.calling_number
                && p.call_id != r.call_id
                && p.start_time >= r.start_time - 86_400_000
                && p.start_time < r.start_time
        });
        e.3 += i64::from(repeat);
    }
    let views = store.rows(
        "SELECT called_number, day || ' ' || hour, fallback_rate, silent_agent_share, repeat_callers \
         FROM v_hourly_kpis WHERE called_number IS NOT NULL ORDER BY 1, 2",
    );
    let zone = oifde_sync::tz::ServerZone::parse("UTC").unwrap();
    for v in &views {
        let hour = zone.parse_time(&format!("{}:00:00", v[1].as_deref().unwrap())).unwrap() * 1000;
        let (turns, fallbacks, silent, repeats) = truth[&(v[0].clone().unwrap(), hour)];
        let f = |i: usize| v[i].as_deref().unwrap().parse::<f64>().unwrap();
        assert!((f(2) - fallbacks / turns).abs() < 1e-9, "fallback rate of {v:?}");
        assert!((f(3) - silent / turns).abs() < 1e-9, "silent-agent share of {v:?}");
        assert_eq!(f(4) as i64, repeats, "repeat callers of {v:?}");
    }

    // Drop-off: the last intention of sessions whose call ended in the IVR.
    let transferred: HashSet<&str> = legs.iter().filter(|l| l.device_type != 3).map(|l| l.call_id.as_str()).collect();
    let mut dropoff: HashMap<String, i64> = HashMap::new();
    for r in records.iter().filter(|r| !transferred.contains(cdr::cdr_call_id(r))) {
        let last = r.details.last().and_then(|t| t.intention.clone()).unwrap_or_default();
        *dropoff.entry(last).or_default() += 1;
    }
    let mut seen: HashMap<String, i64> = HashMap::new();
    for row in store.rows("SELECT intention, sessions FROM v_dropoff") {
        *seen.entry(row[0].clone().unwrap_or_default()).or_default() +=
            row[1].as_deref().unwrap().parse::<i64>().unwrap();
    }
    assert_eq!(seen, dropoff, "drop-off intentions");
}
