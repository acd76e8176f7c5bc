//! Typed settings: defaults, then the TOML file, then `OIFDE_SYNC__SECTION__KEY`
//! environment variables. Every problem names the key and where it came from.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use crate::secret::Secret;
use crate::tz::ServerZone;

/// The prefix of environment overrides; `OIFDE_SYNC__API__PAGE_SIZE=50`.
pub const ENV_PREFIX: &str = "OIFDE_SYNC";
/// The page sizes the API accepts.
pub const PAGE_SIZES: [u32; 5] = [5, 10, 20, 50, 100];

/// Every key the file may hold, by section.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "api",
        &[
            "base_url",
            "tenant_id",
            "app_secret",
            "app_secret_file",
            "auth_token",
            "server_timezone",
            "page_size",
            "timeout",
            "max_requests_per_second",
            "concurrency",
            "ca_file",
            "insecure_skip_tls_verify",
            "max_retries",
            "retry_delay",
        ],
    ),
    ("query", &["user_mobiles", "call_ids", "cti_call_ids", "keys_file", "give_up_after", "point_lookback"]),
    (
        "sync",
        &["start", "window", "overlap", "lag", "split_above", "schedule", "settle", "resweep", "resweep_schedule"],
    ),
    (
        "store",
        &["path", "url", "password_file", "ca_file", "full_text", "snapshot_to", "snapshot_mode", "snapshot_group"],
    ),
    ("log", &["format", "level"]),
    ("metrics", &["listen"]),
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
pub enum Credential {
    /// Exchanged for a token through `gettoken`.
    AppSecret(Secret),
    /// Used as it is; never renewed.
    FixedToken(Secret),
    /// Not read: the command calls no API.
    NotLoaded,
}

#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub base_url: String,
    pub tenant_id: String,
    pub credential: Credential,
    pub server_timezone: ServerZone,
    pub page_size: u32,
    pub timeout: Duration,
    pub max_requests_per_second: u32,
    pub concurrency: usize,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_tls_verify: bool,
    pub max_retries: usize,
    pub retry_delay: Duration,
}

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
        }
    }
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub api: ApiSettings,
    pub query: QuerySettings,
    pub sync: SyncSettings,
    pub store_path: PathBuf,
    /// `store.url`: a PostgreSQL store instead of the SQLite file.
    pub store_url: Option<PgSettings>,
    /// What the full-text index of turns covers (`store.full_text`).
    pub store_full_text: crate::store::FullText,
    /// A copy for analysts written after every pass (`store.snapshot_to`).
    pub snapshot: Option<(PathBuf, crate::store::snapshot::Access)>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The file the settings came from, for messages.
    pub file: PathBuf,
    /// `api.app_secret` or `api.auth_token` is written in the file itself.
    pub secret_in_file: bool,
}

/// A PostgreSQL store (`store.url`), written for one tenant (`api.tenant_id`).
#[derive(Clone, Debug)]
pub struct PgSettings {
    /// The connection settings parsed from the URL, the password included.
    pub config: tokio_postgres::Config,
    /// The URL without its password, for messages.
    pub shown: String,
    /// `store.ca_file`: a private CA for the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// Rows, keys, cursors and runs are this tenant's.
    pub tenant: String,
    /// Where a missing or wrong password is given, for the message.
    pub password_from: &'static str,
}

/// The file as deserialized, before validation; every field has a default.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSettings {
    api: RawApi,
    query: RawQuery,
    sync: RawSync,
    store: RawStore,
    log: RawLog,
    metrics: RawMetrics,
}

#[derive(Deserialize)]
#[serde(default)]
struct RawApi {
    base_url: String,
    tenant_id: String,
    app_secret: String,
    app_secret_file: String,
    auth_token: String,
    server_timezone: String,
    page_size: i64,
    timeout: String,
    max_requests_per_second: i64,
    concurrency: i64,
    ca_file: String,
    insecure_skip_tls_verify: bool,
    max_retries: i64,
    retry_delay: String,
}

#[derive(Deserialize)]
#[serde(default)]
struct RawQuery {
    #[serde(deserialize_with = "list_or_text")]
    user_mobiles: Vec<String>,
    #[serde(deserialize_with = "list_or_text")]
    call_ids: Vec<String>,
    #[serde(deserialize_with = "list_or_text")]
    cti_call_ids: Vec<String>,
    keys_file: String,
    give_up_after: String,
    point_lookback: String,
}

/// A list from the file, or `a,b,c` from the environment; items stay text
/// exactly as written (leading zeros included).
fn list_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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
        }
    }
}

