//! Shared test setup: a simulator, settings pointing at it, an engine, and the
//! comparison of a store with the simulator's dataset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oifde_sync::api::ApiClient;
use oifde_sync::config::Settings;
use oifde_sync::record::{Qa, Record, Turn};
use oifde_sync::simulator::{SimOptions, SimRecord, Simulator};
use oifde_sync::store::Store;
use oifde_sync::sync::{Engine, PassKind, PassReport};
use rusqlite::{Connection, OptionalExtension};
use tokio_util::sync::CancellationToken;

/// A fixed period, so tests do not depend on today's date: 2026-11-02 00:00 UTC, two days.
pub const FROM: i64 = 1_793_577_600;
pub const TO: i64 = FROM + 2 * 86_400;

pub fn options(records: usize) -> SimOptions {
    SimOptions { records, users: 6, from: FROM, to: TO, seed: 7, ..SimOptions::default() }
}

pub async fn simulator(options: SimOptions) -> Simulator {
    Simulator::start(options, "127.0.0.1:0".parse().unwrap()).await.expect("simulator starts")
}

pub fn settings(sim: &Simulator, db: &Path) -> Settings {
    let mut s = oifde_sync::commands::demo::settings_for(sim, db.to_path_buf());
    s.api.retry_delay = std::time::Duration::from_millis(5);
    s.api.max_retries = 8;
    s.sync.window = std::time::Duration::from_secs(12 * 3600);
    s
}

pub fn engine(settings: Settings) -> Engine {
    let client = Arc::new(ApiClient::new(&settings.api).expect("client builds"));
    let store = Store::open_configured(&settings.store).expect("store opens");
    Engine::new(Arc::new(settings), client, store)
}

pub async fn backfill(engine: &Engine) -> PassReport {
    let kind = PassKind::Backfill { from: FROM, to: TO - 1, key: None };
    engine.pass(kind, &CancellationToken::new()).await.expect("pass runs")
}

pub async fn incremental(engine: &Engine, now: i64) -> PassReport {
    let kind = PassKind::Incremental { now, label: "sync" };
    engine.pass(kind, &CancellationToken::new()).await.expect("pass runs")
}

pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mirror.db");
    (dir, db)
}

