//! Running as a service: the daemon's schedule and shutdown, `check`, the
//! metrics endpoint, and the unit file's hardening.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oifde_sync::simulator::Faults;

use crate::cli::{run, text, write_config};
use crate::helpers::*;

/// Sync runs as (id, status, started_at, finished_at); none while the
/// store is still being created.
fn runs(db: &Path) -> Vec<(i64, String, i64, Option<i64>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let Ok(mut stmt) = conn.prepare("SELECT id, status, started_at, finished_at FROM sync_runs ORDER BY id") else {
        return Vec::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `run` in `dir` with `config` set to a pass every second (its
/// stderr in `stderr.log`); returns the store's path and the process.
fn daemon_every_second(dir: &Path, config: &Path) -> (std::path::PathBuf, Spawned) {
    let every_second = std::fs::read_to_string(config)
        .unwrap()
        .replace("window = \"12h\"", "window = \"12h\"\nschedule = \"* * * * * *\"\nlag = \"0s\"");
    std::fs::write(config, every_second).unwrap();
    let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
    (dir.join("mirror.db"), spawn(dir, &["run"], &[], stderr.into()))
}

/// `/metrics` at `url`, asked for OpenMetrics as Prometheus does, or as curl does.
async fn scrape(url: &str, openmetrics: bool) -> String {
    let mut request = reqwest::Client::new().get(url);
    if openmetrics {
        request = request.header("accept", "application/openmetrics-text; version=1.0.0");
    }
    request.send().await.unwrap().text().await.unwrap()
}

/// A config for `sim` in `dir` with the metrics endpoint on a free port.
fn with_metrics(dir: &Path, sim: &oifde_sync::simulator::Simulator) -> (std::path::PathBuf, u16) {
    let port = free_port();
    let rest = format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n");
    (write_config(dir, sim, &sim.options().app_secret.clone(), "", &rest), port)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_runs_on_schedule_never_overlaps_and_stops_cleanly_on_sigterm() {
    let sim = simulator(options(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, port) = with_metrics(dir.path(), &sim);
    let (db, mut child) = daemon_every_second(dir.path(), &config);

    wait_for("three finished passes", || db.exists() && runs(&db).iter().filter(|r| r.3.is_some()).count() >= 3).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let body = scrape(&format!("http://127.0.0.1:{port}/metrics"), true).await;
    assert!(body.contains("oifde_sync_inserted_total 300"), "{body}");
    assert!(body.contains("oifde_sync_request_duration_seconds_bucket"), "{body}");
    assert!(body.contains("oifde_sync_process_resident_memory_bytes "), "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(body.contains("oifde_sync_keys{state=\"active\"} "), "{body}");
    assert!(body.contains("oifde_sync_cursor_lag_seconds "), "{body}");
    assert!(!body.contains("mobile:"), "no series names a key: {body}");
    assert!(body.contains("oifde_sync_passes_total{result=\"ok\"}"), "{body}");

    // Slow answers make a pass outlast the one-second ticks.
    sim.set_faults(Faults { slow_rate: 1.0, slow_delay: Duration::from_millis(1200), ..Faults::default() });
    wait_for("a pass in flight", || runs(&db).last().is_some_and(|r| r.1 == "running")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.0.id().to_string();
    let signalled = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || child.0.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(5), "stopped within a few seconds");

    let all = runs(&db);
    assert_eq!(all.last().unwrap().1, "interrupted", "{all:?}");
    for pair in all.windows(2) {
        assert!(pair[1].2 >= pair[0].3.unwrap(), "passes overlap: {pair:?}");
    }
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(log.contains("skipping this tick"), "{log}");
    assert!(!log.contains("Uninited") && !log.contains("Job creator"), "no stray scheduler lines: {log}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");

    sim.set_faults(Faults::default());
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_mirrors(&db, &sim.records());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_the_failing_step() {
    let sim = simulator(options(30)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let out = run(dir.path(), &["check"], &[]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    for step in ["ok      config", "ok      store", "ok      token", "ok      query"] {
        assert!(all.contains(step), "{step}: {all}");
    }

    write_config(dir.path(), &sim, "not-the-secret", "", "");
    let out = run(dir.path(), &["check"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("FAILED  token") && text(&out).contains("api.app_secret"), "{}", text(&out));

    write_config(dir.path(), &sim, "x", "", "");
    let unreachable = std::fs::read_to_string(dir.path().join("oifde-sync.toml"))
        .unwrap()
        .replace(&sim.base_url(), &format!("http://127.0.0.1:{}", free_port()))
        .replace("retry_delay = \"5ms\"", "retry_delay = \"5ms\"\nmax_retries = 0");
    std::fs::write(dir.path().join("oifde-sync.toml"), unreachable).unwrap();
    let out = run(dir.path(), &["check"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("FAILED  token") && text(&out).contains("api.base_url"), "{}", text(&out));

    std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    write_config(dir.path(), &sim, "x", "ca_file = \"ca.pem\"", "");
    let out = run(dir.path(), &["check"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("FAILED  tls") && text(&out).contains("api.ca_file"), "{}", text(&out));

    // The same code as `sync` for the same fault: a store that cannot be opened is 3.
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let store_in_proc = std::fs::read_to_string(dir.path().join("oifde-sync.toml"))
        .unwrap()
        .replace(&dir.path().join("mirror.db").display().to_string(), "/proc/oifde-sync/mirror.db");
    std::fs::write(dir.path().join("oifde-sync.toml"), store_in_proc).unwrap();
    let out = run(dir.path(), &["check"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let sync = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(sync.status.code(), Some(3), "{}", text(&sync));

    // No keys on a server that requires them: 2 from both.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let no_keys = std::fs::read_to_string(&config).unwrap().replace("user_mobiles = [", "user_mobiles = [] # ");
    std::fs::write(&config, no_keys).unwrap();
    let out = run(dir.path(), &["check"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("configure query keys"), "{}", text(&out));
    let sync = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(sync.status.code(), Some(2), "{}", text(&sync));
}

#[test]
fn the_template_unit_gives_each_tenant_its_config_and_restarts_on_a_store_error() {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/oifde-sync@.service");
    let text = std::fs::read_to_string(&template).unwrap();
    assert!(text.contains("--config /etc/oifde-sync/%i.toml run"), "each tenant its own config");
    assert!(text.contains("LoadCredential=db_password:/etc/oifde-sync/%i.db_password"), "the database password");
    assert!(!text.contains("RestartPreventExitStatus=2 3"), "a database down at start is worth a restart");
}

#[test]
#[ignore = "needs systemd-analyze (Debian's systemd); .ci/run installs it and runs this"]
fn the_unit_files_are_hardened() {
    let dir = tempfile::tempdir().unwrap();
    // The template as systemd instantiates it for a tenant called north.
    let instance = dir.path().join("oifde-sync@north.service");
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/oifde-sync@.service");
    std::fs::copy(&template, &instance).unwrap();
    let single = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/oifde-sync.service");
    for unit in [single, instance] {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=20"])
            .arg(&unit)
            .output()
            .expect("systemd-analyze runs (apt-get install systemd)");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: exposure above 2.0:\n{report}{}",
            unit.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(report.contains("Overall exposure level"), "{report}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn under_systemd_the_daemon_reports_ready_watchdog_status_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let sim = simulator(options(50)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let env = [("NOTIFY_SOCKET", socket_path.as_os_str()), ("WATCHDOG_USEC", std::ffi::OsStr::new("400000"))];
    let mut child = spawn(dir.path(), &["run"], &env, Stdio::null());
    let pid = child.0.id().to_string();
    let messages = tokio::task::spawn_blocking(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let started = Instant::now();
        let mut signalled = false;
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(n) = socket.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            let seen = got.join("\n");
            if !signalled && seen.contains("STATUS=pass: ok") && seen.matches("WATCHDOG=1").count() >= 3 {
                Command::new("kill").args(["-TERM", &pid]).status().unwrap();
                signalled = true;
            }
            if seen.contains("STOPPING=1") {
                break;
            }
        }
        got.join("\n")
    })
    .await
    .unwrap();
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    assert!(messages.contains("READY=1"), "{messages}");
    assert!(messages.contains("STATUS=pass: ok"), "{messages}");
    assert!(messages.contains("WATCHDOG=1"), "{messages}");
    assert!(messages.contains("STOPPING=1"), "{messages}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_a_line() {
    let sim = simulator(options(30)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &sim,
        &sim.options().app_secret.clone(),
        "",
        "[log]\nformat = \"json\"\nlevel = \"debug\"\n",
    );
    let out = run(dir.path(), &["sync"], &[("RUST_LOG", "")]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}

/// A live scrape after a pass is valid exposition text, as Prometheus's own
/// `promtool check metrics` reads it: no two families share a name.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs promtool (Debian's prometheus package); .ci/run installs it and runs this"]
async fn a_live_scrape_passes_promtool() {
    let sim = simulator(options(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, port) = with_metrics(dir.path(), &sim);
    let text = std::fs::read_to_string(&config).unwrap().replace("window = \"12h\"", "window = \"12h\"\nlag = \"0s\"");
    std::fs::write(&config, text).unwrap();
    let db = dir.path().join("mirror.db");
    let _daemon = spawn(dir.path(), &["run"], &[], Stdio::null());
    wait_for("a finished pass", || db.exists() && runs(&db).iter().any(|r| r.3.is_some())).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("http://127.0.0.1:{port}/metrics");
    // What Prometheus asks for: OpenMetrics, one HELP line a family.
    let open = scrape(&url, true).await;
    assert!(open.ends_with("# EOF\n") && open.contains("oifde_sync_keys_read_total "), "{open}");
    let helps: Vec<&str> = open.lines().filter_map(|l| l.strip_prefix("# HELP ")?.split(' ').next()).collect();
    let distinct: std::collections::HashSet<&&str> = helps.iter().collect();
    assert_eq!(helps.len(), distinct.len(), "two families share a name: {open}");
    // What curl gets, and promtool reads.
    let body = scrape(&url, false).await;
    assert!(body.contains("oifde_sync_keys_read_total "), "{body}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus)");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), body.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool: {said}\n{body}");
    assert!(!said.contains("error"), "promtool: {said}");
}

/// Ticks that come while the daemon's pass at start runs are skipped
/// quietly: a warning there would only alarm a newcomer.
#[tokio::test(flavor = "multi_thread")]
async fn ticks_during_the_first_pass_are_skipped_without_a_warning() {
    let faults = Faults { slow_rate: 1.0, slow_delay: Duration::from_millis(700), ..Faults::default() };
    let sim = simulator(oifde_sync::simulator::SimOptions { faults, ..options(100) }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let (db, mut child) = daemon_every_second(dir.path(), &config);
    wait_for("the first pass", || db.exists() && runs(&db).iter().any(|r| r.3.is_some())).await;
    let first = runs(&db)[0].clone();
    assert!(first.3.unwrap() - first.2 > 1000, "the first pass outlasted a tick: {first:?}");
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    tokio::task::spawn_blocking(move || child.0.wait().unwrap()).await.unwrap();
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    let before_first_ended: String = log.lines().take_while(|l| !l.contains("pass: ")).collect::<Vec<_>>().join("\n");
    assert!(!before_first_ended.contains("previous pass still running"), "{log}");
}
