//! One pass: for every query key, the windows to read, every page of each,
//! each page committed in its own transaction, and the key's cursor (or the
//! backfill's progress) moved only once a whole window is committed.
//! `sync`, `run` and `backfill` all go through [`Engine::pass`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiClient, ApiError, Page, Query, Record};
use crate::config::Settings;
use crate::keys::{self, QueryKey};
use crate::plan::{self, Window};
use crate::store::{PageOutcome, RunFigures, Store, StoreError};
use crate::tz;

/// What a pass covers.
#[derive(Clone, Debug)]
pub enum PassKind {
    /// From each key's cursor (less the overlap) to now less the lag.
    Incremental { now: i64, label: &'static str },
    /// A fixed period, `[from, to]` inclusive in epoch seconds; cursors stay put.
    Backfill { from: i64, to: i64, key: Option<QueryKey> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassStatus {
    /// Every window committed.
    Ok,
    /// Some windows failed; their keys' cursors stayed put.
    Partial,
    /// The pass could not go on (credentials refused, store failure).
    Failed,
    /// Stopped by a shutdown request; committed pages stay.
    Interrupted,
}

impl PassStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PassStatus::Ok => "ok",
            PassStatus::Partial => "partial",
            PassStatus::Failed => "failed",
            PassStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug)]
pub struct PassReport {
    pub run_id: i64,
    pub status: PassStatus,
    pub figures: RunFigures,
    /// One line a failed window, or the error that ended the pass.
    pub errors: Vec<String>,
    /// Lines of the keys file that were skipped.
    pub bad_key_lines: Vec<String>,
    /// The error that ended the pass, when it was the API's credentials refusal.
    pub fatal: Option<String>,
}

/// Errors that stop a pass before it starts or while it writes.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("{0}")]
    Keys(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Progress of a pass, for a bar on a terminal or periodic log lines.
pub trait ProgressSink: Send + Sync {
    fn planned(&self, _windows: u64) {}
    fn window_done(&self, _records: u64) {}
}

struct Silent;
impl ProgressSink for Silent {}

/// Counters shared by the keys of one pass.
#[derive(Default)]
struct Tally {
    windows: AtomicU64,
    pages: AtomicU64,
    fetched: AtomicU64,
    inserted: AtomicU64,
    updated: AtomicU64,
    unchanged: AtomicU64,
    stale: AtomicU64,
    failed_windows: AtomicU64,
    rereads: AtomicU64,
}

impl Tally {
    fn page(&self, records: usize, o: PageOutcome) {
        self.pages.fetch_add(1, Ordering::Relaxed);
        self.fetched.fetch_add(records as u64, Ordering::Relaxed);
        self.inserted.fetch_add(o.inserted, Ordering::Relaxed);
        self.updated.fetch_add(o.updated, Ordering::Relaxed);
        self.unchanged.fetch_add(o.unchanged, Ordering::Relaxed);
        self.stale.fetch_add(o.stale, Ordering::Relaxed);
    }
}

/// Why a window did not complete.
enum WindowError {
    Api(ApiError),
    Store(StoreError),
    Cancelled,
    /// Fewer distinct records than the server's total, after every re-read.
    Incomplete {
        distinct: u64,
        total: u64,
    },
}

/// How many times a window that came back short is read again.
const MAX_REREADS: usize = 2;

/// The pass machinery: the API client and the store's single writer.
#[derive(Clone)]
pub struct Engine {
    pub settings: Arc<Settings>,
    pub client: Arc<ApiClient>,
    pub store: Arc<Mutex<Store>>,
    progress: Arc<dyn ProgressSink>,
}

/// State of one running pass.
struct Pass<'a> {
    kind: &'a PassKind,
    job: String,
    tally: Tally,
    errors: Mutex<Vec<String>>,
    fatal: Mutex<Option<String>>,
    stop: AtomicBool,
    cancel: &'a CancellationToken,
}

impl Pass<'_> {
    /// Logs a failed window, counts it, and keeps its line for the run log.
    fn report_failure(&self, key: &str, w: Window, why: &str) {
        let line =
            format!("key {key}, window {} .. {}: {why}", tz::utc_text(w.start * 1000), tz::utc_text(w.end * 1000));
        tracing::error!("{line}");
        self.tally.failed_windows.fetch_add(1, Ordering::Relaxed);
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }
}