#[derive(Deserialize)]
#[serde(default)]
struct RawSync {
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

#[derive(Deserialize)]
#[serde(default)]
struct RawStore {
    path: String,
    url: String,
    password_file: String,
    ca_file: String,
    full_text: String,
    snapshot_to: String,
    snapshot_mode: String,
    snapshot_group: String,
}

#[derive(Deserialize)]
#[serde(default)]
struct RawLog {
    format: String,
    level: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMetrics {
    listen: String,
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            path: "oifde-sync.db".into(),
            url: String::new(),
            password_file: String::new(),
            ca_file: String::new(),
            full_text: "callers".into(),
            snapshot_to: String::new(),
            snapshot_mode: "0640".into(),
            snapshot_group: String::new(),
        }
    }
}

impl Default for RawLog {
    fn default() -> Self {
        Self { format: "text".into(), level: "info".into() }
    }
}

impl Default for RawApi {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            tenant_id: String::new(),
            app_secret: String::new(),
            app_secret_file: String::new(),
            auth_token: String::new(),
            server_timezone: "UTC".into(),
            page_size: 100,
            timeout: "30s".into(),
            max_requests_per_second: 10,
            concurrency: 4,
            ca_file: String::new(),
            insecure_skip_tls_verify: false,
            max_retries: 5,
            retry_delay: "1s".into(),
        }
    }
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
    let a = raw.api;
    let base_url = a.base_url.trim().trim_end_matches('/').to_string();
    if base_url.is_empty() {
        return Err(
            o.invalid("api.base_url", "is missing; set it to the OIAP address, like \"https://10.0.0.10:28090\"")
        );
    }
    if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
        return Err(o.invalid("api.base_url", format!("{base_url:?} must start with https:// (or http://)")));
    }
    match reqwest::Url::parse(&base_url) {
        Err(e) => return Err(o.invalid("api.base_url", format!("{base_url:?} is not a usable address: {e}"))),
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            return Err(o.invalid("api.base_url", format!("{base_url:?} names no host")));
        }
        Ok(url) if url.path() != "/" || url.query().is_some() => {
            return Err(o.invalid(
                "api.base_url",
                format!("{base_url:?} must be only https://IP:PORT; the interface paths are fixed"),
            ));
        }
        Ok(_) => {}
    }
    if a.tenant_id.trim().is_empty() {
        return Err(o.invalid("api.tenant_id", "is missing; set it to the tenant ID (the gettoken appKey)"));
    }
    let credential = match credential(&a, o) {
        Ok(c) => c,
        // A command that calls no API does not need the secret.
        Err(_) if !needs_api => Credential::NotLoaded,
        Err(e) => return Err(e),
    };
    let server_timezone = ServerZone::parse(&a.server_timezone).map_err(|m| o.invalid("api.server_timezone", m))?;
    let page_size = u32::try_from(a.page_size).ok().filter(|p| PAGE_SIZES.contains(p)).ok_or_else(|| {
        o.invalid("api.page_size", format!("must be one of 5, 10, 20, 50, 100, found {}", a.page_size))
    })?;
    let timeout = duration(o, "api.timeout", &a.timeout)?;
    if timeout.is_zero() {
        return Err(o.invalid("api.timeout", "must be above 0"));
    }
    let max_rps = positive(o, "api.max_requests_per_second", a.max_requests_per_second)?;
    let concurrency = positive(o, "api.concurrency", a.concurrency)?;
    let max_retries = usize::try_from(a.max_retries).map_err(|_| o.invalid("api.max_retries", "must be 0 or more"))?;
    let api = ApiSettings {
        base_url,
        tenant_id: a.tenant_id.trim().to_string(),
        credential,
        server_timezone,
        page_size,
        timeout,
        max_requests_per_second: u32::try_from(max_rps).unwrap_or(u32::MAX),
        concurrency: usize::try_from(concurrency).unwrap_or(usize::MAX),
        ca_file: config_path(o, &a.ca_file),
        insecure_skip_tls_verify: a.insecure_skip_tls_verify,
        max_retries,
        retry_delay: duration(o, "api.retry_delay", &a.retry_delay)?,
    };
    let s = raw.sync;
    let start = parse_start(&s.start, &api.server_timezone).map_err(|m| o.invalid("sync.start", m))?;
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
    let sync = SyncSettings {
        start,
        window,
        overlap: duration(o, "sync.overlap", &s.overlap)?,
        lag: duration(o, "sync.lag", &s.lag)?,
        split_above: positive(o, "sync.split_above", s.split_above)?,
        schedule: s.schedule.trim().to_string(),
        settle: duration(o, "sync.settle", &s.settle)?,
        resweep,
        resweep_schedule: s.resweep_schedule.trim().to_string(),
    };
    let log_format = match raw.log.format.trim() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(o.invalid("log.format", format!("must be \"text\" or \"json\", found {other:?}")));
        }
    };
    tracing_subscriber::EnvFilter::try_new(raw.log.level.trim()).map_err(|e| {
        o.invalid("log.level", format!("{:?} is not a level (error, warn, info, debug, trace): {e}", raw.log.level))
    })?;
    let metrics_listen =
        match raw.metrics.listen.trim() {
            "" => None,
            addr => Some(addr.parse().map_err(|_| {
                o.invalid("metrics.listen", format!("{addr:?} is not an address like \"127.0.0.1:9464\""))
            })?),
        };
    let store_url = postgres(&raw.store, &api.tenant_id, o)?;
    if raw.store.path.trim().is_empty() && store_url.is_none() {
        return Err(o.invalid("store.path", "must name the SQLite file (or set store.url for PostgreSQL)"));
    }
    let snapshot_mode = crate::store::snapshot::parse_mode(&raw.store.snapshot_mode)
        .map_err(|m| o.invalid("store.snapshot_mode", m))?;
    let store_path = beside_config(&o.file, Path::new(raw.store.path.trim()));
    let snapshot = config_path(o, &raw.store.snapshot_to).map(|to| {
        let group = Some(raw.store.snapshot_group.trim().to_string()).filter(|g| !g.is_empty());
        (to, crate::store::snapshot::Access { mode: snapshot_mode, group })
    });
    if let Some((to, _)) = &snapshot
        && store_url.is_none()
        && crate::store::snapshot::is_the_store(&store_path, to)
    {
        return Err(o.invalid(
            "store.snapshot_to",
            format!(
                "{} is the store itself (store.path); a snapshot there would overwrite the live store. \
                 Name another file, e.g. one the analysts read",
                to.display()
            ),
        ));
    }
    let q = raw.query;
    let query = QuerySettings {
        user_mobiles: q.user_mobiles,
        call_ids: q.call_ids,
        cti_call_ids: q.cti_call_ids,
        keys_file: config_path(o, &q.keys_file),
        give_up_after: duration(o, "query.give_up_after", &q.give_up_after)?,
        point_lookback: duration(o, "query.point_lookback", &q.point_lookback)?,
    };
    for (kind, name, values) in crate::keys::configured_lists(&query) {
        for v in values.iter().filter(|v| !v.trim().is_empty()) {
            crate::keys::QueryKey::of(kind, v).map_err(|m| o.invalid(name, format!("{m}; fix or remove it")))?;
        }
    }
    Ok(Settings {
        api,
        query,
        sync,
        store_path,
        store_url,
        store_full_text: crate::store::FullText::parse(&raw.store.full_text)
            .map_err(|m| o.invalid("store.full_text", m))?,
        snapshot,
        log_format,
        log_level: raw.log.level.trim().to_string(),
        metrics_listen,
        file: o.file.clone(),
        secret_in_file: ["api.app_secret", "api.auth_token"]
            .iter()
            .any(|k| !o.env.contains(*k) && o.file_keys.contains(*k)),
    })
}

