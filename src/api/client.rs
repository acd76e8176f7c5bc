//! The HTTP client: one token shared by all requests, a rate limit and a cap
//! on requests in flight that token requests count against too, and retries
//! with exponential backoff and full jitter.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};

use super::error::{ApiError, code_in};
use super::{QUERY_PATH, TOKEN_PATH, codes};
use crate::config::{ApiSettings, Credential};
use crate::keys::QueryKey;
use crate::record::{Record, value_int};
use crate::secret::Secret;

/// One page request: a key, an inclusive window in epoch seconds (none for
/// a key-only query), a page.
#[derive(Clone, Debug)]
pub struct Query<'a> {
    pub key: &'a QueryKey,
    pub span: Option<(i64, i64)>,
    pub page_num: u32,
}

/// One page of the answer.
#[derive(Debug)]
pub struct Page {
    /// The server's count of all records matching the query; `None` if absent.
    pub total: Option<u64>,
    pub records: Vec<Record>,
}

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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QueryBody<'a> {
    tenant_id: &'a str,
    auth_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    begin_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    page_num: String,
    page_size: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_mobile: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cti_call_id: Option<&'a str>,
}

/// The token in use, with a generation so that concurrent requests that all
/// saw it expire renew it once, not once each.
#[derive(Clone)]
struct Token {
    value: Secret,
    generation: u64,
}

#[derive(Default)]
struct TokenState {
    current: Option<(Token, Instant)>,
    generation: u64,
    /// A refusal (or a redirect): remembered so no further `gettoken` is sent.
    refused: Option<ApiError>,
}

pub struct ApiClient {
    http: reqwest::Client,
    /// The secret and the tokens in use: never shown in server text.
    redacted: std::sync::Mutex<Vec<String>>,
    /// The server's clock was found off; said once.
    skew_reported: std::sync::atomic::AtomicBool,
    settings: ApiSettings,
    token: Mutex<TokenState>,
    limiter: DefaultDirectRateLimiter,
    in_flight: Semaphore,
    pub stats: Arc<ClientStats>,
}

/// The largest answer body read; a page of 100 records is about 250 KB.
pub const MAX_BODY: usize = 32 << 20;
/// Server text kept in messages, in characters.
const MAX_SERVER_TEXT: usize = 300;
/// The server's clock may differ from ours by this much before it is reported.
const MAX_SKEW: Duration = Duration::from_secs(300);

/// The token is renewed once this share of its lifetime has passed.
const RENEW_AT: f64 = 0.8;
/// `expireTime` when the answer has none.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

impl ApiClient {
    pub fn new(settings: &ApiSettings) -> Result<Self, ApiError> {
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
        let http = builder.build().map_err(|e| ApiError::Tls(e.to_string()))?;
        let known = match &settings.credential {
            Credential::AppSecret(s) | Credential::FixedToken(s) => s.expose().to_string(),
            Credential::NotLoaded => String::new(),
        };
        Ok(Self {
            http,
            redacted: std::sync::Mutex::new(vec![known]),
            skew_reported: std::sync::atomic::AtomicBool::new(false),
            settings: settings.clone(),
            token: Mutex::new(TokenState::default()),
            limiter: RateLimiter::direct(quota(settings.max_requests_per_second)),
            in_flight: Semaphore::new(settings.concurrency),
            stats: Arc::new(ClientStats::default()),
        })
    }

    pub fn settings(&self) -> &ApiSettings {
        &self.settings
    }

    /// The longest pause between attempts: 60 × `api.retry_delay`, at most a
    /// minute. A server's `Retry-After` is honoured up to it.
    fn max_delay(&self) -> Duration {
        (self.settings.retry_delay * 60).min(Duration::from_secs(60))
    }

