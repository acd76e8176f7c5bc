//! `report [--from] [--to] --out FILE.html`: the period's IVR measures as
//! one self-contained page.

use std::path::Path;

use super::{CommandError, Exit, load_offline_settings};
use crate::report::Page;
use crate::store::Store;
use crate::tz;

pub fn report(config: &Path, from: Option<&str>, to: Option<&str>, out: &Path) -> Result<Exit, CommandError> {
    let settings = load_offline_settings(config)?;
    let utc = tz::ServerZone::parse("UTC").expect("UTC is a zone");
    let day = |flag: &str, text: &str| {
        utc.parse_time(&format!("{} 00:00:00", text.trim()))
            .map_err(|_| CommandError::Usage(format!("{flag} {text:?} is not a day like 2026-11-02")))
    };
    let today = tz::now_ms() / 1000 / 86_400 * 86_400;
    let to_s = to.map(|t| day("--to", t)).transpose()?.unwrap_or(today);
    let from_s = from.map(|f| day("--from", f)).transpose()?.unwrap_or(to_s - 29 * 86_400);
    if from_s > to_s {
        return Err(CommandError::Usage("--from is after --to".into()));
    }
    let store = Store::open_configured_read_only(&settings.store)?;
    let (found, needed) = (store.schema_version()?, crate::store::measures_since(&settings.store));
    if found < needed {
        return Err(CommandError::Usage(format!(
            "the store {} has schema version {found}, older than the measures need ({needed}): run `oifde-sync sync` \
             once (or let the daemon run) to migrate it, then run report again",
            store.describe()
        )));
    }
    let kpis = store.kpis(from_s * 1000, (to_s + 86_400) * 1000)?;
    let verified = store.last_verification()?;
    let (from_day, to_day) = (utc.format(from_s), utc.format(to_s));
    let page = Page {
        title: &format!("IVR report, tenant {}", settings.api.tenant_id),
        from_day: &from_day[..10],
        to_day: &to_day[..10],
        generated_utc: &tz::utc_text(tz::now_ms()),
        kpis: &kpis,
        verified: verified.as_ref(),
    };
    std::fs::write(out, page.html())
        .map_err(|e| CommandError::Failed(format!("cannot write {}: {e}", out.display())))?;
    let sessions: i64 = kpis.days.iter().map(|d| d.sessions).sum();
    println!("report of {sessions} sessions, {} to {}, written to {}", &from_day[..10], &to_day[..10], out.display());
    Ok(Exit::Success)
}