/// `store.url` with its password: from the URL, else `store.password_file`
/// (a systemd credential when relative and `$CREDENTIALS_DIRECTORY` is set),
/// else `PGPASSWORD`. `store.path` and `store.url` exclude each other.
fn postgres(s: &RawStore, tenant: &str, o: &Origins) -> Result<Option<PgSettings>, ConfigError> {
    let url = s.url.trim();
    if url.is_empty() {
        for key in ["store.password_file", "store.ca_file"] {
            if o.file_keys.contains(key) || o.env.contains(key) {
                return Err(o.invalid(key, "applies to PostgreSQL only; set store.url, or remove it"));
            }
        }
        return Ok(None);
    }
    if !s.snapshot_to.trim().is_empty() {
        return Err(o.invalid(
            "store.snapshot_to",
            "applies to SQLite only; analysts read PostgreSQL directly (or `oifde-sync copy --to FILE.db` makes a SQLite copy)",
        ));
    }
    if o.file_keys.contains("store.path") || o.env.contains("store.path") {
        return Err(o.invalid("store.url", "set either store.path (SQLite) or store.url (PostgreSQL), not both"));
    }
    let mut pg = PgSettings::parse(url, tenant).map_err(|m| o.invalid("store.url", m))?;
    pg.ca_file = config_path(o, &s.ca_file);
    if pg.config.get_password().is_none()
        && let Some(file) = optional_path(&s.password_file)
    {
        let (path, looked) = credential_path(&file.to_string_lossy(), &o.file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            o.invalid("store.password_file", format!("{} ({looked}) cannot be read: {}", path.display(), io_reason(&e)))
        })?;
        pg.config.password(text.trim_end_matches(['\r', '\n']));
    }
    Ok(Some(pg.with_env_password()))
}

