//! The server's filter time zone: how `beginTime`/`endTime` strings map to
//! instants. Records carry epoch milliseconds; only the filter strings have a
//! zone, so everything inside the daemon is epoch seconds or milliseconds.

use jiff::{Timestamp, civil::DateTime, tz::TimeZone};

/// The API's filter time format, `yyyy-MM-dd HH:mm:ss`.
const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// A zone given as `UTC`, a fixed offset like `+08:00`, or an IANA name.
#[derive(Clone, Debug)]
pub struct ServerZone {
    name: String,
    tz: TimeZone,
}

impl ServerZone {
    pub fn utc() -> Self {
        Self { name: "UTC".into(), tz: TimeZone::UTC }
    }

    /// Parses a zone name; the error says what forms are accepted.
    pub fn parse(name: &str) -> Result<Self, String> {
        let trimmed = name.trim();
        if trimmed.eq_ignore_ascii_case("utc") || trimmed.eq_ignore_ascii_case("z") {
            return Ok(Self::utc());
        }
        if let Some(seconds) = parse_offset(trimmed) {
            let offset = jiff::tz::Offset::from_seconds(seconds)
                .map_err(|e| format!("offset {trimmed:?} is out of range: {e}"))?;
            return Ok(Self { name: trimmed.into(), tz: TimeZone::fixed(offset) });
        }
        match TimeZone::get(trimmed) {
            Ok(tz) => Ok(Self { name: trimmed.into(), tz }),
            Err(_) => Err(format!(
                "{trimmed:?} is not a time zone: use \"UTC\", a fixed offset like \"+08:00\", or an IANA name like \"Asia/Shanghai\""
            )),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Formats epoch seconds as the API's filter string in this zone.
    pub fn format(&self, epoch_seconds: i64) -> String {
        match Timestamp::from_second(epoch_seconds) {
            Ok(ts) => ts.to_zoned(self.tz.clone()).strftime(FORMAT).to_string(),
            Err(_) => String::from("invalid time"),
        }
    }

    /// Parses `yyyy-MM-dd HH:mm:ss` in this zone into epoch seconds.
    /// A local time that a DST change skips or repeats takes the earlier instant.
    pub fn parse_time(&self, text: &str) -> Result<i64, String> {
        let dt = DateTime::strptime(FORMAT, text.trim())
            .map_err(|_| format!("{text:?} is not a time of the form \"YYYY-MM-DD HH:MM:SS\""))?;
        let zoned = self
            .tz
            .to_ambiguous_zoned(dt)
            .compatible()
            .map_err(|e| format!("{text:?} does not exist in {}: {e}", self.name))?;
        Ok(zoned.timestamp().as_second())
    }
}

/// `+08:00`, `-0530`, `+8` → seconds east of UTC.
fn parse_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    if hours.is_empty() || hours.len() > 2 || minutes.len() > 2 {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if hours > 18 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Formats epoch milliseconds as readable UTC text, for messages.
pub fn utc_text(epoch_ms: i64) -> String {
    ServerZone::utc().format(epoch_ms.div_euclid(1000))
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_on_both_sides_of_utc() {
        let t = 1_618_558_942; // 2021-04-16 07:42:22 UTC
        assert_eq!(ServerZone::utc().format(t), "2021-04-16 07:42:22");
        assert_eq!(ServerZone::parse("+08:00").unwrap().format(t), "2021-04-16 15:42:22");
        assert_eq!(ServerZone::parse("-0530").unwrap().format(t), "2021-04-16 02:12:22");
        assert_eq!(ServerZone::parse("Asia/Shanghai").unwrap().format(t), "2021-04-16 15:42:22");
    }

    #[test]
    fn parse_is_the_inverse_of_format() {
        for zone in ["UTC", "+08:00", "-03:00", "America/New_York"] {
            let z = ServerZone::parse(zone).unwrap();
            let t = 1_700_000_000;
            assert_eq!(z.parse_time(&z.format(t)).unwrap(), t, "{zone}");
        }
    }

    #[test]
    fn bad_zone_and_time_are_explained() {
        assert!(ServerZone::parse("Mars/Olympus").unwrap_err().contains("IANA"));
        assert!(ServerZone::utc().parse_time("2026-13-01").unwrap_err().contains("YYYY-MM-DD"));
    }
}
