//! What can go wrong talking to the API, classified once: transient errors are
//! retried, token errors renew the token, the rest end the request.

use std::time::Duration;

use super::codes;
use crate::record::RecordError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request to {path} failed: {msg}")]
    Transport { path: &'static str, msg: String },
    #[error("{path} answered HTTP {status}")]
    Http { path: &'static str, status: u16, retry_after: Option<Duration> },
    #[error("{path} answered with a body that is not valid JSON: {msg}")]
    BadBody { path: &'static str, msg: String },
    #[error(
        "{path} answered HTTP {status} redirecting to {location}; redirects are never followed (the secret and \
         the token travel in the body): set api.base_url to the address that answers directly \
         (an http:// address redirected to https:// is the usual cause)"
    )]
    Redirect { path: &'static str, status: u16, location: String },
    #[error("{path} answered a body larger than {limit} bytes; refused")]
    TooLarge { path: &'static str, limit: usize },
    #[error("{path} answered errorCode {code}: {msg}")]
    Remote { path: &'static str, code: String, msg: String },
    #[error(
        "gettoken refused the credentials (errorCode {code}: {msg}); check api.tenant_id and api.app_secret. \
         Not retried: repeated attempts can lock the tenant's account"
    )]
    Credentials { code: String, msg: String },
    #[error(
        "the configured api.auth_token was rejected (errorCode {code}: {msg}); set a fresh token or use api.app_secret"
    )]
    FixedTokenRejected { code: String, msg: String },
    #[error(
        "the server refuses queries without a query key (errorCode {code}: {msg}); configure query keys: \
         [query] user_mobiles, call_ids, cti_call_ids or keys_file"
    )]
    KeysRequired { code: String, msg: String },
    #[error("the server refuses queries without beginTime/endTime (errorCode {code}: {msg})")]
    WindowRequired { code: String, msg: String },
    #[error("{path} answered a page that cannot be read: {source}")]
    Record { path: &'static str, source: RecordError },
    #[error("the TLS settings cannot be used: {0}")]
    Tls(String),
}

/// What a pass does with a request that failed after its retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Report the window; the key stops there, the pass goes on.
    FailWindow,
    /// Read point keys in windows instead of key-only queries.
    UseWindows,
    /// No other request can succeed either: end the pass.
    EndPass,
}

impl ApiError {
    /// The one place that decides what a failed request means for the pass.
    pub fn action(&self) -> Action {
        match self {
            e if e.is_fatal() => Action::EndPass,
            ApiError::KeysRequired { .. } => Action::EndPass,
            ApiError::WindowRequired { .. } => Action::UseWindows,
            _ => Action::FailWindow,
        }
    }

    /// Worth another attempt after a pause.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Transport { .. } | ApiError::BadBody { .. } | ApiError::TooLarge { .. } => true,
            ApiError::Http { status, .. } => *status == 429 || *status >= 500,
            // A token refused even after renewal (the immediate retry) is
            // renewed again on the next attempt.
            ApiError::Remote { code, .. } => {
                code_in(code, &codes::INTERNAL) || code_in(code, &[codes::TOKEN_EXPIRED, codes::TOKEN_INVALID])
            }
            _ => false,
        }
    }

    /// The token expired or failed its check: renew it and retry once.
    pub fn is_token_error(&self) -> bool {
        matches!(self, ApiError::Remote { code, .. }
            if code_in(code, &[codes::TOKEN_EXPIRED, codes::TOKEN_INVALID]))
    }

    /// The server refused the request itself (10000002 and the like): with
    /// a query key, most likely the key.
    pub fn is_request_refusal(&self) -> bool {
        match self {
            ApiError::WindowRequired { .. } => true,
            ApiError::Remote { code, .. } => code_in(code, &codes::REQUEST),
            _ => false,
        }
    }

    /// Ends the whole pass: no other key can succeed either.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ApiError::Credentials { .. }
                | ApiError::FixedTokenRejected { .. }
                | ApiError::Tls(_)
                | ApiError::Redirect { .. }
        )
    }

    /// What to check, for the errors whose fix is known; "" otherwise.
    pub fn hint(&self) -> &'static str {
        match self {
            ApiError::Transport { msg, .. } if msg.contains("CaUsedAsEndEntity") => {
                "; the server presents a CA certificate as its own: it must present a server certificate issued by \
                 that CA, and api.ca_file names the CA"
            }
            ApiError::Transport { msg, .. } if msg.contains("invalid HTTP version") => {
                "; the server speaks TLS there: use https:// in api.base_url"
            }
            ApiError::Transport { msg, .. } if msg.contains("certificate") || msg.contains("Certificate") => {
                "; the server's certificate is not trusted: set api.ca_file to the CA (PEM) that issued it"
            }
            ApiError::Transport { msg, .. }
                if msg.contains("corrupt message") || msg.contains("InvalidContentType") =>
            {
                "; the server does not speak TLS there: it may be plain HTTP (an http:// api.base_url), or the port is wrong"
            }
            ApiError::Transport { .. } => "; check api.base_url, the network path and the firewall",
            ApiError::Http { status: 404, .. } => "; api.base_url must be only https://IP:PORT, the paths are fixed",
            _ => "",
        }
    }

    /// The server's `Retry-After`, where it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// An `errorCode` (a number or a string of digits) is one of `set`.
pub fn code_in(code: &str, set: &[i64]) -> bool {
    code.trim().parse::<i64>().is_ok_and(|c| set.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(code: &str) -> ApiError {
        ApiError::Remote { path: "/q", code: code.into(), msg: String::new() }
    }

    #[test]
    fn classes_are_pinned() {
        assert!(remote("10000001").is_transient());
        assert!(remote("200900002").is_transient());
        assert!(!remote("10000002").is_transient());
        assert!(!remote("200900003").is_transient());
        assert!(remote("900001").is_token_error());
        assert!(remote("900002").is_token_error());
        assert!(ApiError::Http { path: "/q", status: 503, retry_after: None }.is_transient());
        assert!(ApiError::Http { path: "/q", status: 429, retry_after: None }.is_transient());
        assert!(!ApiError::Http { path: "/q", status: 404, retry_after: None }.is_transient());
        assert!(ApiError::Credentials { code: "200800002".into(), msg: String::new() }.is_fatal());
        let creds = ApiError::Credentials { code: "200800002".into(), msg: String::new() };
        assert_eq!(creds.action(), Action::EndPass);
        assert_eq!(
            ApiError::WindowRequired { code: "10000002".into(), msg: String::new() }.action(),
            Action::UseWindows
        );
        assert_eq!(remote("10000002").action(), Action::FailWindow);
    }
}
