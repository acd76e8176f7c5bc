//! The simulator's HTTP side: handlers for the two interfaces, token
//! bookkeeping, paging, and the faults it can inject.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::SimOptions;
use super::dataset::{self, SimRecord};
use crate::api::{QUERY_PATH, STATS_PATH, TOKEN_PATH, codes};

/// Faults the server injects; rates are shares of requests, 0.0 to 1.0.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// HTTP 500 or 503.
    pub server_error_rate: f64,
    /// HTTP 429 with `Retry-After: 1`.
    pub throttle_rate: f64,
    /// HTTP 200 with errorCode 10000001 (internal error).
    pub internal_error_rate: f64,
    /// A body cut off half way (invalid JSON).
    pub truncated_rate: f64,
    /// The connection is closed before the body is complete.
    pub drop_rate: f64,
    /// Answers delayed by `slow_delay`.
    pub slow_rate: f64,
    pub slow_delay: Duration,
    /// A token expires after this many queries (900001).
    pub token_expires_after_queries: Option<u64>,
    /// Pages past this many records of one query are refused (10000002).
    pub max_paging_depth: Option<u64>,
    /// Every this many queries, a new record appears at the start of the
    /// queried window, on a page the client has already read: later pages
    /// shift, and the new record is only seen by a later pass.
    pub drift_every_queries: Option<u64>,
    /// Added to every reported `total`: a server that promises records it never sends.
    pub inflate_total: u64,
    /// Sent as every `total` instead of the real count (-1, 0, 10…): a total the pages contradict.
    pub report_total: Option<i64>,
    /// Queries for these `userMobile`, `callId` or `ctiCallId` values are
    /// refused (10000002), with or without a window: malformed keys.
    pub refuse_values: Vec<String>,
    /// The next this many queries without beginTime/endTime are refused
    /// (10000002): a passing refusal.
    pub refuse_key_only: u64,
    /// `callId` and `ctiCallId` are ignored: every query answers the whole
    /// window (or tenant).
    pub ignore_call_filter: bool,
    /// Sessions (by log id) that `queryRecordHistory` never returns, while
    /// the call statistics still count them: a gap for `verify` to find.
    pub hidden: Vec<String>,
    /// Access codes the statistics interface refuses (10000002): not licensed.
    pub refuse_statistics: Vec<String>,
}

