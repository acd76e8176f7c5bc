//! `status [--json]`: what the store holds, how far each key has got, and the
//! last passes. Reads the store without writing to it.

use std::path::Path;

use serde::Serialize;

use super::{CommandError, Exit, load_offline_settings};
use crate::run_log::{RunRow, StatusReport};
use crate::store::Store;
use crate::tz;

/// The JSON document of `status --json`; field names are stable.
#[derive(Serialize)]
struct StatusJson<'a> {
    store: String,
    now: i64,
    #[serde(flatten)]
    report: &'a StatusReport,
    /// Seconds each active stream key's cursor is behind now (null: not read yet).
    lag_seconds: Vec<KeyLag>,
}

#[derive(Serialize)]
struct KeyLag {
    query_key: String,
    lag_seconds: Option<i64>,
}

pub fn status(config: &Path, json: bool) -> Result<Exit, CommandError> {
    let settings = load_offline_settings(config)?;
    let store = Store::open_configured_read_only(&settings.store)?;
    let report = store.status(5)?;
    let now = tz::now_ms();
    let lags: Vec<KeyLag> = report
        .cursors
        .iter()
        .map(|c| KeyLag { query_key: c.query_key.clone(), lag_seconds: c.cursor_time.map(|t| (now - t) / 1000) })
        .collect();
    if json {
        let doc = StatusJson { store: store.describe(), now, report: &report, lag_seconds: lags };
        println!("{}", serde_json::to_string_pretty(&doc).expect("status serializes"));
        return Ok(Exit::Success);
    }
    let size = match report.db_bytes_counts {
        "database" => format!("database size {} bytes, every tenant's", report.db_bytes),
        _ => format!("{} bytes", report.db_bytes),
    };
    println!("store {} ({size}, schema {})", store.describe(), report.schema_version);
    println!("  {} records, {} turns, {} Q&A rows", report.records, report.turns, report.qa_rows);
    let counts: Vec<String> = report.keys.iter().map(|(state, n)| format!("{n} {}", state.as_str())).collect();
    println!("keys: {}", if counts.is_empty() { "none yet".to_string() } else { counts.join(", ") });
    println!("active stream keys ({}):", report.cursors.len());
    for lag in &lags {
        match lag.lag_seconds {
            Some(secs) => println!(
                "  {:<32} through {} UTC, {} behind",
                lag.query_key,
                tz::utc_text(now - secs * 1000),
                human(secs)
            ),
            None => println!("  {:<32} not read yet", lag.query_key),
        }
    }
    if !report.skipped_windows.is_empty() {
        let zone = &settings.api.server_timezone;
        println!("windows that never completed ({}); read them with:", report.skipped_windows.len());
        for w in &report.skipped_windows {
            println!(
                "  oifde-sync backfill --from \"{}\" --to \"{}\" --key {}   # {}",
                zone.format(w.start),
                zone.format(w.end - 1),
                w.query_key,
                w.reason
            );
        }
    }
    if let Some(v) = &report.verified {
        let zone = &settings.api.server_timezone;
        let found = if v.missing == 0 {
            "no settled hour misses a call".to_string()
        } else {
            format!("{} calls missing in {} settled hours (`oifde-sync verify` names them)", v.missing, v.missing_hours)
        };
        println!(
            "verified at {} UTC, {} to {}: the platform counted {} calls, the mirror holds {}; {found}",
            tz::utc_text(v.at),
            &zone.format(v.from / 1000)[..10],
            &zone.format((v.to - 1) / 1000)[..10],
            v.platform_calls,
            v.mirrored
        );
    }
    println!("last passes:");
    for r in &report.runs {
        println!("  {}", run_line(r));
        if let Some(e) = &r.error {
            for line in e.lines() {
                println!("      {line}");
            }
        }
    }
    Ok(Exit::Success)
}

fn run_line(r: &RunRow) -> String {
    format!("#{} {} {} at {} UTC: {}", r.id, r.kind, r.status, tz::utc_text(r.started_at), r.figures)
}

fn human(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