impl PgSettings {
    /// A `postgres://` URL for `tenant`, with the URL's password if it has one.
    pub fn parse(url: &str, tenant: &str) -> Result<Self, String> {
        let shown = crate::store::postgres::without_password(url);
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!("{shown:?} is not a URL like \"postgres://user@host:5432/db\""));
        }
        crate::store::postgres::check_user_info(url).map_err(|m| format!("{shown:?}: {m}"))?;
        // libpq's stricter modes: rustls always checks the chain and the host name.
        let url = url.replace("sslmode=verify-full", "sslmode=require").replace("sslmode=verify-ca", "sslmode=require");
        let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{shown:?} cannot be read: {e}"))?;
        if config.get_dbname().is_none() {
            return Err(format!("{shown:?} names no database; end it with /DBNAME"));
        }
        Ok(Self {
            config,
            shown,
            ca_file: None,
            tenant: tenant.to_string(),
            password_from: "store.url, store.password_file or PGPASSWORD",
        })
    }

    /// `PGPASSWORD`, where no password was given otherwise.
    pub fn with_env_password(mut self) -> Self {
        if self.config.get_password().is_none()
            && let Ok(password) = std::env::var("PGPASSWORD")
        {
            self.config.password(password);
        }
        self
    }
}

fn credential(a: &RawApi, o: &Origins) -> Result<Credential, ConfigError> {
    let set: Vec<&str> = [
        ("api.app_secret", &a.app_secret),
        ("api.app_secret_file", &a.app_secret_file),
        ("api.auth_token", &a.auth_token),
    ]
    .iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(k, _)| *k)
    .collect();
    match set.as_slice() {
        [] => Err(o.invalid("api.app_secret", "is missing; set api.app_secret, api.app_secret_file or api.auth_token")),
        ["api.app_secret"] => Ok(Credential::AppSecret(Secret::new(a.app_secret.trim()))),
        ["api.auth_token"] => Ok(Credential::FixedToken(Secret::new(a.auth_token.trim()))),
        ["api.app_secret_file"] => {
            let (path, looked) = credential_path(a.app_secret_file.trim(), &o.file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                o.invalid(
                    "api.app_secret_file",
                    format!("{} ({looked}) cannot be read: {}", path.display(), io_reason(&e)),
                )
            })?;
            let secret = text.trim_end_matches(['\r', '\n']);
            if secret.is_empty() {
                return Err(o.invalid("api.app_secret_file", format!("{} is empty", path.display())));
            }
            Ok(Credential::AppSecret(Secret::new(secret)))
        }
        many => Err(o.invalid(many[0], format!("set only one of {}", many.join(", ")))),
    }
}

/// A relative secret file is looked up in systemd's `$CREDENTIALS_DIRECTORY`
/// when the service runs with `LoadCredential=`, else beside the config
/// file: `NAME`, or, as the template unit's layout has it, `<config name>.NAME`
/// (`north.app_secret` beside `north.toml`). Returns the path and where it
/// was looked up, for messages.
fn credential_path(text: &str, config: &Path) -> (PathBuf, String) {
    let path = PathBuf::from(text);
    if path.is_absolute() {
        return (path, "as written".into());
    }
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) => (Path::new(&dir).join(path), "in $CREDENTIALS_DIRECTORY".into()),
        None => {
            let plain = beside_config(config, &path);
            let stem = config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let tenant = beside_config(config, Path::new(&format!("{stem}.{text}")));
            if plain.exists() || stem.is_empty() || !tenant.exists() {
                let also = if stem.is_empty() { String::new() } else { format!(" or {}", tenant.display()) };
                (plain, format!("beside the config file{also}"))
            } else {
                (tenant, "beside the config file, named after it".into())
            }
        }
    }
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

/// A cron schedule with a seconds field (6 or 7 fields).
pub fn check_schedule(expr: &str) -> Result<(), String> {
    crate::schedule::Schedule::parse(expr).map(drop)
}
