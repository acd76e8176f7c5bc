//! `run`: the daemon.

use std::path::Path;

use super::{CommandError, Exit};

pub async fn run(_config: &Path) -> Result<Exit, CommandError> {
    Err(CommandError::Usage("`run` is not available yet; use `sync` from a timer".into()))
}
