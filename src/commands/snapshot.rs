//! `snapshot --to FILE`: a consistent copy of the store for analysts, safe
//! while the daemon writes, with the mode and group they need.

use std::path::{Path, PathBuf};

use super::{CommandError, Exit, load_offline_settings};
use crate::config::{Access, Snapshot, is_the_store, parse_mode};
use crate::store::sqlite::snapshot::snapshot as write_snapshot;

pub fn snapshot(
    config: &Path,
    to: Option<PathBuf>,
    mode: Option<&str>,
    group: Option<String>,
) -> Result<Exit, CommandError> {
    let settings = load_offline_settings(config)?;
    let Some(store) = settings.store.sqlite_path() else {
        return Err(CommandError::Usage(
            "snapshot copies a SQLite store; with PostgreSQL, `oifde-sync copy --to FILE.db` writes a SQLite copy"
                .into(),
        ));
    };
    let configured = settings.store.snapshot().cloned();
    let to = to
        .or_else(|| configured.as_ref().map(|s| s.to.clone()))
        .ok_or_else(|| CommandError::Usage("snapshot needs --to FILE (or store.snapshot_to in the config)".into()))?;
    if is_the_store(store, &to) {
        return Err(CommandError::Usage(format!(
            "--to {} is the store itself ({}); a snapshot there would overwrite the live store. Name another file",
            to.display(),
            store.display()
        )));
    }
    let mode = match mode {
        Some(m) => parse_mode(m).map_err(|e| CommandError::Usage(format!("--mode: {e}")))?,
        None => configured.as_ref().map_or(0o640, |s| s.access.mode),
    };
    let group = group.or_else(|| configured.and_then(|Snapshot { access, .. }| access.group));
    let access = Access { mode, group };
    let records = write_snapshot(store, &to, &access)?;
    println!(
        "snapshot of {} ({records} records) written to {} (mode {:04o}{})",
        store.display(),
        to.display(),
        access.mode,
        access.group.as_deref().map(|g| format!(", group {g}")).unwrap_or_default()
    );
    Ok(Exit::Success)
}
