//! A pass, top-down: bring the configured keys into the store, plan the work
//! of the keys that are due, read each key (several at a time), and write
//! the run log.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::pager::{LeafOutcome, WindowError};
use super::pass_state::Pass;
use super::plan::{self, Window, Windows};
use super::report::{PassReport, Tally, summarize};
use super::{Engine, PassError, PassKind};
use crate::api::Action;
use crate::keys::{KeyRow, KeyState};
use crate::keys::{Polling, QueryKey};
use crate::ledgers::cdr_import::{CdrRules, import_dir};
use crate::run_log::PassStatus;
use crate::store::StoreError;
use crate::tz;

/// Passes in a row a key waits at a window that cannot complete before it
/// moves on without it.
const MAX_FAILED_PASSES: i64 = 3;

/// A CDR call is looked for from this long before its begin to this long after its end.
const CALL_MARGIN_S: i64 = 300;

/// What to do with one key in this pass.
#[derive(Debug)]
struct Work {
    key: QueryKey,
    read: Read,
}

#[derive(Debug)]
enum Read {
    /// A span in adaptive windows; the first window is `first` seconds long.
    Span { span: Window, first: i64, then: AfterWindow },
    /// A point key: one key-only query (or, where the server needs windows,
    /// its lookback span), then its state decided.
    Point { row: KeyRow },
}

/// What a committed window moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterWindow {
    Cursor,
    BackfillProgress,
    Nothing,
    /// Nothing; and a request error is the key's fault, not a failed window.
    KeyFault,
}

/// How a key's reading ended.
enum KeyEnd {
    Finished(u64, Option<i64>),
    /// The server refused the key itself (a request error): its message.
    Refused(String),
    /// A window failed, or the pass stops: the key's state stays.
    Stopped,
}

impl Engine {
    /// One pass. Failed windows are reported in the result, not as an error;
    /// only a store failure or an unreadable keys file is an error.
    pub async fn pass(&self, kind: PassKind, cancel: &CancellationToken) -> Result<PassReport, PassError> {
        let (warnings, nothing_to_read) = self.gather_keys(kind.now()).await?;
        let work = if nothing_to_read { None } else { Some(self.plan(&kind).await?) };
        let run_id = self
            .with_store({
                let label = kind.label();
                move |s| s.begin_run(label, tz::now_ms())
            })
            .await?;
        let (requests, retries) = self.client.stats.counts();
        let pass = Pass {
            kind: &kind,
            job: backfill_job(&kind),
            tally: Tally::default(),
            errors: Mutex::new(Vec::new()),
            fatal: Mutex::new(None),
            stop: AtomicBool::new(false),
            cancel,
        };
        let skipped = work.is_none();
        let mut work = work.unwrap_or_default();
        // A token first, once for the pass: a server that cannot be reached,
        // or that refuses the credentials, is said once, and no window is
        // counted as failed for it.
        if !work.is_empty()
            && let Err(e) = self.client.token_retrying().await
        {
            let line = format!("cannot obtain a token from {}: {e}{}", self.settings.api.base_url, e.hint());
            tracing::error!("{line}");
            if e.action() == Action::EndPass {
                pass.end(e.to_string());
            } else {
                pass.errors.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                pass.stop.store(true, Ordering::Relaxed);
            }
            work.clear();
        }
        pass.tally.count(|f| f.keys = work.len() as u64);
        self.progress.planned(work.iter().map(Work::units).sum());
        let store_error = futures_util::stream::iter(work)
            .map(|w| self.read_key(&pass, w))
            .buffer_unordered(self.settings.api.concurrency)
            .collect::<Vec<Result<(), StoreError>>>()
            .await
            .into_iter()
            .find_map(Result::err);

        let (requests_now, retries_now) = self.client.stats.counts();
        pass.tally.count(|f| {
            f.requests = requests_now - requests;
            f.retries = retries_now - retries;
        });
        let figures = pass.tally.get();
        let fatal = pass.fatal.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut errors = pass.errors.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &store_error {
            errors.push(e.to_string());
        }
        let status = if fatal.is_some() || store_error.is_some() || pass.stop.load(Ordering::Relaxed) {
            PassStatus::Failed
        } else if cancel.is_cancelled() {
            PassStatus::Interrupted
        } else if figures.failed_windows > 0 {
            PassStatus::Partial
        } else if skipped {
            PassStatus::Skipped
        } else {
            PassStatus::Ok
        };
        if let (PassStatus::Ok, PassKind::Backfill { from, to, key }) = (status, &kind) {
            let (job, from, to, key) = (pass.job.clone(), *from, to + 1, key.as_ref().map(ToString::to_string));
            self.with_store(move |s| {
                s.clear_skipped(key.as_deref(), from, to)?;
                s.clear_backfill(&job)
            })
            .await?;
        }
        let summary = (!errors.is_empty() || !warnings.is_empty())
            .then(|| summarize(&errors.iter().chain(&warnings).cloned().collect::<Vec<_>>()));
        let (fig, st) = (figures.clone(), status.as_str());
        self.with_store(move |s| s.finish_run(run_id, st, &fig, summary.as_deref(), tz::now_ms())).await?;
        if let Some(e) = store_error {
            return Err(e.into());
        }
        Ok(PassReport { run_id, status, figures, errors, warnings, fatal })
    }

