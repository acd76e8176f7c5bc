//! Prometheus metrics in the OpenMetrics text format, with the Prometheus
//! project's own client: the figures of every pass since the daemon started,
//! requests by outcome and their latency, keys by state, the worst cursor
//! lag and the process's own figures, the last three read when scraped. No
//! series names a key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::keys::{KeyState, StreamCursor};
use crate::run_log::{Figures, PassStatus};
use crate::sync::{Engine, PassReport};
use crate::tz;

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

pub struct Metrics {
    registry: Registry,
    /// One counter per pass figure (`sync_runs` column), by column name.
    figures: Vec<(&'static str, Counter)>,
    passes: Family<Labels, Counter>,
    requests: Family<Labels, Counter>,
    retries: Counter,
    request_failures: Counter,
    last_pass_seconds: FloatGauge,
    last_success: FloatGauge,
    keys: Family<Labels, Gauge>,
    cursor_lag: FloatGauge,
    missing_calls: Gauge,
    store_bytes: Gauge,
    resident_bytes: Gauge,
    cpu_seconds: FloatGauge,
    open_fds: Gauge,
}

/// What the store tells at scrape time.
#[derive(Default)]
pub struct StoreView {
    pub keys: Vec<(KeyState, i64)>,
    pub cursors: Vec<StreamCursor>,
    /// The last verification against the platform's count, if any.
    pub verified: Option<crate::platform::Verified>,
    /// The store's size.
    pub bytes: u64,
}

impl StoreView {
    /// Reads the view from the store.
    pub fn of(store: &crate::store::Store) -> Result<Self, crate::store::StoreError> {
        Ok(Self {
            keys: store.key_counts()?,
            cursors: store.stream_cursors()?,
            verified: store.last_verification()?,
            bytes: store.size()?.bytes,
        })
    }
}

impl Metrics {
    /// The metrics of the daemon whose client keeps `stats`.
    pub fn new(stats: &crate::api::ClientStats) -> Self {
        let mut registry = Registry::with_prefix("oifde_sync");
        let figures: Vec<(&'static str, Counter)> = Figures::COLUMNS
            .iter()
            .filter(|c| !matches!(**c, "requests" | "retries"))
            .map(|c| (*c, Counter::default()))
            .collect();
        for (name, counter) in &figures {
            let help = format!("Sum of the {} figure of every pass (the sync_runs column)", name.replace('_', " "));
            registry.register(figure_metric(name), help, counter.clone());
        }
        let m = Metrics {
            figures,
            passes: Family::default(),
            requests: Family::default(),
            retries: Counter::default(),
            request_failures: Counter::default(),
            last_pass_seconds: FloatGauge::default(),
            last_success: FloatGauge::default(),
            keys: Family::default(),
            cursor_lag: FloatGauge::default(),
            missing_calls: Gauge::default(),
            store_bytes: Gauge::default(),
            resident_bytes: Gauge::default(),
            cpu_seconds: FloatGauge::default(),
            open_fds: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("passes", "Passes, by result", m.passes.clone());
        registry.register("requests", "HTTP requests sent (token requests included), by outcome", m.requests.clone());
        registry.register("retries", "Requests retried", m.retries.clone());
        registry.register("request_failures", "Requests that failed after their retries", m.request_failures.clone());
        registry.register("last_pass_duration_seconds", "Duration of the last pass", m.last_pass_seconds.clone());
        registry.register(
            "last_success_timestamp_seconds",
            "When the last fully successful pass ended (0: none yet)",
            m.last_success.clone(),
        );
        registry.register("keys", "Query keys, by state", m.keys.clone());
        registry.register(
            "cursor_lag_seconds",
            "How far the furthest-behind active stream key's cursor is behind now",
            m.cursor_lag.clone(),
        );
        registry.register(
            "missing_calls",
            "Calls the platform counted in settled hours that the mirror lacks, as of the last verification",
            m.missing_calls.clone(),
        );
        registry.register(
            "store_bytes",
            "Size of the store: the SQLite file and its WAL, or the whole PostgreSQL database",
            m.store_bytes.clone(),
        );
        registry.register("process_resident_memory_bytes", "Resident memory of this process", m.resident_bytes.clone());
        registry.register("process_cpu_seconds", "CPU time this process has used", m.cpu_seconds.clone());
        registry.register("process_open_fds", "File descriptors this process holds open", m.open_fds.clone());
        registry.register(
            "request_duration_seconds",
            "From sending a request to having its whole answer",
            stats.latency.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn record_pass(&self, r: &PassReport, duration: std::time::Duration) {
        for ((_, counter), (_, value)) in
            self.figures.iter().zip(r.figures.pairs().filter(|(c, _)| !matches!(*c, "requests" | "retries")))
        {
            counter.inc_by(value);
        }
        self.last_pass_seconds.set(duration.as_secs_f64());
        let result = if r.status == PassStatus::Ok { "ok" } else { "not_ok" };
        self.passes.get_or_create(&vec![("result", result.to_string())]).inc();
        if r.status == PassStatus::Ok {
            self.last_success.set(tz::now_ms() as f64 / 1000.0);
        }
    }

    /// The exposition text, with the store's and the process's figures as of now.
    pub fn render(&self, engine: &Engine, view: &StoreView) -> String {
        let stats = &engine.client.stats;
        let requests = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
        let ok = stats.answered_ok.load(std::sync::atomic::Ordering::Relaxed).min(requests);
        set_counter(&self.requests.get_or_create(&vec![("outcome", "ok".to_string())]), ok);
        set_counter(&self.requests.get_or_create(&vec![("outcome", "error".to_string())]), requests - ok);
        set_counter(&self.retries, stats.retries.load(std::sync::atomic::Ordering::Relaxed));
        set_counter(&self.request_failures, stats.failures.load(std::sync::atomic::Ordering::Relaxed));
        for state in KeyState::ALL {
            let n = view.keys.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n);
            self.keys.get_or_create(&vec![("state", state.as_str().to_string())]).set(n);
        }
        let now = tz::now_ms();
        let worst = view.cursors.iter().filter_map(|c| c.cursor_time).map(|t| now - t).max().unwrap_or(0);
        self.cursor_lag.set(worst as f64 / 1000.0);
        self.missing_calls.set(view.verified.as_ref().map_or(0, |v| v.missing));
        self.store_bytes.set(i64::try_from(view.bytes).unwrap_or(i64::MAX));
        let process = ProcessFigures::read();
        self.resident_bytes.set(process.resident_bytes);
        self.cpu_seconds.set(process.cpu_seconds);
        self.open_fds.set(process.open_fds);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// The metric of a pass figure: its `sync_runs` column, except `keys`,
/// which is `keys_read` so that it does not clash with the gauge of keys by
/// state (one name, one family).
fn figure_metric(column: &str) -> &str {
    if column == "keys" { "keys_read" } else { column }
}

/// Counters count up; the client's own counts are the source.
fn set_counter(counter: &Counter, value: u64) {
    let now = counter.get();
    if value > now {
        counter.inc_by(value - now);
    }
}

/// This process's memory, CPU time and open files, from /proc.
#[derive(Default)]
struct ProcessFigures {
    resident_bytes: i64,
    cpu_seconds: f64,
    open_fds: i64,
}

impl ProcessFigures {
    fn read() -> Self {
        let page = 4096;
        let resident_pages: i64 = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let ticks: f64 = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let fields: Vec<String> = s.rsplit(')').next()?.split_whitespace().map(str::to_string).collect();
                Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
            })
            .unwrap_or(0.0);
        let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as i64).unwrap_or(0);
        ProcessFigures { resident_bytes: resident_pages * page, cpu_seconds: ticks / 100.0, open_fds }
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

/// OpenMetrics for a scraper that asks for it (Prometheus does), else the
/// classic text format 0.0.4 (`curl … | promtool check metrics`).
async fn scrape(
    State((metrics, engine)): State<(Arc<Metrics>, Engine)>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let view = engine.with_store(|s| StoreView::of(s)).await.unwrap_or_default();
    let body = metrics.render(&engine, &view);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains("application/openmetrics-text") {
        ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
    } else {
        ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], classic_text(&body))
    }
}

/// OpenMetrics text as the classic Prometheus text format: a counter's HELP
/// and TYPE name its `_total` series, and there is no `# EOF`.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{tag}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}
