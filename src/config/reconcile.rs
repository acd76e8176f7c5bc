//! `[reconcile]`: the tenant's chatbot access codes whose call statistics
//! the daemon fetches, how many days back, and when.

use serde::Deserialize;

use super::sync::check_schedule;
use super::{ConfigError, Origins};

/// The keys of `[reconcile]`.
pub(super) const KEYS: &[&str] = &["access_codes", "days", "schedule"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// Empty: off.
    pub access_codes: Vec<String>,
    /// The last this many days (today included) are fetched and verified.
    pub days: u32,
    pub schedule: String,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self { access_codes: Vec::new(), days: 2, schedule: "0 10 * * * *".into() }
    }
}

#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawReconcile {
    #[serde(deserialize_with = "super::query::list_or_text")]
    access_codes: Vec<String>,
    days: i64,
    schedule: String,
}

impl Default for RawReconcile {
    fn default() -> Self {
        let d = ReconcileSettings::default();
        Self { access_codes: d.access_codes, days: i64::from(d.days), schedule: d.schedule }
    }
}

/// `[reconcile]` checked.
pub(super) fn validate(raw: RawReconcile, o: &Origins) -> Result<ReconcileSettings, ConfigError> {
    let days = u32::try_from(raw.days)
        .ok()
        .filter(|d| (1..=31).contains(d))
        .ok_or_else(|| o.invalid("reconcile.days", format!("must be 1 to 31, found {}", raw.days)))?;
    check_schedule(&raw.schedule).map_err(|m| o.invalid("reconcile.schedule", m))?;
    let access_codes: Vec<String> =
        raw.access_codes.iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
    if let Some(bad) = access_codes.iter().find(|c| c.chars().any(char::is_whitespace) || c.len() > 64) {
        return Err(o.invalid("reconcile.access_codes", format!("{bad:?} is not an access code")));
    }
    Ok(ReconcileSettings { access_codes, days, schedule: raw.schedule.trim().to_string() })
}
