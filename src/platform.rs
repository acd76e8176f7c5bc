//! The platform's own count of calls: `queryCallStatisticsReport` answers,
//! an hour of one access code a row, read tolerantly (a bare list or a list
//! inside an object, numbers as strings, `autonomyRate` `"-1.000"` for "no
//! bot use"), and what a verification of the mirror against them found.

use serde::Serialize;
use serde_json::{Map, Value};

/// The answer's fields this row keeps in columns.
const KNOWN: [&str; 16] = [
    "recordTime",
    "tenantId",
    "accessCode",
    "callCount",
    "exitNoConsultCount",
    "callStaffNoConsultCount",
    "callStaffConsultCount",
    "exitConsultingCount",
    "interactCount",
    "autonomyRate",
    "averageInteractPerCall",
    "dbRecordTime",
    "type",
    "interfaceRequestCount",
    "interfaceSuccessCount",
    "interfaceSuccessRate",
];

/// One hour of one access code, as the platform counted it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlatformHour {
    pub access_code: String,
    /// The hour's start, epoch ms.
    pub record_time: i64,
    /// Connected calls.
    pub call_count: i64,
    /// The caller interacted with the IVR once.
    pub exit_no_consult_count: i64,
    /// More than one and at most three interactions, then an agent.
    pub call_staff_no_consult_count: i64,
    /// More than three interactions, then an agent.
    pub call_staff_consult_count: i64,
    /// More than one interaction, hung up in the IVR: the bot alone.
    pub exit_consulting_count: i64,
    pub interact_count: i64,
    /// As sent (`"0.412"`); `"-1.000"` means no call used the bot.
    pub autonomy_rate: Option<String>,
    /// As sent (`"2.50"`).
    pub average_interact_per_call: Option<String>,
    pub db_record_time: Option<i64>,
    pub interface_request_count: Option<i64>,
    pub interface_success_count: Option<i64>,
    pub interface_success_rate: Option<String>,
    /// The answer's other fields, as a JSON object; `None` when none.
    pub extra_json: Option<String>,
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64)),
        _ => None,
    }
}

/// A rate as the platform sent it, as text.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.trim().to_string()),
        _ => None,
    }
}

/// The rows of an answer: a bare list, or the first list inside an object
/// (`data`, `result`, …). A row without `recordTime` or `accessCode` is
/// left out; the caller's access code stands in for a missing one.
pub fn parse_hours(answer: &Value, access_code: &str) -> Result<Vec<PlatformHour>, String> {
    let list = match answer {
        Value::Array(items) => items,
        Value::Object(o) => o
            .values()
            .find_map(|v| match v {
                Value::Array(items) => Some(items),
                Value::Object(inner) => inner.values().find_map(|v| v.as_array()),
                _ => None,
            })
            .ok_or("the answer holds no list of hours")?,
        _ => return Err("the answer is neither a list nor an object".into()),
    };
    Ok(list.iter().filter_map(Value::as_object).filter_map(|o| hour(o, access_code)).collect())
}

fn hour(o: &Map<String, Value>, access_code: &str) -> Option<PlatformHour> {
    let get = |k: &str| o.get(k);
    let extra: Map<String, Value> =
        o.iter().filter(|(k, _)| !KNOWN.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    Some(PlatformHour {
        access_code: get("accessCode")
            .and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_i64().map(|n| n.to_string())))
            .unwrap_or_else(|| access_code.to_string()),
        record_time: int(get("recordTime"))?,
        call_count: int(get("callCount")).unwrap_or(0),
        exit_no_consult_count: int(get("exitNoConsultCount")).unwrap_or(0),
        call_staff_no_consult_count: int(get("callStaffNoConsultCount")).unwrap_or(0),
        call_staff_consult_count: int(get("callStaffConsultCount")).unwrap_or(0),
        exit_consulting_count: int(get("exitConsultingCount")).unwrap_or(0),
        interact_count: int(get("interactCount")).unwrap_or(0),
        autonomy_rate: text(get("autonomyRate")),
        average_interact_per_call: text(get("averageInteractPerCall")),
        db_record_time: int(get("dbRecordTime")),
        interface_request_count: int(get("interfaceRequestCount")),
        interface_success_count: int(get("interfaceSuccessCount")),
        interface_success_rate: text(get("interfaceSuccessRate")),
        extra_json: (!extra.is_empty()).then(|| Value::Object(extra).to_string()),
    })
}

impl PlatformHour {
    /// The autonomy rate as a number; `None` where no call used the bot (`-1.000`).
    pub fn autonomy(&self) -> Option<f64> {
        self.autonomy_rate.as_deref().and_then(|r| r.parse::<f64>().ok()).filter(|r| *r >= 0.0)
    }
}

/// One hour of one access code: the platform's count beside the mirror's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HourCount {
    pub access_code: String,
    /// The hour's start, epoch ms.
    pub hour: i64,
    pub platform: i64,
    /// Sessions in the mirror with that `called_number`, started in the hour.
    pub mirrored: i64,
}

impl HourCount {
    /// Calls the platform counted that the mirror lacks.
    pub fn missing(&self) -> i64 {
        (self.platform - self.mirrored).max(0)
    }
}

/// The last verification, as the store keeps it for `status` and the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// When it ran, epoch ms.
    pub at: i64,
    /// The period, epoch ms, `[from, to)`.
    pub from: i64,
    pub to: i64,
    pub platform_calls: i64,
    pub mirrored: i64,
    /// Calls missing from the mirror in settled hours.
    pub missing: i64,
    /// Settled hours that miss calls.
    pub missing_hours: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_inside_an_object_with_numbers_as_strings() {
        let answer = serde_json::json!({"resultCode": "0", "data": [
            {"recordTime": "1793577600000", "accessCode": "10086", "callCount": "12", "exitConsultingCount": 3,
             "autonomyRate": "-1.000", "averageInteractPerCall": "2.50", "vendorNote": "x"},
            {"accessCode": "10086", "callCount": 1}
        ]});
        let hours = parse_hours(&answer, "10086").unwrap();
        assert_eq!(hours.len(), 1, "a row without recordTime is left out");
        let h = &hours[0];
        assert_eq!((h.record_time, h.call_count, h.exit_consulting_count), (1_793_577_600_000, 12, 3));
        assert_eq!((h.autonomy(), h.average_interact_per_call.as_deref()), (None, Some("2.50")));
        assert_eq!(h.extra_json.as_deref(), Some(r#"{"vendorNote":"x"}"#));
        let bare = serde_json::json!([{"recordTime": 1, "callCount": 2, "autonomyRate": "0.412"}]);
        let h = &parse_hours(&bare, "95588").unwrap()[0];
        assert_eq!((h.access_code.as_str(), h.autonomy()), ("95588", Some(0.412)));
    }
}
