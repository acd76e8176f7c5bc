//! `sync`: one incremental pass (or, with `--resweep`, the resweep now).
//! `backfill`: one pass over a fixed period, resumable. Both show progress:
//! a bar on a terminal, a log line every ten seconds elsewhere.

use std::path::Path;
use std::time::Instant;

use super::{CommandError, Exit, engine, load_settings, pass_exit, shutdown_on_signals};
use crate::keys::QueryKey;
use crate::progress::progress;
use crate::run_log::PassStatus;
use crate::sync::PassKind;
use crate::tz;

pub async fn sync(config: &Path, resweep: bool) -> Result<Exit, CommandError> {
    let settings = load_settings(config)?;
    let now = tz::now_ms() / 1000;
    let kind = if resweep {
        if settings.sync.resweep.is_none() {
            return Err(CommandError::Usage("--resweep needs sync.resweep set to a span, like \"3d\"".into()));
        }
        PassKind::Resweep { now }
    } else {
        PassKind::Incremental { now, label: "sync" }
    };
    let label = kind.label();
    let engine = engine(settings, "oifde-sync sync")?.with_progress(progress(label));
    let cancel = shutdown_on_signals();
    let started = Instant::now();
    let report = engine.pass(kind, &cancel).await?;
    drop(engine);
    println!("{}", report.summary(label, started.elapsed().as_secs_f64()));
    Ok(pass_exit(&report))
}

pub async fn backfill(config: &Path, from: &str, to: &str, key: Option<&str>) -> Result<Exit, CommandError> {
    let settings = load_settings(config)?;
    let zone = &settings.api.server_timezone;
    let from = zone.parse_time(from).map_err(|m| CommandError::Usage(format!("--from: {m}")))?;
    let to = zone.parse_time(to).map_err(|m| CommandError::Usage(format!("--to: {m}")))?;
    if to < from {
        return Err(CommandError::Usage("--to is before --from".into()));
    }
    // The end of a backfill is at most now; a day or more past it is a typo.
    let now = tz::now_ms() / 1000;
    if to > now + 86_400 {
        return Err(CommandError::Usage(format!(
            "--to {} is in the future; a backfill reads what has happened (at most now, {} in api.server_timezone)",
            zone.format(to),
            zone.format(now)
        )));
    }
    let to = to.min(now);
    if to < from {
        return Err(CommandError::Usage("--from is in the future".into()));
    }
    let key = key.map(QueryKey::parse).transpose().map_err(|m| CommandError::Usage(format!("--key: {m}")))?;
    let engine = engine(settings, "oifde-sync backfill")?.with_progress(progress("backfill"));
    let cancel = shutdown_on_signals();
    let started = Instant::now();
    let report = engine.pass(PassKind::Backfill { from, to, key }, &cancel).await?;
    drop(engine);
    println!("{}", report.summary("backfill", started.elapsed().as_secs_f64()));
    if report.status == PassStatus::Interrupted {
        eprintln!("interrupted: run the same backfill command again to resume");
    }
    Ok(pass_exit(&report))
}
