//! The API client: one token shared by all requests ([`super::token`]),
//! requests under a rate limit and a cap in flight ([`super::transport`]),
//! retries with exponential backoff and full jitter, and the query
//! interface's answers read into pages ([`super::wire`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::error::{ApiError, code_in};
use super::token::{Token, Tokens};
use super::transport::{ClientStats, Transport};
use super::wire::{Page, Query, QueryBody, parse_page};
use super::{QUERY_PATH, STATS_PATH, codes};
use crate::config::ApiSettings;
use crate::platform::{PlatformHour, parse_hours};

pub struct ApiClient {
    settings: ApiSettings,
    transport: Transport,
    tokens: Tokens,
    /// Request counters, for the run log and the metrics.
    pub stats: Arc<ClientStats>,
}

impl ApiClient {
    pub fn new(settings: &ApiSettings) -> Result<Self, ApiError> {
        let transport = Transport::new(settings)?;
        let stats = transport.stats.clone();
        Ok(Self { settings: settings.clone(), transport, tokens: Tokens::new(settings), stats })
    }

    pub fn settings(&self) -> &ApiSettings {
        &self.settings
    }

    /// The longest pause between attempts: 60 × `api.retry_delay`, at most a
    /// minute. A server's `Retry-After` is honoured up to it.
    fn max_delay(&self) -> Duration {
        (self.settings.retry_delay * 60).min(Duration::from_secs(60))
    }

    /// One page, with retries, token renewal and the rate limit.
    pub async fn query(&self, q: &Query<'_>) -> Result<Page, ApiError> {
        self.retrying(|| self.query_renewing(q)).await
    }

    /// A token, with the same retries as a query: what a pass checks first,
    /// so that a server it cannot reach is said once, not once a key.
    pub async fn token_retrying(&self) -> Result<(), ApiError> {
        self.retrying(|| async { self.tokens.current(&self.transport).await.map(drop) }).await
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
    pub async fn token(&self) -> Result<crate::secret::Secret, ApiError> {
        self.tokens.current(&self.transport).await.map(|t| t.value)
    }

    /// One day of the platform's hourly call statistics for `access_code`
    /// (`day_ms`: that day's 00:00 in `api.server_timezone`), with retries
    /// and token renewal.
    pub async fn call_statistics(&self, access_code: &str, day_ms: i64) -> Result<Vec<PlatformHour>, ApiError> {
        self.retrying(|| self.renewing(|token| self.post_statistics(token, access_code, day_ms))).await
    }

    async fn query_renewing(&self, q: &Query<'_>) -> Result<Page, ApiError> {
        self.renewing(|token| self.post_query(token, q)).await
    }

    /// `attempt` with the current token; a token the server refuses is
    /// renewed and the attempt made once more.
    async fn renewing<'a, T, Fut>(&'a self, attempt: impl Fn(Token) -> Fut) -> Result<T, ApiError>
    where
        Fut: std::future::Future<Output = Result<T, ApiError>> + 'a,
    {
        let token = self.tokens.current(&self.transport).await?;
        match attempt(token.clone()).await {
            Err(e) if e.is_token_error() => {
                tracing::info!("token refused ({e}); renewing it and retrying once");
                self.tokens.invalidate(&token, &e).await?;
                let fresh = self.tokens.current(&self.transport).await?;
                let again = attempt(fresh.clone()).await;
                if let Err(e) = &again
                    && e.is_token_error()
                {
                    // Refused twice: leave it to the backoff loop, with a new token.
                    self.tokens.invalidate(&fresh, e).await?;
                }
                again
            }
            other => other,
        }
    }

    async fn post_statistics(
        &self,
        token: Token,
        access_code: &str,
        day_ms: i64,
    ) -> Result<Vec<PlatformHour>, ApiError> {
        let body = serde_json::json!({
            "type": "hour",
            "tenantId": self.settings.tenant_id,
            "accessCode": access_code,
            "timestamp": day_ms,
            "authToken": token.value.expose(),
        });
        let v = self.transport.post_json(STATS_PATH, &body).await?;
        if let Some((code, msg)) = self.transport.failure(&v) {
            return Err(ApiError::Remote { path: STATS_PATH, code, msg });
        }
        parse_hours(&v, access_code).map_err(|msg| ApiError::BadBody { path: STATS_PATH, msg })
    }

    async fn post_query(&self, token: Token, q: &Query<'_>) -> Result<Page, ApiError> {
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
        let v = self.transport.post(QUERY_PATH, &body).await?;
        if let Some((code, msg)) = self.transport.failure(&v) {
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
