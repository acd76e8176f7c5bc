//! `sync`: one incremental pass. `backfill`: one pass over a fixed period,
//! resumable, with a progress bar on a terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{CommandError, Exit, engine, load_settings, pass_exit, shutdown_on_signals, summary_line};
use crate::keys::QueryKey;
use crate::sync::{PassKind, ProgressSink};
use crate::tz;

pub async fn sync(config: &Path) -> Result<Exit, CommandError> {
    let settings = load_settings(config)?;
    let engine = engine(settings)?;
    let cancel = shutdown_on_signals();
    let started = Instant::now();
    let kind = PassKind::Incremental { now: tz::now_ms() / 1000, label: "sync" };
    let report = engine.pass(kind, &cancel).await?;
    println!("{}", summary_line("sync", &report, started.elapsed().as_secs_f64()));
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
    let key = key.map(QueryKey::parse).transpose().map_err(|m| CommandError::Usage(format!("--key: {m}")))?;
    let progress: Arc<dyn ProgressSink> =
        if std::io::stderr().is_terminal() { Arc::new(Bar::new()) } else { Arc::new(LogLines::default()) };
    let engine = engine(settings)?.with_progress(progress.clone());
    let cancel = shutdown_on_signals();
    let started = Instant::now();
    let report = engine.pass(PassKind::Backfill { from, to, key }, &cancel).await?;
    drop(progress);
    println!("{}", summary_line("backfill", &report, started.elapsed().as_secs_f64()));
    if report.status == crate::sync::PassStatus::Interrupted {
        eprintln!("interrupted: run the same backfill command again to resume");
    }
    Ok(pass_exit(&report))
}

/// A progress bar on stderr: windows done, records, rate.
struct Bar {
    bar: indicatif::ProgressBar,
    records: AtomicU64,
}

impl Bar {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} windows, {msg} (eta {eta})",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar, records: AtomicU64::new(0) }
    }
}

impl ProgressSink for Bar {
    fn planned(&self, windows: u64) {
        self.bar.set_length(windows);
    }
    fn window_done(&self, records: u64) {
        self.bar.inc(1);
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
#[derive(Default)]
struct LogLines {
    planned: AtomicU64,
    done: AtomicU64,
    records: AtomicU64,
    last: std::sync::Mutex<Option<Instant>>,
}

impl ProgressSink for LogLines {
    fn planned(&self, windows: u64) {
        self.planned.store(windows, Ordering::Relaxed);
        tracing::info!(windows, "backfill planned");
    }
    fn window_done(&self, records: u64) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let records = self.records.fetch_add(records, Ordering::Relaxed) + records;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::info!(
                windows_done = done,
                windows = self.planned.load(Ordering::Relaxed),
                records,
                "backfill progress"
            );
        }
    }
}
