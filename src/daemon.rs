//! The daemon: a pass at start, then one per cron tick; a tick that comes
//! while a pass runs is skipped, so passes never overlap. With
//! `sync.resweep`, a resweep pass on its own schedule waits for its turn. Shutdown is an
//! input: when `cancel` fires, the pass in flight finishes its page and is
//! recorded as interrupted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::ledgers::verify::{check, fetch, last_days};
use crate::metrics::Metrics;
use crate::schedule::Schedule;
use crate::sync::{Engine, PassKind};
use crate::tz;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Schedule(String),
    #[error("metrics.listen {addr}: {source}")]
    Metrics { addr: std::net::SocketAddr, source: std::io::Error },
}

/// How the daemon ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Asked to stop.
    Stopped,
    /// The server refused the credentials; running on would only repeat it.
    CredentialsRefused,
    /// The database connection (and with it the tenant's writer lock) was
    /// lost: a restart connects and takes the lock again.
    StoreLost,
}

/// How long a shutdown waits for the pass in flight.
const DRAIN: Duration = Duration::from_secs(20);

/// When the daemon prunes what is older than `store.keep` (and once at start).
const KEEP_SCHEDULE: &str = "0 40 4 * * *";

fn notify(states: &[NotifyState]) {
    // A no-op without NOTIFY_SOCKET, i.e. when not run by systemd.
    let _ = sd_notify::notify(states);
}

struct Shared {
    engine: Engine,
    metrics: Arc<Metrics>,
    /// Held for the length of a pass.
    gate: Arc<tokio::sync::Mutex<()>>,
    cancel: CancellationToken,
    refused: AtomicBool,
    lost: AtomicBool,
    /// The pass at start has ended.
    first_done: AtomicBool,
}

impl Shared {
    /// One incremental pass, unless a pass is running already.
    async fn tick(&self) {
        let Ok(guard) = self.gate.clone().try_lock_owned() else {
            // The pass at start may take a while (a store's first sync): a
            // tick that comes meanwhile is no news.
            if self.first_done.load(Ordering::Relaxed) {
                tracing::warn!("previous pass still running; skipping this tick");
            } else {
                tracing::debug!("the pass at start is still running; skipping this tick");
            }
            return;
        };
        self.pass(PassKind::Incremental { now: tz::now_ms() / 1000, label: "run" }, guard).await;
        self.first_done.store(true, Ordering::Relaxed);
    }

    /// With `store.snapshot_to`, a fresh copy for analysts after a pass that wrote.
    async fn snapshot_after(&self, report: &crate::sync::PassReport) {
        let Some(crate::config::Snapshot { to, access }) = self.engine.settings.store.snapshot().cloned() else {
            return;
        };
        let f = &report.figures;
        if f.inserted + f.updated == 0 && to.exists() {
            return;
        }
        let Some(store) = self.engine.settings.store.sqlite_path().map(std::path::Path::to_path_buf) else { return };
        let written = tokio::task::spawn_blocking(move || {
            crate::store::sqlite::snapshot::snapshot(&store, &to, &access).map(|n| (to, n))
        })
        .await;
        match written {
            Ok(Ok((to, records))) => tracing::info!(to = %to.display(), records, "snapshot written"),
            Ok(Err(e)) => tracing::error!("snapshot failed: {e}"),
            Err(e) => tracing::error!("snapshot failed: {e}"),
        }
    }

    /// The platform's call statistics of the last `reconcile.days` days
    /// fetched (a request an access code a day), and the mirror verified
    /// against them; the result kept for `status` and the metrics. A refused
    /// access code is said, and fails nothing.
    async fn reconcile(&self) {
        let settings = &self.engine.settings;
        let zone = settings.api.server_timezone.clone();
        let now = tz::now_ms();
        let days = last_days(&zone, now / 1000, settings.reconcile.days);
        let (hours, refused) = fetch(&self.engine.client, &settings.reconcile.access_codes, &days).await;
        for r in &refused {
            tracing::warn!("{r}");
        }
        let sync = settings.sync.clone();
        let verified = self.engine.with_store(move |store| check(store, &hours, &days, &sync, &zone, now)).await;
        match verified {
            Ok(v) if v.summary.missing > 0 => tracing::warn!(
                missing = v.summary.missing,
                hours = v.summary.missing_hours,
                "settled hours miss calls the platform counted; {}",
                v.backfill.as_deref().map(|c| format!("re-read them with: {c}")).unwrap_or_default()
            ),
            Ok(v) => tracing::info!(
                platform = v.summary.platform_calls,
                mirrored = v.summary.mirrored,
                "verified against the platform's count: no settled hour misses a call"
            ),
            Err(e) => tracing::error!("verification failed: {e}"),
        }
    }

    /// The sessions older than `store.keep` removed, a batch at a time
    /// between the pass's pages.
    async fn keep(&self) {
        let Some(keep) = self.engine.settings.store.keep else { return };
        let cut = crate::retention::cut_for(keep, tz::now_ms());
        match crate::retention::prune_beside_passes(&self.engine, cut).await {
            Ok(p) => tracing::info!(
                sessions = p.sessions,
                cdr_legs = p.legs,
                before = %tz::utc_text(cut),
                "pruned what is older than store.keep"
            ),
            Err(e) => tracing::error!("pruning what is older than store.keep failed: {e}"),
        }
    }

    /// The resweep, once the pass in flight (if any) has ended.
    async fn resweep(&self) {
        let guard = self.gate.clone().lock_owned().await;
        self.pass(PassKind::Resweep { now: tz::now_ms() / 1000 }, guard).await;
    }

