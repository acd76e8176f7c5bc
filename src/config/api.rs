//! `[api]`: where the OIFDE server is, the tenant's credential, and how
//! hard the client may press it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Origins, beside_config, config_path, duration, io_reason, positive};
use crate::secret::Secret;
use crate::tz::ServerZone;

/// The keys of `[api]`.
pub(super) const KEYS: &[&str] = &[
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
];

/// The page sizes the API accepts.
pub const PAGE_SIZES: [u32; 5] = [5, 10, 20, 50, 100];

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

#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawApi {
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

/// `[api]` checked; without `needs_api` a missing secret is no error
/// (the command calls no API).
pub(super) fn validate(a: RawApi, o: &Origins, needs_api: bool) -> Result<ApiSettings, ConfigError> {
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
    Ok(ApiSettings {
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
    })
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
pub(super) fn credential_path(text: &str, config: &Path) -> (PathBuf, String) {
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
