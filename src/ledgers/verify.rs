//! The mirror against the platform's own count of calls: the hourly
//! statistics of each access code fetched into `platform_stats`, then, per
//! hour, the platform's `callCount` beside the mirror's sessions with that
//! `called_number`. An hour is settled once its end is more than
//! `sync.settle` + `sync.lag` ago; a settled hour that misses calls is a gap
//! a backfill can close.

use serde::Serialize;

use crate::api::ApiClient;
use crate::config::SyncSettings;
use crate::platform::{HourCount, PlatformHour, Verified};
use crate::store::{Store, StoreError};
use crate::tz::ServerZone;

const HOUR_MS: i64 = 3_600_000;

/// The 00:00 of the day `epoch_s` falls in, in `zone`, as epoch ms.
pub fn day_start_ms(zone: &ServerZone, epoch_s: i64) -> i64 {
    let day = &zone.format(epoch_s)[..10];
    zone.parse_time(&format!("{day} 00:00:00")).map_or(epoch_s * 1000, |s| s * 1000)
}

/// The starts (epoch ms) of the `days` days up to and including today, in `zone`.
pub fn last_days(zone: &ServerZone, now_s: i64, days: u32) -> Vec<i64> {
    (0..i64::from(days)).rev().map(|back| day_start_ms(zone, now_s - back * 86_400)).collect()
}

/// The platform's hours of each access code for each day, and one line for
/// each access code the interface refused (not licensed, unknown).
pub async fn fetch(client: &ApiClient, access_codes: &[String], days: &[i64]) -> (Vec<PlatformHour>, Vec<String>) {
    let (mut hours, mut refused) = (Vec::new(), Vec::new());
    for code in access_codes {
        for &day in days {
            match client.call_statistics(code, day).await {
                Ok(mut h) => hours.append(&mut h),
                Err(e) => {
                    refused.push(format!("the call statistics of access code {code} cannot be read: {e}"));
                    break;
                }
            }
        }
    }
    (hours, refused)
}

/// What a verification found.
#[derive(Debug, Serialize)]
pub struct Verification {
    #[serde(flatten)]
    pub summary: Verified,
    /// Hours whose counts differ, settled or not.
    pub differing: Vec<HourCount>,
    /// Hours ending before this (epoch ms) are settled.
    pub settled_before: i64,
    /// The backfill that re-reads the settled hours that miss calls.
    pub backfill: Option<String>,
}

/// One verification, the same for `verify`, the daemon and `demo`: the
/// platform's `hours` fetched (none: `--offline`) stored, the `days` (their
/// starts) compared, the result kept for `status` and the metrics. An hour
/// is settled once its end is `sync.settle` + `sync.lag` ago.
pub fn check(
    store: &mut Store,
    hours: &[PlatformHour],
    days: &[i64],
    sync: &SyncSettings,
    zone: &ServerZone,
    now_ms: i64,
) -> Result<Verification, StoreError> {
    store.put_platform_hours(hours, now_ms)?;
    let (from, to) = (days[0], next_day(zone, days[days.len() - 1]));
    let settled_before = now_ms - (sync.settle + sync.lag).as_millis() as i64;
    let v = verify(store, from, to, settled_before, zone, now_ms)?;
    store.keep_verification(&v.summary)?;
    Ok(v)
}

/// The day after the one starting at `day_ms`, as its start.
pub fn next_day(zone: &ServerZone, day_ms: i64) -> i64 {
    day_start_ms(zone, day_ms / 1000 + 90_000)
}

/// Compares `[from_ms, to_ms)` of the store with the platform's hours stored.
fn verify(
    store: &Store,
    from_ms: i64,
    to_ms: i64,
    settled_before: i64,
    zone: &ServerZone,
    now_ms: i64,
) -> Result<Verification, StoreError> {
    let hours = store.hour_counts(from_ms, to_ms)?;
    let settled = |h: &HourCount| h.hour + HOUR_MS <= settled_before;
    let missing: Vec<&HourCount> = hours.iter().filter(|h| settled(h) && h.missing() > 0).collect();
    let summary = Verified {
        at: now_ms,
        from: from_ms,
        to: to_ms,
        platform_calls: hours.iter().map(|h| h.platform).sum(),
        mirrored: hours.iter().map(|h| h.mirrored).sum(),
        missing: missing.iter().map(|h| h.missing()).sum(),
        missing_hours: missing.len() as i64,
    };
    let backfill = missing.iter().map(|h| h.hour).min().zip(missing.iter().map(|h| h.hour).max()).map(|(a, b)| {
        format!(
            "oifde-sync backfill --from \"{}\" --to \"{}\"",
            zone.format(a / 1000),
            zone.format((b + HOUR_MS) / 1000 - 1)
        )
    });
    let differing = hours.iter().filter(|h| h.platform != h.mirrored).cloned().collect();
    Ok(Verification { summary, differing, settled_before, backfill })
}

impl Verification {
    /// The report a person reads: the hours that differ, the totals, the fix.
    pub fn text(&self, zone: &ServerZone) -> String {
        let mut out = String::new();
        if !self.differing.is_empty() {
            out.push_str("access code   hour                 platform   mirror   missing\n");
        }
        for h in &self.differing {
            let state = if h.hour + HOUR_MS <= self.settled_before { "" } else { "  (not settled yet)" };
            out.push_str(&format!(
                "{:<13} {:<20} {:>8} {:>8} {:>9}{state}\n",
                h.access_code,
                &zone.format(h.hour / 1000)[..16],
                h.platform,
                h.mirrored,
                h.missing()
            ));
        }
        let s = &self.summary;
        out.push_str(&format!(
            "{} to {} ({}): the platform counted {} calls, the mirror holds {} sessions; ",
            &zone.format(s.from / 1000)[..10],
            &zone.format((s.to - 1) / 1000)[..10],
            zone.name(),
            s.platform_calls,
            s.mirrored
        ));
        if s.missing == 0 {
            out.push_str("no settled hour misses a call\n");
        } else {
            out.push_str(&format!("{} calls missing in {} settled hours\n", s.missing, s.missing_hours));
        }
        if let Some(cmd) = &self.backfill {
            out.push_str(&format!("re-read them with: {cmd}\n"));
        }
        out
    }
}
