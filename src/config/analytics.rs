//! `[analytics]`: what the analyst measures need to know of the tenant.

use serde::Deserialize;

use super::{ConfigError, Origins};

/// The keys of `[analytics]`.
pub(super) const KEYS: &[&str] = &["fallback_intentions"];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnalyticsSettings {
    /// Intentions that mean "not understood", besides the empty one.
    pub fallback_intentions: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawAnalytics {
    #[serde(deserialize_with = "super::query::list_or_text")]
    fallback_intentions: Vec<String>,
}

/// `[analytics]` checked.
pub(super) fn validate(raw: RawAnalytics, _o: &Origins) -> Result<AnalyticsSettings, ConfigError> {
    let mut fallback_intentions: Vec<String> =
        raw.fallback_intentions.iter().map(|i| i.trim().to_string()).filter(|i| !i.is_empty()).collect();
    fallback_intentions.sort();
    fallback_intentions.dedup();
    Ok(AnalyticsSettings { fallback_intentions })
}