impl Engine {
    pub fn new(settings: Arc<Settings>, client: Arc<ApiClient>, store: Store) -> Self {
        Self { settings, client, store: Arc::new(Mutex::new(store)), progress: Arc::new(Silent) }
    }

    pub fn with_progress(mut self, progress: Arc<dyn ProgressSink>) -> Self {
        self.progress = progress;
        self
    }

    /// Runs `f` on the store from a blocking thread; SQLite calls block.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&mut store.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .expect("store task panicked")
    }

    /// Every key's cursor, epoch ms, for metrics.
    pub async fn cursors(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.with_store(|s| Ok(s.cursors()?.into_iter().map(|c| (c.query_key, c.cursor_time)).collect())).await
    }

    /// One pass over every key. Failed windows are reported in the result,
    /// not as an error; only a store failure or unreadable keys are errors.
    pub async fn pass(&self, kind: PassKind, cancel: &CancellationToken) -> Result<PassReport, PassError> {
        let key_set = keys::collect(&self.settings.query).map_err(PassError::Keys)?;
        let bad_key_lines: Vec<String> =
            key_set.bad_lines.iter().map(|b| format!("keys file line {}: {} (skipped)", b.line, b.msg)).collect();
        for line in &bad_key_lines {
            tracing::warn!("{line}");
        }
        let keys: Vec<QueryKey> = match &kind {
            PassKind::Backfill { key: Some(k), .. } => vec![k.clone()],
            _ => key_set.keys,
        };
        let label = match &kind {
            PassKind::Incremental { label, .. } => *label,
            PassKind::Backfill { .. } => "backfill",
        };
        let run_id = self.with_store(move |s| s.begin_run(label, tz::now_ms())).await?;
        let requests_before = self.client.stats.requests.load(Ordering::Relaxed);
        let retries_before = self.client.stats.retries.load(Ordering::Relaxed);
        let pass = Pass {
            kind: &kind,
            job: backfill_job(&kind),
            tally: Tally::default(),
            errors: Mutex::new(Vec::new()),
            fatal: Mutex::new(None),
            stop: AtomicBool::new(false),
            cancel,
        };

        let plans = self.plan(&pass, &keys).await?;
        self.progress.planned(plans.iter().map(|(_, w)| w.len() as u64).sum());
        let results: Vec<Result<(), StoreError>> = futures_util::stream::iter(plans)
            .map(|(key, windows)| self.run_key(&pass, key, windows))
            .buffer_unordered(self.settings.api.concurrency)
            .collect()
            .await;
        let store_error = results.into_iter().find_map(Result::err);

        let t = &pass.tally;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let figures = RunFigures {
            keys: keys.len() as u64,
            windows: load(&t.windows),
            pages: load(&t.pages),
            records_fetched: load(&t.fetched),
            inserted: load(&t.inserted),
            updated: load(&t.updated),
            unchanged: load(&t.unchanged),
            stale: load(&t.stale),
            failed_windows: load(&t.failed_windows),
            rereads: load(&t.rereads),
            requests: self.client.stats.requests.load(Ordering::Relaxed) - requests_before,
            retries: self.client.stats.retries.load(Ordering::Relaxed) - retries_before,
        };
        let fatal = pass.fatal.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut errors = pass.errors.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &store_error {
            errors.push(e.to_string());
        }
        let status = if fatal.is_some() || store_error.is_some() {
            PassStatus::Failed
        } else if cancel.is_cancelled() {
            PassStatus::Interrupted
        } else if figures.failed_windows > 0 {
            PassStatus::Partial
        } else {
            PassStatus::Ok
        };
        if status == PassStatus::Ok && matches!(kind, PassKind::Backfill { .. }) {
            let job = pass.job.clone();
            self.with_store(move |s| s.clear_backfill(&job)).await?;
        }
        let summary = (!errors.is_empty()).then(|| summarize(&errors));
        let (fig, st) = (figures.clone(), status.as_str());
        self.with_store(move |s| s.finish_run(run_id, st, &fig, summary.as_deref(), tz::now_ms())).await?;
        if let Some(e) = store_error {
            return Err(e.into());
        }
        Ok(PassReport { run_id, status, figures, errors, bad_key_lines, fatal })
    }

    /// The windows of each key, before any request.
    async fn plan(&self, pass: &Pass<'_>, keys: &[QueryKey]) -> Result<Vec<(QueryKey, Vec<Window>)>, StoreError> {
        let size = self.settings.sync.window;
        match pass.kind {
            PassKind::Incremental { now, .. } => {
                let names: Vec<String> = keys.iter().map(ToString::to_string).collect();
                let cursors =
                    self.with_store(move |s| names.iter().map(|k| s.cursor(k)).collect::<Result<Vec<_>, _>>()).await?;
                let sync = &self.settings.sync;
                Ok(keys
                    .iter()
                    .zip(cursors)
                    .map(|(key, cursor)| {
                        let span = plan::incremental_span(cursor, sync.start, sync.overlap, sync.lag, *now);
                        let windows = span.map(|(from, to)| plan::windows(from, to, size)).unwrap_or_default();
                        (key.clone(), windows)
                    })
                    .collect())
            }
            PassKind::Backfill { from, to, .. } => {
                let job = pass.job.clone();
                let done = self.with_store(move |s| s.backfill_done(&job)).await?;
                Ok(keys
                    .iter()
                    .map(|key| {
                        let name = key.to_string();
                        let windows = plan::windows(*from, to + 1, size)
                            .into_iter()
                            .filter(|w| !done.contains(&(name.clone(), w.start)))
                            .collect();
                        (key.clone(), windows)
                    })
                    .collect())
            }
        }
    }

    /// Reads one key's windows in order. In an incremental pass a failed
    /// window ends the key (its cursor must not pass it); a backfill goes on.
    async fn run_key(&self, pass: &Pass<'_>, key: QueryKey, windows: Vec<Window>) -> Result<(), StoreError> {
        let name = key.to_string();
        for w in windows {
            if pass.cancel.is_cancelled() || pass.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            match self.read_window(pass, &key, w).await {
                Ok(records) => {
                    pass.tally.windows.fetch_add(1, Ordering::Relaxed);
                    self.progress.window_done(records);
                    let (name, job, now) = (name.clone(), pass.job.clone(), tz::now_ms());
                    match pass.kind {
                        PassKind::Incremental { .. } => {
                            self.with_store(move |s| s.set_cursor(&name, w.end, now)).await?;
                        }
                        PassKind::Backfill { .. } => {
                            self.with_store(move |s| s.mark_backfill_window(&job, &name, w.start, w.end, now)).await?;
                        }
                    }
                }
                Err(WindowError::Cancelled) => return Ok(()),
                Err(WindowError::Store(e)) => {
                    pass.stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                Err(WindowError::Incomplete { distinct, total }) => {
                    pass.report_failure(
                        &name,
                        w,
                        &format!(
                            "received {distinct} distinct records of the {total} the server reported, \
                         after {MAX_REREADS} re-reads"
                        ),
                    );
                    if matches!(pass.kind, PassKind::Incremental { .. }) {
                        return Ok(());
                    }
                }
                Err(WindowError::Api(e)) => {
                    pass.report_failure(&name, w, &e.to_string());
                    if e.is_fatal() || matches!(e, ApiError::KeysRequired { .. }) {
                        *pass.fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                        pass.stop.store(true, Ordering::Relaxed);
                        return Ok(());
                    }
                    if matches!(pass.kind, PassKind::Incremental { .. }) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Every page of a window, halving it while the server reports more than
    /// `split_above` records. A window whose distinct records fall short of
    /// the server's `total` is read again, at most [`MAX_REREADS`] times.
    /// Returns the records received.
    async fn read_window(&self, pass: &Pass<'_>, key: &QueryKey, window: Window) -> Result<u64, WindowError> {
        let split_above = self.settings.sync.split_above;
        let mut received = 0u64;
        let mut todo = vec![window];
        'windows: while let Some(w) = todo.pop() {
            for attempt in 0..=MAX_REREADS {
                let first = self.fetch(pass, key, w, 1).await?;
                if let Some(total) = first.total.filter(|t| *t > split_above) {
                    if let Some((left, right)) = w.halves() {
                        tracing::debug!(key = %key, total, seconds = w.seconds(), "window above split_above, halving");
                        todo.push(right);
                        todo.push(left);
                        continue 'windows;
                    }
                    tracing::warn!(key = %key, total, "a one-second window holds more than sync.split_above records; reading all of it");
                }
                let total = first.total;
                let (read, distinct) = self.read_pages(pass, key, w, first).await?;
                received += read;
                match total {
                    Some(total) if distinct < total && attempt < MAX_REREADS => {
                        tracing::warn!(key = %key, distinct, total, "fewer records than the server reported; reading the window again");
                        pass.tally.rereads.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(total) if distinct < total => {
                        return Err(WindowError::Incomplete { distinct, total });
                    }
                    _ => continue 'windows,
                }
            }
        }
        Ok(received)
    }

    /// Reads and commits every page of one window from its first page on.
    /// Returns the records read and how many distinct log ids they held.
    async fn read_pages(
        &self,
        pass: &Pass<'_>,
        key: &QueryKey,
        w: Window,
        first: Page,
    ) -> Result<(u64, u64), WindowError> {
        let page_size = self.settings.api.page_size as usize;
        let total = first.total;
        let mut seen: HashSet<String> = HashSet::new();
        seen.extend(first.records.iter().map(|r| r.log_id.clone()));
        let mut got = self.commit(pass, first.records).await?;
        let mut in_window = got as u64;
        // Where the total tells how many pages there are, later pages are
        // fetched ahead (up to api.concurrency) while earlier ones commit.
        let last_page = total.map(|t| t.div_ceil(page_size as u64).max(1) as u32).unwrap_or(u32::MAX);
        let depth = if total.is_some() { self.settings.api.concurrency.max(1) } else { 1 };
        let mut ahead = Ahead::default();
        let mut next_page = 2u32;
        while got == page_size && total.is_none_or(|t| in_window < t) {
            while ahead.0.len() < depth && (next_page <= last_page || ahead.0.is_empty()) {
                ahead.0.push_back(self.spawn_fetch(key, w, next_page));
                next_page += 1;
            }
            let Some(handle) = ahead.0.pop_front() else { break };
            let page = tokio::select! {
                biased;
                _ = pass.cancel.cancelled() => return Err(WindowError::Cancelled),
                page = handle => page.expect("fetch task panicked").map_err(WindowError::Api)?,
            };
            seen.extend(page.records.iter().map(|r| r.log_id.clone()));
            got = self.commit(pass, page.records).await?;
            in_window += got as u64;
        }
        Ok((in_window, seen.len() as u64))
    }

    fn spawn_fetch(&self, key: &QueryKey, w: Window, page_num: u32) -> tokio::task::JoinHandle<Result<Page, ApiError>> {
        let (client, key) = (self.client.clone(), key.clone());
        tokio::spawn(
            async move { client.query(&Query { key: &key, begin: w.start, end: w.last_second(), page_num }).await },
        )
    }

    async fn fetch(&self, pass: &Pass<'_>, key: &QueryKey, w: Window, page_num: u32) -> Result<Page, WindowError> {
        let q = Query { key, begin: w.start, end: w.last_second(), page_num };
        tokio::select! {
            biased;
            _ = pass.cancel.cancelled() => Err(WindowError::Cancelled),
            page = self.client.query(&q) => page.map_err(WindowError::Api),
        }
    }

    /// Commits one page in its own transaction and counts it; returns its size.
    async fn commit(&self, pass: &Pass<'_>, records: Vec<Record>) -> Result<usize, WindowError> {
        let len = records.len();
        let outcome =
            self.with_store(move |s| s.apply_page(&records, tz::now_ms())).await.map_err(WindowError::Store)?;
        pass.tally.page(len, outcome);
        Ok(len)
    }
}

/// Pages being fetched ahead; dropped (on an error, a short page or a
/// shutdown) they are aborted.
#[derive(Default)]
struct Ahead(std::collections::VecDeque<tokio::task::JoinHandle<Result<Page, ApiError>>>);

impl Drop for Ahead {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

/// The progress key of a backfill: its period and key filter.
fn backfill_job(kind: &PassKind) -> String {
    match kind {
        PassKind::Backfill { from, to, key } => {
            format!("{from}|{to}|{}", key.as_ref().map_or_else(|| "all".to_string(), ToString::to_string))
        }
        PassKind::Incremental { .. } => String::new(),
    }
}

/// The run log keeps the first errors and a count of the rest.
fn summarize(errors: &[String]) -> String {
    const KEEP: usize = 5;
    let mut text = errors.iter().take(KEEP).cloned().collect::<Vec<_>>().join("\n");
    if errors.len() > KEEP {
        text.push_str(&format!("\n… and {} more", errors.len() - KEEP));
    }
    text
}
