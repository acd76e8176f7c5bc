//! HTTP to the OIAP gateway: one POST at a time under the rate limit and
//! the cap on requests in flight, TLS as configured, no redirect followed,
//! the answer read up to [`MAX_BODY`] and parsed as a JSON object.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::error::ApiError;
use super::wire::{error_code, parse_json};
use crate::config::{ApiSettings, Credential};

/// The largest answer body read; a page of 100 records is about 250 KB.
pub const MAX_BODY: usize = 32 << 20;
/// The server's clock may differ from ours by this much before it is reported.
const MAX_SKEW: Duration = Duration::from_secs(300);

/// Request counters, for `sync_runs` and metrics.
#[derive(Debug)]
pub struct ClientStats {
    /// Seconds from sending a request to having its whole answer.
    pub latency: prometheus_client::metrics::histogram::Histogram,
    pub requests: AtomicU64,
    /// Requests answered with a success (HTTP 2xx and no errorCode).
    pub answered_ok: AtomicU64,
    pub token_requests: AtomicU64,
    pub retries: AtomicU64,
    pub failures: AtomicU64,
}

impl Default for ClientStats {
    fn default() -> Self {
        let buckets = prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 14);
        Self {
            latency: prometheus_client::metrics::histogram::Histogram::new(buckets),
            requests: AtomicU64::default(),
            answered_ok: AtomicU64::default(),
            token_requests: AtomicU64::default(),
            retries: AtomicU64::default(),
            failures: AtomicU64::default(),
        }
    }
}

impl ClientStats {
    /// Requests and retries so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.requests.load(Ordering::Relaxed), self.retries.load(Ordering::Relaxed))
    }
}

/// The HTTP side of the client, shared by the token and the queries.
pub(super) struct Transport {
    http: reqwest::Client,
    base_url: String,
    limiter: DefaultDirectRateLimiter,
    in_flight: Semaphore,
    /// The secret and the tokens in use: never shown in server text.
    redacted: std::sync::Mutex<Vec<String>>,
    /// The server's clock was found off; said once.
    skew_reported: AtomicBool,
    pub(super) stats: Arc<ClientStats>,
}

/// Server text kept in messages, in characters.
const MAX_SERVER_TEXT: usize = 300;

impl Transport {
    pub(super) fn new(settings: &ApiSettings) -> Result<Self, ApiError> {
        let known = match &settings.credential {
            Credential::AppSecret(s) | Credential::FixedToken(s) => s.expose().to_string(),
            Credential::NotLoaded => String::new(),
        };
        Ok(Self {
            http: http_client(settings)?,
            base_url: settings.base_url.clone(),
            limiter: RateLimiter::direct(quota(settings.max_requests_per_second)),
            in_flight: Semaphore::new(settings.concurrency),
            redacted: std::sync::Mutex::new(vec![known]),
            skew_reported: AtomicBool::new(false),
            stats: Arc::new(ClientStats::default()),
        })
    }

    /// Server text as it may be shown or stored: the secret and every token
    /// replaced, cut to a few hundred characters.
    pub(super) fn clean(&self, text: &str) -> String {
        let mut out = text.to_string();
        for known in self.redacted.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|k| k.len() >= 4) {
            out = out.replace(known.as_str(), "[redacted]");
        }
        if out.chars().count() > MAX_SERVER_TEXT {
            out = out.chars().take(MAX_SERVER_TEXT).collect::<String>() + "…";
        }
        out
    }

    /// `Some((code, msg))`, cleaned, when the answer reports a failure.
    pub(super) fn failure(&self, v: &Value) -> Option<(String, String)> {
        error_code(v).map(|(code, msg)| (self.clean(&code), self.clean(&msg)))
    }

    /// A token issued: never shown in server text from now on.
    pub(super) fn redact(&self, token: &str) {
        let mut known = self.redacted.lock().unwrap_or_else(|p| p.into_inner());
        known.push(token.to_string());
        if known.len() > 32 {
            known.remove(1);
        }
    }
}

/// The HTTP client for `settings`: timeouts, the CA, no redirect, no proxy.
fn http_client(settings: &ApiSettings) -> Result<reqwest::Client, ApiError> {
    // reqwest is built without a default crypto provider; ring is ours.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("oifde-sync/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| ApiError::Tls(format!("api.ca_file {} cannot be read: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ApiError::Tls(format!("api.ca_file {} is not PEM: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(ApiError::Tls(format!("api.ca_file {} holds no certificate", path.display())));
        }
        builder = builder.tls_certs_only(certs);
    }
    if settings.insecure_skip_tls_verify {
        tracing::warn!(
            "api.insecure_skip_tls_verify is true: the server's certificate is NOT checked, \
             anyone on the network path can read the secret and the records. Use api.ca_file instead."
        );
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| ApiError::Tls(e.to_string()))
}

