//! Session records as the API sends them, read tolerantly: the documented
//! typos and their corrected spellings, `null` in mandatory fields, numbers
//! sent as strings, and unknown fields (kept in `raw_json`).

use serde_json::{Map, Value};

/// One dialogue turn (`recordDetials` entry).
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub inter_no: Option<String>,
    pub user_saying: Option<String>,
    pub intention: Option<String>,
    pub system_reply: Option<String>,
    /// API `timestamp`: the system's reply time.
    pub reply_time: Option<i64>,
    /// API `requsetTime` (sic): the user's request time.
    pub request_time: Option<i64>,
    pub response_source: Option<i64>,
    pub involve_mode: Option<i64>,
    /// Fields the columns do not hold (unknown ones, or a known one whose
    /// value is not what its column takes), as a JSON object; `None` when none.
    pub extra_json: Option<String>,
}

/// One Q&A row (`qaRecords` entry).
#[derive(Clone, Debug, PartialEq)]
pub struct Qa {
    pub inter_no: Option<String>,
    pub series_id: Option<String>,
    pub question_title: Option<String>,
    pub question_type: Option<String>,
    pub answer_intent: Option<String>,
    pub original_answer: Option<String>,
    pub create_time: Option<i64>,
    /// As [`Turn::extra_json`].
    pub extra_json: Option<String>,
}

/// One session record, with the columns the store keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub log_id: String,
    pub tenant_id: Option<String>,
    pub call_sor_id: Option<String>,
    pub call_id: Option<String>,
    pub cti_call_id: Option<String>,
    pub calling_number: Option<String>,
    pub called_number: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub last_update_time: Option<i64>,
    pub flow_inst_id: Option<String>,
    pub dialog_type: Option<String>,
    pub call_data: Option<String>,
    pub location_id: Option<i64>,
    pub flag: Option<String>,
    pub business_info: Option<String>,
    pub business_info_str: Option<String>,
    pub record_file_name: Option<String>,
    pub yugao_file_name: Option<String>,
    pub details: Vec<Turn>,
    pub qa: Vec<Qa>,
    /// What the columns, turns and Q&A rows do not hold, keys sorted
    /// (`{}` when nothing is left): with them, the record as received.
    pub raw_json: String,
    /// FNV-1a of the whole record as received, hex; decides when
    /// `lastUpdateTime` is missing.
    pub content_hash: String,
    /// Some text held NUL characters, which no column keeps (PostgreSQL's
    /// text cannot hold them): they are U+FFFD there, and the text as sent
    /// is in `raw_json` (the record's fields) or `extra_json` (a turn's or
    /// a Q&A row's).
    pub nul_replaced: bool,
}

/// U+FFFD for every NUL: the one rule for text no store column can hold.
fn without_nul(field: &mut Option<String>) -> bool {
    match field {
        Some(s) if s.contains('\0') => {
            *s = s.replace('\0', "\u{fffd}");
            true
        }
        _ => false,
    }
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("recordList entry {index} is not a JSON object")]
    NotAnObject { index: usize },
    #[error("recordList entry {index} has no logId (the record's key)")]
    NoLogId { index: usize },
}

/// Text of a field: strings as they are, numbers and booleans printed,
/// objects and arrays as JSON text, `null` or absent as `None`.
fn text(obj: &Map<String, Value>, name: &str) -> Option<String> {
    value_text(obj.get(name)?)
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// An integer field that may arrive as a number or as a string of digits.
/// Anything else (a word, an object) reads as `None`; the raw JSON keeps it.
fn int(obj: &Map<String, Value>, name: &str) -> Option<i64> {
    value_int(obj.get(name)?)
}

pub(crate) fn value_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        }
        _ => None,
    }
}

/// The first present spelling of a field.
fn either<'a>(obj: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| obj.get(*n).filter(|v| !v.is_null()))
}

