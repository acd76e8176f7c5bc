//! The OIFDE REST API: request and response types, error classes, and the
//! client that holds the token, the rate limit and the retries.

mod client;
mod error;

pub use client::{ApiClient, ClientStats, Page, Query, parse_query_answer};
pub use error::{Action, ApiError};

/// Path of the token interface.
pub const TOKEN_PATH: &str = "/oifde/rest/api/gettoken";
/// Path of the session record query interface.
pub const QUERY_PATH: &str = "/oifde/rest/api/queryRecordHistory";

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
