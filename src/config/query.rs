//! `[query]`: the keys to read (lists in the file, a keys file) and how
//! long a point key is looked for. The configured keys are built here.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Origins, config_path, duration};
use crate::keys::{KeyKind, QueryKey};
use crate::tz::ServerZone;

/// The keys of `[query]`.
pub(super) const KEYS: &[&str] = &[
    "user_mobiles",
    "call_ids",
    "cti_call_ids",
    "keys_file",
    "give_up_after",
    "point_lookback",
    "cdr_dir",
    "cdr_key",
    "cdr_timezone",
];

#[derive(Clone, Debug)]
pub struct QuerySettings {
    pub user_mobiles: Vec<String>,
    pub call_ids: Vec<String>,
    pub cti_call_ids: Vec<String>,
    pub keys_file: Option<PathBuf>,
    /// A point key that finds no record is given up after this.
    pub give_up_after: Duration,
    /// Where point keys are read in windows (servers that refuse key-only
    /// queries): from this long before the key was added.
    pub point_lookback: Duration,
    /// A directory of Huawei CDR files (`*.csv`, `*.zip`), read at every pass.
    pub cdr_dir: Option<PathBuf>,
    /// Which key a CDR `call_id` is: `cti` (OIFDE's `ctiCallId`) or `call`.
    pub cdr_key: KeyKind,
    /// The zone of the CDR files' times; `None`: `api.server_timezone`.
    pub cdr_timezone: Option<ServerZone>,
}

impl Default for QuerySettings {
    fn default() -> Self {
        Self {
            user_mobiles: Vec::new(),
            call_ids: Vec::new(),
            cti_call_ids: Vec::new(),
            keys_file: None,
            give_up_after: Duration::from_secs(86_400),
            point_lookback: Duration::from_secs(7 * 86_400),
            cdr_dir: None,
            cdr_key: KeyKind::Cti,
            cdr_timezone: None,
        }
    }
}

impl QuerySettings {
    /// The keys of the config lists, without duplicates (validated when the
    /// config was loaded; a value that is not a key is left out here).
    pub fn configured(&self) -> Vec<QueryKey> {
        let mut keys = Vec::new();
        for (kind, _, values) in self.lists() {
            for v in values.iter().filter(|v| !v.trim().is_empty()) {
                if let Ok(key) = QueryKey::of(kind, v) {
                    keys.push(key);
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(k.clone()));
        keys
    }

    /// The config's key lists, each with its kind and config key.
    fn lists(&self) -> [(KeyKind, &'static str, &[String]); 3] {
        [
            (KeyKind::Mobile, "query.user_mobiles", &self.user_mobiles),
            (KeyKind::Call, "query.call_ids", &self.call_ids),
            (KeyKind::Cti, "query.cti_call_ids", &self.cti_call_ids),
        ]
    }
}

#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawQuery {
    #[serde(deserialize_with = "list_or_text")]
    user_mobiles: Vec<String>,
    #[serde(deserialize_with = "list_or_text")]
    call_ids: Vec<String>,
    #[serde(deserialize_with = "list_or_text")]
    cti_call_ids: Vec<String>,
    keys_file: String,
    give_up_after: String,
    point_lookback: String,
    cdr_dir: String,
    cdr_key: String,
    cdr_timezone: String,
}

/// A list from the file, or `a,b,c` from the environment; items stay text
/// exactly as written (leading zeros included).
pub(super) fn list_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    Ok(match ListOrText::deserialize(d)? {
        ListOrText::List(items) => items,
        ListOrText::Text(text) => text.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect(),
    })
}

impl Default for RawQuery {
    fn default() -> Self {
        Self {
            user_mobiles: Vec::new(),
            call_ids: Vec::new(),
            cti_call_ids: Vec::new(),
            keys_file: String::new(),
            give_up_after: "24h".into(),
            point_lookback: "7d".into(),
            cdr_dir: String::new(),
            cdr_key: "cti".into(),
            cdr_timezone: String::new(),
        }
    }
}

/// `[query]` checked: every listed value must be a key of its kind.
pub(super) fn validate(q: RawQuery, o: &Origins) -> Result<QuerySettings, ConfigError> {
    let query = QuerySettings {
        user_mobiles: q.user_mobiles,
        call_ids: q.call_ids,
        cti_call_ids: q.cti_call_ids,
        keys_file: config_path(o, &q.keys_file),
        give_up_after: duration(o, "query.give_up_after", &q.give_up_after)?,
        point_lookback: duration(o, "query.point_lookback", &q.point_lookback)?,
        cdr_dir: config_path(o, &q.cdr_dir),
        cdr_key: match q.cdr_key.trim() {
            "cti" => KeyKind::Cti,
            "call" => KeyKind::Call,
            other => {
                return Err(o.invalid(
                    "query.cdr_key",
                    format!("must be \"cti\" (a CDR call_id is OIFDE's ctiCallId) or \"call\", found {other:?}"),
                ));
            }
        },
        cdr_timezone: match q.cdr_timezone.trim() {
            "" => None,
            zone => Some(ServerZone::parse(zone).map_err(|m| o.invalid("query.cdr_timezone", m))?),
        },
    };
    for (kind, name, values) in query.lists() {
        for v in values.iter().filter(|v| !v.trim().is_empty()) {
            QueryKey::of(kind, v).map_err(|m| o.invalid(name, format!("{m}; fix or remove it")))?;
        }
    }
    Ok(query)
}
