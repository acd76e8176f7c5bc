//! `sync`: one incremental pass (or, with `--resweep`, the resweep now).
//! `backfill`: one pass over a fixed period, resumable. Both show progress:
//! a bar on a terminal, a log line every ten seconds elsewhere.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{CommandError, Exit, engine, load_settings, pass_exit, shutdown_on_signals};
use crate::keys::QueryKey;
use crate::sync::{PassKind, PassStatus, ProgressSink};
use crate::tz;

pub async fn sync(config: &Path, resweep: bool) -> Result<Exit, CommandError> {
    let settings = load_settings(config)?;
    let now = tz::now_ms() / 1000;
    let kind = if resweep {
        if settings.sync.resweep.is_none() {
            return Err(CommandError::Usage("--resweep needs sync.resweep set to a span, like \"3d\"".into()));
        }
        PassKind::Resweep { now }
    } else {
        PassKind::Incremental { now, label: "sync" }
    };
    let label = kind.label();
    let engine = engine(settings, "oifde-sync sync")?.with_progress(progress(label));
    let cancel = shutdown_on_signals();
    let started = Instant::now();
    let report = engine.pass(kind, &cancel).await?;
    drop(engine);
    println!("{}", report.summary(label, started.elapsed().as_secs_f64()));
    Ok(pass_exit(&report))
}

pub async fn backfill(config: &Path, from: &str, to: &str, key: Option<&str>) -> Result<Exit, CommandError> {
    let settings = load_settings(config)?;
    let zone = &settings.api.server_timezone;
    let from = zone.parse_time(from).map_err(|m| CommandError::Usage(format!("--from: {m}")))?;
    let to = zone.parse_time(to).map_err(|m| CommandError::Usage(format!("--to: {m}")))?;
    if to < from {
        return Err(CommandError::Usage("--to is before --from".into()));
    }
    // The end of a backfill is at most now; a day or more past it is a typo.
    let now = tz::now_ms() / 1000;
    if to > now + 86_400 {
        return Err(CommandError::Usage(format!(
            "--to {} is in the future; a backfill reads what has happened (at most now, {} in api.server_timezone)",
            zone.format(to),
            zone.format(now)
        )));
    }
    let to = to.min(now);
    if to < from {
        return Err(CommandError::Usage("--from is in the future".into()));
    }
    let key = key.map(QueryKey::parse).transpose().map_err(|m| CommandError::Usage(format!("--key: {m}")))?;
    let engine = engine(settings, "oifde-sync backfill")?.with_progress(progress("backfill"));
    let cancel = shutdown_on_signals();
    let started = Instant::now();
    let report = engine.pass(PassKind::Backfill { from, to, key }, &cancel).await?;
    drop(engine);
    println!("{}", report.summary("backfill", started.elapsed().as_secs_f64()));
    if report.status == PassStatus::Interrupted {
        eprintln!("interrupted: run the same backfill command again to resume");
    }
    Ok(pass_exit(&report))
}

fn progress(label: &'static str) -> Arc<dyn ProgressSink> {
    if std::io::stderr().is_terminal() { Arc::new(Bar::new()) } else { Arc::new(LogLines::new(label)) }
}

/// A progress bar on stderr: share done, records, rate. Drawn once the pass
/// is planned, cleared when the pass ends.
struct Bar {
    bar: indicatif::ProgressBar,
    records: AtomicU64,
}

impl Bar {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::hidden();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed} [{bar:20}] {percent:>3}% {msg} eta {eta}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        Self { bar, records: AtomicU64::new(0) }
    }
}

impl ProgressSink for Bar {
    fn planned(&self, units: u64) {
        self.bar.set_length(units.max(1));
        self.bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }
    fn advanced(&self, units: u64, records: u64) {
        self.bar.inc(units);
        let total = self.records.fetch_add(records, Ordering::Relaxed) + records;
        let rate = total as f64 / self.bar.elapsed().as_secs_f64().max(0.001);
        self.bar.set_message(format!("{total} records, {rate:.0}/s"));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Where there is no terminal: a log line at most every ten seconds.
struct LogLines {
    label: &'static str,
    planned: AtomicU64,
    done: AtomicU64,
    records: AtomicU64,
    last: std::sync::Mutex<Instant>,
}

impl LogLines {
    fn new(label: &'static str) -> Self {
        Self {
            label,
            planned: AtomicU64::new(0),
            done: AtomicU64::new(0),
            records: AtomicU64::new(0),
            last: std::sync::Mutex::new(Instant::now()),
        }
    }
}

impl ProgressSink for LogLines {
    fn planned(&self, units: u64) {
        self.planned.store(units.max(1), Ordering::Relaxed);
    }
    fn advanced(&self, units: u64, records: u64) {
        let done = self.done.fetch_add(units, Ordering::Relaxed) + units;
        let records = self.records.fetch_add(records, Ordering::Relaxed) + records;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= Duration::from_secs(10) {
            *last = Instant::now();
            let percent = done * 100 / self.planned.load(Ordering::Relaxed).max(1);
            tracing::info!(pass = self.label, percent, records, "progress");
        }
    }
}
