//! Shared test setup: a simulator, settings pointing at it, an engine, and the
//! comparison of a store with the simulator's dataset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oifde_sync::api::{ApiClient, Qa, Turn};
use oifde_sync::config::Settings;
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
    let store = Store::open_with(&settings.store_path, settings.store_full_text).expect("store opens");
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
        let raw: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(raw, r.lean_wire(), "raw_json of record {}", r.log_id);
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
        assert_eq!(got_turns, r.details, "turns of record {}", r.log_id);
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
        assert_eq!(got_qa, r.qa, "Q&A of record {}", r.log_id);
        total_turns += r.details.len();
        total_qa += r.qa.len();
    }
    let count = |t: &str| conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("record_details") as usize, total_turns, "no stray turns");
    assert_eq!(count("qa_records") as usize, total_qa, "no stray Q&A rows");
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

/// The log ids a store holds.
pub fn stored_log_ids(db: &Path) -> std::collections::HashSet<String> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT log_id FROM records").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

/// Points a config written by `cli::write_config` at `keys_file` instead of its mobiles.
pub fn use_keys_file(config: &Path, keys_file: &Path) {
    let text = std::fs::read_to_string(config)
        .unwrap()
        .replace("user_mobiles = [", &format!("keys_file = \"{}\"\nuser_mobiles = [] # ", keys_file.display()));
    std::fs::write(config, text).unwrap();
}
