//! A day of CDRs for 100,000 calls (several legs each) read into keys and
//! legs, against the pipeline a team writes by hand (the zip's call IDs cut
//! out by a script and piped into `keys add -`: keys only, no legs), in one
//! run. Both run as the release binary, timed with peak RSS from
//! `/usr/bin/time`. `cargo bench --bench cdr [-- CALLS]`.

use std::process::Command;
use std::time::Instant;

use oifde_sync::simulator::cdr::{SimLeg, write_dir};
use oifde_sync::tz::ServerZone;

/// Legs of `calls` calls over one day: an IVR leg each, a queue and an
/// agent leg for one in three, and an agent-only call for one in ten.
fn legs(calls: usize, day_start_ms: i64) -> Vec<SimLeg> {
    let mut rng = fastrand::Rng::with_seed(11);
    let mut out = Vec::with_capacity(calls * 2);
    for i in 0..calls {
        let begin = day_start_ms + rng.i64(0..86_000_000);
        let end = begin + rng.i64(20_000..600_000);
        let leg = |id: String, num, device_type, b, e, device_no: &str| SimLeg {
            call_id: id,
            call_id_num: num,
            device_type,
            caller_no: format!("138{:08}", i % 50_000),
            callee_no: "10086".into(),
            call_begin: b,
            call_end: e,
            device_no: device_no.into(),
        };
        let id = format!("{}", 2_000_000_000u64 + i as u64);
        if i % 3 == 0 {
            out.push(leg(id.clone(), 1, 3, begin, end, "flow-1"));
            out.push(leg(id.clone(), 2, 1, end, end + 30_000, "skill-7"));
            out.push(leg(id, -1, 2, end + 30_000, end + 300_000, "agent-101"));
        } else {
            out.push(leg(id, -1, 3, begin, end, "flow-1"));
        }
        if i % 10 == 5 {
            out.push(leg(format!("agent-only-{i}"), -1, 2, begin, end, "agent-102"));
        }
    }
    out
}

/// Runs `sh -c script` under `/usr/bin/time`: seconds and peak RSS (MB).
fn timed(script: &str) -> (f64, f64) {
    let started = Instant::now();
    let out =
        Command::new("/usr/bin/time").args(["-f", "%M", "sh", "-c", script]).output().expect("/usr/bin/time runs");
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kb: f64 = stderr.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0.0);
    (seconds, kb / 1024.0)
}

fn main() {
    let calls: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let bin = env!("CARGO_BIN_EXE_oifde-sync");
    let dir = tempfile::tempdir().unwrap();
    let zone = ServerZone::parse("UTC").unwrap();
    let legs = legs(calls, 1_793_577_600_000);
    let zips = write_dir(&dir.path().join("cdr"), &legs, &zone).unwrap();
    let zip = zips.iter().map(|z| z.display().to_string()).collect::<Vec<_>>().join(" ");
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        "[api]\nbase_url = \"http://127.0.0.1:9\"\ntenant_id = \"tenant001\"\napp_secret = \"x\"\n\n\
         [store]\npath = \"bench.db\"\n[log]\nlevel = \"warn\"\n",
    )
    .unwrap();
    let bytes: u64 = zips.iter().map(|z| std::fs::metadata(z).unwrap().len()).sum();
    println!("{calls} calls, {} legs, {} zips of {:.1} MB", legs.len(), zips.len(), bytes as f64 / 1e6);
    let (secs, rss) = timed(&format!("{bin} --config {} keys import {zip} >/dev/null", config.display()));
    let db = dir.path().join("bench.db");
    let count =
        |sql: &str| -> i64 { rusqlite::Connection::open(&db).unwrap().query_row(sql, [], |r| r.get(0)).unwrap() };
    let (keys, stored) = (count("SELECT count(*) FROM query_keys"), count("SELECT count(*) FROM cdr_legs"));
    assert_eq!(stored as usize, legs.len(), "every leg stored");
    std::fs::remove_file(&db).unwrap();
    let script = "import csv, io, sys, zipfile\n\
                  for f in sys.argv[1:]:\n    \
                  z = zipfile.ZipFile(f)\n    \
                  for n in z.namelist():\n        \
                  if '_call_' in n:\n            \
                  rows = csv.DictReader(io.TextIOWrapper(z.open(n), encoding='utf-8-sig'))\n            \
                  ids = {r['call_id'] for r in rows if r['device_type'] == '3'}\n            \
                  sys.stdout.write(''.join('cti:' + i + '\\n' for i in ids))\n";
    let py = dir.path().join("cut.py");
    std::fs::write(&py, script).unwrap();
    let (base_secs, base_rss) =
        timed(&format!("python3 {} {zip} | {bin} --config {} keys add - >/dev/null", py.display(), config.display()));
    let base_keys = count("SELECT count(*) FROM query_keys");
    println!("| route | calls | keys | legs stored | seconds | peak RSS MB |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!("| `keys import` of the zip (keys and legs) | {calls} | {keys} | {stored} | {secs:.2} | {rss:.1} |");
    println!(
        "| hand-written: a script cuts the IVR call IDs, piped into `keys add -` (keys only) | {calls} | {base_keys} | 0 | {base_secs:.2} | {base_rss:.1} |"
    );
}