    /// Server text as it may be shown or stored: the secret and every token
    /// replaced, cut to a few hundred characters.
    pub fn clean(&self, text: &str) -> String {
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
    fn failure(&self, v: &Value) -> Option<(String, String)> {
        error_code(v).map(|(code, msg)| (self.clean(&code), self.clean(&msg)))
    }

    /// One page, with retries, token renewal and the rate limit.
    pub async fn query(&self, q: &Query<'_>) -> Result<Page, ApiError> {
        self.retrying(|| self.query_renewing(q)).await
    }

    /// A token, with the same retries as a query: what a pass checks first,
    /// so that a server it cannot reach is said once, not once a key.
    pub async fn token_retrying(&self) -> Result<(), ApiError> {
        self.retrying(|| async { self.current_token().await.map(drop) }).await
    }

    /// `attempt` until it succeeds, fails for good, or the retries run out.
    async fn retrying<T, Fut>(&self, attempt: impl FnMut() -> Fut) -> Result<T, ApiError>
    where
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let max_delay = self.max_delay();
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.settings.retry_delay.min(max_delay))
            .with_max_delay(max_delay)
            .with_max_times(self.settings.max_retries)
            .with_total_delay(Some(Duration::from_secs(600)));
        let result = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(ApiError::is_transient)
            .adjust(|e: &ApiError, delay| {
                // Full jitter, unless the server said how long to wait (capped).
                delay.map(|d| match e.retry_after() {
                    Some(asked) if asked > max_delay => {
                        tracing::warn!(
                            asked_s = asked.as_secs(),
                            "Retry-After above the longest pause; waiting {max_delay:?} instead"
                        );
                        max_delay
                    }
                    Some(asked) => asked,
                    None => d.mul_f64(fastrand::f64()),
                })
            })
            .notify(|e: &ApiError, delay: Duration| {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "retrying request");
            })
            .await;
        if result.is_err() {
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// A token, fetching or renewing it as needed.
    pub async fn token(&self) -> Result<Secret, ApiError> {
        self.current_token().await.map(|t| t.value)
    }

    async fn query_renewing(&self, q: &Query<'_>) -> Result<Page, ApiError> {
        let token = self.current_token().await?;
        match self.post_query(&token, q).await {
            Err(e) if e.is_token_error() => {
                tracing::info!("token refused ({e}); renewing it and retrying once");
                self.invalidate(&token, &e).await?;
                let fresh = self.current_token().await?;
                let again = self.post_query(&fresh, q).await;
                if let Err(e) = &again
                    && e.is_token_error()
                {
                    // Refused twice: leave it to the backoff loop, with a new token.
                    self.invalidate(&fresh, e).await?;
                }
                again
            }
            other => other,
        }
    }

    async fn current_token(&self) -> Result<Token, ApiError> {
        let mut state = self.token.lock().await;
        if let Some(e) = &state.refused {
            return Err(e.clone());
        }
        if let Some((token, renew_at)) = &state.current
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let (value, lifetime) = match &self.settings.credential {
            Credential::FixedToken(t) => (t.clone(), Duration::MAX),
            Credential::NotLoaded => {
                return Err(ApiError::Transport {
                    path: TOKEN_PATH,
                    msg: "no API secret was loaded for this command".into(),
                });
            }
            Credential::AppSecret(secret) => match self.get_token(secret).await {
                Ok(ok) => ok,
                Err(e) if e.is_fatal() => {
                    state.refused = Some(e.clone());
                    return Err(e);
                }
                Err(e) => return Err(e),
            },
        };
        state.generation += 1;
        let token = Token { value, generation: state.generation };
        let renew_at = Instant::now()
            .checked_add(lifetime.mul_f64(RENEW_AT))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86400));
        state.current = Some((token.clone(), renew_at));
        Ok(token)
    }

    /// Drops `token` if it is still the current one. A fixed token cannot be
    /// renewed, so its refusal ends the request.
    async fn invalidate(&self, token: &Token, e: &ApiError) -> Result<(), ApiError> {
        if let (Credential::FixedToken(_), ApiError::Remote { code, msg, .. }) = (&self.settings.credential, e) {
            return Err(ApiError::FixedTokenRejected { code: code.clone(), msg: msg.clone() });
        }
        let mut state = self.token.lock().await;
        if state.current.as_ref().is_some_and(|(t, _)| t.generation == token.generation) {
            state.current = None;
        }
        Ok(())
    }

    async fn get_token(&self, secret: &Secret) -> Result<(Secret, Duration), ApiError> {
        self.stats.token_requests.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::json!({ "appKey": self.settings.tenant_id, "appSecret": secret.expose() });
        // A refusal is a refusal whatever HTTP status it came with: never retried.
        let v = match self.post(TOKEN_PATH, &body).await {
            Ok(v) => v,
            Err(ApiError::Remote { code, msg, .. }) if code_in(&code, &codes::CREDENTIALS) => {
                return Err(ApiError::Credentials { code, msg });
            }
            Err(ApiError::Http { status: status @ (401 | 403), .. }) => {
                return Err(ApiError::Credentials { code: format!("HTTP {status}"), msg: "gettoken refused".into() });
            }
            Err(e) => return Err(e),
        };
        if let Some((code, msg)) = self.failure(&v) {
            return Err(if code_in(&code, &codes::CREDENTIALS) {
                ApiError::Credentials { code, msg }
            } else {
                ApiError::Remote { path: TOKEN_PATH, code, msg }
            });
        }
        let token = v
            .get("authToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::BadBody { path: TOKEN_PATH, msg: "no authToken in the answer".into() })?;
        let lifetime = v
            .get("expireTime")
            .and_then(value_int)
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64))
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        tracing::debug!(lifetime_s = lifetime.as_secs(), "obtained a token");
        {
            let mut known = self.redacted.lock().unwrap_or_else(|p| p.into_inner());
            known.push(token.to_string());
            if known.len() > 32 {
                known.remove(1);
            }
        }
        Ok((Secret::new(token), lifetime))
    }

    async fn post_query(&self, token: &Token, q: &Query<'_>) -> Result<Page, ApiError> {
        let zone = &self.settings.server_timezone;
        let field = q.key.body_field();
        let pick = |name: &str| field.filter(|(n, _)| *n == name).map(|(_, v)| v);
        let body = QueryBody {
            tenant_id: &self.settings.tenant_id,
            auth_token: token.value.expose(),
            begin_time: q.span.map(|(begin, _)| zone.format(begin)),
            end_time: q.span.map(|(_, end)| zone.format(end)),
            page_num: q.page_num.to_string(),
            page_size: self.settings.page_size.to_string(),
            user_mobile: pick("userMobile"),
            call_id: pick("callId"),
            cti_call_id: pick("ctiCallId"),
        };
        let v = self.post(QUERY_PATH, &body).await?;
        if let Some((code, msg)) = self.failure(&v) {
            if field.is_none() && code_in(&code, &codes::REQUEST) {
                return Err(ApiError::KeysRequired { code, msg });
            }
            if q.span.is_none() && code_in(&code, &codes::REQUEST) {
                return Err(ApiError::WindowRequired { code, msg });
            }
            return Err(ApiError::Remote { path: QUERY_PATH, code, msg });
        }
        parse_page(&v)
    }

    /// One POST under the rate limit and the in-flight cap; the JSON answer.
    async fn post(&self, path: &'static str, body: &impl Serialize) -> Result<Value, ApiError> {
        let _permit = self.in_flight.acquire().await.expect("the semaphore is never closed");
        self.limiter.until_ready().await;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}{}", self.settings.base_url, path);
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
            if error_code(&v).is_none() {
                self.stats.answered_ok.fetch_add(1, Ordering::Relaxed);
            }
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