impl Faults {
    /// Every fault at the same rate, plus token expiry every few queries.
    pub fn all_at(rate: f64) -> Self {
        let each = rate / 5.0;
        Faults {
            server_error_rate: each,
            throttle_rate: each,
            internal_error_rate: each,
            truncated_rate: each,
            drop_rate: each,
            slow_rate: 0.0,
            slow_delay: Duration::ZERO,
            token_expires_after_queries: Some(7),
            max_paging_depth: None,
            drift_every_queries: None,
            inflate_total: 0,
            report_total: None,
            ..Faults::default()
        }
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct RequestLogEntry {
    /// Since the simulator started.
    pub at: Duration,
    pub path: &'static str,
    /// The query's key as `mobile:…`, `call:…` or `cti:…` (`None`: none, or a token request).
    pub key: Option<String>,
    /// The query carried `beginTime` or `endTime`.
    pub windowed: bool,
    /// Its `beginTime` and `endTime` as sent, if it had them.
    pub window: (Option<String>, Option<String>),
    /// Requests being handled at that moment, this one included.
    pub in_flight: usize,
}

pub(super) struct TokenInfo {
    issued: Instant,
    queries: u64,
}

/// A record with its wire JSON, rendered once so that serving pages is cheap.
pub(super) struct Entry {
    pub record: SimRecord,
    wire: String,
}

impl Entry {
    fn new(record: SimRecord) -> Self {
        let wire = record.to_wire().to_string();
        Self { record, wire }
    }
}

pub(super) struct SimState {
    /// Sorted by start time, then log id.
    pub records: Vec<Entry>,
    pub tokens: HashMap<String, TokenInfo>,
    pub token_calls: u64,
    pub query_calls: u64,
    /// Every token ever issued, for tests that check none leaks.
    pub issued: Vec<String>,
    pub log: Vec<RequestLogEntry>,
    pub faults: Faults,
}

pub(super) struct Shared {
    pub options: SimOptions,
    pub mobiles: Vec<String>,
    state: Mutex<SimState>,
    started: Instant,
    in_flight: AtomicUsize,
}

impl Shared {
    pub fn new(options: SimOptions) -> Self {
        let mobiles = dataset::mobiles(options.seed, options.users.max(1));
        let records =
            dataset::generate(options.seed, options.records, options.from, options.to, &options.tenant_id, &mobiles)
                .into_iter()
                .map(Entry::new)
                .collect();
        let state = SimState {
            records,
            tokens: HashMap::new(),
            token_calls: 0,
            query_calls: 0,
            issued: Vec::new(),
            log: Vec::new(),
            faults: options.faults.clone(),
        };
        Self { options, mobiles, state: Mutex::new(state), started: Instant::now(), in_flight: AtomicUsize::new(0) }
    }

    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn update(&self, log_id: &str, change: impl FnOnce(&mut SimRecord)) -> bool {
        let mut state = self.lock();
        let Some(i) = state.records.iter().position(|e| e.record.log_id == log_id) else {
            return false;
        };
        let mut record = state.records.remove(i).record;
        change(&mut record);
        insert_sorted(&mut state.records, record);
        true
    }

    pub fn insert(&self, record: SimRecord) {
        insert_sorted(&mut self.lock().records, record);
    }
}

fn insert_sorted(records: &mut Vec<Entry>, record: SimRecord) {
    let at = records.partition_point(|e| (e.record.start_time, &e.record.log_id) < (record.start_time, &record.log_id));
    records.insert(at, Entry::new(record));
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(get_token))
        .route(QUERY_PATH, post(query))
        .route(STATS_PATH, post(statistics))
        .with_state(shared)
}

/// Counts a request in flight for as long as it is handled.
struct InFlight<'a>(&'a AtomicUsize);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn json_response(text: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json;charset=UTF-8")], text).into_response()
}

fn api_error(code: i64, msg: &str) -> Response {
    json_response(json!({ "errorCode": code, "errorMsg": msg }).to_string())
}

/// A fault to inject into this answer, if the dice say so.
enum Fault {
    ServerError,
    Throttle,
    Internal,
    Truncate,
    Drop,
}

fn roll(f: &Faults) -> (Option<Fault>, bool) {
    let slow = f.slow_rate > 0.0 && fastrand::f64() < f.slow_rate;
    let mut x = fastrand::f64();
    for (rate, fault) in [
        (f.server_error_rate, Fault::ServerError),
        (f.throttle_rate, Fault::Throttle),
        (f.internal_error_rate, Fault::Internal),
        (f.truncated_rate, Fault::Truncate),
        (f.drop_rate, Fault::Drop),
    ] {
        if x < rate {
            return (Some(fault), slow);
        }
        x -= rate;
    }
    (None, slow)
}

/// Applies a rolled fault to a would-be answer.
fn inject(fault: Option<Fault>, text: String) -> Response {
    match fault {
        None => json_response(text),
        Some(Fault::ServerError) => {
            let status =
                if fastrand::bool() { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::SERVICE_UNAVAILABLE };
            (status, "upstream unavailable").into_response()
        }
        Some(Fault::Throttle) => {
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], "slow down").into_response()
        }
        Some(Fault::Internal) => api_error(codes::INTERNAL[0], "Internal error"),
        Some(Fault::Truncate) => {
            let cut = text.len() / 2;
            let cut = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            ([(header::CONTENT_TYPE, "application/json")], text[..cut].to_string()).into_response()
        }
        Some(Fault::Drop) => {
            let head = Bytes::from(text.into_bytes()).slice(..1);
            let stream = futures_util::stream::iter([
                Ok(head),
                Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "dropped")),
            ]);
            ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
        }
    }
}

