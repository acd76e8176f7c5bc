//! Throughput and memory, side by side in one run, against the simulator on
//! loopback: the fetch-only and store-only ceilings, end-to-end backfills, a
//! second pass, the idle daemon, and a hand-written Python baseline.
//!
//! `bench/run.sh [--records 100000,1000000]`; prints a table and writes
//! `bench/results.csv`. `--store-only N` writes N records through the store
//! alone; `--measures 100000,1000000` times the analyst measures on both stores.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oifde_sync::api::{ApiClient, Query};
use oifde_sync::config::FullText;
use oifde_sync::config::{ApiSettings, Credential};
use oifde_sync::keys::QueryKey;
use oifde_sync::record::Record;
use oifde_sync::secret::Secret;
use oifde_sync::simulator::dataset;
use oifde_sync::store::Store;
use oifde_sync::tz::{self, ServerZone};

const BIN: &str = env!("CARGO_BIN_EXE_oifde-sync");
const USERS: usize = 50;
const DAYS: i64 = 2;
const SEED: u64 = 1;
/// The callers of the large store: a tenant of 100,000 calls a day, about
/// one caller in six calling again within a day.
const LARGE_CALLERS: usize = 500_000;

struct Row {
    scenario: String,
    records: u64,
    seconds: f64,
    peak_rss_mb: Option<f64>,
    /// Bytes on disk a record (the database and its WAL), where a file was written.
    bytes_per_record: Option<f64>,
    note: String,
}

/// The bytes of a SQLite file and its WAL, a record.
fn bytes_per_record(db: &Path, records: usize) -> Option<f64> {
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let total = size(db.to_path_buf()) + size(PathBuf::from(format!("{}-wal", db.display())));
    (total > 0).then(|| total as f64 / records.max(1) as f64)
}

impl Row {
    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }
}