    /// Brings the config's keys, what was appended to the keys file and the
    /// new CDR files into the store; with no key anywhere, the window-only
    /// key. Returns warnings and whether there is nothing to read (a keys
    /// file or CDR directory with no key yet).
    async fn gather_keys(&self, now: i64) -> Result<(Vec<String>, bool), PassError> {
        let configured = self.settings.query.configured();
        let keys_file = self.settings.query.keys_file.clone();
        let cdr_dir = self.settings.query.cdr_dir.clone();
        let rules = CdrRules::of(&self.settings);
        let fallback = self.settings.analytics.fallback_intentions.clone();
        let now = now * 1000;
        self.with_store(move |s| {
            s.configure_keys(&configured, now)?;
            s.set_fallback_intentions(&fallback)?;
            let (mut warnings, mut nothing, mut file_empty) = (Vec::new(), false, false);
            if let Some(dir) = &cdr_dir {
                let imported = import_dir(s, dir, &rules, tz::now_ms())?;
                if imported.files > 0 {
                    tracing::info!(dir = %dir.display(), "CDR files read: {}", imported.summary());
                }
                warnings.extend(imported.warnings());
            }
            if let Some(file) = &keys_file {
                // A keys file missing for a moment (being rotated) stops no other key.
                let read = match s.read_keys_file(file, now)? {
                    Ok(read) => Some(read),
                    Err(msg) => {
                        warnings.push(format!("{msg}; the pass goes on with the other keys"));
                        None
                    }
                };
                if let Some(read) = read {
                if read.from_start {
                    tracing::info!(file = %file.display(), "keys file was replaced or truncated; read again from its start");
                }
                if read.new_keys > 0 {
                    tracing::info!(file = %file.display(), new_keys = read.new_keys, "new keys from the keys file");
                }
                for b in &read.bad {
                    warnings.push(format!("keys file {} line {}: {} (skipped)", file.display(), b.line, b.msg));
                }
                if read.bad_count > read.bad.len() as u64 {
                    warnings.push(format!("… and {} more bad lines", read.bad_count - read.bad.len() as u64));
                }
                file_empty = read.empty;
                }
            }
            let has_keys = s.has_keys()?;
            if let Some(file) = keys_file.as_ref().filter(|_| !has_keys) {
                nothing = true;
                let what = if file_empty { "is empty" } else { "holds no valid key" };
                warnings.push(format!(
                    "keys file {} {what} yet and no other key is configured; nothing to read this pass",
                    file.display()
                ));
            } else if let Some(dir) = cdr_dir.as_ref().filter(|_| !has_keys) {
                nothing = true;
                warnings.push(format!(
                    "the CDR directory {} holds no IVR call yet and no other key is configured; nothing to read this pass",
                    dir.display()
                ));
            }
            s.set_window_only(keys_file.is_none() && cdr_dir.is_none() && !has_keys, now)?;
            Ok((warnings, nothing))
        })
        .await
        .map_err(PassError::from)
        .inspect(|(warnings, _)| warnings.iter().for_each(|w| tracing::warn!("{w}")))
    }

