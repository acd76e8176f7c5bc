//! The wire format of the query interface: the request body, and the
//! answer read tolerantly into a page (an `errorCode`, a lone surrogate
//! escape, a missing list). Pure: no I/O here.

use serde::Serialize;
use serde_json::Value;

use super::QUERY_PATH;
use super::error::ApiError;
use crate::keys::QueryKey;
use crate::record::{Record, value_int};

/// One page request: a key, an inclusive window in epoch seconds (none for
/// a key-only query), a page.
#[derive(Clone, Debug)]
pub struct Query<'a> {
    pub key: &'a QueryKey,
    pub span: Option<(i64, i64)>,
    pub page_num: u32,
}

/// One page of the answer.
#[derive(Debug)]
pub struct Page {
    /// The server's count of all records matching the query; `None` if absent.
    pub total: Option<u64>,
    pub records: Vec<Record>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct QueryBody<'a> {
    pub(super) tenant_id: &'a str,
    pub(super) auth_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) begin_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) end_time: Option<String>,
    pub(super) page_num: String,
    pub(super) page_size: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) user_mobile: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cti_call_id: Option<&'a str>,
}

/// `Some((code, msg))` when the answer reports a failure: an `errorCode`
/// that is present and neither null nor 0.
pub(super) fn error_code(v: &Value) -> Option<(String, String)> {
    let code = match v.get("errorCode")? {
        Value::Null => return None,
        Value::Number(n) if n.as_i64() == Some(0) => return None,
        Value::String(s) if s.trim() == "0" || s.trim().is_empty() => return None,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let msg = v.get("errorMsg").and_then(Value::as_str).unwrap_or("").to_string();
    Some((code, msg))
}

/// JSON text, where a lone UTF-16 surrogate escape (`"\ud83d"`: valid JSON
/// grammar that no UTF-8 string can hold) is read as U+FFFD instead of
/// refusing the whole answer for one bad character.
pub fn parse_json(body: &[u8]) -> Result<Value, serde_json::Error> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(e) => match repair_surrogates(body) {
            Some(fixed) => {
                tracing::warn!("the answer holds a lone surrogate escape; read as U+FFFD");
                serde_json::from_slice(&fixed)
            }
            None => Err(e),
        },
    }
}

/// The body with every `\uD800`–`\uDFFF` escape that is not half of a
/// valid pair replaced by `\uFFFD`; `None` when there is none.
fn repair_surrogates(body: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: &[u8]| std::str::from_utf8(b).ok().and_then(|t| u16::from_str_radix(t, 16).ok());
    let escape_at = |i: usize| -> Option<u16> {
        (body.get(i) == Some(&b'\\') && body.get(i + 1) == Some(&b'u'))
            .then(|| body.get(i + 2..i + 6).and_then(hex))
            .flatten()
    };
    let mut out = Vec::with_capacity(body.len());
    let (mut i, mut changed) = (0, false);
    while i < body.len() {
        if body[i] == b'\\' && body.get(i + 1) == Some(&b'\\') {
            out.extend_from_slice(&body[i..i + 2]);
            i += 2;
            continue;
        }
        match escape_at(i) {
            Some(hi @ 0xD800..=0xDBFF) if matches!(escape_at(i + 6), Some(0xDC00..=0xDFFF)) => {
                let _ = hi;
                out.extend_from_slice(&body[i..i + 12]);
                i += 12;
            }
            Some(0xD800..=0xDFFF) => {
                out.extend_from_slice(b"\\uFFFD");
                changed = true;
                i += 6;
            }
            _ => {
                out.push(body[i]);
                i += 1;
            }
        }
    }
    changed.then_some(out)
}

/// Reads a `queryRecordHistory` answer body: a page, or the failure it
/// reports. Never panics, whatever the bytes (fuzzed and property-tested).
pub fn parse_query_answer(body: &[u8]) -> Result<Page, ApiError> {
    let v = parse_json(body).map_err(|e| ApiError::BadBody { path: QUERY_PATH, msg: e.to_string() })?;
    if let Some((code, msg)) = error_code(&v) {
        return Err(ApiError::Remote { path: QUERY_PATH, code, msg });
    }
    parse_page(&v)
}

pub(super) fn parse_page(v: &Value) -> Result<Page, ApiError> {
    if !v.is_object() {
        return Err(ApiError::BadBody { path: QUERY_PATH, msg: "the answer is not a JSON object".into() });
    }
    let total = v.get("total").and_then(value_int).map(|t| t.max(0) as u64);
    let list = match v.get("recordList") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        Some(_) => {
            return Err(ApiError::BadBody { path: QUERY_PATH, msg: "recordList is not a list".into() });
        }
    };
    let records = list
        .iter()
        .enumerate()
        .map(|(i, r)| Record::from_value(i, r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ApiError::Record { path: QUERY_PATH, source })?;
    Ok(Page { total, records })
}