fn list<'a>(obj: &'a Map<String, Value>, names: &[&str]) -> &'a [Value] {
    match either(obj, names) {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// The record's fields a text column holds exactly (when sent as a string
/// without NUL), in the order of [`Record::text_columns`].
const TEXT_FIELDS: [&str; 13] = [
    "logId",
    "tenantId",
    "callSorId",
    "callId",
    "ctiCallId",
    "callingNumber",
    "calledNumber",
    "flowInstId",
    "dialogType",
    "callData",
    "flag",
    "businessInfo",
    "businessInfoStr",
];

/// The record's fields an integer column holds exactly (when sent as a
/// whole number), in the order of [`Record::time_columns`].
const TIME_FIELDS: [&str; 3] = ["startTime", "endTime", "lastUpdateTime"];

/// The turn list's documented (misspelt) name and its corrected spelling.
const TURNS: &str = "recordDetials";
const TURNS_CORRECTED: &str = "recordDetails";
const QA: &str = "qaRecords";

/// Whether a column rebuilds `v` exactly: a string without NUL for a text
/// column, a whole number for an integer one. Anything else (null, a number
/// sent as a string, NUL characters) is kept as sent beside the columns.
fn held_text(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.contains('\0'))
}

fn held_int(v: &Value) -> bool {
    v.is_i64()
}

/// A non-empty list of objects: its entries all became rows.
fn all_rows(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_object))
}

/// What of the record its columns and rows do not hold, keys sorted: the
/// fields no column holds, and those a column holds in another form. The
/// turn list is left out when all its entries are rows and it came under
/// one name only; sent under its corrected spelling, that name stays with an
/// empty list, so that the record is rebuilt as sent ([`Record::rebuild`]).
fn leftovers(o: &Map<String, Value>) -> String {
    let mut left = o.clone();
    left.retain(|k, v| {
        let text = TEXT_FIELDS.contains(&k.as_str()) && held_text(v);
        let int = TIME_FIELDS.contains(&k.as_str()) && held_int(v);
        !(text || int)
    });
    let turns_from = [TURNS, TURNS_CORRECTED].into_iter().find(|k| o.get(*k).is_some_and(|v| !v.is_null()));
    if let Some(name) = turns_from
        && all_rows(o.get(name))
    {
        if name == TURNS_CORRECTED {
            left.insert(name.to_string(), Value::Array(Vec::new()));
        } else if !o.contains_key(TURNS_CORRECTED) {
            left.remove(name);
        }
    }
    if all_rows(o.get(QA)) {
        left.remove(QA);
    }
    Value::Object(left).to_string()
}