/// The simulator as its own process, so the daemon's RSS is its own.
struct Sim {
    child: Child,
    base_url: String,
    from: i64,
    to: i64,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim(records: usize) -> Sim {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(BIN)
        .args(["simulate", "--listen", &format!("127.0.0.1:{port}"), "--records", &records.to_string()])
        .args(["--users", &USERS.to_string(), "--days", &DAYS.to_string(), "--seed", &SEED.to_string(), "--lenient"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("simulator starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("simulated OIFDE server"), "{first}");
    // "  tenant …, N records from YYYY-MM-DD HH:MM:SS to YYYY-MM-DD HH:MM:SS UTC, …"
    let second = lines.next().unwrap().unwrap();
    let span = second.split(" records from ").nth(1).expect("the simulator prints its span");
    let (from, rest) = span.split_once(" to ").unwrap();
    let to = rest.split(" UTC").next().unwrap();
    let utc = ServerZone::utc();
    let (from, to) = (utc.parse_time(from).unwrap(), utc.parse_time(to).unwrap());
    std::thread::spawn(move || for _ in lines {});
    Sim { child, base_url: format!("http://127.0.0.1:{port}"), from, to }
}

fn api_settings(base_url: &str) -> ApiSettings {
    ApiSettings {
        base_url: base_url.to_string(),
        tenant_id: "tenant001".into(),
        credential: Credential::AppSecret(Secret::new("demo-secret")),
        server_timezone: ServerZone::utc(),
        page_size: 100,
        timeout: Duration::from_secs(30),
        max_requests_per_second: 100_000,
        concurrency: 4,
        ca_file: None,
        insecure_skip_tls_verify: false,
        max_retries: 3,
        retry_delay: Duration::from_millis(50),
    }
}

/// Every page requested and parsed, nothing stored.
async fn fetch_only(sim: &Sim) -> (u64, f64) {
    let client = ApiClient::new(&api_settings(&sim.base_url)).unwrap();
    let key = QueryKey::WindowOnly;
    let started = Instant::now();
    let mut n = 0u64;
    for start in (sim.from..sim.to).step_by(3600) {
        let span = Some((start, (start + 3600).min(sim.to) - 1));
        for page_num in 1.. {
            let page = client.query(&Query { key: &key, span, page_num }).await.unwrap();
            n += page.records.len() as u64;
            if page.records.len() < 100 {
                break;
            }
        }
    }
    (n, started.elapsed().as_secs_f64())
}

/// The same rows written with the store's prepared statements, 100 a
/// transaction, no HTTP; parsing is outside the timing.
fn store_only(records: usize, dir: &Path, full_text: FullText) -> (u64, f64) {
    let mobiles = dataset::mobiles(SEED, USERS);
    let now = tz::now_ms() / 1000;
    let to = now - now.rem_euclid(3600);
    let data = dataset::generate(SEED, records, to - DAYS * 86_400, to, "tenant001", &mobiles);
    let db = dir.join(format!("store-only-{records}-{full_text}.db"));
    let mut store = Store::open_with(&db, full_text).unwrap();
    let mut spent = Duration::ZERO;
    for chunk in data.chunks(100) {
        let page: Vec<Record> =
            chunk.iter().enumerate().map(|(i, r)| Record::from_value(i, &r.to_wire()).unwrap()).collect();
        let t = Instant::now();
        store.apply_page(&page, tz::now_ms()).unwrap();
        spent += t.elapsed();
    }
    (records as u64, spent.as_secs_f64())
}

fn write_config(dir: &Path, sim: &Sim, db: &Path, schedule: &str, start: i64, full_text: FullText) -> PathBuf {
    write_config_for(dir, sim, &format!("path = \"{}\"", db.display()), schedule, start, full_text)
}

/// A config whose `[store]` section starts with `store` (`path = …` or `url = …`).
fn write_config_for(dir: &Path, sim: &Sim, store: &str, schedule: &str, start: i64, full_text: FullText) -> PathBuf {
    let path = dir.join(format!("bench-{full_text}-{}.toml", if store.starts_with("url") { "pg" } else { "lite" }));
    let text = format!(
        "[api]\nbase_url = \"{}\"\ntenant_id = \"tenant001\"\napp_secret = \"demo-secret\"\n\
         max_requests_per_second = 100000\nconcurrency = 4\n\n[sync]\nstart = \"{}\"\nwindow = \"1h\"\n\
         split_above = 1000000\nschedule = \"{schedule}\"\nlag = \"0s\"\n\n[store]\n{store}\nfull_text = \"{full_text}\"\n\n[log]\nlevel = \"warn\"\n",
        sim.base_url,
        ServerZone::utc().format(start),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a command under /usr/bin/time: (wall seconds, peak RSS MB, stdout).
fn timed(cmd: &mut Command) -> (f64, f64, String) {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("PEAK_RSS_KB=%M")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .output()
        .expect("/usr/bin/time runs");
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} failed: {stderr}", cmd.get_program());
    let kb: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_RSS_KB="))
        .and_then(|v| v.trim().parse().ok())
        .expect("peak RSS reported");
    (seconds, kb / 1024.0, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn backfill_cmd(config: &Path, sim: &Sim) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["--config", config.to_str().unwrap(), "backfill"]).args([
        "--from",
        &ServerZone::utc().format(sim.from),
        "--to",
        &ServerZone::utc().format(sim.to - 1),
    ]);
    cmd
}

/// RSS (MB) and CPU share of the daemon between passes.
fn idle_daemon(sim: &Sim, dir: &Path) -> (f64, f64) {
    let db = dir.join("idle.db");
    let config = write_config(dir, sim, &db, "0 0 0 1 1 *", sim.to - 60, FullText::Callers);
    let mut child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let cpu = |pid: u32| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
    };
    let before = cpu(child.id());
    std::thread::sleep(Duration::from_secs(5));
    let used = cpu(child.id()) - before;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    (rss_kb / 1024.0, used / 5.0 * 100.0)
}

/// `--store-only N`: N records (10,000,000 say) written through the store
/// in pages of 100 (`--pages K`: K pages a transaction), generated a day of
/// 100,000 calls at a time (the simulator would hold the whole tenant in
/// memory: about 6.5 KB a record), from [`LARGE_CALLERS`] callers, the days
/// ending now, each day's CDR legs stored before its sessions (not timed);
/// the rate of each million, the bytes a record, and the five questions and
/// the analyst measures on the result.
fn store_only_large(n: usize, pages_per_transaction: usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("large.db");
    let mut store = Store::open(&db).unwrap();
    let mobiles = dataset::mobiles(SEED, LARGE_CALLERS);
    let now = tz::now_ms() / 1000;
    let end = now - now.rem_euclid(86_400);
    let first_day = end - (n.div_ceil(100_000) as i64) * 86_400;
    let chunk = 100_000;
    let (mut written, mut spent) = (0usize, Duration::ZERO);
    let mut million = (0usize, Duration::ZERO);
    let mut call = String::new();
    println!("{:>10} {:>14} {:>16}", "records", "records/s", "this million /s");
    while written < n {
        let this = chunk.min(n - written);
        let day = first_day + (written / chunk) as i64 * 86_400;
        let t = Instant::now();
        let data = dataset::generate(SEED + written as u64, this, day, day + 86_400, "tenant001", &mobiles);
        call.clone_from(&data[data.len() / 2].call_id);
        let csv_text = oifde_sync::simulator::cdr::csv_text(
            &oifde_sync::simulator::cdr::legs(&data, SEED),
            &ServerZone::utc(),
            true,
        );
        let generating = t.elapsed();
        // The day's CDR legs first (not timed), as the measures need them.
        let t = Instant::now();
        store_legs(&mut store, &csv_text);
        let legs = t.elapsed();
        let before = spent;
        for page in data.chunks(100 * pages_per_transaction) {
            let page: Vec<Record> =
                page.iter().enumerate().map(|(i, r)| Record::from_value(i, &r.to_wire()).unwrap()).collect();
            let t = Instant::now();
            store.apply_page(&page, tz::now_ms()).unwrap();
            spent += t.elapsed();
        }
        written += this;
        eprintln!(
            "{written:>10}: generating {:.1} s, CDR legs {:.1} s, sessions {:.1} s ({:.0} records/s)",
            generating.as_secs_f64(),
            legs.as_secs_f64(),
            (spent - before).as_secs_f64(),
            this as f64 / (spent - before).as_secs_f64()
        );
        if written % 1_000_000 == 0 || written == n {
            let (n0, t0) = million;
            let rate = (written - n0) as f64 / (spent - t0).as_secs_f64();
            println!("{written:>10} {:>14.0} {rate:>16.0}", written as f64 / spent.as_secs_f64());
            million = (written, spent);
        }
    }
    drop(store);
    println!("bytes a record: {:.0}", bytes_per_record(&db, n).unwrap_or(0.0));
    print_bytes_by_part(&db, n);
    print_queries(&[(n, time_queries(&db))], "bench/queries-store-only.csv");
    let conn = rusqlite::Connection::open(&db).unwrap();
    println!("{:<40} {:>10}", "measure (best of 3)", "ms");
    for (question, sql) in MEASURES {
        let sql = sql.replace("{call}", &call).replace("{tenant}", "");
        let ms = (0..3)
            .map(|_| {
                let t = Instant::now();
                let rows = conn.prepare(&sql).unwrap().query_map([], |_| Ok(())).unwrap().count();
                assert!(rows > 0, "{sql}");
                t.elapsed().as_secs_f64() * 1000.0
            })
            .fold(f64::MAX, f64::min);
        println!("{question:<40} {ms:>10.1}");
    }
}

/// Where a record's bytes go: each table and index (SQLite's `dbstat`,
/// pages as allocated), then the text columns of the three data tables
/// (their UTF-8 bytes, before row and page overhead), a record.
fn print_bytes_by_part(db: &Path, n: usize) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let per = |sql: &str| -> Vec<(String, f64)> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, f64>(1)? / n as f64))).unwrap().map(Result::unwrap).collect()
    };
    println!("bytes a record by table and index (dbstat):");
    for (name, bytes) in per("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC") {
        if bytes >= 1.0 {
            println!("  {name:<36} {bytes:>8.0}");
        }
    }
    println!("bytes a record by text column:");
    let tables: Vec<(String, Vec<String>)> = ["records", "turn_rows", "qa_rows"]
        .iter()
        .map(|t| {
            let cols = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (t.to_string(), cols)
        })
        .collect();
    for (table, cols) in tables {
        let sums: Vec<String> = cols
            .iter()
            .map(|c| format!("sum(CASE WHEN typeof(\"{c}\") = 'text' THEN length(CAST(\"{c}\" AS BLOB)) END)"))
            .collect();
        let row: Vec<Option<f64>> = conn
            .query_row(&format!("SELECT {} FROM {table}", sums.join(", ")), [], |r| {
                (0..cols.len()).map(|i| r.get(i)).collect()
            })
            .unwrap();
        let mut parts: Vec<(&String, f64)> =
            cols.iter().zip(row).map(|(c, b)| (c, b.unwrap_or(0.0) / n as f64)).filter(|(_, b)| *b >= 1.0).collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        let shown: Vec<String> = parts.iter().map(|(c, b)| format!("{c} {b:.0}")).collect();
        println!("  {table}: {}", shown.join(", "));
    }
}

