//! `copy --to TARGET`: the configured store copied into a PostgreSQL
//! database (`postgres://…`, as the configured tenant) or a SQLite file,
//! exactly and resumably, with progress; both stores are held as writers
//! while it runs, so nothing changes underneath.

use std::path::{Path, PathBuf};

use super::{CommandError, Exit, WRITER_WAIT, load_offline_settings};
use crate::config::PgSettings;
use crate::progress::progress;
use crate::store::{Postgres, Store, copy};

pub fn copy(config: &Path, to: &str) -> Result<Exit, CommandError> {
    let settings = load_offline_settings(config)?;
    let mut from = Store::open_configured_read_only(&settings)?;
    from.take_writer("oifde-sync copy (source)", WRITER_WAIT)?;
    let mut target = if to.starts_with("postgres://") || to.starts_with("postgresql://") {
        let mut pg = PgSettings::parse(to, &settings.api.tenant_id)
            .map_err(|m| CommandError::Usage(format!("--to: {m}")))?
            .with_env_password();
        pg.ca_file = settings.store_url.as_ref().and_then(|s| s.ca_file.clone());
        Store::Postgres(Box::new(Postgres::open(&pg, settings.store_full_text)?))
    } else {
        Store::open_with(&PathBuf::from(to), settings.store_full_text)?
    };
    if target.describe() == from.describe() {
        return Err(CommandError::Usage("--to names the configured store itself".into()));
    }
    target.take_writer("oifde-sync copy (target)", WRITER_WAIT)?;
    let report = {
        let sink = progress("copy");
        copy::copy(&from, &mut target, sink.as_ref())?
    };
    let mut exact = true;
    for (table, source, copied) in &report.tables {
        if source != copied {
            exact = false;
            eprintln!("mismatch: {table}: {source} rows in {}, {copied} in {}", from.describe(), target.describe());
        }
    }
    let records = report.tables.first().map_or(0, |(_, n, _)| *n);
    if !exact {
        return Err(CommandError::Failed(format!(
            "the copy into {} differs from its source (it held rows before?); see the lines above",
            target.describe()
        )));
    }
    println!(
        "copied {} into {} for tenant {}{}: {records} records and every turn, Q&A row, key, cursor and run; \
         row counts equal in all {} tables",
        from.describe(),
        target.describe(),
        settings.api.tenant_id,
        if report.resumed { " (resumed)" } else { "" },
        report.tables.len()
    );
    Ok(Exit::Success)
}
