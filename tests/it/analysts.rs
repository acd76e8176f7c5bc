//! The file analysts touch: the README's SQL runs on a synced store, the
//! full-text index stays exact through updates, and `demo` answers the five
//! questions.

use oifde_sync::run_log::PassStatus;
use oifde_sync::simulator::SimOptions;
use rusqlite::Connection;

use crate::helpers::*;

/// Every ```sql block of the README and the docs.
fn readme_sql() -> Vec<String> {
    doc_blocks("sql")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sql_block_of_the_readme_runs_and_answers() {
    let blocks = readme_sql();
    for (title, sql) in oifde_sync::queries::CANONICAL {
        assert!(blocks.iter().any(|b| b.trim() == sql.trim()), "the docs show {title:?} as the code has it");
    }
    // Recent records, so "the last 7 days" holds data.
    let sim = simulator(SimOptions { records: 600, users: 4, ..SimOptions::default() }).await;
    let (_dir, db) = temp_db();
    let engine = engine(settings(&sim, &db));
    let from = sim.options().from;
    let to = sim.options().to - 1;
    let kind = oifde_sync::sync::PassKind::Backfill { from, to, key: None };
    let report = engine.pass(kind, &tokio_util::sync::CancellationToken::new()).await.unwrap();
    assert_eq!(report.status, PassStatus::Ok);
    let conn = Connection::open(&db).unwrap();
    for sql in &blocks {
        let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{e}:\n{sql}"));
        let rows = stmt.query_map([], |_| Ok(())).unwrap().count();
        assert!(rows > 0, "no rows from:\n{sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn full_text_search_follows_every_update() {
    for mode in [oifde_sync::config::FullText::Callers, oifde_sync::config::FullText::All] {
        search_follows_updates(mode).await;
    }
}

async fn search_follows_updates(mode: oifde_sync::config::FullText) {
    let sim = simulator(options(200)).await;
    let (_dir, db) = temp_db();
    let mut s = settings(&sim, &db);
    s.store.full_text = mode;
    let engine = engine(s);
    assert_eq!(backfill(&engine).await.status, PassStatus::Ok);
    let target = sim.records().into_iter().find(|r| r.last_update_time.is_some()).unwrap();
    sim.update(&target.log_id, |r| {
        r.last_update_time = r.last_update_time.map(|t| t + 1);
        for t in &mut r.details {
            t.user_saying = Some("我要办理宽带提速业务".into());
        }
    });
    assert_eq!(backfill(&engine).await.figures.updated, 1);
    let conn = Connection::open(&db).unwrap();
    let hits = |q: &str| -> Vec<String> {
        conn.prepare(
            "SELECT DISTINCT d.log_id FROM record_details_fts f JOIN record_details d ON d.rowid = f.rowid \
             WHERE record_details_fts MATCH ?1",
        )
        .unwrap()
        .query_map([q], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    assert_eq!(hits("宽带提速"), vec![target.log_id.clone()]);
    let old_saying = target.details[0].user_saying.clone().unwrap();
    let old_hits = hits(&format!("\"{}\"", old_saying.replace('"', "")));
    assert!(!old_hits.contains(&target.log_id), "the old text is gone from the index");
    // The index holds exactly the stored turns: no entry left from the old ones.
    let indexed: i64 = conn
        .query_row(
            "SELECT count(*) FROM record_details_fts WHERE record_details_fts MATCH ?1",
            [&format!("\"{}\"", old_saying.replace('"', ""))],
            |r| r.get(0),
        )
        .unwrap();
    let columns = mode.columns().iter().map(|c| format!("instr({c}, ?1)")).collect::<Vec<_>>().join(" OR ");
    let stored: i64 = conn
        .query_row(&format!("SELECT count(*) FROM record_details WHERE {columns}"), [&old_saying], |r| r.get(0))
        .unwrap();
    assert_eq!(indexed, stored, "{mode}: index entries for {old_saying:?}");
    // What the index covers: callers' words always, system replies only with "all".
    let reply_hits = hits("\"本月话费为\"");
    assert_eq!(reply_hits.is_empty(), mode == oifde_sync::config::FullText::Callers, "{mode}");
    conn.execute("INSERT INTO record_details_fts (record_details_fts, rank) VALUES ('integrity-check', 1)", [])
        .unwrap();
    let english = hits("call fee");
    assert!(!english.is_empty(), "English text is found too");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_index_covers_what_callers_said_and_modes_can_change() {
    let sim = simulator(options(100)).await;
    let (dir, db) = temp_db();
    let config = crate::cli::write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let _ = config;
    let fts_sql = |db: &std::path::Path| -> Option<String> {
        Connection::open(db)
            .unwrap()
            .query_row("SELECT sql FROM sqlite_master WHERE name = 'record_details_fts'", [], |r| r.get(0))
            .ok()
    };
    let mut s = settings(&sim, &db);
    s.store.full_text =
        oifde_sync::config::Settings::load(&dir.path().join("oifde-sync.toml")).unwrap().store.full_text;
    assert_eq!(s.store.full_text, oifde_sync::config::FullText::Callers, "the default");
    assert_eq!(backfill(&engine(s.clone())).await.status, PassStatus::Ok);
    let sql = fts_sql(&db).unwrap();
    assert!(sql.contains("user_saying") && !sql.contains("system_reply"), "{sql}");
    s.store.full_text = oifde_sync::config::FullText::All;
    drop(engine(s.clone()));
    assert!(fts_sql(&db).unwrap().contains("system_reply"));
    s.store.full_text = oifde_sync::config::FullText::Off;
    drop(engine(s));
    assert!(fts_sql(&db).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_full_text_index_can_be_left_out_and_rebuilt() {
    let sim = simulator(options(100)).await;
    let (_dir, db) = temp_db();
    let mut s = settings(&sim, &db);
    s.store.full_text = oifde_sync::config::FullText::Off;
    assert_eq!(backfill(&engine(s.clone())).await.status, PassStatus::Ok);
    let has_fts = |db: &std::path::Path| -> bool {
        Connection::open(db)
            .unwrap()
            .query_row("SELECT count(*) > 0 FROM sqlite_master WHERE name = 'record_details_fts'", [], |r| r.get(0))
            .unwrap()
    };
    assert!(!has_fts(&db));
    s.store.full_text = oifde_sync::config::FullText::All;
    drop(engine(s));
    assert!(has_fts(&db));
    let conn = Connection::open(&db).unwrap();
    let turns: i64 = conn.query_row("SELECT count(*) FROM record_details", [], |r| r.get(0)).unwrap();
    assert!(turns > 0);
    let english: i64 = conn
        .query_row("SELECT count(*) FROM record_details_fts WHERE record_details_fts MATCH 'call fee'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let expected: i64 = conn
        .query_row(
            "SELECT count(*) FROM record_details WHERE user_saying LIKE '%call fee%' OR system_reply LIKE '%call fee%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(english, expected, "the rebuilt index holds every stored turn");
    conn.execute("INSERT INTO record_details_fts (record_details_fts, rank) VALUES ('integrity-check', 1)", [])
        .unwrap();
}

/// Asks Datasette, as installed, which table is `record_details`' full-text index.
fn datasette_fts_table(db: &std::path::Path) -> Option<String> {
    let script = format!(
        "import sqlite3\nfrom datasette.utils import detect_fts\nprint(detect_fts(sqlite3.connect({:?}), 'record_details'))",
        db.display().to_string()
    );
    let out = std::process::Command::new("python3").args(["-c", &script]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Datasette (pip install datasette); .ci/run installs it and runs this"]
async fn datasette_finds_the_full_text_index_and_searches_it() {
    let sim = simulator(options(300)).await;
    let (dir, db) = temp_db();
    assert_eq!(backfill(&engine(settings(&sim, &db))).await.status, PassStatus::Ok);
    let found = datasette_fts_table(&db).expect("Datasette runs (pip install datasette)");
    assert_eq!(found, "record_details_fts");

    // Search through Datasette's own web API.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = std::process::Command::new("datasette")
        .args(["serve", db.to_str().unwrap(), "--port", &port.to_string(), "--host", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Spawned)
        .unwrap();
    let url = format!(
        "http://127.0.0.1:{port}/mirror/record_details.json?_search=%E6%9F%A5%E8%AF%A2%E4%B8%80%E4%B8%8B&_shape=array"
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut rows = None;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(&url).await {
            rows = Some(r.json::<Vec<serde_json::Value>>().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let rows = rows.expect("Datasette answers");
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["user_saying"].as_str().unwrap_or("").contains("查询一下")), "{rows:?}");
    let _ = server.0.kill();

    // A store from before this release (the index named in single quotes) is found too once opened.
    let old = dir.path().join("old.db");
    std::fs::copy(&db, &old).unwrap();
    {
        let conn = Connection::open(&old).unwrap();
        conn.execute_batch(
            "DROP TABLE record_details_fts; CREATE VIRTUAL TABLE record_details_fts USING fts5 (user_saying, system_reply, \
             content = 'record_details', content_rowid = 'rowid', tokenize = 'trigram'); \
             INSERT INTO record_details_fts (record_details_fts) VALUES ('rebuild');",
        )
        .unwrap();
    }
    assert_eq!(datasette_fts_table(&old).as_deref(), Some("None"));
    drop(oifde_sync::store::Store::open(&old).unwrap());
    assert_eq!(datasette_fts_table(&old).as_deref(), Some("record_details_fts"));
}

/// A page that holds a session twice, the second time newer with other
/// turns (a server repeating a record it changed between pages): the index
/// holds the newer turns only, in every mode.
#[test]
fn a_session_sent_twice_in_one_page_is_indexed_as_it_ended() {
    use oifde_sync::config::FullText;
    use oifde_sync::record::Record;
    use oifde_sync::simulator::dataset;
    for mode in [FullText::Callers, FullText::All] {
        let (_dir, db) = temp_db();
        let mobiles = dataset::mobiles(3, 4);
        let data = dataset::generate(3, 6, 1_700_000_000, 1_700_086_400, "tenant001", &mobiles);
        let mut wire: Vec<serde_json::Value> = data.iter().map(|r| r.to_wire()).collect();
        let mut newer = wire[2].clone();
        newer["lastUpdateTime"] = serde_json::json!(wire[2]["lastUpdateTime"].as_i64().unwrap() + 60_000);
        for (i, turn) in newer["recordDetials"].as_array_mut().unwrap().iter_mut().enumerate() {
            turn["userSaying"] = serde_json::json!(format!("改签航班 {i}"));
            turn["systemReply"] = serde_json::json!(format!("已为您改签 {i}"));
        }
        wire.insert(4, newer);
        let page: Vec<Record> = wire.iter().enumerate().map(|(i, v)| Record::from_value(i, v).unwrap()).collect();
        let mut store = oifde_sync::store::Store::open_with(&db, mode).unwrap();
        let outcome = store.apply_page(&page, 0).unwrap();
        assert_eq!((outcome.inserted, outcome.updated), (6, 1), "{mode}");
        drop(store);
        let conn = Connection::open(&db).unwrap();
        conn.execute("INSERT INTO record_details_fts (record_details_fts, rank) VALUES ('integrity-check', 1)", [])
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let matched = |q: &str| -> i64 {
            conn.query_row("SELECT count(*) FROM record_details_fts WHERE record_details_fts MATCH ?1", [q], |r| {
                r.get(0)
            })
            .unwrap()
        };
        let turns = data[2].details.len() as i64;
        assert_eq!(matched("\"改签航班\""), turns, "{mode}: the newer turns are found");
        assert_eq!(matched("\"已为您改签\""), if mode == FullText::All { turns } else { 0 }, "{mode}");
        let indexed: i64 = conn.query_row("SELECT count(*) FROM record_details_fts_docsize", [], |r| r.get(0)).unwrap();
        let stored: i64 = conn.query_row("SELECT count(*) FROM record_details", [], |r| r.get(0)).unwrap();
        assert_eq!(indexed, stored, "{mode}: one index entry a stored turn");
    }
}