/// A CDR file's legs (UTC) read into the store, as `keys import` does.
fn store_legs(store: &mut Store, csv_text: &str) {
    oifde_sync::cdr::read_csv(csv_text.as_bytes(), "bench.csv", &ServerZone::utc(), &mut |legs| {
        store.add_cdr_legs(legs, oifde_sync::keys::KeyKind::Cti, tz::now_ms()).map(drop).map_err(|e| e.to_string())
    })
    .unwrap();
}

/// The analyst measures (views on the summary tables) as an analyst asks them.
const MEASURES: &[(&str, &str)] = &[
    ("KPIs per day, every day", "SELECT * FROM v_daily_kpis"),
    ("KPIs per hour of the last day", "SELECT * FROM v_hourly_kpis WHERE day = (SELECT max(day) FROM v_daily_kpis)"),
    (
        "Drop-off intentions, top 10",
        "SELECT intention, sum(sessions) FROM v_dropoff GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    ),
    // PostgreSQL holds many tenants: its analysts name theirs, as
    // docs/postgresql.md does ({tenant} is empty on SQLite).
    ("The 50 latest sessions' outcomes", "SELECT * FROM v_session_outcomes {tenant} ORDER BY start_time DESC LIMIT 50"),
    ("One call's sessions and outcome", "SELECT * FROM v_session_outcomes WHERE call_id = '{call}'"),
];

/// The views as they were before the measures were kept in tables (GROUP
/// BYs over the rows at every read), as `ref_*` views: the baseline.
fn views_before(schema: &str, version: i64) -> String {
    let start = schema.find(&format!("\n-- migration: {version}\n")).unwrap();
    let end = schema.find(&format!("\n-- migration: {}\n", version + 1)).unwrap();
    let section = &schema[start..end];
    section[section.find("CREATE VIEW").unwrap()..]
        .replace("VIEW v_", "VIEW ref_")
        .replace("FROM v_session_outcomes", "FROM ref_session_outcomes")
}

/// `--measures 100000,1000000`: that many sessions with their CDR legs
/// written through the store into SQLite and into PostgreSQL, then each
/// measure timed (best of 3) on both, and the report's figures for 30
/// days; at small sizes the same questions on the views as they were before
/// (one run each: they take seconds to minutes).
fn measures(sizes: &[usize]) {
    let dir = tempfile::tempdir().unwrap();
    let server = pg_server();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut csv = String::from("store,sessions,question,ms,before_ms\n");
    println!("{:<10} {:>9} {:<38} {:>10} {:>12}", "store", "sessions", "question", "ms", "before, ms");
    for &n in sizes {
        let db = dir.path().join(format!("measures-{n}.db"));
        let url = server.as_ref().map(|s| pg_database(s, &format!("oifde_measures_{n}")));
        let mut stores = vec![("SQLite", Store::open(&db).unwrap())];
        if let Some(url) = &url {
            let pg = oifde_sync::config::PgSettings::parse(url, "tenant001").unwrap();
            stores.push(("PostgreSQL", Store::open_postgres(&pg, FullText::Callers).unwrap()));
        }
        let mobiles = dataset::mobiles(SEED, 20_000);
        let now = tz::now_ms() / 1000;
        let to = now - now.rem_euclid(86_400);
        let days = (n as i64 / 100_000).max(1) * 2;
        let chunk = 100_000;
        let zone = ServerZone::utc();
        let mut written = 0;
        let mut call = String::new();
        while written < n {
            let this = chunk.min(n - written);
            let from = to - days * 86_400 + (written as i64 * days * 86_400 / n as i64);
            let till = from + this as i64 * days * 86_400 / n as i64;
            let data = dataset::generate(SEED + written as u64, this, from, till, "tenant001", &mobiles);
            call.clone_from(&data[data.len() / 2].call_id);
            let legs = oifde_sync::simulator::cdr::legs(&data, SEED);
            let csv_text = oifde_sync::simulator::cdr::csv_text(&legs, &zone, true);
            for (_, store) in stores.iter_mut() {
                store_legs(store, &csv_text);
                for page in data.chunks(100) {
                    let page: Vec<Record> =
                        page.iter().enumerate().map(|(i, r)| Record::from_value(i, &r.to_wire()).unwrap()).collect();
                    store.apply_page(&page, tz::now_ms()).unwrap();
                }
            }
            written += this;
            eprintln!("== {written} of {n} sessions written");
        }
        // The views before take seconds at 100,000 sessions on SQLite, and a
        // minute at a few thousand on PostgreSQL: timed below those sizes.
        let baseline = |store: &str| if store == "SQLite" { n <= 100_000 } else { n <= 2_000 };
        let lite = rusqlite::Connection::open(&db).unwrap();
        if baseline("SQLite") {
            lite.execute_batch(&views_before(include_str!("../schema.sql"), 9)).unwrap();
        }
        let pg_client = url.as_ref().map(|url| {
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                if baseline("PostgreSQL") {
                    client.batch_execute(&views_before(include_str!("../schema.pg.sql"), 6)).await.unwrap();
                }
                // What autovacuum does soon after a bulk write.
                client.batch_execute("VACUUM ANALYZE").await.unwrap();
                client
            })
        });
        let lite_ms = |sql: &str| {
            let t = Instant::now();
            let rows = lite.prepare(sql).unwrap().query_map([], |_| Ok(())).unwrap().count();
            assert!(rows > 0, "{sql}");
            t.elapsed().as_secs_f64() * 1000.0
        };
        let pg_ms = |sql: &str| {
            let client = pg_client.as_ref().unwrap();
            let t = Instant::now();
            // The simple protocol, one round trip, as psql asks.
            let rows = rt
                .block_on(client.simple_query(sql))
                .unwrap()
                .iter()
                .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
                .count();
            assert!(rows > 0, "{sql}");
            t.elapsed().as_secs_f64() * 1000.0
        };
        for (name, _) in &stores {
            let time = |sql: &str| if *name == "SQLite" { lite_ms(sql) } else { pg_ms(sql) };
            let last_day = &ServerZone::utc().format(to - 86_400)[..10];
            let tenant = if *name == "SQLite" { "" } else { "WHERE tenant_id = 'tenant001'" };
            for (question, sql) in MEASURES {
                let sql = &sql.replace("{day}", last_day).replace("{call}", &call).replace("{tenant}", tenant);
                let ms = (0..3).map(|_| time(sql)).fold(f64::MAX, f64::min);
                let before = baseline(name).then(|| time(&sql.replace("FROM v_", "FROM ref_")));
                let shown = before.map_or("-".to_string(), |b| format!("{b:.0}"));
                println!("{name:<10} {n:>9} {question:<38} {ms:>10.1} {shown:>12}");
                csv.push_str(&format!(
                    "{name},{n},\"{question}\",{ms:.1},{}\n",
                    before.map_or(String::new(), |b| format!("{b:.0}"))
                ));
            }
        }
        for (name, store) in &stores {
            let t = Instant::now();
            let kpis = store.kpis((to - 30 * 86_400) * 1000, to * 1000).unwrap();
            assert!(kpis.days.iter().map(|d| d.sessions).sum::<i64>() > 0);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let question = "The report's figures, 30 days";
            println!("{name:<10} {n:>9} {question:<38} {ms:>10.1} {:>12}", "-");
            csv.push_str(&format!("{name},{n},\"{question}\",{ms:.1},\n"));
        }
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/measures.csv");
    std::fs::write(&out, csv).unwrap();
    println!("written to {}", out.display());
}

