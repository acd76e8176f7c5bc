//! Soak: the daemon on a one-second schedule against a simulator at 20 %
//! faults whose tenant grows and changes, for SOAK_MINUTES minutes (default
//! 1). Not run by `cargo test`; `bench/soak.sh` runs it.

use std::process::Command;
use std::time::{Duration, Instant};

use oifde_sync::simulator::{Faults, SimOptions};

use crate::cli::{run, text, write_config};
use crate::helpers::*;

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmRSS:")).map(|v| v.trim().trim_end_matches("kB").trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "minutes long; run by bench/soak.sh"]
async fn soak() {
    let minutes: u64 = std::env::var("SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(1);
    let now = oifde_sync::tz::now_ms() / 1000;
    let faults = Faults { token_expires_after_queries: Some(50), ..Faults::all_at(0.2) };
    let sim = simulator(SimOptions { records: 2000, users: 10, from: now - 3600, to: now, faults, ..options(0) }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "[log]\nlevel = \"info\"\n");
    let start = oifde_sync::tz::ServerZone::utc().format(now - 3600);
    let text_ = std::fs::read_to_string(&config)
        .unwrap()
        .replace("start = \"2026-11-02 00:00:00\"", &format!("start = \"{start}\""))
        .replace("window = \"12h\"", "window = \"10m\"\nschedule = \"* * * * * *\"\nlag = \"0s\"\noverlap = \"15m\"");
    std::fs::write(&config, text_).unwrap();
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let mut daemon = spawn(dir.path(), &["run"], &[], log.into());
    let pid = daemon.0.id();
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(5);
    let mut samples = Vec::new();
    let mut added = 0u64;
    while started.elapsed() < Duration::from_secs(minutes * 60) {
        // New calls arrive; recent ones are updated.
        let records = sim.records();
        let now_ms = oifde_sync::tz::now_ms();
        let mut fresh = records[rng.usize(0..records.len())].clone();
        fresh.log_id = format!("soak-{added:08}");
        fresh.call_id = format!("soak-call-{added}");
        fresh.start_time = now_ms - 2_000;
        sim.insert(fresh);
        added += 1;
        if let Some(recent) = records.iter().rev().take(50).nth(rng.usize(0..50)) {
            sim.update(&recent.log_id, |r| {
                r.last_update_time = Some(r.last_update_time.unwrap_or(0).max(now_ms) + 1);
                if let Some(t) = r.details.first_mut() {
                    t.system_reply = Some(format!("updated at {now_ms}"));
                }
            });
        }
        if samples.len() < (started.elapsed().as_secs() / 10) as usize + 1 {
            samples.push(rss_kb(pid));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Quiet: let a few clean passes catch up, then stop the daemon.
    sim.set_faults(Faults::default());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let peak = samples.iter().copied().max().unwrap_or(0);
    let settled = samples.get(6).or(samples.last()).copied().unwrap_or(0);
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || daemon.0.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let db = dir.path().join("mirror.db");
    assert_mirrors(&db, &sim.records());
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(!log.contains("panicked"), "no panic in the log");
    let passes: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM sync_runs WHERE kind = 'run'", [], |r| r.get(0))
        .unwrap();
    println!(
        "soak: {minutes} min, {added} records added, {passes} passes, RSS samples (kB, every 10 s): {samples:?}, peak {peak} kB"
    );
    assert!(peak <= settled.max(1) * 3 / 2 + 4096, "RSS grew from {settled} kB to {peak} kB");
}
