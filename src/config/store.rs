//! `[store]`: where the mirror is (a SQLite file or a PostgreSQL database),
//! what its full-text index covers, and the analysts' snapshot. The URL of
//! a database is shown only without its password.

use std::fmt;
use std::path::{Path, PathBuf};

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Origins, beside_config, config_path, io_reason, optional_path};

/// The keys of `[store]`.
pub(super) const KEYS: &[&str] =
    &["path", "url", "password_file", "ca_file", "full_text", "snapshot_to", "snapshot_mode", "snapshot_group", "keep"];

/// The store's settings: where it is, and what its index covers.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    pub at: StoreAt,
    /// What the full-text index of turns covers (`store.full_text`).
    pub full_text: FullText,
    /// How long sessions are kept (`store.keep`); `None`: for ever.
    pub keep: Option<Duration>,
}

/// Where the mirror is.
#[derive(Clone, Debug)]
pub enum StoreAt {
    /// `store.path`, and the copy for analysts written after every pass
    /// (`store.snapshot_to`), if any.
    Sqlite { path: PathBuf, snapshot: Option<Snapshot> },
    /// `store.url`.
    Postgres(Box<PgSettings>),
}

/// `store.snapshot_to` and who may read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub to: PathBuf,
    pub access: Access,
}

impl StoreSettings {
    /// A SQLite file with the default index (what callers said).
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Self { at: StoreAt::Sqlite { path: path.into(), snapshot: None }, full_text: FullText::Callers, keep: None }
    }

    /// The SQLite file; `None` for PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.at {
            StoreAt::Sqlite { path, .. } => Some(path),
            StoreAt::Postgres(_) => None,
        }
    }

    /// The PostgreSQL database; `None` for SQLite.
    pub fn postgres(&self) -> Option<&PgSettings> {
        match &self.at {
            StoreAt::Postgres(pg) => Some(pg),
            StoreAt::Sqlite { .. } => None,
        }
    }

    /// The configured snapshot of a SQLite store.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        match &self.at {
            StoreAt::Sqlite { snapshot, .. } => snapshot.as_ref(),
            StoreAt::Postgres(_) => None,
        }
    }
}

/// The full-text index of turns (`store.full_text`): over what callers said
/// (the default), over callers and system replies, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullText {
    Off,
    /// `user_saying`: what callers said. System replies are the bot's own
    /// templated text, and indexing them costs about four times as much.
    Callers,
    /// `user_saying` and `system_reply`.
    All,
}

impl FullText {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "callers" => Ok(FullText::Callers),
            "all" => Ok(FullText::All),
            "off" => Ok(FullText::Off),
            // `full_text = true/false` of earlier releases.
            "true" => Ok(FullText::All),
            "false" => Ok(FullText::Off),
            other => Err(format!("must be \"callers\", \"all\" or \"off\", found {other:?}")),
        }
    }

    /// The indexed columns of `record_details`.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            FullText::Off => &[],
            FullText::Callers => &["user_saying"],
            FullText::All => &["user_saying", "system_reply"],
        }
    }
}

impl fmt::Display for FullText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FullText::Off => "off",
            FullText::Callers => "callers",
            FullText::All => "all",
        })
    }
}

/// Who may read a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// File mode, e.g. 0o640.
    pub mode: u32,
    /// A group to give the file to (the analysts'), by name.
    pub group: Option<String>,
}

/// Whether `target` is the store at `store` itself: the same file (by device
/// and inode, or by path before it exists), or its `-wal`, `-shm` or
/// `.lock` file. A snapshot there would overwrite the live store.
pub fn is_the_store(store: &Path, target: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let target_abs = absolute(target);
    let target_id = id(target);
    ["", "-wal", "-shm", "-journal", ".lock"].iter().any(|suffix| {
        let mut side = store.as_os_str().to_owned();
        side.push(suffix);
        let side = Path::new(&side);
        absolute(side) == target_abs || (target_id.is_some() && id(side) == target_id)
    })
}

/// Parses a mode like "0640" or "640".
pub fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim(), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{text:?} is not a file mode like \"0640\""))
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

impl PgSettings {
    /// A `postgres://` URL for `tenant`, with the URL's password if it has one.
    pub fn parse(url: &str, tenant: &str) -> Result<Self, String> {
        let shown = without_password(url);
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!("{shown:?} is not a URL like \"postgres://user@host:5432/db\""));
        }
        check_user_info(url).map_err(|m| format!("{shown:?}: {m}"))?;
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