impl Shared {
    /// Logs the request and rolls its fault, under one lock.
    fn arrive(&self, path: &'static str, body: &[u8]) -> (InFlight<'_>, Option<Fault>, Option<Duration>) {
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let guard = InFlight(&self.in_flight);
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let field = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
        let key = (path == QUERY_PATH)
            .then(|| {
                [("userMobile", "mobile"), ("callId", "call"), ("ctiCallId", "cti")]
                    .iter()
                    .find_map(|(name, prefix)| field(name).map(|v| format!("{prefix}:{v}")))
            })
            .flatten();
        let windowed = v.get("beginTime").is_some() || v.get("endTime").is_some();
        let mut state = self.lock();
        let window = (field("beginTime"), field("endTime"));
        state.log.push(RequestLogEntry { at: self.started.elapsed(), path, in_flight, key, windowed, window });
        let (fault, slow) = roll(&state.faults);
        let delay = slow.then_some(state.faults.slow_delay);
        (guard, fault, delay)
    }
}

async fn get_token(State(sim): State<Arc<Shared>>, body: Bytes) -> Response {
    let (_guard, fault, delay) = sim.arrive(TOKEN_PATH, &body);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return api_error(codes::REQUEST[0], "Parameter error: the body is not JSON");
    };
    let answer = {
        let mut state = sim.lock();
        state.token_calls += 1;
        let key = v.get("appKey").and_then(Value::as_str);
        let secret = v.get("appSecret").and_then(Value::as_str);
        match (key, secret) {
            (None, _) | (_, None) => {
                json!({"errorCode": codes::REQUEST[0], "errorMsg": "Parameter error: appKey and appSecret are mandatory"})
            }
            (Some(k), _) if k != sim.options.tenant_id => {
                json!({"errorCode": codes::CREDENTIALS[0], "errorMsg": "The key does not exist"})
            }
            (_, Some(s)) if s != sim.options.app_secret => {
                json!({"errorCode": codes::CREDENTIALS[1], "errorMsg": "The key is incorrect"})
            }
            _ => {
                let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
                state.tokens.insert(token.clone(), TokenInfo { issued: Instant::now(), queries: 0 });
                state.issued.push(token.clone());
                json!({"errorCode": 0, "errorMsg": "", "authToken": token, "expireTime": sim.options.token_ttl})
            }
        }
    };
    inject(fault, answer.to_string())
}

/// Reads an optional string parameter that the documentation types as String.
fn string_param<'a>(v: &'a Value, name: &str) -> Result<Option<&'a str>, String> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("Parameter error: {name} must be a String, got {other}")),
    }
}

async fn query(State(sim): State<Arc<Shared>>, body: Bytes) -> Response {
    let (_guard, fault, delay) = sim.arrive(QUERY_PATH, &body);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return api_error(codes::REQUEST[0], "Parameter error: the body is not JSON");
    };
    let answer = match answer_query(&sim, &v) {
        Ok(answer) => answer,
        Err((code, msg)) => json!({"errorCode": code, "errorMsg": msg}).to_string(),
    };
    inject(fault, answer)
}

async fn statistics(State(sim): State<Arc<Shared>>, body: Bytes) -> Response {
    let (_guard, fault, delay) = sim.arrive(STATS_PATH, &body);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return api_error(codes::REQUEST[0], "Parameter error: the body is not JSON");
    };
    let answer = match answer_statistics(&sim, &v) {
        Ok(answer) => answer,
        Err((code, msg)) => json!({"errorCode": code, "errorMsg": msg}).to_string(),
    };
    inject(fault, answer)
}

