//! Typed settings: defaults, then the TOML file, then `OIFDE_SYNC__SECTION__KEY`
//! environment variables. Every problem names the key and where it came from.
//! Each section is a file of its own that checks itself.

mod analytics;
mod api;
mod log;
mod query;
mod reconcile;
mod store;
mod sync;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

pub use analytics::AnalyticsSettings;
pub use api::{ApiSettings, Credential, PAGE_SIZES};
pub use log::{LogFormat, LogSettings};
pub use query::QuerySettings;
pub use reconcile::ReconcileSettings;
pub use store::{
    Access, FullText, PgSettings, Snapshot, StoreAt, StoreSettings, is_the_store, parse_mode, without_password,
};
pub use sync::{Start, SyncSettings, check_schedule, parse_start};

/// The prefix of environment overrides; `OIFDE_SYNC__API__PAGE_SIZE=50`.
pub const ENV_PREFIX: &str = "OIFDE_SYNC";

/// Every key the file may hold, by section.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("api", api::KEYS),
    ("query", query::KEYS),
    ("sync", sync::KEYS),
    ("store", store::KEYS),
    ("log", log::KEYS),
    ("metrics", log::METRICS_KEYS),
    ("reconcile", reconcile::KEYS),
    ("analytics", analytics::KEYS),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} not found (pass --config FILE or set OIFDE_SYNC_CONFIG)")]
    FileMissing(PathBuf),
    #[error("config file {file} cannot be read: {msg}")]
    Unreadable { file: PathBuf, msg: String },
    #[error("unknown key `{key}` {origin}")]
    UnknownKey { key: String, origin: String },
    #[error("`{key}` {origin}: {msg}")]
    Invalid { key: String, origin: String, msg: String },
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub api: ApiSettings,
    pub query: QuerySettings,
    pub sync: SyncSettings,
    pub store: StoreSettings,
    pub log: LogSettings,
    pub reconcile: ReconcileSettings,
    pub analytics: AnalyticsSettings,
    /// `metrics.listen`: where `/metrics` is served, if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The file the settings came from, for messages.
    pub file: PathBuf,
    /// `api.app_secret` or `api.auth_token` is written in the file itself.
    pub secret_in_file: bool,
}

/// The file as deserialized, before validation; every field has a default.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSettings {
    api: api::RawApi,
    query: query::RawQuery,
    sync: sync::RawSync,
    store: store::RawStore,
    log: log::RawLog,
    metrics: log::RawMetrics,
    reconcile: reconcile::RawReconcile,
    analytics: analytics::RawAnalytics,
}

/// Whether others than the owner can read `file`.
pub fn readable_by_others(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
}

/// Where the config file is: the flag, else `$OIFDE_SYNC_CONFIG`, else `./oifde-sync.toml`.
/// (clap fills the flag from the variable.)
pub fn default_path() -> PathBuf {
    PathBuf::from("oifde-sync.toml")
}

impl Settings {
    /// Loads the file and the process environment's overrides.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> =
            std::env::vars().filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__"))).collect();
        Self::load_with_env(file, env)
    }

    /// Loads the settings of a command that calls no API (`status`, `keys`,
    /// `snapshot`, `copy`): the API secret is not read, and a missing one is
    /// no error.
    pub fn load_offline(file: &Path) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> =
            std::env::vars().filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__"))).collect();
        Self::load_from(file, env, false)
    }

    /// Loads the file with the given environment (tests pass their own).
    pub fn load_with_env(file: &Path, env: HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::load_from(file, env, true)
    }

    fn load_from(file: &Path, env: HashMap<String, String>, needs_api: bool) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ConfigError::FileMissing(file.to_path_buf()),
            _ => ConfigError::Unreadable { file: file.to_path_buf(), msg: io_reason(&e) },
        })?;
        let file_keys = Config::builder()
            .add_source(File::from_str(&text, FileFormat::Toml))
            .build()
            .ok()
            .and_then(|c| c.try_deserialize::<HashMap<String, config::Value>>().ok())
            .map(|top| {
                top.into_iter()
                    .filter_map(|(section, v)| v.into_table().ok().map(|t| (section, t)))
                    .flat_map(|(section, t)| t.into_keys().map(move |k| format!("{section}.{k}")))
                    .collect()
            })
            .unwrap_or_default();
        let origins = Origins { file: file.to_path_buf(), env: env_keys(&env), file_keys };
        let built = Config::builder()
            .add_source(File::from_str(&text, FileFormat::Toml))
            .add_source(
                Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(false)
                    .source(Some(env.into_iter().collect())),
            )
            .build()
            .map_err(|e| ConfigError::Unreadable { file: file.to_path_buf(), msg: e.to_string() })?;
        check_known_keys(&built, &origins)?;
        let raw: RawSettings = built.try_deserialize().map_err(|e| type_error(e, &origins))?;
        validate(raw, &origins, needs_api)
    }
}

/// Where each key came from, to name it in messages.
struct Origins {
    file: PathBuf,
    /// `section.key` names set through the environment.
    env: BTreeSet<String>,
    /// `section.key` names written in the file.
    file_keys: BTreeSet<String>,
}

