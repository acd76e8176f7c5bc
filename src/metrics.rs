//! Prometheus text metrics: totals since the daemon started, the last pass,
//! and each key's cursor lag, read from the store when scraped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::sync::{Engine, PassReport, PassStatus};
use crate::tz;

#[derive(Default)]
pub struct Metrics {
    inserted: AtomicU64,
    updated: AtomicU64,
    unchanged: AtomicU64,
    stale: AtomicU64,
    failed_windows: AtomicU64,
    passes_ok: AtomicU64,
    passes_not_ok: AtomicU64,
    last_pass_ms: AtomicU64,
    last_success_ms: AtomicU64,
}

impl Metrics {
    pub fn record_pass(&self, r: &PassReport, duration: std::time::Duration) {
        let f = &r.figures;
        self.inserted.fetch_add(f.inserted, Ordering::Relaxed);
        self.updated.fetch_add(f.updated, Ordering::Relaxed);
        self.unchanged.fetch_add(f.unchanged, Ordering::Relaxed);
        self.stale.fetch_add(f.stale, Ordering::Relaxed);
        self.failed_windows.fetch_add(f.failed_windows, Ordering::Relaxed);
        self.last_pass_ms.store(duration.as_millis() as u64, Ordering::Relaxed);
        if r.status == PassStatus::Ok {
            self.passes_ok.fetch_add(1, Ordering::Relaxed);
            self.last_success_ms.store(tz::now_ms() as u64, Ordering::Relaxed);
        } else {
            self.passes_not_ok.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The exposition text, with cursor lags as of now.
    pub fn render(&self, engine: &Engine, cursors: &[(String, i64)]) -> String {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let stats = &engine.client.stats;
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in samples {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        let outcome = |o: &str, v: u64| (format!("{{outcome=\"{o}\"}}"), v.to_string());
        family(
            "oifde_sync_records_total",
            "counter",
            "Records read, by what the store did with them.",
            &[
                outcome("inserted", load(&self.inserted)),
                outcome("updated", load(&self.updated)),
                outcome("unchanged", load(&self.unchanged)),
                outcome("stale", load(&self.stale)),
            ],
        );
        let plain = |v: u64| vec![(String::new(), v.to_string())];
        family(
            "oifde_sync_requests_total",
            "counter",
            "HTTP requests sent, token requests and retries included.",
            &plain(stats.requests.load(Ordering::Relaxed)),
        );
        family(
            "oifde_sync_retries_total",
            "counter",
            "Requests retried.",
            &plain(stats.retries.load(Ordering::Relaxed)),
        );
        family(
            "oifde_sync_request_failures_total",
            "counter",
            "Requests that failed after their retries.",
            &plain(stats.failures.load(Ordering::Relaxed)),
        );
        family(
            "oifde_sync_failed_windows_total",
            "counter",
            "Windows that failed.",
            &plain(load(&self.failed_windows)),
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
            &[(String::new(), format!("{:.3}", load(&self.last_pass_ms) as f64 / 1000.0))],
        );
        family(
            "oifde_sync_last_success_timestamp_seconds",
            "gauge",
            "When the last fully successful pass ended (0: none yet).",
            &[(String::new(), format!("{:.3}", load(&self.last_success_ms) as f64 / 1000.0))],
        );
        let now = tz::now_ms();
        let lags: Vec<(String, String)> = cursors
            .iter()
            .map(|(key, cursor)| {
                let key = key.replace('\\', "\\\\").replace('"', "\\\"");
                (format!("{{key=\"{key}\"}}"), format!("{:.3}", (now - cursor) as f64 / 1000.0))
            })
            .collect();
        family("oifde_sync_cursor_lag_seconds", "gauge", "How far each key's cursor is behind now.", &lags);
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
    let cursors = engine.cursors().await.unwrap_or_default();
    metrics.render(&engine, &cursors)
}