/// `queryCallStatisticsReport`, `type = "hour"`: the day that starts at
/// `timestamp`, by hour, for sessions whose `calledNumber` is `accessCode`,
/// by the documented definitions; only hours with calls. Answered as a bare
/// list, with the rates and numbers as strings the way the platform sends them.
fn answer_statistics(sim: &Shared, v: &Value) -> Result<String, (i64, String)> {
    let request = |msg: String| (codes::REQUEST[0], msg);
    let mut state = sim.lock();
    check_token(sim, &mut state, v)?;
    if v.get("type").and_then(Value::as_str) != Some("hour") {
        return Err(request("Parameter error: type must be hour or day".into()));
    }
    let code =
        v.get("accessCode").and_then(Value::as_str).ok_or_else(|| request("Parameter error: accessCode".into()))?;
    if state.faults.refuse_statistics.iter().any(|r| r == code) {
        return Err(request(format!("Parameter error: access code {code} does not exist")));
    }
    let day = v.get("timestamp").and_then(Value::as_i64).ok_or_else(|| request("Parameter error: timestamp".into()))?;
    let records: Vec<SimRecord> = state.records.iter().map(|e| e.record.clone()).collect();
    let transferred: std::collections::HashSet<String> = super::cdr::legs(&records, sim.options.seed)
        .into_iter()
        .filter(|l| l.device_type != 3)
        .map(|l| l.call_id)
        .collect();
    let mut hours: std::collections::BTreeMap<i64, [i64; 6]> = std::collections::BTreeMap::new();
    for r in records.iter().filter(|r| r.called_number.as_deref() == Some(code)) {
        if r.start_time < day || r.start_time >= day + 86_400_000 {
            continue;
        }
        let hour = day + (r.start_time - day) / 3_600_000 * 3_600_000;
        let turns = r.details.len() as i64;
        let to_agent = transferred.contains(super::cdr::cdr_call_id(r));
        let h = hours.entry(hour).or_default();
        h[0] += 1;
        let bucket = match (turns, to_agent) {
            (..=1, _) => 1,
            (2..=3, true) => 2,
            (_, true) => 3,
            (_, false) => 4,
        };
        h[bucket] += 1;
        h[5] += turns;
    }
    let list: Vec<Value> = hours
        .into_iter()
        .map(|(hour, [calls, exit_no, staff_no, staff, bot, turns])| {
            let used = staff_no + staff + bot;
            let autonomy = if used == 0 { "-1.000".to_string() } else { format!("{:.3}", bot as f64 / used as f64) };
            json!({
                "recordTime": hour,
                "tenantId": sim.options.tenant_id,
                "accessCode": code,
                "callCount": calls,
                "exitNoConsultCount": exit_no,
                "callStaffNoConsultCount": staff_no,
                "callStaffConsultCount": staff,
                "exitConsultingCount": bot,
                "interactCount": turns,
                "autonomyRate": autonomy,
                "averageInteractPerCall": format!("{:.2}", turns as f64 / calls as f64),
                "dbRecordTime": hour + 3_600_000,
                "type": "hour",
                "interfaceRequestCount": turns.to_string(),
                "interfaceSuccessCount": turns.to_string(),
                "interfaceSuccessRate": "1.000",
            })
        })
        .collect();
    Ok(Value::Array(list).to_string())
}

/// The request's token: known, not expired, of this tenant.
fn check_token(sim: &Shared, state: &mut SimState, v: &Value) -> Result<(), (i64, String)> {
    if v.get("tenantId").and_then(Value::as_str).is_none() {
        return Err((codes::REQUEST[0], "Parameter error: tenantId is mandatory".into()));
    }
    let token = v.get("authToken").and_then(Value::as_str).unwrap_or("");
    let ttl = Duration::from_secs(sim.options.token_ttl);
    let expire_after = state.faults.token_expires_after_queries;
    match state.tokens.get_mut(token) {
        None => {
            return Err((codes::TOKEN_EXPIRED, "No token information or the token has expired".into()));
        }
        Some(info) => {
            info.queries += 1;
            if info.issued.elapsed() > ttl || expire_after.is_some_and(|k| info.queries > k) {
                state.tokens.remove(token);
                return Err((codes::TOKEN_EXPIRED, "No token information or the token has expired".into()));
            }
        }
    }
    if v.get("tenantId").and_then(Value::as_str) != Some(sim.options.tenant_id.as_str()) {
        return Err((codes::TOKEN_INVALID, "Failed to check the token".into()));
    }
    Ok(())
}

