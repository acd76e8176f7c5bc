//! The OIFDE REST API: the client ([`ApiClient`]: retries), the token's
//! life, the transport (rate limit, TLS, body cap), the wire format, and
//! the error classes.

mod client;
mod error;
mod token;
mod transport;
mod wire;

pub use client::ApiClient;
pub use error::{Action, ApiError};
pub use transport::ClientStats;
pub use wire::{Page, Query, parse_query_answer};

/// Path of the token interface.
pub const TOKEN_PATH: &str = "/oifde/rest/api/gettoken";
/// Path of the session record query interface.
pub const QUERY_PATH: &str = "/oifde/rest/api/queryRecordHistory";
/// Path of the call statistics interface (its answer may be a bare list).
pub const STATS_PATH: &str = "/oifde/rest/api/queryCallStatisticsReport";

/// Error codes the documentation lists, by what the client does with them.
pub mod codes {
    /// No token, or it expired: renew and retry once.
    pub const TOKEN_EXPIRED: i64 = 900001;
    /// Token check failed: renew and retry once.
    pub const TOKEN_INVALID: i64 = 900002;
    /// Internal errors: retried like HTTP 5xx.
    pub const INTERNAL: [i64; 2] = [10000001, 200900002];
    /// Request errors: never retried.
    pub const REQUEST: [i64; 3] = [10000002, 10000003, 200900003];
    /// Unknown key, wrong secret, locked account: never retried, or the
    /// tenant's account may be locked.
    pub const CREDENTIALS: [i64; 3] = [200800001, 200800002, 200800003];
}
