//! The token's life: fetched from `gettoken`, shared by every request,
//! renewed before it expires or once when the server refuses it, and never
//! asked for again after the credentials were refused.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use super::error::{ApiError, code_in};
use super::transport::Transport;
use super::{TOKEN_PATH, codes};
use crate::config::{ApiSettings, Credential};
use crate::record::value_int;
use crate::secret::Secret;

/// The token is renewed once this share of its lifetime has passed.
const RENEW_AT: f64 = 0.8;
/// `expireTime` when the answer has none.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The token in use, with a generation so that concurrent requests that all
/// saw it expire renew it once, not once each.
#[derive(Clone)]
pub(super) struct Token {
    pub(super) value: Secret,
    pub(super) generation: u64,
}

#[derive(Default)]
struct TokenState {
    current: Option<(Token, Instant)>,
    generation: u64,
    /// A refusal (or a redirect): remembered so no further `gettoken` is sent.
    refused: Option<ApiError>,
}

/// The tenant's token: one at a time, shared by every request.
pub(super) struct Tokens {
    credential: Credential,
    tenant_id: String,
    state: Mutex<TokenState>,
}

impl Tokens {
    pub(super) fn new(settings: &ApiSettings) -> Self {
        Self {
            credential: settings.credential.clone(),
            tenant_id: settings.tenant_id.clone(),
            state: Mutex::new(TokenState::default()),
        }
    }

    /// The token in use, fetched through `transport` or renewed as needed.
    pub(super) async fn current(&self, transport: &Transport) -> Result<Token, ApiError> {
        let mut state = self.state.lock().await;
        if let Some(e) = &state.refused {
            return Err(e.clone());
        }
        if let Some((token, renew_at)) = &state.current
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let (value, lifetime) = match &self.credential {
            Credential::FixedToken(t) => (t.clone(), Duration::MAX),
            Credential::NotLoaded => {
                return Err(ApiError::Transport {
                    path: TOKEN_PATH,
                    msg: "no API secret was loaded for this command".into(),
                });
            }
            Credential::AppSecret(secret) => match self.fetch(transport, secret).await {
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
    pub(super) async fn invalidate(&self, token: &Token, e: &ApiError) -> Result<(), ApiError> {
        if let (Credential::FixedToken(_), ApiError::Remote { code, msg, .. }) = (&self.credential, e) {
            return Err(ApiError::FixedTokenRejected { code: code.clone(), msg: msg.clone() });
        }
        let mut state = self.state.lock().await;
        if state.current.as_ref().is_some_and(|(t, _)| t.generation == token.generation) {
            state.current = None;
        }
        Ok(())
    }

    /// A new token from `gettoken`, and its lifetime.
    async fn fetch(&self, transport: &Transport, secret: &Secret) -> Result<(Secret, Duration), ApiError> {
        transport.stats.token_requests.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::json!({ "appKey": self.tenant_id, "appSecret": secret.expose() });
        // A refusal is a refusal whatever HTTP status it came with: never retried.
        let v = match transport.post(TOKEN_PATH, &body).await {
            Ok(v) => v,
            Err(ApiError::Remote { code, msg, .. }) if code_in(&code, &codes::CREDENTIALS) => {
                return Err(ApiError::Credentials { code, msg });
            }
            Err(ApiError::Http { status: status @ (401 | 403), .. }) => {
                return Err(ApiError::Credentials { code: format!("HTTP {status}"), msg: "gettoken refused".into() });
            }
            Err(e) => return Err(e),
        };
        if let Some((code, msg)) = transport.failure(&v) {
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
        transport.redact(token);
        Ok((Secret::new(token), lifetime))
    }
}