impl ApiClient {
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

/// `Some((code, msg))` when the answer reports a failure: an `errorCode`
/// that is present and neither null nor 0.
fn error_code(v: &Value) -> Option<(String, String)> {
    let code = match v.get("errorCode")? {
        Value::Null => return None,
        Value::Number(n) if n.as_i64() == Some(0) => return None,
        Value::String(s) if s.trim() == "0" || s.trim().is_empty() => return None,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let msg = v.get("errorMsg").and_then(Value::as_str).unwrap_or("").to_string();
    Some((code, msg))
}

/// JSON text, where a lone UTF-16 surrogate escape (`"\ud83d"`: valid JSON
/// grammar that no UTF-8 string can hold) is read as U+FFFD instead of
/// refusing the whole answer for one bad character.
pub fn parse_json(body: &[u8]) -> Result<Value, serde_json::Error> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(e) => match repair_surrogates(body) {
            Some(fixed) => {
                tracing::warn!("the answer holds a lone surrogate escape; read as U+FFFD");
                serde_json::from_slice(&fixed)
            }
            None => Err(e),
        },
    }
}

/// The body with every `\uD800`–`\uDFFF` escape that is not half of a
/// valid pair replaced by `\uFFFD`; `None` when there is none.
fn repair_surrogates(body: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: &[u8]| std::str::from_utf8(b).ok().and_then(|t| u16::from_str_radix(t, 16).ok());
    let escape_at = |i: usize| -> Option<u16> {
        (body.get(i) == Some(&b'\\') && body.get(i + 1) == Some(&b'u'))
            .then(|| body.get(i + 2..i + 6).and_then(hex))
            .flatten()
    };
    let mut out = Vec::with_capacity(body.len());
    let (mut i, mut changed) = (0, false);
    while i < body.len() {
        if body[i] == b'\\' && body.get(i + 1) == Some(&b'\\') {
            out.extend_from_slice(&body[i..i + 2]);
            i += 2;
            continue;
        }
        match escape_at(i) {
            Some(hi @ 0xD800..=0xDBFF) if matches!(escape_at(i + 6), Some(0xDC00..=0xDFFF)) => {
                let _ = hi;
                out.extend_from_slice(&body[i..i + 12]);
                i += 12;
            }
            Some(0xD800..=0xDFFF) => {
                out.extend_from_slice(b"\\uFFFD");
                changed = true;
                i += 6;
            }
            _ => {
                out.push(body[i]);
                i += 1;
            }
        }
    }
    changed.then_some(out)
}