/// Every row of the three data tables, rowids included, as text.
pub fn dump_data(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut out = Vec::new();
    for table in ["records", "record_details", "qa_records"] {
        let mut stmt = conn.prepare(&format!("SELECT rowid, * FROM {table} ORDER BY rowid")).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |row| {
                let cells: Vec<String> = (0..n).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect();
                Ok(format!("{table}: {}", cells.join(", ")))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

#[derive(Debug, PartialEq)]
struct Columns {
    tenant_id: Option<String>,
    call_sor_id: Option<String>,
    call_id: Option<String>,
    cti_call_id: Option<String>,
    calling_number: Option<String>,
    called_number: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    last_update_time: Option<i64>,
    flow_inst_id: Option<String>,
    dialog_type: Option<String>,
    call_data: Option<String>,
    location_id: Option<i64>,
    flag: Option<String>,
    business_info: Option<String>,
    business_info_str: Option<String>,
    record_file_name: Option<String>,
    yugao_file_name: Option<String>,
}

fn expected_columns(r: &SimRecord) -> Columns {
    let (record_file_name, yugao_file_name, location_id) = r.expected_business_columns();
    Columns {
        tenant_id: Some(r.tenant_id.clone()),
        call_sor_id: Some(r.call_sor_id.clone()),
        call_id: Some(r.call_id.clone()),
        cti_call_id: r.cti_call_id.clone(),
        calling_number: r.calling_number.clone(),
        called_number: r.called_number.clone(),
        start_time: Some(r.start_time),
        end_time: r.end_time,
        last_update_time: r.last_update_time,
        flow_inst_id: r.flow_inst_id.clone(),
        dialog_type: r.dialog_type.clone(),
        call_data: r.call_data.clone(),
        location_id,
        flag: r.flag.clone(),
        business_info: r.business_info.clone(),
        business_info_str: r.business_info_text(),
        record_file_name,
        yugao_file_name,
    }
}

/// Asserts the store holds exactly `expected`, field by field.
pub fn assert_mirrors(db: &Path, expected: &[SimRecord]) {
    let conn = Connection::open(db).unwrap();
    let count: i64 = conn.query_row("SELECT count(*) FROM records", [], |r| r.get(0)).unwrap();
    assert_eq!(count as usize, expected.len(), "number of records");
    let mut record = conn
        .prepare(
            "SELECT tenant_id, call_sor_id, call_id, cti_call_id, calling_number, called_number, start_time, \
             end_time, last_update_time, flow_inst_id, dialog_type, call_data, location_id, flag, business_info, \
             business_info_str, record_file_name, yugao_file_name, raw_json FROM records WHERE log_id = ?1",
        )
        .unwrap();
    let mut turns = conn
        .prepare(
            "SELECT inter_no, user_saying, intention, system_reply, reply_time, request_time, response_source, \
             involve_mode, extra_json FROM record_details WHERE log_id = ?1 ORDER BY seq",
        )
        .unwrap();
    let mut qas = conn
        .prepare(
            "SELECT inter_no, series_id, question_title, question_type, answer_intent, original_answer, create_time, \
             extra_json FROM qa_records WHERE log_id = ?1 ORDER BY seq",
        )
        .unwrap();
    let (mut total_turns, mut total_qa) = (0, 0);
    for r in expected {
        let (columns, raw): (Columns, String) = record
            .query_row([&r.log_id], |row| {
                Ok((
                    Columns {
                        tenant_id: row.get(0)?,
                        call_sor_id: row.get(1)?,
                        call_id: row.get(2)?,
                        cti_call_id: row.get(3)?,
                        calling_number: row.get(4)?,
                        called_number: row.get(5)?,
                        start_time: row.get(6)?,
                        end_time: row.get(7)?,
                        last_update_time: row.get(8)?,
                        flow_inst_id: row.get(9)?,
                        dialog_type: row.get(10)?,
                        call_data: row.get(11)?,
                        location_id: row.get(12)?,
                        flag: row.get(13)?,
                        business_info: row.get(14)?,
                        business_info_str: row.get(15)?,
                        record_file_name: row.get(16)?,
                        yugao_file_name: row.get(17)?,
                    },
                    row.get(18)?,
                ))
            })
            .optional()
            .unwrap()
            .unwrap_or_else(|| panic!("record {} is missing", r.log_id));
        assert_eq!(columns, expected_columns(r), "columns of record {}", r.log_id);
        let got_turns: Vec<Turn> = turns
            .query_map([&r.log_id], |row| {
                Ok(Turn {
                    inter_no: row.get(0)?,
                    user_saying: row.get(1)?,
                    intention: row.get(2)?,
                    system_reply: row.get(3)?,
                    reply_time: row.get(4)?,
                    request_time: row.get(5)?,
                    response_source: row.get(6)?,
                    involve_mode: row.get(7)?,
                    extra_json: row.get(8)?,
                })
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // Each column as the simulator meant it; extra_json holds what the
        // columns do not, as sent, which the rebuilt record checks below.
        let columns_only =
            |turns: &[Turn]| -> Vec<Turn> { turns.iter().map(|t| Turn { extra_json: None, ..t.clone() }).collect() };
        assert_eq!(columns_only(&got_turns), columns_only(&r.details), "turns of record {}", r.log_id);
        let got_qa: Vec<Qa> = qas
            .query_map([&r.log_id], |row| {
                Ok(Qa {
                    inter_no: row.get(0)?,
                    series_id: row.get(1)?,
                    question_title: row.get(2)?,
                    question_type: row.get(3)?,
                    answer_intent: row.get(4)?,
                    original_answer: row.get(5)?,
                    create_time: row.get(6)?,
                    extra_json: row.get(7)?,
                })
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let columns_only = |qa: &[Qa]| -> Vec<Qa> { qa.iter().map(|q| Qa { extra_json: None, ..q.clone() }).collect() };
        assert_eq!(columns_only(&got_qa), columns_only(&r.qa), "Q&A of record {}", r.log_id);
        // The record as the server sent it, from its row, raw_json, turns and Q&A rows.
        let stored = Record {
            log_id: r.log_id.clone(),
            tenant_id: columns.tenant_id,
            call_sor_id: columns.call_sor_id,
            call_id: columns.call_id,
            cti_call_id: columns.cti_call_id,
            calling_number: columns.calling_number,
            called_number: columns.called_number,
            start_time: columns.start_time,
            end_time: columns.end_time,
            last_update_time: columns.last_update_time,
            flow_inst_id: columns.flow_inst_id,
            dialog_type: columns.dialog_type,
            call_data: columns.call_data,
            location_id: columns.location_id,
            flag: columns.flag,
            business_info: columns.business_info,
            business_info_str: columns.business_info_str,
            record_file_name: columns.record_file_name,
            yugao_file_name: columns.yugao_file_name,
            details: got_turns,
            qa: got_qa,
            raw_json: raw,
            content_hash: String::new(),
            nul_replaced: false,
        };
        let mut wire = r.to_wire();
        if serde_json::from_str::<serde_json::Value>(&stored.raw_json).unwrap().get("logId").is_some() {
            // Written under the earlier rule (a store migrated from before
            // schema 11): raw_json is the record without its lists.
            for list in ["recordDetials", "recordDetails", "qaRecords"] {
                wire.as_object_mut().unwrap().remove(list);
            }
            let raw: serde_json::Value = serde_json::from_str(&stored.raw_json).unwrap();
            assert_eq!(raw, wire, "raw_json of record {}", r.log_id);
        } else {
            assert_eq!(stored.rebuild(), wire, "record {} rebuilt from the store", r.log_id);
        }
        total_turns += r.details.len();
        total_qa += r.qa.len();
    }
    let count = |t: &str| conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get::<_, i64>(0)).unwrap();
    // The tables beneath the views: a turn whose record is gone counts too.
    assert_eq!(count("turn_rows") as usize, total_turns, "no stray turns");
    assert_eq!(count("qa_rows") as usize, total_qa, "no stray Q&A rows");
    assert_summaries_exact(&conn);
}

/// The summary tables equal the GROUP BY over the rows they count.
pub fn assert_summaries_exact(conn: &Connection) {
    let rows = |sql: &str| -> Vec<String> {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |row| {
            Ok((0..n).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect::<Vec<_>>().join("|"))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    let pairs = [
        (
            "SELECT day, calls FROM summary_calls_per_day WHERE calls != 0 ORDER BY 1",
            "SELECT coalesce(date(start_time / 1000, 'unixepoch'), ''), count(*) FROM records GROUP BY 1 ORDER BY 1",
        ),
        (
            "SELECT day, intention, turns FROM summary_intentions_per_day WHERE turns != 0 ORDER BY 1, 2",
            "SELECT coalesce(date(request_time / 1000, 'unixepoch'), ''), intention, count(*) FROM record_details \
             WHERE intention IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
        ),
        (
            "SELECT question_title, answer_intent, answers FROM summary_answers WHERE answers != 0 ORDER BY 1, 2",
            "SELECT coalesce(question_title, ''), coalesce(answer_intent, ''), count(*) FROM qa_records \
             GROUP BY 1, 2 ORDER BY 1, 2",
        ),
    ];
    for (summary, base) in pairs {
        assert_eq!(rows(summary), rows(base), "{summary}");
    }
}

/// A child process that is killed if the test fails before it ends.
pub struct Spawned(pub std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary started in `dir` with `args` and `env`, its stderr to `stderr`.
pub fn spawn(dir: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)], stderr: std::process::Stdio) -> Spawned {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_oifde-sync"));
    cmd.current_dir(dir).args(args).env_remove("OIFDE_SYNC_CONFIG").stdout(std::process::Stdio::null()).stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Spawned(cmd.spawn().expect("the binary starts"))
}

/// Points a config written by `cli::write_config` at `keys_file` instead of its mobiles.
pub fn use_keys_file(config: &Path, keys_file: &Path) {
    let text = std::fs::read_to_string(config)
        .unwrap()
        .replace("user_mobiles = [", &format!("keys_file = \"{}\"\nuser_mobiles = [] # ", keys_file.display()));
    std::fs::write(config, text).unwrap();
}

/// Every block of the README and of `docs/*.md` fenced as ```` ```INFO ````, e.g. `sql`.
pub fn doc_blocks(info: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    files.insert(0, root.join("README.md"));
    let fence = format!("```{info}\n");
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.split(&fence).skip(1).map(|rest| rest.split("```").next().unwrap().to_string()).collect::<Vec<_>>()
        })
        .collect()
}

/// Replaces the `store.path` line of `config` with `store.url = url`.
pub fn use_url(config: &Path, url: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let line = text.lines().find(|l| l.starts_with("path = ")).expect("the config names store.path");
    std::fs::write(config, text.replace(line, &format!("url = \"{url}\""))).unwrap();
}

/// Which store a test writes: the same test runs on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// The test PostgreSQL server's URL: `OIFDE_TEST_PG_URL`, else one that
/// `.ci/postgres` starts (Debian's `postgresql` package) and stops once
/// these tests have ended. The tests that need it are compiled as ignored
/// where neither is to be had (`build.rs`); where one is and it cannot be
/// reached, they fail.
pub fn pg_server() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        if let Some(url) = std::env::var("OIFDE_TEST_PG_URL").ok().filter(|u| !u.is_empty()) {
            return url;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
        let out = std::process::Command::new(&script)
            .args(["--stop-with", &std::process::id().to_string()])
            .output()
            .unwrap_or_else(|e| panic!("{} cannot run: {e}", script.display()));
        assert!(out.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
    .clone()
}

/// Runs `sql` (simple protocol, text results) on the database at `url`.
pub fn pg_rows(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    try_pg_rows(url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// As [`pg_rows`], the server's error returned.
pub fn try_pg_rows(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("test database");
            tokio::spawn(conn);
            let mut rows = Vec::new();
            for m in client
                .simple_query(&sql)
                .await
                .map_err(|e| e.as_db_error().map_or(e.to_string(), |d| d.message().to_string()))?
            {
                if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                    rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
                }
            }
            Ok(rows)
        })
    })
    .join()
    .unwrap()
}

/// A new, empty database on the test server; databases of earlier runs are dropped first.
pub fn pg_database() -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    static CLEANED: std::sync::Once = std::sync::Once::new();
    let server = pg_server();
    let pid = std::process::id();
    CLEANED.call_once(|| {
        let mine = format!("oifde_{pid}_");
        for row in pg_rows(&server, "SELECT datname FROM pg_database WHERE datname LIKE 'oifde\\_%'") {
            let name = row[0].clone().unwrap();
            if !name.starts_with(&mine) {
                pg_rows(&server, &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
            }
        }
    });
    let name = format!("oifde_{pid}_{}", COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    pg_rows(&server, &format!("CREATE DATABASE \"{name}\""));
    let (base, query) = server.split_once('?').unwrap_or((&server, ""));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    if query.is_empty() { format!("{base}/{name}") } else { format!("{base}/{name}?{query}") }
}

/// A store for one test: a SQLite file, or a database of its own on the test server.
pub struct TestStore {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    /// The SQLite file (for PostgreSQL, where copies for inspection go).
    pub db: PathBuf,
    pub url: Option<String>,
    /// The tenant the simulators of the tests serve.
    pub tenant: String,
}

pub struct Quiet;
impl oifde_sync::progress::ProgressSink for Quiet {}

impl TestStore {
    pub fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mirror.db");
        let url = match kind {
            Kind::Sqlite => None,
            Kind::Postgres => Some(pg_database()),
        };
        Self { kind, dir, db, url, tenant: SimOptions::default().tenant_id }
    }

    pub fn pg(&self) -> Option<oifde_sync::config::PgSettings> {
        self.url.as_ref().map(|u| oifde_sync::config::PgSettings::parse(u, &self.tenant).unwrap())
    }

    /// Where this store is, as the settings say it.
    pub fn at(&self) -> oifde_sync::config::StoreAt {
        match self.pg() {
            Some(pg) => oifde_sync::config::StoreAt::Postgres(Box::new(pg)),
            None => oifde_sync::config::StoreAt::Sqlite { path: self.db.clone(), snapshot: None },
        }
    }

    /// Settings for syncing `sim` into this store.
    pub fn settings(&self, sim: &Simulator) -> Settings {
        let mut s = settings(sim, &self.db);
        assert_eq!(sim.options().tenant_id, self.tenant);
        s.store.at = self.at();
        s
    }

    /// Points a config written by `cli::write_config` at this store.
    pub fn configure(&self, config: &Path) {
        if let Some(url) = &self.url {
            use_url(config, url);
        }
    }

    /// Rows of `sql`, as text, from the store (SQL both stores understand);
    /// none while the store or its tables are not there yet.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match &self.url {
            Some(url) => match try_pg_rows(url, sql) {
                Ok(rows) => rows,
                Err(e) if e.contains("does not exist") => Vec::new(),
                Err(e) => panic!("{sql}: {e}"),
            },
            None => {
                let Ok(conn) = Connection::open_with_flags(&self.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
                    return Vec::new();
                };
                let Ok(mut stmt) = conn.prepare(sql) else { return Vec::new() };
                let n = stmt.column_count();
                stmt.query_map([], |row| {
                    Ok((0..n)
                        .map(|i| match row.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Null => None,
                            rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                            rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                            rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                                Some(String::from_utf8_lossy(t).into_owned())
                            }
                        })
                        .collect())
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
            }
        }
    }

    /// The first column of `sql`'s rows.
    pub fn column(&self, sql: &str) -> Vec<String> {
        self.rows(sql).into_iter().map(|r| r[0].clone().unwrap_or_default()).collect()
    }

    /// One number from `sql` (0 when the store or table is not there yet).
    pub fn count(&self, sql: &str) -> i64 {
        self.rows(sql).first().and_then(|r| r[0].as_deref()).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// A SQLite file with what the store holds, for the SQLite-based checks:
    /// the file itself, or a fresh copy of the PostgreSQL tenant.
    pub fn local(&self) -> PathBuf {
        self.local_for(&self.tenant)
    }

    /// As [`TestStore::local`], for another tenant of the same database.
    pub fn local_for(&self, tenant: &str) -> PathBuf {
        let Some(url) = &self.url else { return self.db.clone() };
        let pg = oifde_sync::config::PgSettings::parse(url, tenant).unwrap();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let path = self.dir.path().join(format!("copy-{}.db", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        let from = Store::open_postgres_read_only(&pg).unwrap();
        let mut to = Store::open(&path).unwrap();
        oifde_sync::copy::copy(&from, &mut to, &Quiet, &oifde_sync::copy::Target::Empty, false).unwrap();
        path
    }
}

/// `NAME::sqlite` and `NAME::postgres` for each async `fn NAME(kind: Kind)`
/// written outside the macro, so that its body is formatted like any code.
/// Each test runs on a SQLite file and on a PostgreSQL database (shown as
/// ignored where there is no PostgreSQL).
macro_rules! per_store {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread")]
                async fn sqlite() {
                    super::$name(crate::helpers::Kind::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread")]
                #[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
                async fn postgres() {
                    super::$name(crate::helpers::Kind::Postgres).await
                }
            }
        )*
    };
}
pub(crate) use per_store;

/// Every row of every table `copy` carries, as text, in key order.
pub fn dump_tables(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut out = Vec::new();
    for t in oifde_sync::store::tables::tables() {
        let sql = format!("SELECT {} FROM \"{}\" ORDER BY {}", t.column_list(), t.name, t.key_list());
        let mut stmt = conn.prepare(&sql).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |row| {
                let cells: Vec<String> = (0..n).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect();
                Ok(format!("{}: {}", t.name, cells.join(", ")))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

/// Sets a file's modification time a minute back: written, not being written.
pub fn settled(path: &Path) {
    let f = std::fs::File::options().append(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(60)).unwrap();
}

/// The tenant's CDR files, as CC-FS delivers them, written (and settled)
/// into `dir/cdr`; returns that directory.
pub fn cdr_files(sim: &Simulator, dir: &Path) -> PathBuf {
    let cdr_dir = dir.join("cdr");
    let legs = oifde_sync::simulator::cdr::legs(&sim.records(), sim.options().seed);
    for f in oifde_sync::simulator::cdr::write_dir(&cdr_dir, &legs, &sim.options().timezone).unwrap() {
        settled(&f);
    }
    cdr_dir
}

/// A mirror of `sim` in `store`, fed by its mobiles and its CDR files, with
/// the platform's count of the tenant's days fetched by `verify` (clean);
/// `rest` adds config sections.
pub async fn mirror_with_ledgers(store: &TestStore, sim: &Simulator, rest: &str) {
    let dir = store.dir.path();
    let cdr_dir = cdr_files(sim, dir);
    let rest = format!("[reconcile]\naccess_codes = [\"10086\", \"95588\", \"4008123123\"]\n\n{rest}");
    let config = crate::cli::write_config(dir, sim, &sim.options().app_secret.clone(), "", &rest);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("[query]\n", &format!("[query]\ncdr_dir = \"{}\"\n", cdr_dir.display())))
        .unwrap();
    store.configure(&config);
    let out = crate::cli::run(dir, &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::text(&out));
    let out = crate::cli::run(dir, &["verify", "--from", "2026-11-02", "--to", "2026-11-04"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::text(&out));
}