    async fn pass(&self, kind: PassKind, _guard: tokio::sync::OwnedMutexGuard<()>) {
        if self.cancel.is_cancelled() {
            return;
        }
        let started = Instant::now();
        let label = if matches!(kind, PassKind::Resweep { .. }) { "resweep" } else { "pass" };
        match self.engine.pass(kind, &self.cancel).await {
            Ok(report) => {
                let line = report.summary(label, started.elapsed().as_secs_f64());
                self.snapshot_after(&report).await;
                tracing::info!("{line}");
                self.metrics.record_pass(&report, started.elapsed());
                notify(&[NotifyState::Status(&line)]);
                if let Some(fatal) = &report.fatal {
                    tracing::error!("{fatal}; stopping");
                    self.refused.store(true, Ordering::Relaxed);
                    self.cancel.cancel();
                }
            }
            Err(crate::sync::PassError::Store(e @ crate::store::StoreError::Disconnected { .. })) => {
                tracing::error!(
                    "{e}; exiting, so that the service manager restarts the daemon (which takes the tenant's lock again)"
                );
                self.lost.store(true, Ordering::Relaxed);
                self.cancel.cancel();
            }
            Err(e) => {
                tracing::error!("pass failed: {e}");
                notify(&[NotifyState::Status(&format!("last pass failed: {e}"))]);
            }
        }
    }
}

type Tick = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs `on` at every time `schedule` names until `cancel` fires. Each run is
/// spawned, so a tick that comes while a pass runs still arrives (and is skipped).
fn every(schedule: Schedule, shared: Arc<Shared>, on: fn(Arc<Shared>) -> Tick) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let cancel = shared.cancel.clone();
        let mut next = schedule.next_after(chrono::Utc::now());
        while let Some(at) = next {
            // Sleep in steps of at most an hour, so a clock change is noticed.
            let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default().min(Duration::from_secs(3600));
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            if chrono::Utc::now() < at {
                continue;
            }
            tokio::spawn(on(shared.clone()));
            next = schedule.next_after(at);
        }
    })
}

/// Runs until `cancel` fires (or the credentials are refused).
pub async fn run(engine: Engine, cancel: CancellationToken) -> Result<Ended, DaemonError> {
    let metrics = Arc::new(Metrics::new(&engine.client.stats));
    if let Some(addr) = engine.settings.metrics_listen {
        let bound = crate::metrics::serve(addr, metrics.clone(), engine.clone(), cancel.clone())
            .await
            .map_err(|source| DaemonError::Metrics { addr, source })?;
        tracing::info!("metrics on http://{bound}/metrics");
    }
    let schedule = engine.settings.sync.schedule.clone();
    let shared = Arc::new(Shared {
        engine,
        metrics,
        gate: Arc::new(tokio::sync::Mutex::new(())),
        cancel: cancel.clone(),
        refused: AtomicBool::new(false),
        lost: AtomicBool::new(false),
        first_done: AtomicBool::new(false),
    });
    notify(&[NotifyState::Ready, NotifyState::Status("first pass running")]);
    let watchdog = sd_notify::watchdog_enabled().map(|period| {
        let stop = cancel.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(period / 2);
            while !stop.is_cancelled() {
                every.tick().await;
                notify(&[NotifyState::Watchdog]);
            }
        })
    });

    let parse = |expr: &str| Schedule::parse(expr).map_err(DaemonError::Schedule);
    let mut loops =
        vec![every(parse(&schedule)?, shared.clone(), |shared| Box::pin(async move { shared.tick().await }))];
    if let Some(span) = shared.engine.settings.sync.resweep {
        let resweep_schedule = shared.engine.settings.sync.resweep_schedule.clone();
        loops.push(every(parse(&resweep_schedule)?, shared.clone(), |shared| {
            Box::pin(async move { shared.resweep().await })
        }));
        tracing::info!(schedule = %resweep_schedule, span_s = span.as_secs(), "resweep scheduled");
    }
    if !shared.engine.settings.reconcile.access_codes.is_empty() {
        let reconcile_schedule = shared.engine.settings.reconcile.schedule.clone();
        loops.push(every(parse(&reconcile_schedule)?, shared.clone(), |shared| {
            Box::pin(async move { shared.reconcile().await })
        }));
        tracing::info!(schedule = %reconcile_schedule, "verification against the platform's call statistics scheduled");
    }
    if let Some(keep) = shared.engine.settings.store.keep {
        loops.push(every(parse(KEEP_SCHEDULE)?, shared.clone(), |shared| Box::pin(async move { shared.keep().await })));
        let first = shared.clone();
        tokio::spawn(async move { first.keep().await });
        tracing::info!(keep_s = keep.as_secs(), schedule = KEEP_SCHEDULE, "retention scheduled");
    }
    tracing::info!(schedule = %schedule, "daemon started");
    let first = shared.clone();
    tokio::spawn(async move { first.tick().await });

    cancel.cancelled().await;
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    for l in loops {
        let _ = l.await;
    }
    if tokio::time::timeout(DRAIN, shared.gate.lock()).await.is_err() {
        tracing::warn!("the pass in flight did not finish within {DRAIN:?}; exiting anyway");
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    Ok(if shared.refused.load(Ordering::Relaxed) {
        Ended::CredentialsRefused
    } else if shared.lost.load(Ordering::Relaxed) {
        Ended::StoreLost
    } else {
        Ended::Stopped
    })
}