/// Reads a `queryRecordHistory` answer body: a page, or the failure it
/// reports. Never panics, whatever the bytes (fuzzed and property-tested).
pub fn parse_query_answer(body: &[u8]) -> Result<Page, ApiError> {
    let v = parse_json(body).map_err(|e| ApiError::BadBody { path: QUERY_PATH, msg: e.to_string() })?;
    if let Some((code, msg)) = error_code(&v) {
        return Err(ApiError::Remote { path: QUERY_PATH, code, msg });
    }
    parse_page(&v)
}

fn parse_page(v: &Value) -> Result<Page, ApiError> {
    if !v.is_object() {
        return Err(ApiError::BadBody { path: QUERY_PATH, msg: "the answer is not a JSON object".into() });
    }
    let total = v.get("total").and_then(value_int).map(|t| t.max(0) as u64);
    let list = match v.get("recordList") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        Some(_) => {
            return Err(ApiError::BadBody { path: QUERY_PATH, msg: "recordList is not a list".into() });
        }
    };
    let records = list
        .iter()
        .enumerate()
        .map(|(i, r)| Record::from_value(i, r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ApiError::Record { path: QUERY_PATH, source })?;
    Ok(Page { total, records })
}

/// At most `per_second` cells in any one-second span and no initial burst:
/// one cell every `1 s / n` (with a 2 % margin for timer slack), burst 1.
fn quota(per_second: u32) -> Quota {
    let period = Duration::from_secs(1).mul_f64(1.02 / f64::from(per_second.max(1)));
    Quota::with_period(period).expect("period is above zero").allow_burst(NonZeroU32::MIN)
}
