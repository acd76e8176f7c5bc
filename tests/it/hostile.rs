//! Servers and machines that misbehave the way real ones do: redirects,
//! refusals inside 401/403, echoed secrets, bogus totals, answers that are
//! not objects, endless bodies, a second writer, a damaged store. Each test
//! asserts what a user would check: the exit code, the message, what the
//! server received, the rows stored.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use oifde_sync::run_log::PassStatus;
use oifde_sync::simulator::SimOptions;
use rusqlite::Connection;

use crate::cli::{run, text, write_config};
use crate::helpers::*;

/// What a scripted server received: (path, body).
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A server whose every answer `answer(path, body)` gives; returns its base URL.
async fn scripted(
    answer: impl Fn(&str, &str) -> Response + Send + Sync + 'static,
) -> (String, Received, tokio_util::sync::CancellationToken) {
    let received: Received = Arc::default();
    let log = received.clone();
    let answer = Arc::new(answer);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: Bytes| {
        let (log, answer) = (log.clone(), answer.clone());
        async move {
            let body = String::from_utf8_lossy(&body).into_owned();
            log.lock().unwrap().push((uri.path().to_string(), body.clone()));
            answer(uri.path(), &body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let until = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(until.cancelled_owned()).await;
    });
    (format!("http://{addr}"), received, stop)
}

fn json(status: StatusCode, text: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// A config for a scripted server at `base_url`, with `keys` mobiles.
fn config_for(dir: &std::path::Path, base_url: &str, secret: &str, keys: usize, rest: &str) -> std::path::PathBuf {
    let mobiles: Vec<String> = (0..keys).map(|i| format!("\"1380000000{i}\"")).collect();
    let text = format!(
        "[api]\nbase_url = \"{base_url}\"\ntenant_id = \"tenant001\"\napp_secret = \"{secret}\"\nretry_delay = \"5ms\"\n\
         max_requests_per_second = 200\n\n[query]\nuser_mobiles = [{}]\n\n[sync]\nstart = \"1d\"\n\n\
         [store]\npath = \"{}\"\n{rest}\n",
        mobiles.join(", "),
        dir.join("mirror.db").display()
    );
    let path = dir.join("oifde-sync.toml");
    std::fs::write(&path, text).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&path).unwrap().permissions(), 0o600);
    path
}

const SECRET: &str = "s3cret-Zq81-do-not-print";