    /// The work of this pass.
    async fn plan(&self, kind: &PassKind) -> Result<Vec<Work>, StoreError> {
        let sync = &self.settings.sync;
        let window = sync.window.as_secs() as i64;
        let lag = sync.lag.as_secs() as i64;
        match kind {
            PassKind::Incremental { now, .. } => {
                let now = *now;
                let mut due = self.with_store(move |s| s.due_keys(now * 1000)).await?;
                for row in &mut due {
                    let (cursor, pulled) =
                        plan::sane_cursor(row.cursor_time.map(|ms| ms.div_euclid(1000)), now, sync.lag);
                    if pulled {
                        tracing::warn!(
                            key = %row.query_key,
                            cursor = %tz::utc_text(row.cursor_time.unwrap_or(0)),
                            "the key's cursor is later than now (the clock ran ahead when it was written); pulled back to now"
                        );
                        let (key, at) = (row.query_key.clone(), cursor.unwrap_or(now));
                        self.with_store(move |s| s.pull_back_cursor(&key, at, tz::now_ms())).await?;
                        row.cursor_time = cursor.map(|c| c * 1000);
                    }
                }
                let start = sync.start.at(now);
                Ok(due
                    .into_iter()
                    .filter_map(|row| {
                        let key = row.key()?;
                        let read = match key.polling() {
                            Polling::Point => Read::Point { row },
                            Polling::Stream => {
                                let cursor = row.cursor_time.map(|ms| ms.div_euclid(1000));
                                let (from, to) = plan::incremental_span(cursor, start, sync.overlap, sync.lag, now)?;
                                // A key's first read may span its whole history.
                                let first = if cursor.is_none() { to - from } else { window };
                                Read::Span { span: Window::new(from, to), first, then: AfterWindow::Cursor }
                            }
                        };
                        Some(Work { key, read })
                    })
                    .collect())
            }
            PassKind::Backfill { from, to, key } => {
                let keys = match key {
                    Some(k) => vec![k.clone()],
                    None => self.backfill_keys().await?,
                };
                let job = backfill_job(kind);
                let done = self.with_store(move |s| s.backfill_done(&job)).await?;
                let mut work = Vec::new();
                for key in keys {
                    let finished = done.get(&key.to_string()).map(Vec::as_slice).unwrap_or(&[]);
                    for gap in plan::gaps(*from, to + 1, finished) {
                        let read = Read::Span { span: gap, first: gap.seconds(), then: AfterWindow::BackfillProgress };
                        work.push(Work { key: key.clone(), read });
                    }
                }
                Ok(work)
            }
            PassKind::Resweep { now } => {
                let Some(span) = sync.resweep else { return Ok(Vec::new()) };
                let (from, to) = (now - span.as_secs() as i64, now - lag);
                if from >= to {
                    return Ok(Vec::new());
                }
                let keys = self.active_stream_keys().await?;
                let w = Window::new(from, to);
                Ok(keys
                    .into_iter()
                    .map(|key| Work { key, read: Read::Span { span: w, first: window, then: AfterWindow::Nothing } })
                    .collect())
            }
        }
    }

    /// Every key a backfill reads: all that are not removed, point keys in
    /// every state (a backfill is an explicit re-read) with stream keys.
    async fn backfill_keys(&self) -> Result<Vec<QueryKey>, StoreError> {
        let rows = self.with_store(|s| s.list_keys(None)).await?;
        Ok(rows.into_iter().filter(|r| r.state != KeyState::Removed).filter_map(|r| r.key()).collect())
    }

    async fn active_stream_keys(&self) -> Result<Vec<QueryKey>, StoreError> {
        let rows = self.with_store(|s| s.stream_cursors()).await?;
        Ok(rows.into_iter().filter_map(|c| QueryKey::from_stored(&c.query_key).ok()).collect())
    }

