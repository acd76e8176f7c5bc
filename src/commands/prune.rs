//! `prune --before`: the sessions that started before a time removed, with
//! everything that hangs on them, beside a running daemon.

use std::path::Path;

use super::{CommandError, Exit};
use crate::config::Settings;
use crate::retention;
use crate::store::Store;
use crate::tz;

pub fn prune(config: &Path, before: &str, batch: usize) -> Result<Exit, CommandError> {
    if batch == 0 {
        return Err(CommandError::Usage("--batch must be 1 or more".into()));
    }
    let settings = Settings::load_offline(config)?;
    let zone = &settings.api.server_timezone;
    let before_s = zone.parse_time(before.trim()).map_err(|_| {
        CommandError::Usage(format!(
            "--before {before:?} is not a time like \"2025-11-01 00:00:00\" (in api.server_timezone, {})",
            zone.name()
        ))
    })?;
    if before_s * 1000 > tz::now_ms() {
        return Err(CommandError::Usage(format!(
            "--before {before:?} is in the future: prune would remove sessions that are still being written"
        )));
    }
    let mut store = Store::open_configured(&settings.store)?;
    let pruned = {
        let sink = crate::progress::progress("prune");
        retention::prune(&mut store, before_s * 1000, batch, sink.as_ref())?
    };
    println!(
        "pruned {} sessions that started before {} ({}), and {} CDR legs of calls no session meets",
        pruned.sessions,
        zone.format(before_s),
        zone.name(),
        pruned.legs
    );
    Ok(Exit::Success)
}