fn main() {
    if let Some(sizes) = std::env::args().skip_while(|a| a != "--measures").nth(1) {
        measures(&sizes.split(',').map(|s| s.parse().expect("--measures takes numbers")).collect::<Vec<_>>());
        return;
    }
    if let Some(n) = std::env::args().skip_while(|a| a != "--store-only").nth(1) {
        let pages = std::env::args()
            .skip_while(|a| a != "--pages")
            .nth(1)
            .map_or(1, |p| p.parse().expect("--pages takes a number"));
        store_only_large(n.parse().expect("--store-only takes a number"), pages);
        return;
    }
    let sizes: Vec<usize> = std::env::args()
        .skip_while(|a| a != "--records")
        .nth(1)
        .unwrap_or_else(|| "100000".into())
        .split(',')
        .map(|s| s.parse().expect("--records takes numbers"))
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<Row> = Vec::new();
    let mut queries: Vec<(usize, Vec<(&str, f64)>)> = Vec::new();
    let has_python = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    let pg_server = pg_server();
    for &n in &sizes {
        eprintln!("== {n} records: starting the simulator");
        let sim = start_sim(n);
        let (got, secs) = rt.block_on(fetch_only(&sim));
        assert_eq!(got, n as u64, "fetch-only read every record");
        rows.push(Row {
            scenario: format!("fetch-only ceiling {n}"),
            records: got,
            seconds: secs,
            peak_rss_mb: None,
            bytes_per_record: None,
            note: "simulator serves at least this rate".into(),
        });
        for full_text in [FullText::Callers, FullText::All, FullText::Off] {
            let label = match full_text {
                FullText::Callers => String::new(),
                other => format!(", full_text = {other}"),
            };
            let (got, secs) = store_only(n, dir.path(), full_text);
            rows.push(Row {
                scenario: format!("store ceiling{label} {n}"),
                records: got,
                seconds: secs,
                peak_rss_mb: None,
                bytes_per_record: None,
                note: String::new(),
            });
            let db = dir.path().join(format!("e2e-{n}-{full_text}.db"));
            let config = write_config(dir.path(), &sim, &db, "0 */5 * * * *", sim.from, full_text);
            let (secs, rss, out) = timed(&mut backfill_cmd(&config, &sim));
            assert!(out.contains(&format!("{n} inserted")), "{out}");
            rows.push(Row {
                scenario: format!("end-to-end backfill{label} {n}"),
                records: n as u64,
                seconds: secs,
                peak_rss_mb: Some(rss),
                bytes_per_record: bytes_per_record(&db, n),
                note: String::new(),
            });
            if full_text == FullText::Callers {
                queries.push((n, time_queries(&db)));
                let (secs, rss, out) = timed(&mut backfill_cmd(&config, &sim));
                assert!(out.contains(" 0 inserted, 0 updated,"), "{out}");
                rows.push(Row {
                    scenario: format!("second pass {n}"),
                    records: n as u64,
                    seconds: secs,
                    peak_rss_mb: Some(rss),
                    bytes_per_record: None,
                    note: "0 rows written".into(),
                });
            }
        }

        if let Some(server) = &pg_server {
            let url = pg_database(server, &format!("oifde_bench_{n}"));
            let config = write_config_for(
                dir.path(),
                &sim,
                &format!("url = \"{url}\""),
                "0 */5 * * * *",
                sim.from,
                FullText::Callers,
            );
            let (secs, rss, out) = timed(&mut backfill_cmd(&config, &sim));
            assert!(out.contains(&format!("{n} inserted")), "{out}");
            rows.push(Row {
                scenario: format!("end-to-end backfill into PostgreSQL {n}"),
                records: n as u64,
                seconds: secs,
                peak_rss_mb: Some(rss),
                bytes_per_record: Some(pg_bytes(&url) / n as f64),
                note: "local server, fsync on".into(),
            });
            let (secs, rss, out) = timed(&mut backfill_cmd(&config, &sim));
            assert!(out.contains(" 0 inserted, 0 updated,"), "{out}");
            rows.push(Row {
                scenario: format!("second pass into PostgreSQL {n}"),
                records: n as u64,
                seconds: secs,
                peak_rss_mb: Some(rss),
                bytes_per_record: None,
                note: "0 rows written".into(),
            });
        }

        if has_python {
            let py_db = dir.path().join(format!("baseline-{n}.db"));
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/baseline.py");
            let mut cmd = Command::new("python3");
            cmd.arg(script).args(["--base-url", &sim.base_url, "--db", py_db.to_str().unwrap()]).args([
                "--from",
                &ServerZone::utc().format(sim.from),
                "--to",
                &ServerZone::utc().format(sim.to - 1),
            ]);
            let (secs, rss, out) = timed(&mut cmd);
            assert_eq!(out.trim(), n.to_string(), "the baseline read every record");
            rows.push(Row {
                scenario: format!("python baseline {n}"),
                records: n as u64,
                seconds: secs,
                peak_rss_mb: Some(rss),
                bytes_per_record: bytes_per_record(&py_db, n),
                note: "urllib + sqlite3".into(),
            });
        }
        if n == sizes[0] {
            let (rss, cpu) = idle_daemon(&sim, dir.path());
            rows.push(Row {
                scenario: "idle daemon".into(),
                records: 0,
                seconds: 5.0,
                peak_rss_mb: Some(rss),
                bytes_per_record: None,
                note: format!("RSS between passes; CPU {cpu:.2} %"),
            });
        }
    }
    print_table(&rows);
    print_queries(&queries, "bench/queries.csv");
}

