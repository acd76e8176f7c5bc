//! Prometheus text metrics: the figures of every pass since the daemon
//! started, requests by outcome, keys by state and the worst cursor lag,
//! the last two read from the store when scraped. No series names a key.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::store::{KeyState, StreamCursor};
use crate::sync::{Engine, Figures, PassReport, PassStatus};
use crate::tz;

#[derive(Default)]
pub struct Metrics {
    /// The figures of every pass, added up.
    totals: Mutex<Figures>,
    passes_ok: AtomicU64,
    passes_not_ok: AtomicU64,
    last_pass_ms: AtomicU64,
    last_success_ms: AtomicU64,
}

/// What the store tells at scrape time.
#[derive(Default)]
pub struct StoreView {
    pub keys: Vec<(KeyState, i64)>,
    pub cursors: Vec<StreamCursor>,
}

impl Metrics {
    pub fn record_pass(&self, r: &PassReport, duration: std::time::Duration) {
        self.totals.lock().unwrap_or_else(|p| p.into_inner()).add(&r.figures);
        self.last_pass_ms.store(duration.as_millis() as u64, Ordering::Relaxed);
        if r.status == PassStatus::Ok {
            self.passes_ok.fetch_add(1, Ordering::Relaxed);
            self.last_success_ms.store(tz::now_ms() as u64, Ordering::Relaxed);
        } else {
            self.passes_not_ok.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The exposition text, with the cursor lag as of now.
    pub fn render(&self, engine: &Engine, view: &StoreView) -> String {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in samples {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        let plain = |v: String| vec![(String::new(), v)];
        let totals = self.totals.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (figure, value) in totals.pairs().filter(|(name, _)| !matches!(*name, "requests" | "retries")) {
            let help = format!("Sum of the {} figure of every pass (see sync_runs).", figure.replace('_', " "));
            family(&format!("oifde_sync_{figure}_total"), "counter", &help, &plain(value.to_string()));
        }
        let stats = &engine.client.stats;
        let requests = stats.requests.load(Ordering::Relaxed);
        let ok = stats.answered_ok.load(Ordering::Relaxed).min(requests);
        family(
            "oifde_sync_requests_total",
            "counter",
            "HTTP requests sent (token requests included), by outcome.",
            &[("{outcome=\"ok\"}".into(), ok.to_string()), ("{outcome=\"error\"}".into(), (requests - ok).to_string())],
        );
        family(
            "oifde_sync_retries_total",
            "counter",
            "Requests retried.",
            &plain(stats.retries.load(Ordering::Relaxed).to_string()),
        );
        family(
            "oifde_sync_request_failures_total",
            "counter",
            "Requests that failed after their retries.",
            &plain(stats.failures.load(Ordering::Relaxed).to_string()),
        );
        family(
            "oifde_sync_passes_total",
            "counter",
            "Passes, by result.",
            &[
                ("{result=\"ok\"}".into(), load(&self.passes_ok).to_string()),
                ("{result=\"not_ok\"}".into(), load(&self.passes_not_ok).to_string()),
            ],
        );
        family(
            "oifde_sync_last_pass_duration_seconds",
            "gauge",
            "Duration of the last pass.",
            &plain(format!("{:.3}", load(&self.last_pass_ms) as f64 / 1000.0)),
        );
        family(
            "oifde_sync_last_success_timestamp_seconds",
            "gauge",
            "When the last fully successful pass ended (0: none yet).",
            &plain(format!("{:.3}", load(&self.last_success_ms) as f64 / 1000.0)),
        );
        let keys: Vec<(String, String)> = KeyState::ALL
            .iter()
            .map(|state| {
                let n = view.keys.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
                (format!("{{state=\"{}\"}}", state.as_str()), n.to_string())
            })
            .collect();
        family("oifde_sync_keys", "gauge", "Query keys, by state.", &keys);
        let now = tz::now_ms();
        let worst = view.cursors.iter().filter_map(|c| c.cursor_time).map(|t| now - t).max().unwrap_or(0);
        family(
            "oifde_sync_cursor_lag_seconds",
            "gauge",
            "How far the furthest-behind active stream key's cursor is behind now.",
            &plain(format!("{:.3}", worst as f64 / 1000.0)),
        );
        out
    }
}

/// Serves `GET /metrics` on `addr` until `cancel` fires.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    engine: Engine,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route("/metrics", get(scrape)).with_state((metrics, engine));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await;
    });
    Ok(bound)
}

async fn scrape(State((metrics, engine)): State<(Arc<Metrics>, Engine)>) -> String {
    let view = engine
        .with_store(|s| Ok(StoreView { keys: s.key_counts()?, cursors: s.stream_cursors()? }))
        .await
        .unwrap_or_default();
    metrics.render(&engine, &view)
}