    /// Reads one key's work. A store failure ends the pass.
    async fn read_key(&self, pass: &Pass<'_>, work: Work) -> Result<(), StoreError> {
        if pass.stopped() {
            return Ok(());
        }
        let Work { key, read } = work;
        match read {
            Read::Span { span, first, then } => {
                if let KeyEnd::Finished(records, _) = self.read_span(pass, &key, span, first, then).await?
                    && then == AfterWindow::Cursor
                {
                    let name = key.to_string();
                    self.with_store(move |s| s.stream_key_read(&name, records as i64, tz::now_ms())).await?;
                }
                Ok(())
            }
            Read::Point { row } => self.read_point(pass, &key, row).await,
        }
    }

    /// A point key: a key-only query, or its lookback span in windows where
    /// the server refuses those; then its new state, once its records are
    /// committed. A key the server refuses either way is that key's fault:
    /// it waits (then is given up) with the server's message, and the pass
    /// goes on.
    async fn read_point(&self, pass: &Pass<'_>, key: &QueryKey, row: KeyRow) -> Result<(), StoreError> {
        let now_ms = pass.kind.now() * 1000;
        let (key_only, reprobe) = self.key_only_now(now_ms);
        let mut end = KeyEnd::Stopped;
        let mut refused_key_only = None;
        if key_only {
            match self.read_leaf(pass, key, None, |_, _, _| plan::Split::OneSecond).await {
                Ok(LeafOutcome::Read(leaf)) => {
                    pass.tally.count(|f| f.windows += 1);
                    self.progress.advanced(1, leaf.records);
                    self.foreign_records(key, &leaf);
                    end = KeyEnd::Finished(leaf.own, leaf.own_newest_ms);
                    if reprobe {
                        self.point_windows_end(true, now_ms);
                    }
                }
                Ok(LeafOutcome::Split) => unreachable!("a key-only query is never split"),
                Err(WindowError::Api(e)) if e.action() == Action::UseWindows => {
                    if reprobe {
                        self.point_windows_end(false, now_ms);
                    }
                    refused_key_only = Some(e.to_string());
                }
                Err(e) => {
                    if reprobe {
                        self.point_windows_end(false, now_ms);
                    }
                    self.window_failed(pass, key, None, e)?;
                    return Ok(());
                }
            }
        }
        if matches!(end, KeyEnd::Stopped) && (refused_key_only.is_some() || !key_only) {
            let now = pass.kind.now() - self.settings.sync.lag.as_secs() as i64;
            // A CDR call is asked for around its own span; any other key from
            // query.point_lookback before it was added.
            let (from, to) = match (row.call_begin, row.call_end) {
                (Some(begin), end) => {
                    let end = end.unwrap_or(begin).max(begin);
                    (begin.div_euclid(1000) - CALL_MARGIN_S, (end.div_euclid(1000) + CALL_MARGIN_S).min(now))
                }
                _ => (row.added_at.div_euclid(1000) - self.settings.query.point_lookback.as_secs() as i64, now),
            };
            if from < to {
                end = self.read_span(pass, key, Window::new(from, to), to - from, AfterWindow::KeyFault).await?;
            }
            if let (Some(why), KeyEnd::Finished(found, _)) = (&refused_key_only, &end) {
                self.key_only_refused(key, *found, why, now_ms);
            }
        }
        let (found, newest_ms, error) = match end {
            KeyEnd::Finished(found, newest_ms) => (found, newest_ms, None),
            KeyEnd::Refused(why) => (0, None, Some(why)),
            KeyEnd::Stopped => return Ok(()),
        };
        let q = &self.settings.query;
        let update = plan::point_after_query(
            found,
            newest_ms,
            row.misses,
            row.added_at,
            now_ms,
            self.settings.sync.settle,
            q.give_up_after,
        );
        if let Some(why) = &error {
            tracing::warn!(key = %key, state = update.state.as_str(), "the server refuses this key: {why}");
        }
        tracing::debug!(key = %key, found, state = update.state.as_str(), "point key read");
        let name = key.to_string();
        self.with_store(move |s| s.key_queried(&name, update, error.as_deref(), now_ms)).await
    }

