//! Progress of a long pass: a bar on a terminal, drawn once the pass is
//! planned and cleared before its summary, with log lines printed above it;
//! elsewhere (the journal, a pipe) a log line every ten seconds.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Progress of a pass, for a bar on a terminal or periodic log lines. Work
/// is counted in units: a second of a stream key's span, or a point key.
pub trait ProgressSink: Send + Sync {
    fn planned(&self, _units: u64) {}
    fn advanced(&self, _units: u64, _records: u64) {}
}

/// No progress shown.
pub struct Silent;
impl ProgressSink for Silent {}

/// The bar on screen, if any: log lines are written around it.
static ON_SCREEN: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// The progress sink for a pass labelled `label`.
pub fn progress(label: &'static str) -> Arc<dyn ProgressSink> {
    if std::io::stderr().is_terminal() { Arc::new(Bar::new()) } else { Arc::new(LogLines::new(label)) }
}

/// Where log lines go: stderr, with the bar lifted out of the way.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = ON_SCREEN.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)).map(|()| buf.len()),
            None => std::io::stderr().write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// A progress bar on stderr: share done, records, rate; fits 80 columns.
struct Bar {
    bar: indicatif::ProgressBar,
    records: AtomicU64,
}

impl Bar {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::hidden();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:20}] {percent:>3}% {msg:.dim} eta {eta}")
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
        *ON_SCREEN.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.bar.clone());
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
        *ON_SCREEN.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.bar.finish_and_clear();
    }
}

/// Where there is no terminal: a log line at most every ten seconds.
pub struct LogLines {
    label: &'static str,
    planned: AtomicU64,
    done: AtomicU64,
    records: AtomicU64,
    last: std::sync::Mutex<Instant>,
}

impl LogLines {
    pub fn new(label: &'static str) -> Self {
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
        // A new pass (the daemon reuses its sink): count from zero.
        self.planned.store(units.max(1), Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        self.records.store(0, Ordering::Relaxed);
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
