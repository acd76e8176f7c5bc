//! `[log]` and `[metrics]`: how the daemon speaks, and where it is scraped.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{ConfigError, Origins};

/// The keys of `[log]`.
pub(super) const KEYS: &[&str] = &["format", "level"];
/// The keys of `[metrics]`.
pub(super) const METRICS_KEYS: &[&str] = &["listen"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter: `info`, `oifde_sync=debug`, ….
    pub level: String,
}

#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawLog {
    format: String,
    level: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawMetrics {
    listen: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self { format: "text".into(), level: "info".into() }
    }
}

/// `[log]` checked.
pub(super) fn validate(raw: RawLog, o: &Origins) -> Result<LogSettings, ConfigError> {
    let format = match raw.format.trim() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(o.invalid("log.format", format!("must be \"text\" or \"json\", found {other:?}")));
        }
    };
    tracing_subscriber::EnvFilter::try_new(raw.level.trim()).map_err(|e| {
        o.invalid("log.level", format!("{:?} is not a level (error, warn, info, debug, trace): {e}", raw.level))
    })?;
    Ok(LogSettings { format, level: raw.level.trim().to_string() })
}

/// `[metrics]` checked: the address `/metrics` listens on, if any.
pub(super) fn validate_metrics(raw: RawMetrics, o: &Origins) -> Result<Option<SocketAddr>, ConfigError> {
    match raw.listen.trim() {
        "" => Ok(None),
        addr => addr
            .parse()
            .map(Some)
            .map_err(|_| o.invalid("metrics.listen", format!("{addr:?} is not an address like \"127.0.0.1:9464\""))),
    }
}