fn answer_query(sim: &Shared, v: &Value) -> Result<String, (i64, String)> {
    let request = |msg: String| (codes::REQUEST[0], msg);
    let mut state = sim.lock();
    state.query_calls += 1;
    check_token(sim, &mut state, v)?;
    let page_num: u64 = match string_param(v, "pageNum").map_err(request)? {
        None => 1,
        Some(s) => {
            s.parse().ok().filter(|n| *n >= 1).ok_or_else(|| request(format!("Parameter error: pageNum {s:?}")))?
        }
    };
    let page_size: u64 = match string_param(v, "pageSize").map_err(request)? {
        None => 100,
        Some(s) => s
            .parse()
            .ok()
            .filter(|n| [5, 10, 20, 50, 100].contains(n))
            .ok_or_else(|| request(format!("Parameter error: pageSize must be 5, 10, 20, 50 or 100, got {s:?}")))?,
    };
    let zone = &sim.options.timezone;
    let time = |name: &str| -> Result<Option<i64>, (i64, String)> {
        match string_param(v, name).map_err(request)? {
            None => Ok(None),
            Some(s) => zone.parse_time(s).map(Some).map_err(|e| request(format!("Parameter error: {name}: {e}"))),
        }
    };
    let (begin, end) = (time("beginTime")?, time("endTime")?);
    let mobile = string_param(v, "userMobile").map_err(request)?;
    let call = string_param(v, "callId").map_err(request)?;
    let cti = string_param(v, "ctiCallId").map_err(request)?;
    if sim.options.require_window && (begin.is_none() || end.is_none()) {
        return Err(request("Parameter error: beginTime and endTime are mandatory".into()));
    }
    if let Some(bad) =
        [mobile, call, cti].into_iter().flatten().find(|v| state.faults.refuse_values.iter().any(|r| r == v))
    {
        return Err(request(format!("Parameter error: {bad:?} is not a valid key")));
    }
    if (begin.is_none() || end.is_none()) && state.faults.refuse_key_only > 0 {
        state.faults.refuse_key_only -= 1;
        return Err(request("Parameter error: beginTime and endTime are mandatory".into()));
    }
    let (call, cti) = if state.faults.ignore_call_filter { (None, None) } else { (call, cti) };
    if mobile.is_none()
        && call.is_none()
        && cti.is_none()
        && !sim.options.lenient_keys
        && !state.faults.ignore_call_filter
    {
        return Err(request("Parameter error: one of userMobile, callId and ctiCallId must be transferred".into()));
    }
    if let Some(depth) = state.faults.max_paging_depth
        && (page_num - 1) * page_size >= depth
    {
        return Err(request(format!("Parameter error: paging deeper than {depth} records is not supported")));
    }
    let records = &state.records;
    let second = |e: &Entry| e.record.start_time.div_euclid(1000);
    let lo = begin.map_or(0, |b| records.partition_point(|e| second(e) < b));
    let hi = end.map_or(records.len(), |e| records.partition_point(|r| second(r) <= e));
    let matching: Vec<&Entry> = records[lo..hi.max(lo)]
        .iter()
        .filter(|e| mobile.is_none_or(|m| e.record.call_sor_id == m))
        .filter(|e| call.is_none_or(|c| e.record.call_id == c))
        .filter(|e| cti.is_none_or(|c| e.record.cti_call_id.as_deref() == Some(c)))
        .filter(|e| !state.faults.hidden.contains(&e.record.log_id))
        .collect();
    let total = state.faults.report_total.unwrap_or((matching.len() as u64 + state.faults.inflate_total) as i64);
    let skip = ((page_num - 1) * page_size) as usize;
    // Documented quirks: `total` sometimes a string, `errorCode` sometimes absent.
    let mut answer = String::with_capacity(64 + page_size as usize * 2500);
    answer.push_str("{\"errorMsg\":\"Success\",");
    if !page_num.is_multiple_of(3) {
        answer.push_str("\"errorCode\":0,");
    }
    if page_num.is_multiple_of(2) {
        answer.push_str(&format!("\"total\":\"{total}\",\"recordList\":["));
    } else {
        answer.push_str(&format!("\"total\":{total},\"recordList\":["));
    }
    for (i, e) in matching.iter().skip(skip).take(page_size as usize).enumerate() {
        if i > 0 {
            answer.push(',');
        }
        answer.push_str(&e.wire);
    }
    answer.push_str("]}");
    let drifted = state
        .faults
        .drift_every_queries
        .filter(|k| page_num > 1 && state.query_calls.is_multiple_of(*k))
        .and_then(|_| matching.first().map(|e| e.record.clone()));
    if let Some(mut r) = drifted {
        let n = state.query_calls;
        r.log_id = format!("0000drift-{n:08}");
        r.call_id = format!("drift-call-{n}");
        r.cti_call_id = None;
        insert_sorted(&mut state.records, r);
    }
    Ok(answer)
}
