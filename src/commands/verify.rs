//! `verify [--from] [--to] [--json] [--offline]`: the mirror against the
//! platform's own call statistics, hour by hour; exit 1 when a settled hour
//! misses calls.

use std::path::Path;

use super::{CommandError, Exit, load_offline_settings, load_settings};
use crate::api::ApiClient;
use crate::ledgers::verify::{check, day_start_ms, fetch, last_days, next_day};
use crate::store::Store;
use crate::tz;

/// How long the store's writes wait for the daemon's transaction.
const WAIT: std::time::Duration = std::time::Duration::from_secs(120);

pub async fn verify(
    config: &Path,
    from: Option<&str>,
    to: Option<&str>,
    json: bool,
    offline: bool,
) -> Result<Exit, CommandError> {
    let settings = if offline { load_offline_settings(config)? } else { load_settings(config)? };
    let zone = settings.api.server_timezone.clone();
    let now_ms = tz::now_ms();
    let day = |flag: &str, text: &str| {
        zone.parse_time(&format!("{} 00:00:00", text.trim()))
            .map(|s| s * 1000)
            .map_err(|_| CommandError::Usage(format!("{flag} {text:?} is not a day like 2026-11-02")))
    };
    let days: Vec<i64> = match (from, to) {
        (None, None) => last_days(&zone, now_ms / 1000, settings.reconcile.days),
        (from, to) => {
            let first = from.map(|f| day("--from", f)).transpose()?;
            let last = to.map(|t| day("--to", t)).transpose()?.unwrap_or(day_start_ms(&zone, now_ms / 1000));
            let first = first.unwrap_or(last);
            if first > last {
                return Err(CommandError::Usage("--from is after --to".into()));
            }
            let mut days = vec![first];
            while let Some(&d) = days.last().filter(|d| **d < last) {
                days.push(next_day(&zone, d));
            }
            days
        }
    };
    let mut store = Store::open_configured(&settings.store)?;
    store.wait_when_busy(WAIT);
    let mut hours = Vec::new();
    if !offline {
        let codes = &settings.reconcile.access_codes;
        if codes.is_empty() {
            return Err(CommandError::Usage(
                "verify needs the tenant's chatbot access codes: set [reconcile] access_codes = [\"…\"] \
                 (or use --offline for the statistics already fetched)"
                    .into(),
            ));
        }
        let client = ApiClient::new(&settings.api)?;
        let (fetched, refused) = fetch(&client, codes, &days).await;
        for r in &refused {
            eprintln!("warning: {r}");
        }
        hours = fetched;
    }
    let v = check(&mut store, &hours, &days, &settings.sync, &zone, now_ms)?;
    if json {
        println!("{}", serde_json::to_string(&v).expect("a verification serializes"));
    } else {
        print!("{}", v.text(&zone));
    }
    Ok(if v.summary.missing > 0 { Exit::Partial } else { Exit::Success })
}
