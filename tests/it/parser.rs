//! The answer parser against generated input: arbitrary nulls, numbers as
//! strings, missing lists, huge strings, bad escapes, deep nesting, unknown
//! fields. It never panics; it stores the record or rejects the page.

use oifde_sync::api::{ApiError, parse_query_answer};
use oifde_sync::record::Record;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const FIELDS: &[&str] = &[
    "logId",
    "tenantId",
    "callSorId",
    "callId",
    "ctiCallId",
    "callingNumber",
    "calledNumber",
    "startTime",
    "endTime",
    "lastUpdateTime",
    "flowInstId",
    "dialogType",
    "callData",
    "locationId",
    "flag",
    "businessInfo",
    "businessInfoStr",
    "recordDetials",
    "recordDetails",
    "qaRecords",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        any::<i64>().prop_map(|n| json!(n.to_string())),
        ".{0,40}".prop_map(Value::String),
        Just(json!("null")),
        Just(json!("{\"recordFileName\":\"a.wav\",\"locationId\":\"x\"}")),
        (0usize..200_000).prop_map(|n| Value::String("長".repeat(n % 5000))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn record() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map(prop::sample::select(FIELDS), value(), 0..FIELDS.len()),
        prop::collection::btree_map("[a-z]{1,6}", value(), 0..3),
    )
        .prop_map(|(known, unknown)| {
            let mut m: Map<String, Value> = known.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            m.extend(unknown);
            Value::Object(m)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_record_is_stored_or_refused_without_panic(v in record()) {
        let has_key = match v.get("logId") {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(Value::Number(_)) | Some(Value::Bool(_)) | Some(Value::Array(_)) | Some(Value::Object(_)) => true,
            _ => false,
        };
        match Record::from_value(0, &v) {
            Ok(r) => {
                prop_assert!(has_key);
                // What the store keeps (columns, raw_json, turns and Q&A
                // rows with their extra_json) gives back the record as sent.
                prop_assert_eq!(r.rebuild(), v.clone());
                let columns = ["interNo", "userSaying", "intention", "systemReply", "timestamp", "requsetTime",
                    "requestTime", "responseSource", "involveMode"];
                let turns = ["recordDetials", "recordDetails"].iter().find_map(|n| match v.get(*n) {
                    Some(Value::Array(items)) if !items.is_empty() => Some(items.clone()),
                    _ => None,
                });
                if let Some(items) = turns.filter(|items| items.iter().all(Value::is_object)) {
                    for (entry, turn) in items.iter().zip(&r.details) {
                        let extra: Map<String, Value> =
                            turn.extra_json.as_deref().map_or_else(Map::new, |e| serde_json::from_str(e).unwrap());
                        for (k, value) in entry.as_object().unwrap() {
                            prop_assert!(columns.contains(&k.as_str()) || extra.get(k) == Some(value), "{k} lost");
                        }
                    }
                }
            }
            Err(_) => prop_assert!(!has_key),
        }
    }

    #[test]
    fn any_answer_is_a_page_or_a_clear_error(records in prop::collection::vec(record(), 0..4), total in value(), code in leaf()) {
        let body = json!({"errorCode": code, "total": total, "recordList": records}).to_string();
        match parse_query_answer(body.as_bytes()) {
            Ok(page) => prop_assert!(page.records.len() <= 4),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn any_bytes_are_refused_or_read_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_query_answer(&bytes);
    }
}

#[test]
fn lone_surrogates_are_replaced_and_bad_bodies_are_clear_errors() {
    // One lone surrogate does not cost the page: it reads as U+FFFD; valid
    // pairs and escaped backslashes are left alone.
    let lone =
        br#"{"total": 2, "recordList": [{"logId": "a", "callData": "x\ud83dy \\ud800 \ud83d\ude00"}, {"logId": "b"}]}"#;
    let page = parse_query_answer(lone).expect("the page is read");
    assert_eq!(page.records.len(), 2);
    assert_eq!(page.records[0].call_data.as_deref(), Some("x\u{fffd}y \\ud800 \u{1f600}"));
    let broken = br#"{"total": 1, "recordList": [{"logId": "a", "userSaying": "\ud800"#;
    assert!(matches!(parse_query_answer(broken), Err(ApiError::BadBody { .. })));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = format!("{{\"total\": 1, \"recordList\": [{{\"logId\": \"a\", \"callData\": {deep}}}]}}");
    let err = parse_query_answer(body.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
    let not_a_list = br#"{"total": 1, "recordList": {"logId": "a"}}"#;
    assert!(parse_query_answer(not_a_list).unwrap_err().to_string().contains("recordList is not a list"));
    let no_key = br#"{"total": 1, "recordList": [{"callId": "c"}]}"#;
    assert!(parse_query_answer(no_key).unwrap_err().to_string().contains("no logId"));
}

#[test]
fn raw_json_keeps_floats_exactly() {
    let v = json!({"logId": "a", "extra": 8.111088575473586e-157});
    let r = Record::from_value(0, &v).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&r.raw_json).unwrap(), json!({"extra": 8.111088575473586e-157}));
    assert_eq!(r.rebuild(), v);
}