fn token_answer() -> Response {
    json(StatusCode::OK, r#"{"errorCode":"0","authToken":"tok-ABCDEFGH12345678","expireTime":3600}"#.into())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_an_error_naming_its_location_and_nothing_follows_it() {
    let (elsewhere, seen_elsewhere, _stop_b) = scripted(|_, _| token_answer()).await;
    for status in [StatusCode::TEMPORARY_REDIRECT, StatusCode::PERMANENT_REDIRECT, StatusCode::FOUND] {
        let target = format!("{elsewhere}/oifde/rest/api/gettoken");
        let (base, seen, _stop) =
            scripted(move |_, _| (status, [(header::LOCATION, target.clone())], "moved").into_response()).await;
        let dir = tempfile::tempdir().unwrap();
        config_for(dir.path(), &base, SECRET, 3, "");
        let out = run(dir.path(), &["sync"], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{status}: {}", text(&out));
        assert!(text(&out).contains(&elsewhere) && text(&out).contains("api.base_url"), "{}", text(&out));
        assert_eq!(seen.lock().unwrap().len(), 1, "one request, then the pass ends");
        assert!(seen_elsewhere.lock().unwrap().is_empty(), "the secret never reached the Location host");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_credentials_refusal_inside_401_or_403_is_not_retried() {
    for status in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN] {
        let (base, seen, _stop) =
            scripted(move |_, _| json(status, r#"{"errorCode":"200800002","errorMsg":"The key is incorrect"}"#.into()))
                .await;
        let dir = tempfile::tempdir().unwrap();
        config_for(dir.path(), &base, SECRET, 5, "");
        let out = run(dir.path(), &["sync"], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let out =
            run(dir.path(), &["backfill", "--from", "2026-11-02 00:00:00", "--to", "2026-11-02 23:59:59"], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert_eq!(seen.lock().unwrap().len(), 2, "one gettoken per command: {:?}", seen.lock().unwrap());
    }
    // A bare 401 from gettoken is a refusal too.
    let (base, seen, _stop) = scripted(|_, _| (StatusCode::UNAUTHORIZED, "no").into_response()).await;
    let dir = tempfile::tempdir().unwrap();
    config_for(dir.path(), &base, SECRET, 5, "");
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(2));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

per_store!(server_text_that_echoes_the_secret_or_the_token_is_redacted_everywhere);

async fn server_text_that_echoes_the_secret_or_the_token_is_redacted_everywhere(kind: Kind) {
    let (base, _seen, _stop) = scripted(|path, body| {
        if path.ends_with("gettoken") {
            return token_answer();
        }
        // A gateway that echoes the whole request, token included, and a lot more.
        json(
            StatusCode::OK,
            serde_json::json!({"errorCode": "10000003", "errorMsg": format!("bad request {body} {}", "x".repeat(5000))}).to_string(),
        )
    })
    .await;
    let store = TestStore::new(kind);
    let dir = &store.dir;
    store.configure(&config_for(dir.path(), &base, SECRET, 2, ""));
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let status = run(dir.path(), &["status"], &[]).await;
    let check = run(dir.path(), &["check"], &[]).await;
    let stored = store.column("SELECT error FROM sync_runs WHERE error IS NOT NULL").remove(0);
    for shown in [text(&out), text(&status), text(&check), stored.clone()] {
        assert!(!shown.contains("tok-ABCDEFGH12345678"), "the token leaked: {shown}");
        assert!(!shown.contains(SECRET), "the secret leaked: {shown}");
        assert!(!shown.contains(&"x".repeat(400)), "server text is cut");
    }
    assert!(stored.contains("[redacted]"), "{stored}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_others_can_read_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let sim = simulator(options(50)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let db = dir.path().join("mirror.db");
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    for suffix in ["", "-wal", "-shm"] {
        let f = format!("{}{suffix}", db.display());
        if std::path::Path::new(&f).exists() {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).contains("made it 0600"), "{}", text(&out));
    for suffix in ["", "-wal", "-shm"] {
        let f = format!("{}{suffix}", db.display());
        if let Ok(m) = std::fs::metadata(&f) {
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_that_is_not_an_object_never_completes_a_window() {
    for answer in ["null", "[]", "\"ok\"", "42"] {
        let (base, _seen, _stop) = scripted(move |path, _| {
            if path.ends_with("gettoken") { token_answer() } else { json(StatusCode::OK, answer.to_string()) }
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        config_for(dir.path(), &base, SECRET, 1, "");
        let out = run(dir.path(), &["sync"], &[]).await;
        assert_eq!(out.status.code(), Some(1), "{answer}: {}", text(&out));
        assert!(text(&out).contains("not a JSON object"), "{}", text(&out));
        let conn = Connection::open(dir.path().join("mirror.db")).unwrap();
        let cursors: i64 = conn.query_row("SELECT count(*) FROM sync_cursors", [], |r| r.get(0)).unwrap();
        assert_eq!(cursors, 0, "{answer}: no cursor moved");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_total_the_pages_contradict_is_not_believed() {
    for total in [-1, 0, 10] {
        let faults = oifde_sync::simulator::Faults { report_total: Some(total), ..Default::default() };
        let sim = simulator(SimOptions { faults, users: 1, ..options(250) }).await;
        let (_dir, db) = temp_db();
        let engine = engine(settings(&sim, &db));
        let report = incremental(&engine, TO + 60).await;
        assert_eq!(report.status, PassStatus::Ok, "total {total}: {:?}", report.errors);
        assert_mirrors(&db, &sim.records());
    }
}

per_store!(a_cursor_left_in_the_future_by_a_clock_that_ran_ahead_is_pulled_back);

async fn a_cursor_left_in_the_future_by_a_clock_that_ran_ahead_is_pulled_back(kind: Kind) {
    let sim = simulator(options(200)).await;
    let store = TestStore::new(kind);
    let engine = engine(store.settings(&sim));
    // One pass with the clock a day fast.
    assert_eq!(incremental(&engine, TO + 86_400).await.status, PassStatus::Ok);
    // A record arrives; the clock is right again.
    let mut late = sim.records()[0].clone();
    late.log_id = "arrived-later".into();
    late.start_time = (TO - 30) * 1000;
    sim.insert(late);
    let report = incremental(&engine, TO + 60).await;
    assert_eq!(report.figures.inserted, 1, "{:?}", report.figures);
    assert_mirrors(&store.local(), &sim.records());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_body_is_cut_off_and_memory_stays_bounded() {
    let (base, _seen, _stop) = scripted(|path, _| {
        if path.ends_with("gettoken") {
            return token_answer();
        }
        let chunk = Bytes::from(vec![b' '; 1 << 20]);
        let endless = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(endless)).into_response()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    config_for(dir.path(), &base, SECRET, 1, "");
    let config = dir.path().join("oifde-sync.toml");
    let cfg = std::fs::read_to_string(&config)
        .unwrap()
        .replace("retry_delay = \"5ms\"", "retry_delay = \"5ms\"\nmax_retries = 1");
    std::fs::write(&config, cfg).unwrap();
    let bin = env!("CARGO_BIN_EXE_oifde-sync").to_string();
    let dir_path = dir.path().to_path_buf();
    let (code, out, peak_kb) = tokio::task::spawn_blocking(move || {
        let stderr_path = dir_path.join("stderr.log");
        #[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its rusage
        let child = std::process::Command::new(bin)
            .current_dir(&dir_path)
            .arg("sync")
            .env_remove("OIFDE_SYNC_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        // wait4 gives this child's own peak RSS, whatever else the tests run.
        let mut status = 0i32;
        // SAFETY: wait4 only writes into the status and the struct given.
        let mut usage: libc_rusage = unsafe { std::mem::zeroed() };
        let pid = unsafe { wait4(child.id() as i32, &mut status, 0, &mut usage) };
        assert_eq!(pid, child.id() as i32);
        std::mem::forget(child); // reaped by wait4 above
        let code = ((status & 0x7f) == 0).then_some((status >> 8) & 0xff);
        (code, std::fs::read_to_string(stderr_path).unwrap(), usage.ru_maxrss)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("larger than"), "{out}");
    // Generous: two attempts of at most 32 MiB each, in a debug build (about
    // 60 MB alone, more when the machine is busy and the allocator keeps what
    // it freed); without the cap the body grows for the whole 30 s timeout,
    // at loopback speed: gigabytes.
    assert!(peak_kb < 1024 * 1024, "peak RSS of the sync: {peak_kb} kB");
}

/// `struct rusage` of Linux on 64-bit machines: two timevals, then 14 longs.
#[repr(C)]
struct libc_rusage {
    ru_utime: [i64; 2],
    ru_stime: [i64; 2],
    ru_maxrss: i64,
    rest: [i64; 13],
}

unsafe extern "C" {
    fn wait4(pid: i32, status: *mut i32, options: i32, usage: *mut libc_rusage) -> i32;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_of_a_day_is_capped() {
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (base, _seen, _stop) = scripted(move |path, _| {
        if path.ends_with("gettoken") {
            return token_answer();
        }
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "86400")], "later").into_response();
        }
        json(StatusCode::OK, r#"{"errorCode":"0","total":0,"recordList":[]}"#.into())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    config_for(dir.path(), &base, SECRET, 1, "");
    let started = std::time::Instant::now();
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(text(&out).contains("Retry-After above the longest pause"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_into_the_future_is_refused() {
    let sim = simulator(options(10)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let out = run(dir.path(), &["backfill", "--from", "2026-11-02 00:00:00", "--to", "3026-01-01 00:00:00"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("in the future"), "{}", text(&out));
    assert_eq!(sim.query_calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_writer_at_a_time_and_first_opens_do_not_race() {
    let sim = simulator(options(100)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "[log]\nlevel = \"warn\"\n");
    // Four first opens at once of a store that does not exist yet.
    let opens: Vec<_> = (0..4)
        .map(|i| {
            let d = dir.path().to_path_buf();
            tokio::spawn(async move { run(&d, &["keys", "add", &format!("cti:{i}")], &[]).await })
        })
        .collect();
    for o in opens {
        let out = o.await.unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let mut daemon = spawn(dir.path(), &["run"], &[], std::process::Stdio::null());
    let lock = dir.path().join("mirror.db.lock");
    for _ in 0..100 {
        if std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("run")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let pid = daemon.0.id().to_string();
    assert!(text(&out).contains(&format!("pid {pid}")) && text(&out).contains("oifde-sync run"), "{}", text(&out));
    let check = run(dir.path(), &["check"], &[]).await;
    assert!(text(&check).contains("being written by"), "{}", text(&check));
    let _ = daemon.0.kill();
    let _ = daemon.0.wait();
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0), "the lock went with its holder");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_store_is_named_by_check_and_never_written() {
    let sim = simulator(options(3000)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let db = dir.path().join("mirror.db");
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    // Checkpoint the WAL into the file, then damage its middle.
    Connection::open(&db).unwrap().execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    let mut bytes = std::fs::read(&db).unwrap();
    // Whole pages, headers included: damage inside a page's cells alone can
    // escape the quick check, and the file's layout shifts a little from run
    // to run with the times it stores.
    let mid = bytes.len() / 2 / 4096 * 4096;
    let mut rng = fastrand::Rng::with_seed(5);
    for b in &mut bytes[mid..mid + 4 * 4096] {
        *b = rng.u8(..);
    }
    std::fs::write(&db, &bytes).unwrap();
    let check = run(dir.path(), &["check"], &[]).await;
    assert_eq!(check.status.code(), Some(3), "{}", text(&check));
    assert!(text(&check).contains("FAILED  store") && text(&check).contains(".recover"), "{}", text(&check));
    let before = std::fs::read(&db).unwrap();
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("damaged"), "{}", text(&out));
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing was written");
}

per_store!(a_record_sent_twice_and_a_lone_surrogate_do_not_block_a_key);

async fn a_record_sent_twice_and_a_lone_surrogate_do_not_block_a_key(kind: Kind) {
    let now_ms = oifde_sync::tz::now_ms();
    let rec = |id: &str, updated: i64, saying: &str| {
        format!(
            r#"{{"logId":"{id}","callId":"c-{id}","startTime":{},"endTime":{},"lastUpdateTime":{updated},"recordDetials":[{{"interNo":"1","userSaying":"{saying}"}}]}}"#,
            now_ms - 7_200_000,
            now_ms - 7_100_000
        )
    };
    let page = format!(
        r#"{{"errorCode":"0","total":4,"recordList":[{},{},{},{}]}}"#,
        rec("dup", now_ms - 7_000_000, "old"),
        rec("one", now_ms - 7_000_000, "fine"),
        rec("dup", now_ms - 6_000_000, "new"),
        rec("odd", now_ms - 7_000_000, "broken \\ud83d text")
    );
    let (base, _seen, _stop) =
        scripted(
            move |path, _| if path.ends_with("gettoken") { token_answer() } else { json(StatusCode::OK, page.clone()) },
        )
        .await;
    let store = TestStore::new(kind);
    let dir = &store.dir;
    store.configure(&config_for(dir.path(), &base, SECRET, 1, ""));
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("sends some records twice"), "{}", text(&out));
    assert_eq!(store.count("SELECT count(*) FROM records"), 3);
    let kept = store.column("SELECT user_saying FROM record_details WHERE log_id = 'dup'");
    assert_eq!(kept, ["new"], "the newer copy wins");
    let odd = store.column("SELECT user_saying FROM record_details WHERE log_id = 'odd'");
    assert_eq!(odd, ["broken \u{fffd} text"]);
}

per_store!(a_window_that_never_completes_is_set_aside_after_three_passes);

async fn a_window_that_never_completes_is_set_aside_after_three_passes(kind: Kind) {
    let faults = oifde_sync::simulator::Faults { inflate_total: 3, ..Default::default() };
    let sim = simulator(SimOptions { faults, users: 1, ..options(100) }).await;
    let store = TestStore::new(kind);
    let dir = &store.dir;
    store.configure(&write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", ""));
    let cursor = || store.rows("SELECT max(cursor_time) FROM sync_cursors").first().and_then(|r| r[0].clone());
    for pass in 1..=2 {
        let out = run(dir.path(), &["sync"], &[]).await;
        assert_eq!(out.status.code(), Some(1), "pass {pass}: {}", text(&out));
        assert_eq!(cursor(), None, "pass {pass}: the cursor waits at the window");
    }
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("moves on without it"), "{}", text(&out));
    assert!(cursor().is_some(), "the key moved on");
    let status = run(dir.path(), &["status"], &[]).await;
    let line = text(&status)
        .lines()
        .find(|l| l.contains("oifde-sync backfill --from"))
        .unwrap_or_else(|| panic!("status lists the window: {}", text(&status)))
        .to_string();
    // The command status prints reads the window once the server behaves.
    sim.set_faults(oifde_sync::simulator::Faults::default());
    let args: Vec<String> = line
        .split('#')
        .next()
        .unwrap()
        .split('"')
        .enumerate()
        .flat_map(|(i, part)| {
            if i % 2 == 1 { vec![part.to_string()] } else { part.split_whitespace().map(str::to_string).collect() }
        })
        .skip(1)
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(dir.path(), &args, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    assert!(!text(&run(dir.path(), &["status"], &[]).await).contains("never completed"));
    assert_mirrors(&store.local(), &sim.records());
}

per_store!(a_total_that_ignores_the_window_stops_the_cutting);

async fn a_total_that_ignores_the_window_stops_the_cutting(kind: Kind) {
    let faults = oifde_sync::simulator::Faults { report_total: Some(6000), ..Default::default() };
    let sim = simulator(SimOptions { faults, users: 1, ..options(300) }).await;
    let store = TestStore::new(kind);
    let engine = engine(store.settings(&sim));
    let report = incremental(&engine, TO + 60).await;
    assert_eq!(report.status, PassStatus::Ok, "{:?}", report.errors);
    assert_mirrors(&store.local(), &sim.records());
    assert!(sim.query_calls() < 20, "{} queries: no cutting down to seconds", sim.query_calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_year_of_one_second_windows_is_planned_lazily() {
    let sim = simulator(options(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let cfg = std::fs::read_to_string(&config).unwrap().replace("window = \"12h\"", "window = \"1s\"");
    std::fs::write(&config, cfg).unwrap();
    let started = std::time::Instant::now();
    let out = run(dir.path(), &["backfill", "--from", "2025-12-01 00:00:00", "--to", "2026-11-20 00:00:00"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(sim.query_calls() < 100, "{} queries", sim.query_calls());
    assert_mirrors(&dir.path().join("mirror.db"), &sim.records());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_clock_a_day_off_is_reported() {
    let (base, _seen, _stop) = scripted(|path, _| {
        let day_ago = oifde_sync::tz::now_ms() / 1000 - 86_400;
        let date = jiff::Timestamp::from_second(day_ago).unwrap().strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let body = if path.ends_with("gettoken") {
            r#"{"errorCode":"0","authToken":"tok-ABCDEFGH12345678","expireTime":3600}"#
        } else {
            r#"{"errorCode":"0","total":0,"recordList":[]}"#
        };
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/json".to_string()), (header::DATE, date)], body)
            .into_response()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    config_for(dir.path(), &base, SECRET, 1, "");
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("clock differs from this machine's by -86400"), "{}", text(&out));
}
