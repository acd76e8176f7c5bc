//! The API client: one token shared by all requests ([`super::token`]),
//! requests under a rate limit and a cap in flight ([`super::transport`]),
//! retries with exponential backoff and full jitter, and the query
//! interface's answers read into pages ([`super::wire`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};

use super::error::{ApiError, code_in};
use super::token::{Token, TokenState};
use super::transport::{http_client, quota};
use super::wire::{Page, Query, QueryBody, error_code, parse_page};
use super::{QUERY_PATH, codes};
use crate::config::{ApiSettings, Credential};

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

pub struct ApiClient {
    pub(super) http: reqwest::Client,
    /// The secret and the tokens in use: never shown in server text.
    pub(super) redacted: std::sync::Mutex<Vec<String>>,
    /// The server's clock was found off; said once.
    pub(super) skew_reported: std::sync::atomic::AtomicBool,
    pub(super) settings: ApiSettings,
    pub(super) token: Mutex<TokenState>,
    pub(super) limiter: DefaultDirectRateLimiter,
    pub(super) in_flight: Semaphore,
    pub stats: Arc<ClientStats>,
}

/// Server text kept in messages, in characters.
const MAX_SERVER_TEXT: usize = 300;
impl ApiClient {
    pub fn new(settings: &ApiSettings) -> Result<Self, ApiError> {
        let http = http_client(settings)?;
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
    pub(super) fn failure(&self, v: &Value) -> Option<(String, String)> {
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
}
