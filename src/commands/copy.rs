//! `copy --to TARGET`: the configured store copied into a PostgreSQL
//! database (`postgres://…`, as the configured tenant) or a SQLite file,
//! exactly and resumably, with progress. The source is read in one
//! consistent state (a read transaction) while its daemon may go on; the
//! target is held as a writer. A target that holds
//! anything but an unfinished copy of the same source is refused, untouched,
//! unless `--replace`.

use std::path::{Path, PathBuf};

use super::{CommandError, Exit, WRITER_WAIT, load_offline_settings};
use crate::config::PgSettings;
use crate::copy;
use crate::progress::progress;
use crate::store::Store;

pub fn copy(config: &Path, to: &str, replace: bool) -> Result<Exit, CommandError> {
    let settings = load_offline_settings(config)?;
    // The source is read in one consistent state, with no lock: the daemon
    // goes on writing, and a read-only role can make an extract.
    let from = Store::open_configured_read_only(&settings.store)?;
    from.read_snapshot()?;
    let source = from.describe();
    let refuse = |target: &str, what: &str| {
        CommandError::Usage(format!(
            "{target} already holds {what}; a copy is exact, so it goes into a new SQLite file or a database \
             (or tenant) of its own. Add --replace to delete what it holds and copy anew"
        ))
    };
    let to_pg = to.starts_with("postgres://") || to.starts_with("postgresql://");
    if !to_pg && Path::new(to).exists() {
        // Looked at read-only first: a refused copy leaves the file as it was.
        if settings.store.sqlite_path().is_some_and(|store| crate::config::is_the_store(store, Path::new(to))) {
            return Err(CommandError::Usage("--to names the configured store itself".into()));
        }
        let peek = Store::open_read_only(Path::new(to))?;
        if let (copy::Target::Holds(what), false) = (copy::target_state(&source, &peek)?, replace) {
            return Err(refuse(to, &what));
        }
    }
    let mut target = if to_pg {
        let mut pg = PgSettings::parse(to, &settings.api.tenant_id)
            .map_err(|m| CommandError::Usage(format!("--to: {m}")))?
            .with_env_password();
        pg.ca_file = settings.store.postgres().and_then(|s| s.ca_file.clone());
        pg.password_from = "the --to URL (percent-encoded) or PGPASSWORD";
        Store::open_postgres(&pg, settings.store.full_text)?
    } else {
        Store::open_with(&PathBuf::from(to), settings.store.full_text)?
    };
    if target.describe() == source {
        return Err(CommandError::Usage("--to names the configured store itself".into()));
    }
    target.take_writer("oifde-sync copy (target)", WRITER_WAIT)?;
    let state = copy::target_state(&source, &target)?;
    if let (copy::Target::Holds(what), false) = (&state, replace) {
        return Err(refuse(&target.describe(), what));
    }
    let report = {
        let sink = progress("copy");
        copy::copy(&from, &mut target, sink.as_ref(), &state, replace)?
    };
    let records = report.tables.first().map_or(0, |(_, n, _)| *n);
    let how = match (report.resumed, report.redone, replace) {
        (_, true, _) => " (resumed; the source had changed, so everything was copied again)",
        (true, false, _) => " (resumed)",
        (false, false, true) => " (replacing what it held)",
        _ => "",
    };
    println!(
        "copied {source} into {} for tenant {}{how}: {records} records and every turn, Q&A row, key, cursor and run; \
         contents equal, row by row, in all {} tables",
        target.describe(),
        settings.api.tenant_id,
        report.tables.len()
    );
    Ok(Exit::Success)
}
