//! The request budget, side by side with the minimum in the same run: what a
//! pass asks the API for in three tenants, and what a pass costs with a
//! million keys in the store. The simulator runs in-process and counts every
//! query it receives.
//!
//! `bench/requests.sh`; prints a table and writes `bench/requests.csv`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oifde_sync::api::ApiClient;
use oifde_sync::config::{Settings, Start};
use oifde_sync::simulator::{SimOptions, Simulator};
use oifde_sync::store::Store;
use oifde_sync::sync::{Engine, PassKind, PassReport};
use tokio_util::sync::CancellationToken;

const DAY: i64 = 86_400;

struct Row {
    scenario: String,
    keys: u64,
    records: u64,
    queries: u64,
    minimum: u64,
    /// What the same pass cost when every key was read in windows of
    /// `sync.window` from `sync.start` (computed: keys × windows).
    windows_design: Option<u64>,
    seconds: f64,
}

async fn sim(options: SimOptions) -> Simulator {
    Simulator::start(options, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn settings(sim: &Simulator, db: &Path) -> Settings {
    let mut s = oifde_sync::commands::demo::settings_for(sim, db.to_path_buf());
    s.api.max_requests_per_second = 1_000_000;
    s.api.concurrency = 8;
    s.sync.window = Duration::from_secs(3600);
    s.query.user_mobiles.clear();
    s.log.level = "error".into();
    s
}

fn engine(settings: Settings) -> Engine {
    let client = Arc::new(ApiClient::new(&settings.api).unwrap());
    let store = Store::open_configured(&settings.store).unwrap();
    Engine::new(Arc::new(settings), client, store)
}

async fn pass(engine: &Engine, now: i64) -> (PassReport, f64) {
    let t = Instant::now();
    let r = engine.pass(PassKind::Incremental { now, label: "sync" }, &CancellationToken::new()).await.unwrap();
    (r, t.elapsed().as_secs_f64())
}

/// Queries the simulator received during `f`.
async fn counted<T>(sim: &Simulator, f: impl std::future::Future<Output = T>) -> (T, u64) {
    let before = sim.query_calls();
    let out = f.await;
    (out, sim.query_calls() - before)
}

async fn call_feed(dir: &Path, rows: &mut Vec<Row>) {
    let now = oifde_sync::tz::now_ms() / 1000;
    let to = now - now.rem_euclid(3600) - DAY;
    let sim = sim(SimOptions { records: 11_500, users: 2_000, from: to - 2 * DAY, to, ..SimOptions::default() }).await;
    let mut seen = std::collections::HashSet::new();
    let mut calls: Vec<String> = sim.records().into_iter().map(|r| r.call_id).collect();
    calls.retain(|c| seen.insert(c.clone()));
    let mut keys: Vec<String> = calls.into_iter().take(9_500).map(|c| format!("call:{c}")).collect();
    keys.extend((0..500).map(|i| format!("call:unknown-{i}")));
    let keys_file = dir.join("calls.txt");
    std::fs::write(&keys_file, keys.join("\n") + "\n").unwrap();
    let mut s = settings(&sim, &dir.join("calls.db"));
    s.query.keys_file = Some(keys_file);
    s.sync.start = Start::At(to - 3 * DAY);
    let engine = engine(s);
    let ((first, secs), queries) = counted(&sim, pass(&engine, now)).await;
    let windows_per_key = ((now - (to - 3 * DAY)) / 3600) as u64;
    rows.push(Row {
        scenario: "(a) call-ID feed, first pass".into(),
        keys: keys.len() as u64,
        records: first.figures.records_fetched,
        queries,
        minimum: keys.len() as u64,
        windows_design: Some(keys.len() as u64 * windows_per_key),
        seconds: secs,
    });
    let ((_, secs), queries) = counted(&sim, pass(&engine, now + 30)).await;
    rows.push(Row {
        scenario: "(a) call-ID feed, next pass (30 s later)".into(),
        keys: keys.len() as u64,
        records: 0,
        queries,
        minimum: 0,
        windows_design: Some(keys.len() as u64 * 2),
        seconds: secs,
    });
}

async fn sparse_mobiles(dir: &Path, rows: &mut Vec<Row>) {
    let now = oifde_sync::tz::now_ms() / 1000;
    let to = now - now.rem_euclid(3600);
    let sim = sim(SimOptions { records: 3_000, users: 1_000, from: to - 30 * DAY, to, ..SimOptions::default() }).await;
    let mut s = settings(&sim, &dir.join("mobiles.db"));
    s.query.user_mobiles = sim.mobiles();
    s.sync.start = Start::Ago(Duration::from_secs(30 * DAY as u64));
    let engine = engine(s);
    let per_key: Vec<u64> = sim
        .mobiles()
        .iter()
        .map(|m| sim.records().iter().filter(|r| &r.call_sor_id == m).count().div_ceil(100).max(1) as u64)
        .collect();
    let ((first, secs), queries) = counted(&sim, pass(&engine, now)).await;
    rows.push(Row {
        scenario: "(b) 1,000 sparse mobiles, 30 days".into(),
        keys: 1_000,
        records: first.figures.records_fetched,
        queries,
        minimum: per_key.iter().sum(),
        windows_design: Some(1_000 * 30 * 24),
        seconds: secs,
    });
    let ((_, secs), queries) = counted(&sim, pass(&engine, now + 300)).await;
    rows.push(Row {
        scenario: "(b) 1,000 sparse mobiles, idle pass".into(),
        keys: 1_000,
        records: 0,
        queries,
        minimum: 1_000,
        windows_design: Some(1_000),
        seconds: secs,
    });
}

async fn dense_window_only(dir: &Path, rows: &mut Vec<Row>) {
    let now = oifde_sync::tz::now_ms() / 1000;
    let to = now - now.rem_euclid(3600);
    let options =
        SimOptions { records: 100_000, users: 50, from: to - 2 * DAY, to, lenient_keys: true, ..SimOptions::default() };
    let sim = sim(options).await;
    let mut s = settings(&sim, &dir.join("dense.db"));
    s.sync.start = Start::At(to - 2 * DAY);
    s.store.full_text = oifde_sync::config::FullText::Off;
    let engine = engine(s);
    let ((first, secs), queries) = counted(&sim, pass(&engine, now)).await;
    assert_eq!(first.figures.inserted, 100_000);
    rows.push(Row {
        scenario: "(c) dense window-only, 100k records".into(),
        keys: 1,
        records: first.figures.records_fetched,
        queries,
        minimum: 1_000,
        windows_design: Some(1_000 + 48),
        seconds: secs,
    });
}

/// A store with a million done keys (and a million-line keys file): what a
/// pass with nothing due costs.
async fn million_done_keys(dir: &Path, rows: &mut Vec<Row>) {
    let now = oifde_sync::tz::now_ms() / 1000;
    let sim = sim(SimOptions { records: 10, ..SimOptions::default() }).await;
    let keys_file = dir.join("million.txt");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&keys_file).unwrap());
    for i in 0..1_000_000 {
        writeln!(f, "call:done-{i:010}").unwrap();
    }
    drop(f);
    let db = dir.join("million.db");
    let mut s = settings(&sim, &db);
    s.query.keys_file = Some(keys_file.clone());
    // First read of the file: every key lands in the store.
    let store = Store::open(&db).unwrap();
    let t = Instant::now();
    let mut store = store;
    store.read_keys_file(&keys_file, now * 1000).unwrap().unwrap();
    let read_secs = t.elapsed().as_secs_f64();
    drop(store);
    rusqlite::Connection::open(&db).unwrap().execute("UPDATE query_keys SET state = 'done'", []).unwrap();
    rows.push(Row {
        scenario: "keys file of 1,000,000 lines, first read".into(),
        keys: 1_000_000,
        records: 0,
        queries: 0,
        minimum: 0,
        windows_design: None,
        seconds: read_secs,
    });
    let engine = engine(s);
    let ((report, secs), queries) = counted(&sim, pass(&engine, now)).await;
    assert_eq!(report.figures.keys, 0);
    rows.push(Row {
        scenario: "1,000,000 done keys, nothing due".into(),
        keys: 1_000_000,
        records: 0,
        queries,
        minimum: 0,
        windows_design: Some(1_000_000),
        seconds: secs,
    });
}