/// The fields of a turn or Q&A entry its columns do not hold exactly:
/// unknown names, and known ones in another form than their column's
/// ([`held_text`], [`held_int`]). `alternate`: a corrected spelling, kept
/// as sent, with the documented spelling beside it when both came.
fn extras(
    o: &Map<String, Value>,
    text_fields: &[&str],
    int_fields: &[&str],
    alternate: Option<(&str, &str)>,
) -> Option<String> {
    let left: Map<String, Value> = o
        .iter()
        .filter(|(k, v)| {
            let k = k.as_str();
            let doubled = alternate.is_some_and(|(first, second)| k == first && o.contains_key(second));
            let held = (text_fields.contains(&k) && held_text(v)) || (int_fields.contains(&k) && held_int(v));
            !held || doubled
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!left.is_empty()).then(|| Value::Object(left).to_string())
}

fn turn(v: &Value) -> Option<Turn> {
    let o = v.as_object()?;
    Some(Turn {
        extra_json: extras(
            o,
            &["interNo", "userSaying", "intention", "systemReply"],
            &["timestamp", "requsetTime", "responseSource", "involveMode"],
            Some(("requsetTime", "requestTime")),
        ),
        inter_no: text(o, "interNo"),
        user_saying: text(o, "userSaying"),
        intention: text(o, "intention"),
        system_reply: text(o, "systemReply"),
        reply_time: int(o, "timestamp"),
        request_time: either(o, &["requsetTime", "requestTime"]).and_then(value_int),
        response_source: int(o, "responseSource"),
        involve_mode: int(o, "involveMode"),
    })
}

fn qa(v: &Value) -> Option<Qa> {
    let o = v.as_object()?;
    Some(Qa {
        extra_json: extras(
            o,
            &["interNo", "seriesId", "questionTitle", "questionType", "answerIntent", "originalAnswer"],
            &["createTime"],
            None,
        ),
        inter_no: text(o, "interNo"),
        series_id: text(o, "seriesId"),
        question_title: text(o, "questionTitle"),
        question_type: text(o, "questionType"),
        answer_intent: text(o, "answerIntent"),
        original_answer: text(o, "originalAnswer"),
        create_time: int(o, "createTime"),
    })
}

/// An entry rebuilt from its columns and its `extra_json` (which wins).
fn entry(texts: &[(&str, &Option<String>)], ints: &[(&str, Option<i64>)], extra: Option<&str>) -> Value {
    let mut o = match extra.map(serde_json::from_str) {
        Some(Ok(Value::Object(o))) => o,
        _ => Map::new(),
    };
    for (name, value) in texts {
        put_absent(&mut o, name, (*value).clone().map(Value::String));
    }
    for (name, value) in ints {
        put_absent(&mut o, name, value.map(Value::from));
    }
    Value::Object(o)
}

/// A column's value under its field name, unless what was kept beside the
/// columns already holds that field (as sent).
fn put_absent(o: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(value) = value
        && !o.contains_key(name)
    {
        o.insert(name.to_string(), value);
    }
}

impl Turn {
    /// The entry as sent; the request time under its documented spelling
    /// unless `extra_json` holds a spelling of it.
    fn rebuild(&self) -> Value {
        let respelt = matches!(self.extra_json.as_deref().map(serde_json::from_str::<Value>),
            Some(Ok(extra)) if extra.get("requestTime").is_some());
        let request = if respelt { None } else { self.request_time };
        entry(
            &[
                ("interNo", &self.inter_no),
                ("userSaying", &self.user_saying),
                ("intention", &self.intention),
                ("systemReply", &self.system_reply),
            ],
            &[
                ("timestamp", self.reply_time),
                ("requsetTime", request),
                ("responseSource", self.response_source),
                ("involveMode", self.involve_mode),
            ],
            self.extra_json.as_deref(),
        )
    }
}

impl Qa {
    fn rebuild(&self) -> Value {
        entry(
            &[
                ("interNo", &self.inter_no),
                ("seriesId", &self.series_id),
                ("questionTitle", &self.question_title),
                ("questionType", &self.question_type),
                ("answerIntent", &self.answer_intent),
                ("originalAnswer", &self.original_answer),
            ],
            &[("createTime", self.create_time)],
            self.extra_json.as_deref(),
        )
    }
}

/// The fields pulled out of `businessInfoStr`.
#[derive(Debug, Default, PartialEq)]
pub struct BusinessInfo {
    pub record_file_name: Option<String>,
    pub yugao_file_name: Option<String>,
    pub location_id: Option<i64>,
}

/// Reads the JSON string `businessInfoStr`; the literal string `"null"` is
/// NULL, and malformed text yields no columns.
pub fn business_info(text: &str) -> BusinessInfo {
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) else {
        return BusinessInfo::default();
    };
    let field = |name: &str| value_text(o.get(name)?).filter(|s| s != "null");
    BusinessInfo {
        record_file_name: field("recordFileName"),
        yugao_file_name: field("yugaoFileName"),
        location_id: o.get("locationId").and_then(value_int),
    }
}

/// 64-bit FNV-1a, hex: a stable content fingerprint (not a security hash).
pub fn fingerprint(bytes: &[u8]) -> String {
    format!("{:016x}", crate::fnv::fnv1a(crate::fnv::START, bytes))
}