/// A PostgreSQL server for the PostgreSQL rows: `OIFDE_BENCH_PG_URL`, else a
/// durable (fsync on) throwaway one that `.ci/postgres` starts on port 55433.
fn pg_server() -> Option<String> {
    if let Ok(url) = std::env::var("OIFDE_BENCH_PG_URL") {
        return Some(url);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
    let out = Command::new(script).env("OIFDE_TEST_PG_PORT", "55433").env("OIFDE_PG_DURABLE", "1").output().ok()?;
    if !out.status.success() {
        eprintln!("no PostgreSQL server: the PostgreSQL rows are left out");
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql").args([url, "-XAtqc", sql]).output().expect("psql runs");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A new, empty database `name` on `server`; its URL.
fn pg_database(server: &str, name: &str) -> String {
    psql(server, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(server, &format!("CREATE DATABASE {name}"));
    let (base, query) = server.split_once('?').unwrap_or((server, ""));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    format!("{base}/{name}?{query}")
}

/// Bytes of the store's tables, their indexes and TOAST.
fn pg_bytes(url: &str) -> f64 {
    psql(url, "SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")
        .parse()
        .unwrap()
}

/// The analysts' five questions on a synced store: milliseconds each, the
/// best of three runs (the first warms the page cache).
fn time_queries(db: &Path) -> Vec<(&'static str, f64)> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    oifde_sync::queries::CANONICAL
        .iter()
        .map(|(title, sql)| {
            let best = (0..3)
                .map(|_| {
                    let t = Instant::now();
                    let mut stmt = conn.prepare(sql).unwrap();
                    let rows = stmt.query_map([], |_| Ok(())).unwrap().count();
                    assert!(rows > 0, "{title}");
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .fold(f64::MAX, f64::min);
            (*title, best)
        })
        .collect()
}

fn print_queries(queries: &[(usize, Vec<(&str, f64)>)], file: &str) {
    let mut csv = String::from("records,question,ms\n");
    println!("\n{:<40} {:>10} {:>12}", "question (best of 3)", "records", "ms");
    for (n, timings) in queries {
        for (title, ms) in timings {
            println!("{title:<40} {n:>10} {ms:>12.1}");
            csv.push_str(&format!("{n},{title},{ms:.1}\n"));
        }
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::write(&out, csv).unwrap();
}

fn print_table(rows: &[Row]) {
    let baseline = |scenario: &str| -> Option<f64> {
        let n = scenario.rsplit(' ').next()?;
        rows.iter().find(|r| r.scenario == format!("python baseline {n}")).map(Row::rate)
    };
    let mut csv = String::from("scenario,records,seconds,records_per_s,peak_rss_mb,bytes_per_record,x_baseline,note\n");
    println!(
        "{:<44} {:>9} {:>9} {:>12} {:>10} {:>10} {:>11}  note",
        "scenario", "records", "seconds", "records/s", "RSS MB", "B/record", "x baseline"
    );
    for r in rows {
        let ratio = baseline(&r.scenario).filter(|_| r.records > 0).map(|b| r.rate() / b);
        let rss = r.peak_rss_mb.map_or(String::from("-"), |m| format!("{m:.1}"));
        let x = ratio.map_or(String::from("-"), |x| format!("{x:.2}"));
        let rate = if r.records > 0 { format!("{:.0}", r.rate()) } else { "-".into() };
        let bytes = r.bytes_per_record.map_or(String::from("-"), |b| format!("{b:.0}"));
        println!(
            "{:<44} {:>9} {:>9.2} {:>12} {:>10} {:>10} {:>11}  {}",
            r.scenario, r.records, r.seconds, rate, rss, bytes, x, r.note
        );
        csv.push_str(&format!(
            "{},{},{:.3},{},{},{},{},{}\n",
            r.scenario, r.records, r.seconds, rate, rss, bytes, x, r.note
        ));
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results.csv");
    std::fs::write(&out, csv).unwrap();
    println!("written to {}", out.display());
}
