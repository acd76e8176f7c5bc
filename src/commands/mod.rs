//! What each command does. Every command returns an [`Exit`] or a
//! [`CommandError`]; `main` prints the error and exits with its code.

pub mod check;
pub mod copy;
pub mod demo;
pub mod keys;
pub mod prune;
pub mod report;
pub mod run;
pub mod simulate;
pub mod snapshot;
pub mod status;
pub mod sync;
pub mod verify;

use std::path::Path;
use std::sync::Arc;

use crate::api::{ApiClient, ApiError};
use crate::config::{ConfigError, Settings};
use crate::run_log::PassStatus;
use crate::store::{Store, StoreError};
use crate::sync::{Engine, PassReport};

/// Exit codes of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// The pass ran but some windows failed.
    Partial = 1,
    /// Usage or configuration error (a refused secret counts: fix the config).
    Config = 2,
    /// The store could not be opened or migrated.
    Store = 3,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    pub fn exit(&self) -> Exit {
        match self {
            CommandError::Config(_) | CommandError::Usage(_) => Exit::Config,
            CommandError::Api(e) if e.is_fatal() => Exit::Config,
            CommandError::Store(_) => Exit::Store,
            CommandError::Api(_) | CommandError::Failed(_) => Exit::Partial,
        }
    }
}

impl From<crate::sync::PassError> for CommandError {
    fn from(e: crate::sync::PassError) -> Self {
        match e {
            crate::sync::PassError::Keys(msg) => CommandError::Usage(msg),
            crate::sync::PassError::Store(e) => CommandError::Store(e),
        }
    }
}

/// Loads the config and sets up logging from it.
pub fn load_settings(file: &Path) -> Result<Arc<Settings>, CommandError> {
    ready(Settings::load(file)?)
}

/// As [`load_settings`], for a command that calls no API: the API secret is
/// not needed.
pub fn load_offline_settings(file: &Path) -> Result<Arc<Settings>, CommandError> {
    ready(Settings::load_offline(file)?)
}

fn ready(settings: Settings) -> Result<Arc<Settings>, CommandError> {
    crate::telemetry::init(settings.log.format, &settings.log.level);
    if let Some(warning) = secret_file_warning(&settings) {
        tracing::warn!("{warning}");
    }
    Ok(Arc::new(settings))
}

/// A warning when the config file holds a secret and others can read it.
pub fn secret_file_warning(settings: &Settings) -> Option<String> {
    (settings.secret_in_file && crate::config::readable_by_others(&settings.file)).then(|| {
        format!(
            "{} holds a secret and other users can read it: `chmod 600 {}`, or move the secret to api.app_secret_file",
            settings.file.display(),
            settings.file.display()
        )
    })
}

/// How long a second writer waits for the first to finish.
pub(crate) const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long the store's quick check may take at start.
const QUICK_CHECK_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The client, then the store, for `what` (a command that writes): a bad CA
/// file fails before a file is created; a second writer, or a damaged store,
/// stops here before anything is written.
pub fn engine(settings: Arc<Settings>, what: &str) -> Result<Engine, CommandError> {
    let client = Arc::new(ApiClient::new(&settings.api).map_err(|e| match e {
        ApiError::Tls(msg) => CommandError::Usage(msg),
        other => CommandError::Api(other),
    })?);
    let mut store = Store::open_configured(&settings.store)?;
    store.take_writer(what, WRITER_WAIT)?;
    store.quick_check(QUICK_CHECK_LIMIT)?;
    Ok(Engine::new(settings, client, store))
}

/// The exit code of a finished pass, printing its problems to stderr.
pub fn pass_exit(r: &PassReport) -> Exit {
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    for e in r.errors.iter().take(20) {
        eprintln!("failed: {e}");
    }
    if r.errors.len() > 20 {
        eprintln!("… and {} more failed windows (see `oifde-sync status`)", r.errors.len() - 20);
    }
    match (r.status, &r.fatal) {
        (PassStatus::Ok | PassStatus::Skipped, _) => Exit::Success,
        (PassStatus::Failed, Some(fatal)) => {
            eprintln!("error: {fatal}");
            Exit::Config
        }
        _ => Exit::Partial,
    }
}

/// A cancellation token fired by SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("shutdown requested; finishing the current page");
        fire.cancel();
    });
    token
}