impl Record {
    /// Reads entry `index` of a `recordList`.
    pub fn from_value(index: usize, v: &Value) -> Result<Self, RecordError> {
        let o = v.as_object().ok_or(RecordError::NotAnObject { index })?;
        let log_id = text(o, "logId").filter(|s| !s.trim().is_empty()).ok_or(RecordError::NoLogId { index })?;
        let business_info_str = text(o, "businessInfoStr");
        let bis = business_info_str.as_deref().map(business_info).unwrap_or_default();
        // serde_json's map keeps keys sorted, so this text is canonical.
        let content_hash = fingerprint(v.to_string().as_bytes());
        let raw_json = leftovers(o);
        let mut record = Record {
            log_id,
            tenant_id: text(o, "tenantId"),
            call_sor_id: text(o, "callSorId"),
            call_id: text(o, "callId"),
            cti_call_id: text(o, "ctiCallId"),
            calling_number: text(o, "callingNumber"),
            called_number: text(o, "calledNumber"),
            start_time: int(o, "startTime"),
            end_time: int(o, "endTime"),
            last_update_time: int(o, "lastUpdateTime"),
            flow_inst_id: text(o, "flowInstId"),
            dialog_type: text(o, "dialogType"),
            call_data: text(o, "callData"),
            location_id: int(o, "locationId").or(bis.location_id),
            flag: text(o, "flag"),
            business_info: text(o, "businessInfo"),
            business_info_str,
            record_file_name: bis.record_file_name,
            yugao_file_name: bis.yugao_file_name,
            details: list(o, &["recordDetials", "recordDetails"]).iter().filter_map(turn).collect(),
            qa: list(o, &["qaRecords"]).iter().filter_map(qa).collect(),
            content_hash,
            raw_json,
            nul_replaced: false,
        };
        record.nul_replaced = record.replace_nul();
        Ok(record)
    }

    /// The text columns, in the order of their API fields ([`TEXT_FIELDS`]).
    fn text_columns(&self) -> [Option<&String>; 13] {
        [
            Some(&self.log_id),
            self.tenant_id.as_ref(),
            self.call_sor_id.as_ref(),
            self.call_id.as_ref(),
            self.cti_call_id.as_ref(),
            self.calling_number.as_ref(),
            self.called_number.as_ref(),
            self.flow_inst_id.as_ref(),
            self.dialog_type.as_ref(),
            self.call_data.as_ref(),
            self.flag.as_ref(),
            self.business_info.as_ref(),
            self.business_info_str.as_ref(),
        ]
    }

    /// The time columns, in the order of [`TIME_FIELDS`].
    fn time_columns(&self) -> [Option<i64>; 3] {
        [self.start_time, self.end_time, self.last_update_time]
    }

    /// The record as the API sent it, from what the store keeps of it: the
    /// columns, `raw_json`, the turns and the Q&A rows (each with its
    /// `extra_json`). A field `raw_json` holds wins over its column.
    pub fn rebuild(&self) -> Value {
        let mut o = match serde_json::from_str(&self.raw_json) {
            Ok(Value::Object(o)) => o,
            _ => Map::new(),
        };
        let texts = self.text_columns().map(|c| c.map(|s| Value::String(s.clone())));
        let times = self.time_columns().map(|c| c.map(Value::from));
        for (name, value) in TEXT_FIELDS.iter().zip(texts).chain(TIME_FIELDS.iter().zip(times)) {
            put_absent(&mut o, name, value);
        }
        if !self.details.is_empty() {
            // The list's name as sent: the corrected one is left with an
            // empty list; where a list is left whole, its rows are in it.
            let corrected =
                o.get(TURNS).is_none_or(Value::is_null) && o.get(TURNS_CORRECTED) == Some(&Value::Array(Vec::new()));
            let misspelt = !o.contains_key(TURNS) && !o.contains_key(TURNS_CORRECTED);
            let name = if corrected { Some(TURNS_CORRECTED) } else { misspelt.then_some(TURNS) };
            if let Some(name) = name {
                o.insert(name.to_string(), self.details.iter().map(Turn::rebuild).collect());
            }
        }
        if !self.qa.is_empty() && !o.contains_key(QA) {
            o.insert(QA.to_string(), self.qa.iter().map(Qa::rebuild).collect());
        }
        Value::Object(o)
    }

