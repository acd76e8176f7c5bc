//! `run`: the daemon, until SIGTERM or SIGINT.

use std::path::Path;

use super::{CommandError, Exit, engine, load_settings, shutdown_on_signals};
use crate::daemon::{self, DaemonError, Ended};

pub async fn run(config: &Path) -> Result<Exit, CommandError> {
    let settings = load_settings(config)?;
    // The first pass can take minutes: it says how far it has got.
    let progress = std::sync::Arc::new(crate::progress::LogLines::new("pass"));
    let engine = engine(settings, "oifde-sync run")?.with_progress(progress);
    let cancel = shutdown_on_signals();
    match daemon::run(engine, cancel).await {
        Ok(Ended::Stopped) => Ok(Exit::Success),
        Ok(Ended::CredentialsRefused) => Ok(Exit::Config),
        Ok(Ended::StoreLost) => Ok(Exit::Partial),
        Err(e @ DaemonError::Metrics { .. }) => Err(CommandError::Usage(e.to_string())),
        Err(e) => Err(CommandError::Failed(e.to_string())),
    }
}
