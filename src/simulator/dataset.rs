//! The simulator's tenant: a deterministic set of session records, kept in
//! typed form (what a correct mirror must end up holding) and rendered to the
//! wire with the API's quirks: typos and corrected spellings, numbers as
//! strings, nulls in mandatory fields, unknown fields, malformed
//! `businessInfoStr`.

use serde_json::{Map, Value, json};

use crate::record::{Qa, Turn};

/// How a record is rendered on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Long fields sent as JSON strings ("1618558942000").
    pub numbers_as_strings: bool,
    /// `recordDetails`/`requestTime` instead of the documented typos.
    pub corrected_spelling: bool,
    /// Fields the documentation does not list.
    pub unknown_fields: bool,
}

/// What `businessInfoStr` holds.
#[derive(Clone, Debug, PartialEq)]
pub enum BusinessInfoStr {
    Absent,
    /// Well-formed; `None` values are sent as the literal string "null".
    Fields {
        record_file_name: Option<String>,
        yugao_file_name: Option<String>,
        location_id: Option<i64>,
    },
    /// Text that is not JSON.
    Malformed(String),
}

/// One record as the tenant holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct SimRecord {
    pub log_id: String,
    pub tenant_id: String,
    /// The user's number: what `userMobile` matches.
    pub call_sor_id: String,
    pub call_id: String,
    pub cti_call_id: Option<String>,
    pub calling_number: Option<String>,
    pub called_number: Option<String>,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub last_update_time: Option<i64>,
    pub flow_inst_id: Option<String>,
    pub dialog_type: Option<String>,
    pub call_data: Option<String>,
    pub location_id: Option<i64>,
    pub flag: Option<String>,
    pub business_info: Option<String>,
    pub business_info_str: BusinessInfoStr,
    pub details: Vec<Turn>,
    pub qa: Vec<Qa>,
    pub quirks: Quirks,
}

const SAYINGS: &[(&str, Option<&str>)] = &[
    ("我想查询一下本月话费", Some("话费查询")),
    ("How much call fee do I have? 💰", Some("Call fee query")),
    ("帮我转人工服务 🙏", Some("转人工")),
    ("查一下流量套餐还剩多少", Some("流量查询")),
    ("My bill looks wrong 😠", Some("Billing complaint")),
    ("退订彩铃业务", Some("退订")),
    ("嗯……", None),
    ("👍 好的，谢谢", Some("结束")),
];

/// The long tail of what callers say: a topic, a request and a detail,
/// combined into tens of thousands of distinct sayings.
const TOPICS: &[(&str, &str)] = &[
    ("话费", "话费查询"),
    ("流量", "流量查询"),
    ("宽带", "宽带报修"),
    ("套餐", "套餐变更"),
    ("积分", "积分查询"),
    ("发票", "发票申请"),
    ("国际漫游", "漫游开通"),
    ("彩铃", "退订"),
    ("my bill", "Billing complaint"),
    ("roaming", "Roaming"),
    ("my data plan", "Data query"),
    ("the broadband", "Broadband repair"),
];
const ASKS: &[&str] = &[
    "我想问一下",
    "帮我查查",
    "怎么办理",
    "能不能取消",
    "为什么扣了",
    "please check",
    "I want to change",
    "can you explain",
];
const DETAILS: &[&str] = &[
    "上个月的",
    "这个月",
    "昨天晚上",
    "给我家里人的",
    "副卡的",
    "from last week",
    "for my daughter",
    "on my second line",
    "一直不好用",
    "多扣了钱",
    "还没到账",
    "right now",
    "again please",
    "是怎么回事",
    "要多少钱",
    "能便宜点吗",
];

/// System replies: templates with amounts, dates and numbers filled in.
const REPLIES: &[&str] = &[
    "您好，您本月话费为{n}元。",
    "Hello, your call fee of this month is CNY{n}.",
    "正在为您转接人工坐席，请稍候。",
    "您的流量剩余 {n}.{d}GB 📶",
    "Sorry, I did not catch that. Could you say it again?",
    "您的宽带工单{k}已受理，工程师将于{m}月{d}日前上门。",
    "Your request {k} was registered on 2026-{m}-{d}; we will call you back within {n} hours.",
    "您当前积分为{k}分，可兑换{n}元话费。",
    "发票已于{m}月{d}日开具，金额{n}.{d}元，发送至您的邮箱。",
];