    /// Applies [`without_nul`] to every text column; whether any changed.
    fn replace_nul(&mut self) -> bool {
        let mut changed = false;
        let mut log_id = Some(std::mem::take(&mut self.log_id));
        changed |= without_nul(&mut log_id);
        self.log_id = log_id.unwrap_or_default();
        for f in [
            &mut self.tenant_id,
            &mut self.call_sor_id,
            &mut self.call_id,
            &mut self.cti_call_id,
            &mut self.calling_number,
            &mut self.called_number,
            &mut self.flow_inst_id,
            &mut self.dialog_type,
            &mut self.call_data,
            &mut self.flag,
            &mut self.business_info,
            &mut self.business_info_str,
            &mut self.record_file_name,
            &mut self.yugao_file_name,
        ] {
            changed |= without_nul(f);
        }
        for t in &mut self.details {
            for f in [&mut t.inter_no, &mut t.user_saying, &mut t.intention, &mut t.system_reply] {
                changed |= without_nul(f);
            }
        }
        for q in &mut self.qa {
            for f in [
                &mut q.inter_no,
                &mut q.series_id,
                &mut q.question_title,
                &mut q.question_type,
                &mut q.answer_intent,
                &mut q.original_answer,
            ] {
                changed |= without_nul(f);
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_documented_example() {
        let v = json!({
            "logId": "7343-4256-a659-c7fe7682ef03", "tenantId": "xxxxxx", "callSorId": "10086",
            "callId": "16185589414826353c2c0036c0292e43ca7a4", "ctiCallId": null,
            "callingNumber": "10086", "calledNumber": "899149138753490944",
            "startTime": 1618558942000i64, "endTime": 1618559267000i64, "lastUpdateTime": 1618559267000i64,
            "businessInfo": null,
            "businessInfoStr": "{\"yugaoFileName\":\"null\",\"locationId\":\"0\",\"recordFileName\":\"Y:/135/a.wav\"}",
            "recordDetials": [{"interNo": "1", "userSaying": "How much?", "intention": "Call fee query",
                "systemReply": "CNY100", "timestamp": 1618558954000i64, "requsetTime": 1618558954000i64,
                "responseSource": 0, "involveMode": 0}],
            "qaRecords": [{"interNo": "1", "seriesId": "100", "createTime": 1650774697000i64}]
        });
        let r = Record::from_value(0, &v).unwrap();
        assert_eq!(r.cti_call_id, None);
        assert_eq!(r.location_id, Some(0));
        assert_eq!(r.yugao_file_name, None);
        assert_eq!(r.record_file_name.as_deref(), Some("Y:/135/a.wav"));
        assert_eq!(r.details[0].request_time, Some(1618558954000));
        assert_eq!(r.qa[0].create_time, Some(1650774697000));
    }

    #[test]
    fn tolerates_strings_spellings_and_bad_business_info() {
        let v = json!({"logId": 42, "startTime": "1618558942000", "locationId": "7",
            "businessInfoStr": "{not json", "extra": {"x": 1},
            "recordDetails": [{"requestTime": "5", "responseSource": "1"}]});
        let r = Record::from_value(3, &v).unwrap();
        assert_eq!(r.log_id, "42");
        assert_eq!(r.start_time, Some(1618558942000));
        assert_eq!(r.location_id, Some(7));
        assert_eq!(r.business_info_str.as_deref(), Some("{not json"));
        assert_eq!(r.record_file_name, None);
        assert_eq!(r.details[0].request_time, Some(5));
        assert_eq!(r.details[0].response_source, Some(1));
        assert!(r.raw_json.contains("\"extra\""));
        // The entries are in their table; the corrected name stays, empty.
        assert!(r.raw_json.contains(r#""recordDetails":[]"#), "{}", r.raw_json);
    }

    #[test]
    fn what_the_columns_do_not_hold_is_kept_beside_them() {
        let v = json!({"logId": "a", "recordDetials": [{"userSaying": "hi", "timestamp": "soon", "emotion": "calm",
            "responseSource": 1}], "qaRecords": [{"seriesId": "1", "score": 5}], "odd": "x"});
        let r = Record::from_value(0, &v).unwrap();
        assert_eq!(r.details[0].extra_json.as_deref(), Some(r#"{"emotion":"calm","timestamp":"soon"}"#));
        assert_eq!(r.qa[0].extra_json.as_deref(), Some(r#"{"score":5}"#));
        assert_eq!(r.raw_json, r#"{"odd":"x"}"#);
        // A list that is not a list of objects stays in the record.
        let odd = Record::from_value(0, &json!({"logId": "b", "qaRecords": ["x"]})).unwrap();
        assert!(odd.raw_json.contains("qaRecords"));
        // The hash covers the lists: a change in a turn is a change.
        let changed = json!({"logId": "a", "recordDetials": [{"userSaying": "ho"}]});
        assert_ne!(Record::from_value(0, &changed).unwrap().content_hash, r.content_hash);
    }

    #[test]
    fn raw_json_keeps_only_what_the_columns_do_not_and_the_record_is_rebuilt_as_sent() {
        let plain = json!({"logId": "a", "callId": "c", "startTime": 5, "flag": null, "locationId": 3,
            "recordDetials": [{"userSaying": "hi", "requsetTime": 7}], "qaRecords": [{"seriesId": "1"}]});
        let r = Record::from_value(0, &plain).unwrap();
        // What columns hold as sent is not repeated; null and locationId stay.
        assert_eq!(r.raw_json, r#"{"flag":null,"locationId":3}"#);
        assert_eq!(r.rebuild(), plain);
        for v in [
            // Numbers sent as text, the corrected spelling of a list and a field.
            json!({"logId": "b", "startTime": "5", "endTime": 6.5, "recordDetails": [{"requestTime": 1}]}),
            // Both spellings of the request time; the turn list under the misspelt name beside an empty corrected one.
            json!({"logId": "c", "recordDetials": [{"requsetTime": 1, "requestTime": 2}], "recordDetails": []}),
            // A null misspelt list and the corrected one with rows.
            json!({"logId": "d", "recordDetials": null, "recordDetails": [{"intention": "x", "timestamp": "t"}]}),
            // Empty lists, a list with a non-object, NUL in a column.
            json!({"logId": "e", "recordDetials": [], "qaRecords": [{"seriesId": 2}, 3], "callData": "a\u{0}b"}),
            json!({"logId": 42, "calledNumber": 10086, "recordDetials": [{"interNo": null, "involveMode": "0"}]}),
        ] {
            assert_eq!(Record::from_value(0, &v).unwrap().rebuild(), v, "{v}");
        }
    }

    #[test]
    fn nul_is_replaced_in_columns_and_kept_as_sent_beside_them() {
        let v = json!({"logId": "n", "callData": "a\u{0}b",
            "recordDetials": [{"userSaying": "x\u{0}", "intention": "ok"}], "qaRecords": [{"originalAnswer": "\u{0}"}]});
        let r = Record::from_value(0, &v).unwrap();
        assert!(r.nul_replaced);
        assert_eq!(r.call_data.as_deref(), Some("a\u{fffd}b"));
        assert!(r.raw_json.contains(r#""callData":"a\u0000b""#), "{}", r.raw_json);
        assert_eq!(r.details[0].user_saying.as_deref(), Some("x\u{fffd}"));
        assert_eq!(r.details[0].extra_json.as_deref(), Some(r#"{"userSaying":"x\u0000"}"#));
        assert_eq!(r.qa[0].extra_json.as_deref(), Some(r#"{"originalAnswer":"\u0000"}"#));
        assert!(!Record::from_value(0, &json!({"logId": "c", "callData": "fine"})).unwrap().nul_replaced);
    }

    #[test]
    fn a_record_without_log_id_is_refused() {
        assert_eq!(Record::from_value(2, &json!({"logId": null})), Err(RecordError::NoLogId { index: 2 }));
        assert_eq!(Record::from_value(1, &json!([1])), Err(RecordError::NotAnObject { index: 1 }));
    }
}