    /// Records of other calls came for a point key: they are stored (they
    /// are real), but the key's count and state follow its own call's. Said
    /// once a process.
    fn foreign_records(&self, key: &QueryKey, leaf: &super::pager::Leaf) {
        if leaf.records > leaf.own && !self.foreign_said.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                key = %key,
                sent = leaf.records,
                own = leaf.own,
                "the server ignored the call filter and sent other calls' records; they are stored, \
                 and a key's state follows only its own call's records"
            );
        }
    }

    /// Whether a point key is asked key-only now, and whether that asks
    /// again a server that needed windows.
    fn key_only_now(&self, now_ms: i64) -> (bool, bool) {
        let mut w = self.point_windows.lock().unwrap_or_else(|p| p.into_inner());
        match w.since {
            None => (true, false),
            Some(since) if now_ms - since >= super::REPROBE_MS && !w.reprobing => {
                w.reprobing = true;
                (true, true)
            }
            Some(_) => (false, false),
        }
    }

    /// A key refused key-only was read in a window and found `found` records:
    /// two such keys with records are evidence that the server needs windows.
    fn key_only_refused(&self, key: &QueryKey, found: u64, why: &str, now_ms: i64) {
        let mut w = self.point_windows.lock().unwrap_or_else(|p| p.into_inner());
        if found > 0 {
            w.evidence.insert(key.to_string());
        }
        if w.since.is_none() && w.evidence.len() >= 2 {
            w.since = Some(now_ms);
            tracing::warn!(
                "{why}: this server refuses queries without beginTime/endTime; point keys are read in windows over \
                 query.point_lookback before they were added (asked again in an hour)"
            );
        }
    }

    /// A re-probe of a server that needed windows ended: `accepted` says
    /// whether it takes key-only queries again.
    fn point_windows_end(&self, accepted: bool, now_ms: i64) {
        let mut w = self.point_windows.lock().unwrap_or_else(|p| p.into_inner());
        w.reprobing = false;
        if accepted {
            tracing::info!("the server accepts key-only queries again; point keys are read without windows");
            *w = super::PointWindows::default();
        } else {
            w.since = Some(now_ms);
        }
    }

    /// Reads `span` of `key` in adaptive windows, moving what `then` says
    /// after each window commits. In an incremental pass a failed window ends
    /// the key (its cursor must not pass it); a backfill goes on after it.
    async fn read_span(
        &self,
        pass: &Pass<'_>,
        key: &QueryKey,
        span: Window,
        first: i64,
        then: AfterWindow,
    ) -> Result<KeyEnd, StoreError> {
        let s = &self.settings;
        let mut windows = Windows::new(span, first, plan::target_records(s.sync.split_above, s.api.page_size));
        let (mut records, mut newest_ms) = (0u64, None);
        let mut failed = false;
        while let Some((w, parent_total)) = windows.next_window() {
            if pass.stopped() {
                return Ok(KeyEnd::Stopped);
            }
            match self
                .read_leaf(pass, key, Some(w), |w, total, probe| windows.split(w, total, parent_total, probe))
                .await
            {
                Ok(LeafOutcome::Split) => continue,
                Ok(LeafOutcome::Read(leaf)) => {
                    windows.done(w, leaf.records);
                    self.foreign_records(key, &leaf);
                    records += leaf.own;
                    newest_ms = newest_ms.max(leaf.own_newest_ms);
                    pass.tally.count(|f| f.windows += 1);
                    self.progress.advanced(w.seconds() as u64, leaf.records);
                    let (name, job, now) = (key.to_string(), pass.job.clone(), tz::now_ms());
                    match then {
                        AfterWindow::Cursor => self.with_store(move |s| s.set_cursor(&name, w.end, now)).await?,
                        AfterWindow::BackfillProgress => {
                            self.with_store(move |s| s.mark_backfill_window(&job, &name, w.start, w.end, now)).await?
                        }
                        AfterWindow::Nothing | AfterWindow::KeyFault => {}
                    }
                }
                Err(WindowError::Api(e)) if then == AfterWindow::KeyFault && e.is_request_refusal() => {
                    return Ok(KeyEnd::Refused(e.to_string()));
                }
                Err(e) => {
                    let incomplete = matches!(e, WindowError::Incomplete { .. } | WindowError::Refused(_));
                    self.window_failed(pass, key, Some(w), e)?;
                    failed = true;
                    if pass.stopped() {
                        return Ok(KeyEnd::Stopped);
                    }
                    if then == AfterWindow::Cursor && incomplete && self.move_on_without(key, w).await? {
                        windows.done(w, 0);
                        continue;
                    }
                    if matches!(pass.kind, PassKind::Incremental { .. }) {
                        return Ok(KeyEnd::Stopped);
                    }
                    // A backfill goes on after the failed window, which stays to be read again.
                    windows.done(w, 0);
                }
            }
        }
        Ok(if failed { KeyEnd::Stopped } else { KeyEnd::Finished(records, newest_ms) })
    }

    /// A window that cannot complete stops its key's cursor; after
    /// [`MAX_FAILED_PASSES`] passes in a row the key moves on without it,
    /// and the window is kept for a backfill (`status` lists it).
    async fn move_on_without(&self, key: &QueryKey, w: Window) -> Result<bool, StoreError> {
        let name = key.to_string();
        let failed = self.with_store(move |s| s.key_failed_pass(&name)).await?;
        if failed < MAX_FAILED_PASSES {
            return Ok(false);
        }
        let zone = &self.settings.api.server_timezone;
        let reason = format!("incomplete in {failed} passes in a row");
        tracing::warn!(
            key = %key,
            "window {} .. {} has not completed in {failed} passes; the key moves on without it. Read it later with \
             `oifde-sync backfill --from \"{}\" --to \"{}\" --key {key}`",
            zone.format(w.start),
            zone.format(w.end),
            zone.format(w.start),
            zone.format(w.last_second()),
        );
        let (name, now) = (key.to_string(), tz::now_ms());
        self.with_store(move |s| s.skip_window(&name, w.start, w.end, &reason, now)).await?;
        Ok(true)
    }

    /// Reports a window that did not complete; decides whether the pass goes on.
    fn window_failed(
        &self,
        pass: &Pass<'_>,
        key: &QueryKey,
        span: Option<Window>,
        e: WindowError,
    ) -> Result<(), StoreError> {
        match e {
            WindowError::Cancelled => {}
            WindowError::Store(e) => {
                pass.stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
            WindowError::Refused(records) => {
                let first: Vec<String> = records
                    .iter()
                    .take(3)
                    .map(|(id, why)| format!("record {}: {why}", id.chars().take(80).collect::<String>()))
                    .collect();
                let more = if records.len() > 3 { format!(" (and {} more)", records.len() - 3) } else { String::new() };
                pass.report_failure(key, span, &format!("{}{more}; the other records are stored", first.join("; ")));
            }
            WindowError::Incomplete { distinct, total } => pass.report_failure(
                key,
                span,
                &format!(
                    "received {distinct} distinct records of the {total} the server reported, after {} re-reads",
                    super::pager::MAX_REREADS
                ),
            ),
            WindowError::Api(e) => {
                pass.report_failure(key, span, &e.to_string());
                if e.action() == Action::EndPass {
                    pass.end(e.to_string());
                }
            }
        }
        Ok(())
    }
}

impl Work {
    /// Progress units: a second of span, or one point key.
    fn units(&self) -> u64 {
        match &self.read {
            Read::Span { span, .. } => span.seconds() as u64,
            Read::Point { .. } => 1,
        }
    }
}

/// The progress key of a backfill: its period and key filter.
fn backfill_job(kind: &PassKind) -> String {
    match kind {
        PassKind::Backfill { from, to, key } => {
            format!("{from}|{to}|{}", key.as_ref().map_or_else(|| "all".to_string(), ToString::to_string))
        }
        _ => String::new(),
    }
}