/// A saying by rank: the first ranks are the common phrases, the rest the
/// long tail. Ranks are drawn log-uniformly (about Zipf's law).
fn saying(rng: &mut fastrand::Rng) -> (String, Option<String>) {
    let tail = TOPICS.len() * ASKS.len() * DETAILS.len() * 10;
    let rank = (((SAYINGS.len() + tail) as f64).powf(rng.f64()) - 1.0) as usize;
    if rank < SAYINGS.len() {
        let (text, intention) = SAYINGS[rank];
        return (text.to_string(), intention.map(str::to_string));
    }
    let i = rank - SAYINGS.len();
    let (topic, intention) = TOPICS[i % TOPICS.len()];
    let ask = ASKS[(i / TOPICS.len()) % ASKS.len()];
    let detail = DETAILS[(i / (TOPICS.len() * ASKS.len())) % DETAILS.len()];
    let number = i / (TOPICS.len() * ASKS.len() * DETAILS.len());
    (
        format!("{ask}{detail}{topic}{}", if number > 0 { format!(" {number}") } else { String::new() }),
        Some(intention.into()),
    )
}

fn reply(rng: &mut fastrand::Rng) -> String {
    pick(rng, REPLIES)
        .replace("{n}", &rng.u32(1..500).to_string())
        .replace("{k}", &rng.u32(10_000..99_999).to_string())
        .replace("{m}", &format!("{:02}", rng.u32(1..13)))
        .replace("{d}", &format!("{:02}", rng.u32(1..29)))
}

const QUESTIONS: &[(&str, &str)] =
    &[("100", "Did you take a PCR test?"), ("101", "您对本次服务满意吗？"), ("102", "Would you recommend us? ⭐")];

const ANSWERS: &[(&str, &str)] = &[("Yes.", "I have taken the test."), ("满意", "非常满意 😀"), ("No.", "not really")];

/// The mobile numbers of a tenant with `n` users.
/// The tenant's chatbot access codes: the `calledNumber` of its sessions.
pub const ACCESS_CODES: [&str; 3] = ["10086", "95588", "4008123123"];

pub fn mobiles(seed: u64, n: usize) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x6d6f_6269_6c65);
    (0..n).map(|i| format!("1{:02}{:04}{:04}", 30 + rng.u32(0..60), i, rng.u32(0..10_000))).collect()
}

/// `n` records with start times in `[from, to)` epoch seconds.
pub fn generate(seed: u64, n: usize, from: i64, to: i64, tenant: &str, users: &[String]) -> Vec<SimRecord> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let span = (to - from).max(1);
    let mut out: Vec<SimRecord> = (0..n).map(|i| record(&mut rng, i, from, span, tenant, users)).collect();
    // About one call in seven has a second record (a transfer to another
    // flow): same call, same caller, starting as the first one ends.
    for i in 1..out.len() {
        let (first, second) = out.split_at_mut(i);
        let (a, b) = (&first[i - 1], &mut second[0]);
        let shift = a.end_time.unwrap_or(a.start_time) + 1000 - b.start_time;
        if i % 7 == 3 && b.start_time + shift < to * 1000 {
            b.call_id = a.call_id.clone();
            b.cti_call_id = a.cti_call_id.clone();
            b.call_sor_id = a.call_sor_id.clone();
            b.calling_number = a.calling_number.clone();
            b.start_time += shift;
            b.end_time = b.end_time.map(|t| t + shift);
            b.last_update_time = b.last_update_time.map(|t| t + shift);
        }
    }
    out.sort_by(|a, b| (a.start_time, &a.log_id).cmp(&(b.start_time, &b.log_id)));
    out
}

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(0..items.len())]
}