impl Origins {
    fn of(&self, key: &str) -> String {
        if self.env.contains(key) {
            let var = format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase());
            format!("(from environment variable {var})")
        } else {
            format!("in {}", self.file.display())
        }
    }

    fn invalid(&self, key: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { key: key.into(), origin: self.of(key), msg: msg.into() }
    }
}

fn env_keys(env: &HashMap<String, String>) -> BTreeSet<String> {
    env.keys()
        .filter_map(|k| k.strip_prefix(&format!("{ENV_PREFIX}__")))
        .map(|k| k.to_lowercase().replace("__", "."))
        .collect()
}

fn check_known_keys(built: &Config, origins: &Origins) -> Result<(), ConfigError> {
    let top: HashMap<String, config::Value> = built.clone().try_deserialize().map_err(|e| type_error(e, origins))?;
    let mut names: Vec<&String> = top.keys().collect();
    names.sort();
    for section in names {
        let Some((_, keys)) = KNOWN_KEYS.iter().find(|(s, _)| s == section) else {
            return Err(ConfigError::UnknownKey {
                key: section.clone(),
                origin: format!(
                    "{}; sections are {}",
                    origins.of(section),
                    KNOWN_KEYS.iter().map(|(s, _)| format!("[{s}]")).collect::<Vec<_>>().join(", ")
                ),
            });
        };
        let table = top[section]
            .clone()
            .into_table()
            .map_err(|_| origins.invalid(section, "must be a table of keys, like [section]"))?;
        let mut inner: Vec<&String> = table.keys().collect();
        inner.sort();
        for key in inner {
            if !keys.contains(&key.as_str()) {
                let full = format!("{section}.{key}");
                let origin = format!("{}; [{section}] takes {}", origins.of(&full), keys.join(", "));
                return Err(ConfigError::UnknownKey { key: full, origin });
            }
        }
    }
    Ok(())
}

fn type_error(e: config::ConfigError, origins: &Origins) -> ConfigError {
    match e {
        config::ConfigError::Type { key: Some(key), unexpected, expected, .. } => {
            origins.invalid(&key, format!("expected {expected}, found {unexpected}"))
        }
        other => ConfigError::Unreadable { file: origins.file.clone(), msg: other.to_string() },
    }
}

/// Parses a human duration such as "15m", "1h", "7d", "2m 30s" or "500ms";
/// a day is 24 hours.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration; write it like \"30s\", \"15m\", \"1h\", \"7d\" or \"2m 30s\"");
    let span: jiff::Span = text.trim().parse().map_err(|_| bad())?;
    let d = span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).map_err(|_| bad())?;
    Duration::try_from(d).map_err(|_| format!("{text:?} must not be negative"))
}

fn duration(origins: &Origins, key: &str, text: &str) -> Result<Duration, ConfigError> {
    parse_duration(text).map_err(|m| origins.invalid(key, m))
}

fn positive(origins: &Origins, key: &str, value: i64) -> Result<u64, ConfigError> {
    u64::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| origins.invalid(key, format!("must be a whole number above 0, found {value}")))
}

fn optional_path(text: &str) -> Option<PathBuf> {
    (!text.trim().is_empty()).then(|| PathBuf::from(text.trim()))
}

/// The directory of the config file, against which its relative paths resolve
/// (as Prometheus does), wherever the command runs from.
fn config_dir(config: &Path) -> PathBuf {
    let dir = config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// A path of the config: as written when absolute, else beside the config file.
pub fn beside_config(config: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { config_dir(config).join(path) }
}

/// `optional_path`, resolved beside the config file.
fn config_path(o: &Origins, text: &str) -> Option<PathBuf> {
    optional_path(text).map(|p| beside_config(&o.file, &p))
}

fn validate(raw: RawSettings, o: &Origins, needs_api: bool) -> Result<Settings, ConfigError> {
    let api = api::validate(raw.api, o, needs_api)?;
    let sync = sync::validate(raw.sync, &api.server_timezone, o)?;
    let log = log::validate(raw.log, o)?;
    let metrics_listen = log::validate_metrics(raw.metrics, o)?;
    let store = store::validate(raw.store, &api.tenant_id, o)?;
    let query = query::validate(raw.query, o)?;
    let reconcile = reconcile::validate(raw.reconcile, o)?;
    let analytics = analytics::validate(raw.analytics, o)?;
    Ok(Settings {
        api,
        query,
        sync,
        store,
        log,
        reconcile,
        analytics,
        metrics_listen,
        file: o.file.clone(),
        secret_in_file: ["api.app_secret", "api.auth_token"]
            .iter()
            .any(|k| !o.env.contains(*k) && o.file_keys.contains(*k)),
    })
}

/// An I/O error in plain words, with the fix for the usual causes.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied for this user (uid {}); the service runs as its own user: make the file readable \
             to it (the config can be 0644 when the secret is in api.app_secret_file, loaded with LoadCredential=)",
            current_uid()
        ),
        std::io::ErrorKind::NotFound => "no such file".into(),
        _ => e.to_string(),
    }
}

fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}
