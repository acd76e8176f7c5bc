//! `[sync]`: where keys start, the window sizes, the schedules.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Origins, duration, parse_duration, positive};
use crate::tz::ServerZone;

/// The keys of `[sync]`.
pub(super) const KEYS: &[&str] =
    &["start", "window", "overlap", "lag", "split_above", "schedule", "settle", "resweep", "resweep_schedule"];

/// Where a stream key with no cursor starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// This long before the pass.
    Ago(Duration),
    /// A fixed time, epoch seconds.
    At(i64),
}

impl Start {
    /// The start in epoch seconds for a pass at `now`.
    pub fn at(self, now: i64) -> i64 {
        match self {
            Start::Ago(d) => now - d.as_secs() as i64,
            Start::At(t) => t,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SyncSettings {
    /// Where a key with no cursor starts.
    pub start: Start,
    pub window: Duration,
    pub overlap: Duration,
    pub lag: Duration,
    pub split_above: u64,
    pub schedule: String,
    /// A point key is done once its call ended (or last changed) this long ago.
    pub settle: Duration,
    /// Re-read this span of every stream key on `resweep_schedule`; `None` is off.
    pub resweep: Option<Duration>,
    pub resweep_schedule: String,
}

#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawSync {
    start: String,
    window: String,
    overlap: String,
    lag: String,
    split_above: i64,
    schedule: String,
    settle: String,
    resweep: String,
    resweep_schedule: String,
}

impl Default for RawSync {
    fn default() -> Self {
        Self {
            start: "7d".into(),
            window: "1h".into(),
            overlap: "15m".into(),
            lag: "1m".into(),
            split_above: 5000,
            schedule: "0 */5 * * * *".into(),
            settle: "15m".into(),
            resweep: String::new(),
            resweep_schedule: "0 30 3 * * *".into(),
        }
    }
}

/// `[sync]` checked; `zone` reads a fixed `start` time.
pub(super) fn validate(s: RawSync, zone: &ServerZone, o: &Origins) -> Result<SyncSettings, ConfigError> {
    let start = parse_start(&s.start, zone).map_err(|m| o.invalid("sync.start", m))?;
    let window = duration(o, "sync.window", &s.window)?;
    if window < Duration::from_secs(1) {
        return Err(o.invalid("sync.window", "must be at least 1s"));
    }
    check_schedule(&s.schedule).map_err(|m| o.invalid("sync.schedule", m))?;
    check_schedule(&s.resweep_schedule).map_err(|m| o.invalid("sync.resweep_schedule", m))?;
    let resweep = match s.resweep.trim() {
        "" | "off" => None,
        text => Some(duration(o, "sync.resweep", text)?).filter(|d| !d.is_zero()),
    };
    Ok(SyncSettings {
        start,
        window,
        overlap: duration(o, "sync.overlap", &s.overlap)?,
        lag: duration(o, "sync.lag", &s.lag)?,
        split_above: positive(o, "sync.split_above", s.split_above)?,
        schedule: s.schedule.trim().to_string(),
        settle: duration(o, "sync.settle", &s.settle)?,
        resweep,
        resweep_schedule: s.resweep_schedule.trim().to_string(),
    })
}

/// `sync.start`: a span back from now ("7d", "7 days ago") or a time.
pub fn parse_start(text: &str, zone: &ServerZone) -> Result<Start, String> {
    if let Ok(at) = zone.parse_time(text) {
        return Ok(Start::At(at));
    }
    let span = text.trim().strip_suffix("ago").unwrap_or(text.trim());
    parse_duration(span).map(Start::Ago).map_err(|_| {
        format!("{text:?} is neither a span back from now (like \"7d\") nor a time like \"2026-11-01 00:00:00\"")
    })
}

/// A cron schedule with a seconds field (6 or 7 fields).
pub fn check_schedule(expr: &str) -> Result<(), String> {
    crate::schedule::Schedule::parse(expr).map(drop)
}