fn record(rng: &mut fastrand::Rng, i: usize, from: i64, span: i64, tenant: &str, users: &[String]) -> SimRecord {
    let start = (from + rng.i64(0..span)) * 1000 + rng.i64(0..1000);
    let end = start + rng.i64(20_000..600_000);
    let roll = rng.u32(0..100);
    let user = if users.is_empty() { "13800000000".to_string() } else { pick(rng, users).clone() };
    let turns = rng.usize(1..10);
    let details = (0..turns)
        .map(|t| {
            let (saying, intention) = saying(rng);
            let asked = start + 5_000 + t as i64 * 15_000;
            Turn {
                inter_no: Some((t + 1).to_string()),
                user_saying: Some(saying),
                intention,
                system_reply: Some(reply(rng)),
                reply_time: Some(asked + rng.i64(200..3000)),
                request_time: Some(asked),
                response_source: Some(i64::from(rng.u32(0..100) < 10)),
                involve_mode: if roll.is_multiple_of(17) { None } else { Some(i64::from(rng.u32(0..3))) },
                // Fields the documentation does not list, on some records' turns.
                extra_json: (roll % 10 == 3).then(|| format!(r#"{{"asrScore":{},"emotion":"calm"}}"#, 50 + t)),
            }
        })
        .collect();
    let qa = (0..rng.usize(0..4))
        .map(|q| {
            let (series, title) = *pick(rng, QUESTIONS);
            let (intent, original) = *pick(rng, ANSWERS);
            Qa {
                inter_no: Some((q + 1).to_string()),
                series_id: Some(series.to_string()),
                question_title: Some(title.to_string()),
                question_type: Some(rng.u32(1..4).to_string()),
                answer_intent: Some(intent.to_string()),
                original_answer: if roll.is_multiple_of(13) { None } else { Some(original.to_string()) },
                create_time: Some(end - 10_000 + q as i64 * 1000),
                extra_json: (roll % 10 == 3).then(|| r#"{"score":{"nps":9}}"#.to_string()),
            }
        })
        .collect();
    let business_info_str = match roll % 20 {
        0 => BusinessInfoStr::Malformed(format!("{{\"recordFileName\":\"Y:/rec/{i}.wav\"")),
        1 => BusinessInfoStr::Absent,
        _ => BusinessInfoStr::Fields {
            record_file_name: (!roll.is_multiple_of(7))
                .then(|| format!("Y:/135/odfsrecord/20261101/{}-{i}.wav", start / 1000)),
            yugao_file_name: (roll.is_multiple_of(5)).then(|| format!("yugao/{i}.wav")),
            location_id: Some(i64::from(rng.u32(0..4))),
        },
    };
    SimRecord {
        log_id: format!("{:08x}-{:04x}-a659-{:012x}", rng.u32(..), rng.u16(..), i),
        tenant_id: tenant.to_string(),
        call_sor_id: user.clone(),
        call_id: format!("{start}{:024x}", rng.u64(..) as u128 * 1_000_003 + i as u128),
        // As the platform writes them (seconds, then a sequence): unique
        // across every period generated, not only within one.
        cti_call_id: (roll % 10 < 7).then(|| format!("{}-{i}", start / 1000)),
        calling_number: Some(user),
        called_number: if roll % 19 == 3 { None } else { Some(pick(rng, &ACCESS_CODES).to_string()) },
        start_time: start,
        end_time: Some(end),
        last_update_time: if roll % 25 == 4 { None } else { Some(end + rng.i64(0..5000)) },
        flow_inst_id: if roll % 19 == 3 { None } else { Some(format!("flow{:016x}", rng.u64(..))) },
        dialog_type: Some(rng.u32(1..5).to_string()),
        call_data: (roll.is_multiple_of(3)).then(|| format!("{{\"vdn\":{}}}", rng.u32(1..100))),
        location_id: (roll.is_multiple_of(4)).then(|| i64::from(rng.u32(0..4))),
        flag: (roll.is_multiple_of(2)).then(|| "0".to_string()),
        business_info: (roll.is_multiple_of(11)).then(|| "{\"recordMode\":\"full\"}".to_string()),
        business_info_str,
        details,
        qa,
        quirks: Quirks {
            numbers_as_strings: roll % 10 == 1,
            corrected_spelling: roll % 5 == 2,
            unknown_fields: roll % 10 == 3,
        },
    }
}

/// Adds the fields of an `extra_json` object to a turn or Q&A entry.
fn merge_extra(m: &mut Map<String, Value>, extra: Option<&str>) {
    if let Some(Ok(Value::Object(extra))) = extra.map(serde_json::from_str::<Value>) {
        m.extend(extra);
    }
}

impl SimRecord {
    /// The JSON object the server sends for this record.
    pub fn to_wire(&self) -> Value {
        let q = self.quirks;
        let num = |v: Option<i64>| match v {
            None => Value::Null,
            Some(n) if q.numbers_as_strings => Value::String(n.to_string()),
            Some(n) => json!(n),
        };
        let (details_key, request_key) =
            if q.corrected_spelling { ("recordDetails", "requestTime") } else { ("recordDetials", "requsetTime") };
        let details: Vec<Value> = self
            .details
            .iter()
            .map(|t| {
                let mut m = Map::new();
                m.insert("interNo".into(), json!(t.inter_no));
                m.insert("userSaying".into(), json!(t.user_saying));
                m.insert("intention".into(), json!(t.intention));
                m.insert("systemReply".into(), json!(t.system_reply));
                m.insert("timestamp".into(), num(t.reply_time));
                m.insert(request_key.into(), num(t.request_time));
                m.insert("responseSource".into(), num(t.response_source));
                m.insert("involveMode".into(), num(t.involve_mode));
                merge_extra(&mut m, t.extra_json.as_deref());
                Value::Object(m)
            })
            .collect();
        let qa: Vec<Value> = self
            .qa
            .iter()
            .map(|a| {
                let mut v = json!({
                    "interNo": a.inter_no, "seriesId": a.series_id, "questionTitle": a.question_title,
                    "questionType": a.question_type, "answerIntent": a.answer_intent,
                    "originalAnswer": a.original_answer, "createTime": num(a.create_time),
                });
                if let Value::Object(m) = &mut v {
                    merge_extra(m, a.extra_json.as_deref());
                }
                v
            })
            .collect();
        let mut m = Map::new();
        m.insert("logId".into(), json!(self.log_id));
        m.insert("tenantId".into(), json!(self.tenant_id));
        m.insert("callSorId".into(), json!(self.call_sor_id));
        m.insert("callId".into(), json!(self.call_id));
        m.insert("ctiCallId".into(), json!(self.cti_call_id));
        m.insert("callingNumber".into(), json!(self.calling_number));
        m.insert("calledNumber".into(), json!(self.called_number));
        m.insert("startTime".into(), num(Some(self.start_time)));
        m.insert("endTime".into(), num(self.end_time));
        if self.last_update_time.is_some() {
            m.insert("lastUpdateTime".into(), num(self.last_update_time));
        }
        m.insert("flowInstId".into(), json!(self.flow_inst_id));
        m.insert("dialogType".into(), json!(self.dialog_type));
        m.insert("callData".into(), json!(self.call_data));
        m.insert("locationId".into(), num(self.location_id));
        m.insert("flag".into(), json!(self.flag));
        m.insert("businessInfo".into(), json!(self.business_info));
        m.insert("businessInfoStr".into(), self.business_info_text().map_or(Value::Null, Value::String));
        m.insert(details_key.into(), Value::Array(details));
        m.insert("qaRecords".into(), Value::Array(qa));
        if q.unknown_fields {
            m.insert("skillId".into(), json!(7));
            m.insert("extInfo".into(), json!({"channel": "voice", "tags": ["vip", "新客户"]}));
        }
        Value::Object(m)
    }

    /// The `businessInfoStr` text as sent.
    pub fn business_info_text(&self) -> Option<String> {
        match &self.business_info_str {
            BusinessInfoStr::Absent => None,
            BusinessInfoStr::Malformed(text) => Some(text.clone()),
            BusinessInfoStr::Fields { record_file_name, yugao_file_name, location_id } => {
                let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".into());
                Some(
                    json!({
                        "yugaoFileName": text(yugao_file_name),
                        "locationId": location_id.map_or("null".to_string(), |l| l.to_string()),
                        "recordFileName": text(record_file_name),
                    })
                    .to_string(),
                )
            }
        }
    }

    /// The columns a mirror derives from `businessInfoStr` and `locationId`:
    /// record file, yugao file, location.
    pub fn expected_business_columns(&self) -> (Option<String>, Option<String>, Option<i64>) {
        match &self.business_info_str {
            BusinessInfoStr::Fields { record_file_name, yugao_file_name, location_id } => {
                (record_file_name.clone(), yugao_file_name.clone(), self.location_id.or(*location_id))
            }
            _ => (None, None, self.location_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tenant generated a day at a time (as the large benchmark does) has
    /// each call's CTI ID once: a day does not reuse the day before's.
    #[test]
    fn cti_call_ids_of_two_days_differ() {
        let users = mobiles(7, 100);
        let day = 1_700_006_400;
        let first = generate(1, 1_000, day, day + 86_400, "t", &users);
        let second = generate(2, 1_000, day + 86_400, day + 2 * 86_400, "t", &users);
        let ids = |d: &[SimRecord]| -> std::collections::HashSet<String> {
            d.iter().filter_map(|r| r.cti_call_id.clone()).collect()
        };
        let (a, b) = (ids(&first), ids(&second));
        assert!(a.len() > 500 && b.len() > 500, "most sessions have a CTI ID");
        assert_eq!(a.intersection(&b).count(), 0, "no CTI ID of the first day comes back the second");
    }
}
