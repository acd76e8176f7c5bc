//! Cron schedules with a seconds field (`0 */5 * * * *`), in UTC: when the
//! daemon's next pass is due. Day of month and day of week must both match
//! when both are given.

use chrono::{DateTime, Utc};

#[derive(Clone, Debug)]
pub struct Schedule {
    cron: croner::Cron,
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Self, String> {
        let fields = expr.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(format!("{expr:?} has {fields} fields; write cron with seconds first, like \"0 */5 * * * *\""));
        }
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expr.trim())
            .map(|cron| Self { cron })
            .map_err(|e| format!("{expr:?} is not a cron schedule: {e}"))
    }

    /// The first time after `now` that the schedule names.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&now, false).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn seconds_are_required_and_next_times_follow_the_pattern() {
        let every5 = Schedule::parse("0 */5 * * * *").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 10, 2, 30).unwrap();
        assert_eq!(every5.next_after(now), Some(Utc.with_ymd_and_hms(2026, 11, 26, 10, 5, 0).unwrap()));
        assert!(Schedule::parse("*/5 * * * *").unwrap_err().contains("5 fields"));
        assert!(Schedule::parse("0 61 * * * *").is_err());
        // Both day fields given: both must match (the 13th that is a Friday).
        let friday13 = Schedule::parse("0 0 0 13 * FRI").unwrap();
        let next = friday13.next_after(now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2027, 8, 13, 0, 0, 0).unwrap());
    }
}