/// The URL with its password replaced by `***`, for messages and logs.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    // The user information ends at the last `@`: a password typed with a raw
    // `/`, `?` or `@` in it is still hidden whole.
    let (authority, tail) = match rest.rfind('@') {
        Some(at) => {
            let (user_info, after) = (&rest[..at], &rest[at + 1..]);
            let shown = match user_info.split_once(':') {
                Some((user, _password)) => format!("{user}:***@"),
                None => format!("{user_info}@"),
            };
            let end = after.find(['/', '?']).unwrap_or(after.len());
            (format!("{shown}{}", &after[..end]), &after[end..])
        }
        None => {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            (rest[..end].to_string(), &rest[end..])
        }
    };
    // `password=` may also come as a query parameter.
    let tail: Vec<String> = tail
        .split('&')
        .map(|part| match part.split_once("password=") {
            Some((before, _)) if before.is_empty() || before.ends_with('?') => format!("{before}password=***"),
            _ => part.to_string(),
        })
        .collect();
    format!("{scheme}://{authority}{}", tail.join("&"))
}

/// A URL's user and password must be percent-encoded: a raw reserved
/// character there (`/ ? # @ [ ]`, a space, or `%` not starting `%XX`)
/// would be read as part of the host or path. Says which rule, never the
/// password.
pub fn check_user_info(url: &str) -> Result<(), String> {
    let Some((_, rest)) = url.split_once("://") else { return Ok(()) };
    let Some(at) = rest.rfind('@') else { return Ok(()) };
    let user_info = &rest[..at];
    let bytes = user_info.as_bytes();
    let bad_percent = (0..bytes.len())
        .any(|i| bytes[i] == b'%' && !bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
    if user_info.contains(['/', '?', '#', '@', '[', ']', ' ']) || bad_percent {
        return Err(
            "the user or password in the URL holds a reserved character typed as is (one of / ? # @ [ ] % or a \
             space); percent-encode it (e.g. / as %2F, @ as %40, % as %25), or give the password in \
             store.password_file or PGPASSWORD instead"
                .into(),
        );
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawStore {
    path: String,
    url: String,
    password_file: String,
    ca_file: String,
    full_text: String,
    snapshot_to: String,
    snapshot_mode: String,
    snapshot_group: String,
    keep: String,
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
            keep: String::new(),
        }
    }
}

/// `[store]` checked; a PostgreSQL store is written for `tenant`.
pub(super) fn validate(raw: RawStore, tenant: &str, o: &Origins) -> Result<StoreSettings, ConfigError> {
    let full_text = FullText::parse(&raw.full_text).map_err(|m| o.invalid("store.full_text", m))?;
    let pg = postgres(&raw, tenant, o)?;
    if raw.path.trim().is_empty() && pg.is_none() {
        return Err(o.invalid("store.path", "must name the SQLite file (or set store.url for PostgreSQL)"));
    }
    let mode = parse_mode(&raw.snapshot_mode).map_err(|m| o.invalid("store.snapshot_mode", m))?;
    let keep =
        match raw.keep.trim() {
            "" => None,
            text => Some(super::parse_duration(text).ok().filter(|d| *d >= Duration::from_secs(86_400)).ok_or_else(
                || o.invalid("store.keep", format!("{text:?} is not a span of a day or more, like \"400d\"")),
            )?),
        };
    if let Some(pg) = pg {
        return Ok(StoreSettings { at: StoreAt::Postgres(Box::new(pg)), full_text, keep });
    }
    let path = beside_config(&o.file, Path::new(raw.path.trim()));
    let snapshot = config_path(o, &raw.snapshot_to).map(|to| {
        let group = Some(raw.snapshot_group.trim().to_string()).filter(|g| !g.is_empty());
        Snapshot { to, access: Access { mode, group } }
    });
    if let Some(Snapshot { to, .. }) = &snapshot
        && is_the_store(&path, to)
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
    Ok(StoreSettings { at: StoreAt::Sqlite { path, snapshot }, full_text, keep })
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
        let (path, looked) = super::api::credential_path(&file.to_string_lossy(), &o.file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            o.invalid("store.password_file", format!("{} ({looked}) cannot be read: {}", path.display(), io_reason(&e)))
        })?;
        pg.config.password(text.trim_end_matches(['\r', '\n']));
    }
    Ok(Some(pg.with_env_password()))
}

#[cfg(test)]
#[test]
fn urls_are_shown_without_their_password() {
    assert_eq!(without_password("postgres://u:s3cret@h:5432/db"), "postgres://u:***@h:5432/db");
    assert_eq!(without_password("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(
        without_password("postgresql://h/db?password=s3cret&sslmode=require"),
        "postgresql://h/db?password=***&sslmode=require"
    );
    assert_eq!(without_password("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
    for raw in ["p/ss", "p?ss", "p#ss", "p@ss", "p[ss", "p]ss", "p%zz", "p ss", "/?#@"] {
        let url = format!("postgres://u:{raw}@h:5432/db?sslmode=require");
        let shown = without_password(&url);
        assert_eq!(shown, "postgres://u:***@h:5432/db?sslmode=require", "{raw}");
        let refused = check_user_info(&url).unwrap_err();
        assert!(!refused.contains(raw), "{refused}");
    }
    assert!(check_user_info("postgres://u:p%2Fss%40x@h/db").is_ok());
    assert!(check_user_info("postgres://h/db").is_ok());
}
