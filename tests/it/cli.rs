//! The binary as users run it: exit codes, messages, files, and no secret in
//! any output.

use std::path::{Path, PathBuf};
use std::process::Output;

use oifde_sync::simulator::Simulator;

use crate::helpers::*;

const SECRET: &str = "s3cret-Zq81-do-not-print";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_oifde-sync")
}

/// Runs the binary off the async runtime, so an in-process simulator serves it.
pub async fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(bin());
    cmd.current_dir(dir).args(args).env_remove("OIFDE_SYNC_CONFIG").env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("the binary runs")).await.unwrap();
    // No command may print a secret, whatever the test is about.
    let all = text(&out);
    for secret in ["demo-secret", SECRET, "wrong-secret", "not-the-secret"] {
        assert!(!all.contains(secret), "a secret was printed by {args:?}: {all}");
    }
    out
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A config for `sim` in `dir`, with `extra` lines appended to [api].
pub fn write_config(dir: &Path, sim: &Simulator, secret: &str, api_extra: &str, rest: &str) -> PathBuf {
    let mobiles: Vec<String> = sim.mobiles().iter().map(|m| format!("\"{m}\"")).collect();
    let text = format!(
        "[api]\nbase_url = \"{}\"\ntenant_id = \"{}\"\napp_secret = \"{secret}\"\nretry_delay = \"5ms\"\n\
         max_requests_per_second = 200\n{api_extra}\n\
         [query]\nuser_mobiles = [{}]\n\n[sync]\nstart = \"2026-11-02 00:00:00\"\nwindow = \"12h\"\n\n\
         [store]\npath = \"{}\"\n{rest}\n",
        sim.base_url(),
        sim.options().tenant_id,
        mobiles.join(", "),
        dir.join("mirror.db").display()
    );
    let path = dir.join("oifde-sync.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn config_errors_exit_2_naming_the_key_and_create_no_database() {
    let sim = simulator(options(10)).await;
    let cases: &[(&str, &str, &str)] = &[
        ("bogus = 1", "", "api.bogus"),
        ("page_size = 7", "", "api.page_size"),
        ("timeout = \"soon\"", "", "api.timeout"),
        ("server_timezone = \"Mars/Base\"", "", "api.server_timezone"),
        ("", "[sync2]\nx = 1", "sync2"),
        ("", "[log]\nformat = \"xml\"", "log.format"),
        ("concurrency = 0", "", "api.concurrency"),
    ];
    for (api_extra, rest, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), &sim, SECRET, api_extra, rest);
        let out = run(dir.path(), &["sync"], &[]).await;
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{key}: {all}");
        assert!(all.contains(key), "the message names {key}: {all}");
        assert!(all.contains("oifde-sync.toml"), "the message names the file: {all}");
        assert!(!dir.path().join("mirror.db").exists(), "{key}: no database is created");
    }

    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, SECRET, "", "");
    let out = run(dir.path(), &["sync"], &[("OIFDE_SYNC__API__PAGE_SIZE", "3")]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("OIFDE_SYNC__API__PAGE_SIZE"), "{}", text(&out));
    for bad in ["https://127.0.0.1:99999", "http://[::1", "https://10.0.0.1:28090/oifde/rest"] {
        let out = run(dir.path(), &["sync"], &[("OIFDE_SYNC__API__BASE_URL", bad)]).await;
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(text(&out).contains("api.base_url"), "{}", text(&out));
        assert!(!dir.path().join("mirror.db").exists(), "{bad}: no database is created");
    }

    std::fs::write(dir.path().join("oifde-sync.toml"), "[api\nbase_url = 1").unwrap();
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("oifde-sync.toml"), "{}", text(&out));

    let out = run(dir.path(), &["--config", "missing.toml", "sync"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("missing.toml"), "{}", text(&out));
    assert!(!dir.path().join("mirror.db").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_stops_after_one_token_request() {
    let sim = simulator(options(50)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, "wrong-secret", "concurrency = 4", "");
    let out = run(dir.path(), &["sync"], &[]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("200800002") && all.contains("api.app_secret"), "{all}");
    assert_eq!(sim.token_calls(), 1, "exactly one gettoken call");
    assert!(!all.contains("wrong-secret"));
    assert_eq!(all.matches("The key is incorrect").count(), 2, "said once, and once in the run log line: {all}");
    assert!(all.contains("0 failed windows"), "no window was read, so none failed: {all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_is_said_once_with_what_to_check() {
    let sim = simulator(options(10)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, SECRET, "max_retries = 2", "");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for (url, says) in [
        (format!("http://127.0.0.1:{closed}"), "check api.base_url, the network path"),
        (format!("https://{}", sim.addr()), "plain HTTP"),
    ] {
        let started = std::time::Instant::now();
        let out = run(dir.path(), &["sync"], &[("OIFDE_SYNC__API__BASE_URL", &url)]).await;
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert_eq!(all.matches("cannot obtain a token").count(), 2, "once in the log, once in the report: {all}");
        assert!(all.contains(says), "{all}");
        assert!(all.matches("retrying request").count() <= 2, "{all}");
        assert!(all.contains("0 failed windows"), "{all}");
        assert!(started.elapsed() < std::time::Duration::from_secs(15));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_status_and_backfill_work_and_never_print_a_secret_or_token() {
    let sim = simulator(options(300)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let mut outputs = Vec::new();

    let out = run(dir.path(), &["sync"], &[("RUST_LOG", "debug")]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("300 inserted"), "{}", text(&out));
    outputs.push(text(&out));

    let out = run(dir.path(), &["status", "--json"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(status["records"], 300);
    assert_eq!(status["cursors"].as_array().unwrap().len(), sim.mobiles().len());
    assert_eq!(status["runs"][0]["status"], "ok");
    assert_eq!(status["runs"][0]["inserted"], 300);
    outputs.push(text(&out));

    let out = run(dir.path(), &["status"], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("300 records"), "{}", text(&out));
    outputs.push(text(&out));

    let out = run(dir.path(), &["backfill", "--from", "2026-11-02 00:00:00", "--to", "2026-11-03 23:59:59"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("300 unchanged"), "{}", text(&out));
    outputs.push(text(&out));

    let out = run(dir.path(), &["backfill", "--from", "2026-11-02", "--to", "x"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--from"));

    let out = run(dir.path(), &["check"], &[("RUST_LOG", "trace")]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    outputs.push(text(&out));

    assert_mirrors(&dir.path().join("mirror.db"), &sim.records());
    let secret = sim.options().app_secret.clone();
    let tokens = sim.issued_tokens();
    assert!(!tokens.is_empty());
    for out in &outputs {
        assert!(!out.contains(&secret), "the secret was printed: {out}");
        for t in &tokens {
            assert!(!out.contains(t.as_str()), "a token was printed: {out}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let sim = simulator(options(20)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for name in ["mirror.db", "mirror.db-wal", "mirror.db-shm"] {
        let path = dir.path().join(name);
        if path.exists() {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_fills_demo_db() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["demo"], &[]).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("5000 inserted"), "{all}");
    assert!(all.contains("Answer distribution per question"));
    let conn = rusqlite::Connection::open(dir.path().join("demo.db")).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM records", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 5000);
}

#[test]
fn the_example_config_is_valid_and_the_environment_overrides_it() {
    use std::collections::HashMap;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let s = oifde_sync::config::Settings::load_with_env(&example, HashMap::new()).expect("config.example.toml loads");
    assert_eq!(s.api.page_size, 100);
    assert_eq!(s.sync.window, std::time::Duration::from_secs(3600));
    assert_eq!(s.sync.overlap, std::time::Duration::from_secs(900));
    let env = HashMap::from([
        ("OIFDE_SYNC__API__PAGE_SIZE".to_string(), "50".to_string()),
        ("OIFDE_SYNC__QUERY__USER_MOBILES".to_string(), "13800000001,13800000002".to_string()),
        ("OIFDE_SYNC__SYNC__LAG".to_string(), "2m 30s".to_string()),
    ]);
    let s = oifde_sync::config::Settings::load_with_env(&example, env).unwrap();
    assert_eq!(s.api.page_size, 50);
    assert_eq!(s.query.user_mobiles, vec!["13800000001", "13800000002"]);
    assert_eq!(s.sync.lag, std::time::Duration::from_secs(150));
    // String keys stay exactly as written, leading zeros included; numbers and
    // switches still read from text.
    let env = HashMap::from([
        ("OIFDE_SYNC__API__TENANT_ID".to_string(), "0042".to_string()),
        ("OIFDE_SYNC__API__APP_SECRET".to_string(), "00123456".to_string()),
        ("OIFDE_SYNC__QUERY__USER_MOBILES".to_string(), "01012345678".to_string()),
        ("OIFDE_SYNC__API__INSECURE_SKIP_TLS_VERIFY".to_string(), "false".to_string()),
        ("OIFDE_SYNC__API__CONCURRENCY".to_string(), "2".to_string()),
    ]);
    let s = oifde_sync::config::Settings::load_with_env(&example, env).unwrap();
    assert_eq!(s.api.tenant_id, "0042");
    match &s.api.credential {
        oifde_sync::config::Credential::AppSecret(secret) => assert_eq!(secret.expose(), "00123456"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.query.user_mobiles, vec!["01012345678"]);
    assert_eq!(s.api.concurrency, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_writes_a_config_that_the_real_commands_use() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut sim = spawn(
        dir.path(),
        &["simulate", "--listen", &listen, "--records", "300", "--print-config", "sim.toml"],
        &[],
        std::process::Stdio::null(),
    );
    for _ in 0..200 {
        if dir.path().join("sim.toml").exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let out = run(dir.path(), &["--config", "sim.toml", "sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("300 inserted"), "{}", text(&out));
    let check = run(dir.path(), &["--config", "sim.toml", "check"], &[]).await;
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    let _ = sim.0.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_bar_fits_80_columns_and_is_cleared_before_the_summary() {
    let faults = oifde_sync::simulator::Faults {
        slow_rate: 1.0,
        slow_delay: std::time::Duration::from_millis(40),
        ..Default::default()
    };
    let sim = simulator(oifde_sync::simulator::SimOptions { faults, ..options(2000) }).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "concurrency = 1", "");
    let command = format!("{} backfill --from '2026-11-02 00:00:00' --to '2026-11-03 23:59:59'", bin());
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(d)
            .env_remove("OIFDE_SYNC_CONFIG")
            .env("COLUMNS", "80")
            .env("RUST_LOG", "info")
            .output()
    })
    .await
    .unwrap();
    let out = out.expect("`script` (util-linux, on every Debian) runs");
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(raw.contains("records,") && raw.contains("eta"), "the bar was drawn: {raw}");
    assert!(!raw.contains("0/0"), "no empty bar before the plan: {raw}");
    let plain = strip_ansi(&raw);
    for line in plain.split(['\r', '\n']).filter(|l| l.contains(" eta ")) {
        assert!(line.chars().count() <= 80, "the bar is wider than 80 columns: {line:?}");
    }
    // The summary comes after the bar's last drawing, and nothing erases it.
    let summary = raw.rfind("backfill: ok").expect("the summary is printed");
    assert!(!raw[summary..].contains("eta"), "the bar was cleared before the summary: {raw}");
    assert!(!raw[summary..].contains("\x1b[2K"), "nothing erases the summary: {raw}");
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