fn print(rows: &[Row]) {
    let mut csv = String::from("scenario,keys,records,queries,minimum,windows_design,seconds\n");
    println!(
        "{:<42} {:>9} {:>8} {:>8} {:>8} {:>12} {:>8}",
        "scenario", "keys", "records", "queries", "minimum", "per-window", "seconds"
    );
    for r in rows {
        let design = r.windows_design.map_or("-".to_string(), |d| d.to_string());
        println!(
            "{:<42} {:>9} {:>8} {:>8} {:>8} {:>12} {:>8.2}",
            r.scenario, r.keys, r.records, r.queries, r.minimum, design, r.seconds
        );
        csv.push_str(&format!(
            "{},{},{},{},{},{},{:.3}\n",
            r.scenario, r.keys, r.records, r.queries, r.minimum, design, r.seconds
        ));
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/requests.csv");
    std::fs::write(&out, csv).unwrap();
    println!("written to {}", out.display());
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        eprintln!("== (a) call-ID feed");
        call_feed(dir.path(), &mut rows).await;
        eprintln!("== (b) sparse mobiles");
        sparse_mobiles(dir.path(), &mut rows).await;
        eprintln!("== (c) dense window-only tenant");
        dense_window_only(dir.path(), &mut rows).await;
        eprintln!("== a million done keys");
        million_done_keys(dir.path(), &mut rows).await;
    });
    print(&rows);
}