impl Transport {
    /// One POST for an interface that answers a JSON object (the token, the
    /// records); any other answer is a bad body.
    pub(super) async fn post(&self, path: &'static str, body: &impl Serialize) -> Result<Value, ApiError> {
        let v = self.send(path, body).await?;
        if !v.is_object() {
            let found = match &v {
                Value::Null => "null",
                Value::Array(_) => "a list",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            };
            return Err(ApiError::BadBody { path, msg: format!("the answer is {found}, not a JSON object") });
        }
        Ok(self.answered(v))
    }

    /// One POST for an interface whose answer may be any JSON (the call
    /// statistics come as a bare list).
    pub(super) async fn post_json(&self, path: &'static str, body: &impl Serialize) -> Result<Value, ApiError> {
        self.send(path, body).await.map(|v| self.answered(v))
    }

    /// Counts a success: an answer without an `errorCode`.
    fn answered(&self, v: Value) -> Value {
        if error_code(&v).is_none() {
            self.stats.answered_ok.fetch_add(1, Ordering::Relaxed);
        }
        v
    }

    /// One POST under the rate limit and the in-flight cap; the JSON answer.
    async fn send(&self, path: &'static str, body: &impl Serialize) -> Result<Value, ApiError> {
        let _permit = self.in_flight.acquire().await.expect("the semaphore is never closed");
        self.limiter.until_ready().await;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}{}", self.base_url, path);
        let sent = Instant::now();
        let result = self.exchange(path, url, body).await;
        self.stats.latency.observe(sent.elapsed().as_secs_f64());
        result
    }

    /// Sends one POST and reads its answer.
    async fn exchange(&self, path: &'static str, url: String, body: &impl Serialize) -> Result<Value, ApiError> {
        let response = self
            .http
            .post(url)
            .header("Content-Type", "application/json; charset=UTF-8")
            .json(body)
            .send()
            .await
            .map_err(|e| transport(path, e))?;
        let status = response.status();
        self.check_clock(response.headers());
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|h| h.to_str().ok())
                .map_or_else(|| "nowhere (no Location)".to_string(), |l| self.clean(l));
            return Err(ApiError::Redirect { path, status: status.as_u16(), location });
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|h| h.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = read_capped(response, path).await?;
        if status.is_success() {
            let v = parse_json(&bytes).map_err(|e| ApiError::BadBody { path, msg: e.to_string() })?;
            return Ok(v);
        }
        // A 4xx may still carry an errorCode worth classifying.
        if status.is_client_error()
            && status.as_u16() != 429
            && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
            && let Some((code, msg)) = self.failure(&v)
        {
            return Err(ApiError::Remote { path, code, msg });
        }
        Err(ApiError::Http { path, status: status.as_u16(), retry_after })
    }
}

impl Transport {
    /// Reports, once, a server clock far from ours: cursors and windows are
    /// computed from the local clock.
    fn check_clock(&self, headers: &reqwest::header::HeaderMap) {
        if self.skew_reported.load(Ordering::Relaxed) {
            return;
        }
        let Some(date) = headers.get(reqwest::header::DATE).and_then(|h| h.to_str().ok()) else { return };
        let Ok(server) = jiff::fmt::rfc2822::parse(date) else { return };
        let skew = server.timestamp().as_second() - crate::tz::now_ms() / 1000;
        if skew.unsigned_abs() > MAX_SKEW.as_secs() && !self.skew_reported.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                skew_s = skew,
                "the server's clock differs from this machine's by {} s; check NTP on both: windows and cursors follow the local clock",
                skew
            );
        }
    }
}

/// The body, refused beyond [`MAX_BODY`] bytes, read as it arrives.
async fn read_capped(mut response: reqwest::Response, path: &'static str) -> Result<Vec<u8>, ApiError> {
    if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ApiError::TooLarge { path, limit: MAX_BODY });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(path, e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::TooLarge { path, limit: MAX_BODY });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport(path: &'static str, e: reqwest::Error) -> ApiError {
    // reqwest's Display hides the cause (refused, timed out, certificate…).
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    ApiError::Transport { path, msg }
}

/// At most `per_second` cells in any one-second span and no initial burst:
/// one cell every `1 s / n` (with a 2 % margin for timer slack), burst 1.
fn quota(per_second: u32) -> Quota {
    let period = Duration::from_secs(1).mul_f64(1.02 / f64::from(per_second.max(1)));
    Quota::with_period(period).expect("period is above zero").allow_burst(NonZeroU32::MIN)
}
