//! The analyst measures: the views agree with the platform's own count for
//! the same hours, exactly, and with the simulated tenant's ground truth.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use oifde_sync::simulator::cdr;
use oifde_sync::simulator::{SimRecord, Simulator};

use crate::cli::{run, text};
use crate::helpers::*;

per_store!(the_views_agree_with_the_platform_and_the_ground_truth);

fn hour_of(r: &SimRecord) -> i64 {
    r.start_time / 3_600_000 * 3_600_000
}

async fn the_views_agree_with_the_platform_and_the_ground_truth(kind: Kind) {
    let sim = simulator(options(400)).await;
    let store = TestStore::new(kind);
    let records = sim.records();
    let legs = cdr::legs(&records, sim.options().seed);
    let fallback = "Billing complaint";
    mirror_with_ledgers(&store, &sim, &format!("[analytics]\nfallback_intentions = [\"{fallback}\"]\n")).await;

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

/// The shipped Datasette metadata on a mirror with CDRs and the platform's
/// count, served by the real Datasette under the default store name: every
/// canned query answers, and the search finds two-character words too.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Datasette (pip install datasette); .ci/run installs it and runs this"]
async fn every_canned_query_of_the_datasette_metadata_answers() {
    every_canned_query_answers("datasette", "-m", "datasette/metadata.yml").await;
}

/// The same with the configuration file Datasette 1.0 reads, served by
/// Datasette 1.0 (`OIFDE_TEST_DATASETTE_1`, default the virtualenv
/// `.ci/run` makes at /tmp/oifde-datasette-1.0).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Datasette 1.0 in /tmp/oifde-datasette-1.0 or OIFDE_TEST_DATASETTE_1; .ci/run installs it and runs this"]
async fn every_canned_query_of_the_datasette_1_config_answers() {
    let binary = std::env::var("OIFDE_TEST_DATASETTE_1")
        .unwrap_or_else(|_| "/tmp/oifde-datasette-1.0/bin/datasette".to_string());
    every_canned_query_answers(&binary, "-c", "datasette/datasette.yaml").await;
}

async fn every_canned_query_answers(datasette: &str, flag: &str, file: &str) {
    let sim = simulator(options(300)).await;
    let store = TestStore::new(Kind::Sqlite);
    mirror_with_ledgers(&store, &sim, "").await;
    let dir = &store.dir;
    let served = dir.path().join("oifde-sync.db");
    let out = run(dir.path(), &["snapshot", "--to", served.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let metadata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let names = std::process::Command::new("python3")
        .args(["-c", "import sys, yaml; print('\\n'.join(yaml.safe_load(open(sys.argv[1]))['databases']['oifde-sync']['queries']))"])
        .arg(&metadata)
        .output()
        .unwrap();
    let names: Vec<String> = String::from_utf8(names.stdout).unwrap().lines().map(str::to_string).collect();
    assert!(names.len() >= 8, "{names:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = std::process::Command::new(datasette)
        .args(["serve", served.to_str().unwrap(), flag, metadata.to_str().unwrap(), "--port", &port.to_string()])
        .args(["--host", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Spawned)
        .unwrap_or_else(|e| panic!("{datasette}: {e}"));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let get = |name: &str, q: &str| {
        let url = format!(
            "http://127.0.0.1:{port}/oifde-sync/{name}.json?_shape=array&from=2026-11-02&to=2026-11-04&access_code=&q={q}"
        );
        async move {
            for _ in 0..100 {
                if let Ok(r) = reqwest::get(&url).await {
                    assert_eq!(r.status().as_u16(), 200, "{url}");
                    return r.json::<Vec<serde_json::Value>>().await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("Datasette does not answer {url}");
        }
    };
    for name in &names {
        let rows = get(name, "%E8%AF%9D%E8%B4%B9").await;
        assert!(!rows.is_empty(), "canned query {name} answers nothing");
    }
    let two = get("search", "%E8%AF%9D%E8%B4%B9").await;
    assert!(two.iter().all(|r| r["user_saying"].as_str().unwrap().contains("话费")), "{two:?}");
    let four = get("search", "%E6%9F%A5%E8%AF%A2%E4%B8%80%E4%B8%8B").await;
    assert!(!four.is_empty() && four.iter().all(|r| r["user_saying"].as_str().unwrap().contains("查询一下")));
    let _ = server.0.kill();
}

per_store!(the_reports_numbers_are_the_views);

/// `report` on either store: its figures are the views' over the period.
async fn the_reports_numbers_are_the_views(kind: Kind) {
    let sim = simulator(options(300)).await;
    let store = TestStore::new(kind);
    let html = report_of(&store, &sim).await;
    report_agrees_with_the_views(&store, &html);
}

/// Mirrors the simulated tenant with its ledgers into `store` and writes the
/// report of 2026-11-02 to 2026-11-04 beside it; its text.
async fn report_of(store: &TestStore, sim: &Simulator) -> String {
    mirror_with_ledgers(store, sim, "").await;
    let dir = store.dir.path();
    let page = dir.join("report.html");
    let out =
        run(dir, &["report", "--from", "2026-11-02", "--to", "2026-11-04", "--out", page.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::read_to_string(&page).unwrap()
}

/// The figures of a report page (as written, or as Chromium rendered it)
/// are the views' numbers, and the platform's autonomy rate is set beside
/// the mirror's over the same access codes.
fn report_agrees_with_the_views(store: &TestStore, page: &str) {
    let value = |id: &str| {
        let at = page.find(&format!("id=\"{id}\">")).unwrap_or_else(|| panic!("#{id} in the page")) + id.len() + 6;
        page[at..].split('<').next().unwrap().to_string()
    };
    let n = |sql: &str| store.count(sql);
    let percent = |bot: i64, used: i64| format!("{:.1} %", bot as f64 / used as f64 * 100.0);
    assert_eq!(value("sessions"), n("SELECT sum(sessions) FROM v_daily_kpis").to_string());
    let sum = |column: &str, filter: &str| n(&format!("SELECT sum({column}) FROM v_daily_kpis {filter}"));
    let used = "staff_no_consult + staff_consult + bot_only";
    assert_eq!(value("autonomy"), percent(sum("bot_only", ""), sum(used, "")));
    let reported = "WHERE platform_sessions IS NOT NULL";
    assert_eq!(value("reported-autonomy"), percent(sum("bot_only", reported), sum(used, reported)));
    assert_eq!(value("platform-autonomy"), value("reported-autonomy"), "the platform agrees");
    assert!(
        sum(used, "WHERE platform_sessions IS NULL") > 0,
        "sessions of numbers the platform does not report make the two rates differ"
    );
    assert_eq!(value("missing"), "0");
    assert_eq!(value("platform-calls"), sum("platform_sessions", "WHERE called_number IS NOT NULL").to_string());
}

/// `report` as a person sees it: rendered by headless Chromium at a desktop
/// and a phone width without an error, its numbers those of the views.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Chromium (Debian's chromium package); .ci/run installs it and runs this"]
async fn the_report_renders_in_chromium_with_the_views_numbers() {
    let sim = simulator(options(300)).await;
    let store = TestStore::new(Kind::Sqlite);
    let html = report_of(&store, &sim).await;
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"), "self-contained");
    let page = store.dir.path().join("report.html");
    let chromium = |args: &[&str]| {
        let out = std::process::Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"])
            .args(args)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs (Debian's chromium package)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stderr.contains("Uncaught") && !stderr.contains(":ERROR:CONSOLE"), "console errors: {stderr}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    for (width, shot) in [(1280, "wide.png"), (390, "phone.png")] {
        let path = store.dir.path().join(shot);
        chromium(&[&format!("--window-size={width},2400"), &format!("--screenshot={}", path.display())]);
        assert!(std::fs::metadata(&path).unwrap().len() > 10_000, "{shot} is a picture");
    }
    report_agrees_with_the_views(&store, &chromium(&["--dump-dom"]));
}

per_store!(the_kept_measures_equal_the_group_by_over_the_rows_whatever_the_order);

/// The schema version before the measures were kept in tables, and its
/// views (GROUP BYs over the rows at every read).
fn views_before(kind: Kind) -> (i64, String) {
    let (schema, version) = match kind {
        Kind::Sqlite => (include_str!("../../schema.sql"), 9),
        Kind::Postgres => (include_str!("../../schema.pg.sql"), 6),
    };
    let start = schema.find(&format!("\n-- migration: {version}\n")).unwrap();
    let end = schema.find(&format!("\n-- migration: {}\n", version + 1)).unwrap();
    let section = &schema[start..end];
    (version, section[section.find("CREATE VIEW").unwrap()..].to_string())
}

fn execute(store: &TestStore, sql: &str) {
    match &store.url {
        Some(url) => drop(pg_rows(url, sql)),
        None => rusqlite::Connection::open(&store.db).unwrap().execute_batch(sql).unwrap(),
    }
}

/// Those views as `ref_*` beside the store's.
pub fn reference_views(store: &TestStore) {
    let views = views_before(store.kind).1;
    execute(
        store,
        &views.replace("VIEW v_", "VIEW ref_").replace("FROM v_session_outcomes", "FROM ref_session_outcomes"),
    );
}

/// What the kept measures say and what the GROUP BY over the rows says, side by side.
type Rows = Vec<Vec<Option<String>>>;

fn kept_and_computed(store: &TestStore) -> [(Rows, Rows); 3] {
    let both = |columns: &str, view: &str, order: &str| {
        let q = |v: &str| store.rows(&format!("SELECT {columns} FROM {v} ORDER BY {order}"));
        (q(&format!("v_{view}")), q(&format!("ref_{view}")))
    };
    [
        both(
            "log_id, day, hour, turns, transferred, outcome, fallback_turns, silent_turns, repeat_caller, last_intention",
            "session_outcomes",
            "log_id",
        ),
        both(
            "day, hour, called_number, sessions, exit_no_consult, staff_no_consult, staff_consult, bot_only, unknown, \
             turns, repeat_callers, platform_sessions, platform_difference",
            "hourly_kpis",
            "day, hour, called_number",
        ),
        both("day, called_number, intention, sessions", "dropoff", "day, called_number, intention"),
    ]
}

pub fn assert_kept_exact(store: &TestStore, step: &str) {
    for (i, (kept, computed)) in kept_and_computed(store).into_iter().enumerate() {
        // No drop-off before the CDR legs say where calls ended.
        assert!(!kept.is_empty() || i == 2, "{step}: rows");
        assert_eq!(kept, computed, "{step}: the kept measures against the GROUP BY over the rows");
    }
    let daily = |v: &str| {
        store.rows(&format!(
            "SELECT day, called_number, sessions, bot_only, unknown, turns, repeat_callers FROM {v} ORDER BY 1, 2"
        ))
    };
    assert_eq!(daily("v_daily_kpis"), daily("ref_daily_kpis"), "{step}: per day");
}

/// Sessions first and their CDR legs later, records that change (turns,
/// caller, start), an earlier call of a caller that arrives last, and a new
/// list of fallback intentions: after each, the kept measures equal the
/// GROUP BY over the rows.
async fn the_kept_measures_equal_the_group_by_over_the_rows_whatever_the_order(kind: Kind) {
    let sim = simulator(options(300)).await;
    let store = TestStore::new(kind);
    let dir = store.dir.path();
    let config = crate::cli::write_config(dir, &sim, &sim.options().app_secret.clone(), "", "");
    store.configure(&config);
    let backfill = ["backfill", "--from", "2026-11-01 00:00:00", "--to", "2026-11-05 23:59:59"];
    let out = run(dir, &backfill, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    reference_views(&store);
    assert_kept_exact(&store, "sessions without CDR legs");
    assert!(store.count("SELECT count(*) FROM v_session_outcomes WHERE outcome = 'unknown'") > 0);

    // The CDR legs come after the sessions.
    let cdr_dir = cdr_files(&sim, dir);
    let mut import = vec!["keys".to_string(), "import".to_string()];
    import.extend(std::fs::read_dir(&cdr_dir).unwrap().map(|f| f.unwrap().path().display().to_string()));
    let out = run(dir, &import.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_kept_exact(&store, "CDR legs after the sessions");
    assert_eq!(store.count("SELECT count(*) FROM v_session_outcomes WHERE outcome = 'unknown'"), 0);

    // Records change: fewer turns, another caller, another hour; and an
    // earlier call of a caller arrives last, making the later one a repeat.
    let records = sim.records();
    for r in records.iter().take(30) {
        sim.update(&r.log_id, |r| {
            r.last_update_time = r.last_update_time.map(|t| t + 1000);
            r.details.truncate(r.details.len() / 2);
        });
    }
    // A call that alone makes a later one a repeat is moved to another
    // caller, just before a call of theirs that is no repeat yet.
    let pairs = store.rows(
        "SELECT min(p.log_id), r.log_id FROM v_session_outcomes r JOIN v_session_outcomes p \
         ON p.calling_number = r.calling_number AND p.call_id <> r.call_id \
         AND p.start_time >= r.start_time - 86400000 AND p.start_time < r.start_time \
         WHERE r.repeat_caller = 1 GROUP BY r.log_id HAVING count(*) = 1 ORDER BY 2",
    );
    let by_id = |id: &str| records.iter().find(|r| r.log_id == id).unwrap().clone();
    let (moved, orphan) = (by_id(pairs[0][0].as_deref().unwrap()), by_id(pairs[0][1].as_deref().unwrap()));
    let single = store.column(
        "SELECT log_id FROM v_session_outcomes WHERE repeat_caller = 0 AND calling_number IS NOT NULL \
         AND turns > 0 ORDER BY log_id",
    );
    let others: Vec<SimRecord> =
        single.iter().map(|id| by_id(id)).filter(|r| r.calling_number != moved.calling_number).collect();
    let follower = others[0].clone();
    let later = others[1..].iter().find(|r| r.calling_number != follower.calling_number).unwrap().clone();
    sim.update(&moved.log_id, |r| {
        r.last_update_time = r.last_update_time.map(|t| t + 1000);
        r.calling_number = follower.calling_number.clone();
        r.start_time = follower.start_time - 3_600_000;
    });
    let mut earlier = later.clone();
    earlier.log_id = "an-earlier-call".into();
    earlier.call_id = "an-earlier-call-id".into();
    earlier.cti_call_id = None;
    earlier.start_time -= 7_200_000;
    sim.insert(earlier);
    let out = run(dir, &backfill, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_kept_exact(&store, "records changed, an earlier call last");
    let repeat = |id: &str| store.count(&format!("SELECT repeat_caller FROM v_session_outcomes WHERE log_id = '{id}'"));
    assert_eq!(repeat(&follower.log_id), 1, "the moved call makes its new caller's later call a repeat");
    assert_eq!(repeat(&later.log_id), 1, "the earlier call makes the later one a repeat");
    assert_eq!(repeat(&orphan.log_id), 0, "the moved call's old caller has no repeat left");

    // Another list of fallback intentions.
    let text_now = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text_now}\n[analytics]\nfallback_intentions = [\"话费查询\"]\n")).unwrap();
    let out = run(dir, &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_kept_exact(&store, "new fallback intentions");
}

per_store!(a_store_from_before_the_kept_measures_gets_them_from_its_rows);

/// A mirror with CDR legs, set back to the schema version before the
/// measures were kept in tables, is migrated by the next sync: the tables
/// are filled from its rows and equal the GROUP BY over them.
async fn a_store_from_before_the_kept_measures_gets_them_from_its_rows(kind: Kind) {
    let sim = simulator(options(200)).await;
    let store = TestStore::new(kind);
    mirror_with_ledgers(&store, &sim, "").await;
    let (version, views) = views_before(kind);
    let drops = "DROP VIEW v_dropoff; DROP VIEW v_daily_kpis; DROP VIEW v_hourly_kpis; DROP VIEW v_session_outcomes; \
                 DROP TABLE session_facts; DROP TABLE kpi_hourly; DROP TABLE kpi_dropoff;";
    let back = match kind {
        Kind::Sqlite => format!(
            "{} {drops} DROP INDEX records_calling_number; CREATE INDEX records_calling_number ON records (calling_number); \
             {views}; PRAGMA user_version = {version};",
            crate::migration::back_to_10()
        ),
        Kind::Postgres => {
            format!(
                "{} {drops} DROP INDEX records_caller_time; {views}; UPDATE oifde_schema SET version = {version};",
                crate::migration::pg_back_to_8()
            )
        }
    };
    execute(&store, &back);
    assert!(
        store.count("SELECT count(*) FROM v_session_outcomes WHERE outcome = 'bot_only'") > 0,
        "the old views answer"
    );
    let out = run(store.dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(store.count("SELECT count(*) FROM session_facts") >= 200, "the facts are filled");
    reference_views(&store);
    assert_kept_exact(&store, "migrated");
}
