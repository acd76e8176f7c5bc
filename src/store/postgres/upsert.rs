//! The dedup rule in PostgreSQL (see `store/upsert.rs`): a page is decided
//! record by record against what is stored, then written in a few
//! statements of arrays (`unnest`), one transaction a page.

use std::collections::HashMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::{Postgres, facts};
use crate::record::{Qa, Record, Turn};
use crate::store::StoreError;
use crate::store::contract::Pages;
use crate::store::dedup::{Decision, PageOutcome, Summary, decide};

/// The day (UTC) of epoch ms in a column, as the summaries count it.
fn day_of(column: &str) -> String {
    format!("coalesce(oifde_utc({column}, 'YYYY-MM-DD'), '')")
}

/// The statements of a page, prepared once a connection.
pub(super) struct Prepared {
    lookup: Statement,
    uncount: [Statement; 3],
    delete_turns: Statement,
    delete_qa: Statement,
    delete_records: Statement,
    records: Statement,
    turns: Statement,
    qa: Statement,
    summary: [Statement; 3],
    followers: Statement,
    refresh: Vec<Statement>,
}

impl Prepared {
    async fn new(c: &Client) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            lookup: c
                .prepare(
                    // One index probe a record, whatever the planner thinks of
                    // a table that was empty a minute ago (OFFSET 0 keeps the
                    // probe from being turned into a join over the whole table).
                    "SELECT r.log_id, r.last_update_time, r.content_hash, r.first_seen_at FROM unnest($2::TEXT[]) AS k (id), \
                     LATERAL (SELECT log_id, last_update_time, content_hash, first_seen_at FROM records \
                              WHERE tenant_id = $1 AND log_id = k.id OFFSET 0) AS r",
                )
                .await?,
            uncount: {
                let [a, b, c2] = uncount_sql();
                [c.prepare(&a).await?, c.prepare(&b).await?, c.prepare(&c2).await?]
            },
            delete_turns: c.prepare(DELETE_TURNS).await?,
            delete_qa: c.prepare(DELETE_QA).await?,
            delete_records: c.prepare(DELETE_RECORDS).await?,
            records: c.prepare(INSERT_RECORDS).await?,
            turns: c.prepare(INSERT_TURNS).await?,
            qa: c.prepare(INSERT_QA).await?,
            summary: [c.prepare(SUMMARY[0]).await?, c.prepare(SUMMARY[1]).await?, c.prepare(SUMMARY[2]).await?],
            followers: c.prepare(facts::FOLLOWERS).await?,
            refresh: {
                let mut refresh = Vec::new();
                for sql in facts::refresh_sql(facts::Scope::Sessions) {
                    refresh.push(c.prepare(&sql).await?);
                }
                refresh
            },
        })
    }
}

type Param<'a> = &'a (dyn ToSql + Sync);

impl Pages for Postgres {
    fn apply_page(&mut self, records: &[Record], now_ms: i64) -> Result<PageOutcome, StoreError> {
        let tenant = self.tenant.clone();
        let client = &mut self.client;
        let prepared = &mut self.prepared;
        super::run_on(self.rt.as_ref(), &self.shown, async move {
            if prepared.is_none() {
                *prepared = Some(Prepared::new(client).await?);
            }
            let p = prepared.as_ref().expect("prepared above");
            let tx = client.transaction().await?;
            let ids: Vec<&str> = records.iter().map(|r| r.log_id.as_str()).collect();
            let rows = tx.query(&p.lookup, &[&tenant, &ids]).await?;
            let mut current: HashMap<String, (Option<i64>, String)> =
                rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect();
            // When each stored record was first seen: a replaced record keeps it.
            let first_seen: HashMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(3))).collect();
            // The last version of each record this page writes, by log_id.
            let mut written: HashMap<&str, &Record> = HashMap::new();
            let mut outcome = PageOutcome::default();
            for r in records {
                match decide(r, current.get(&r.log_id).cloned()) {
                    Decision::Insert => outcome.inserted += 1,
                    Decision::Replace => outcome.updated += 1,
                    Decision::Unchanged => {
                        outcome.unchanged += 1;
                        continue;
                    }
                    Decision::Stale => {
                        outcome.stale += 1;
                        continue;
                    }
                }
                current.insert(r.log_id.clone(), (r.last_update_time, r.content_hash.clone()));
                written.insert(&r.log_id, r);
            }
            if written.is_empty() {
                tx.commit().await?;
                return Ok(outcome);
            }
            let replaced: Vec<&str> = written.keys().copied().filter(|id| first_seen.contains_key(*id)).collect();
            // In page order, each record once (a page may repeat a record).
            let page: Vec<&Record> = records
                .iter()
                .filter(|r| written.get(r.log_id.as_str()).is_some_and(|w| std::ptr::eq(*w, *r)))
                .collect();
            let arrays = PageArrays::new(&page, |id| first_seen.get(id).copied().unwrap_or(now_ms));
            let mut summary = Summary::default();
            for r in &page {
                summary.add(r);
            }
            let summary = SummaryArrays::new(summary);
            // The sessions whose measures the page changes: its own, and the
            // same callers' in the day after each (stored values and new).
            let callings: Vec<Option<&str>> = page.iter().map(|r| r.calling_number.as_deref()).collect();
            let starts: Vec<Option<i64>> = page.iter().map(|r| r.start_time).collect();
            let mut touched: Vec<String> = page.iter().map(|r| r.log_id.clone()).collect();
            for row in tx.query(&p.followers, &[&tenant, &callings, &starts, &replaced]).await? {
                touched.push(row.get(0));
            }
            touched.sort_unstable();
            touched.dedup();
            // Every statement at once, executed in this order by the server:
            // one round trip for the page instead of one a statement.
            let replaced_params: [Param<'_>; 2] = [&tenant, &replaced];
            let mut steps: Vec<(&Statement, Vec<Param<'_>>)> = Vec::new();
            if !replaced.is_empty() {
                for stmt in &p.uncount {
                    steps.push((stmt, replaced_params.to_vec()));
                }
                steps.push((&p.delete_turns, replaced_params.to_vec()));
                steps.push((&p.delete_qa, replaced_params.to_vec()));
                steps.push((&p.delete_records, replaced_params.to_vec()));
            }
            // New and replaced records alike are plain inserts: no arbiter
            // probe a row, and a replaced record keeps its first_seen_at.
            steps.push((&p.records, arrays.records(&tenant, &now_ms)));
            steps.push((&p.turns, arrays.turns(&tenant)));
            steps.push((&p.qa, arrays.qa(&tenant)));
            for (stmt, params) in p.summary.iter().zip(summary.params(&tenant)) {
                steps.push((stmt, params));
            }
            for stmt in &p.refresh {
                steps.push((stmt, vec![&tenant, &touched]));
            }
            let tx_ref = &tx;
            futures_util::future::try_join_all(steps.iter().map(|(stmt, params)| tx_ref.execute(*stmt, params)))
                .await?;
            tx.commit().await?;
            Ok(outcome)
        })
    }

    fn set_fallback_intentions(&mut self, intentions: &[String]) -> Result<(), StoreError> {
        let tenant = self.tenant.clone();
        let client = &mut self.client;
        let mut wanted = intentions.to_vec();
        wanted.sort();
        wanted.dedup();
        super::run_on(self.rt.as_ref(), &self.shown, async move {
            // Read first: every pass sets the list, which seldom changes.
            let kept: Vec<String> = client
                .query(
                    "SELECT intention FROM fallback_intentions WHERE tenant_id = $1 ORDER BY intention COLLATE \"C\"",
                    &[&tenant],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if kept == wanted {
                return Ok(());
            }
            let tx = client.transaction().await?;
            tx.execute("DELETE FROM fallback_intentions WHERE tenant_id = $1", &[&tenant]).await?;
            tx.execute(
                "INSERT INTO fallback_intentions (tenant_id, intention) SELECT $1, unnest($2::TEXT[]) ON CONFLICT DO NOTHING",
                &[&tenant, &intentions],
            )
            .await?;
            facts::rebuild_tenant(&tx, &tenant).await?;
            tx.commit().await
        })
    }
}

/// Takes the stored rows of `$2` (log ids) out of the summary tables,
/// before they are replaced or removed.
pub(super) fn uncount_sql() -> [String; 3] {
    [
        UNCOUNT[0].replace("{day}", &day_of("start_time")),
        UNCOUNT[1].replace("{day}", &day_of("t.request_time")),
        UNCOUNT[2].to_string(),
    ]
}

/// [`uncount_sql`]'s statements; `{day}` is the day of the row's time.
const UNCOUNT: [&str; 3] = [
    "INSERT INTO summary_calls_per_day (tenant_id, day, calls) SELECT $1, {day}, -count(*) FROM records \
     WHERE tenant_id = $1 AND log_id = ANY ($2) GROUP BY 2 \
     ON CONFLICT (tenant_id, day) DO UPDATE SET calls = summary_calls_per_day.calls + excluded.calls",
    "INSERT INTO summary_intentions_per_day (tenant_id, day, intention, turns) SELECT $1, {day}, t.intention, -count(*) \
     FROM turn_rows t JOIN records r ON r.id = t.record_id \
     WHERE r.tenant_id = $1 AND r.log_id = ANY ($2) AND t.intention IS NOT NULL GROUP BY 2, 3 \
     ON CONFLICT (tenant_id, day, md5(intention)) DO UPDATE SET turns = summary_intentions_per_day.turns + excluded.turns",
    "INSERT INTO summary_answers (tenant_id, question_title, answer_intent, answers) \
     SELECT $1, coalesce(q.question_title, ''), coalesce(q.answer_intent, ''), -count(*) \
     FROM qa_rows q JOIN records r ON r.id = q.record_id WHERE r.tenant_id = $1 AND r.log_id = ANY ($2) GROUP BY 2, 3 \
     ON CONFLICT (tenant_id, md5(question_title), md5(answer_intent)) DO UPDATE SET answers = summary_answers.answers + excluded.answers",
];

const INSERT_RECORDS: &str = "INSERT INTO records (tenant_id, log_id, call_sor_id, call_id, cti_call_id, \
     calling_number, called_number, start_time, end_time, last_update_time, flow_inst_id, dialog_type, call_data, \
     location_id, flag, business_info, business_info_str, record_file_name, yugao_file_name, raw_json, content_hash, \
     first_seen_at, api_tenant_id, synced_at) \
     SELECT $1, t.*, $20 FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], \
     $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::BIGINT[], $15::TEXT[], \
     $16::TEXT[], $17::TEXT[], $18::TEXT[], $19::TEXT[], $21::TEXT[], $22::TEXT[], $23::BIGINT[], $24::TEXT[]) AS t";

/// The turns of the records `$2` (log ids), before they are replaced or removed.
pub(super) const DELETE_TURNS: &str =
    "DELETE FROM turn_rows WHERE record_id IN (SELECT id FROM records WHERE tenant_id = $1 AND log_id = ANY ($2))";

/// Their Q&A rows, likewise.
pub(super) const DELETE_QA: &str =
    "DELETE FROM qa_rows WHERE record_id IN (SELECT id FROM records WHERE tenant_id = $1 AND log_id = ANY ($2))";

/// Then the records themselves.
pub(super) const DELETE_RECORDS: &str = "DELETE FROM records WHERE tenant_id = $1 AND log_id = ANY ($2)";

/// A page's turns, under the number of their record (written just before).
const INSERT_TURNS: &str = "INSERT INTO turn_rows (record_id, seq, inter_no, user_saying, intention, system_reply, \
     reply_time, request_time, response_source, involve_mode, extra_json) \
     SELECT r.id, t.seq, t.inter_no, t.user_saying, t.intention, t.system_reply, t.reply_time, t.request_time, \
     t.response_source, t.involve_mode, t.extra_json \
     FROM unnest($2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], \
     $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::BIGINT[], $12::TEXT[]) \
     AS t (log_id, seq, inter_no, user_saying, intention, system_reply, reply_time, request_time, response_source, \
     involve_mode, extra_json) \
     JOIN records r ON r.tenant_id = $1 AND r.log_id = t.log_id";

/// A page's Q&A rows, under the number of their record (written just before).
const INSERT_QA: &str = "INSERT INTO qa_rows (record_id, seq, inter_no, series_id, question_title, question_type, \
     answer_intent, original_answer, create_time, extra_json) \
     SELECT r.id, q.seq, q.inter_no, q.series_id, q.question_title, q.question_type, q.answer_intent, \
     q.original_answer, q.create_time, q.extra_json \
     FROM unnest($2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], \
     $8::TEXT[], $9::TEXT[], $10::BIGINT[], $11::TEXT[]) \
     AS q (log_id, seq, inter_no, series_id, question_title, question_type, answer_intent, original_answer, \
     create_time, extra_json) \
     JOIN records r ON r.tenant_id = $1 AND r.log_id = q.log_id";

/// A page's counts added to the summary tables: one statement a table.
const SUMMARY: [&str; 3] = [
    "INSERT INTO summary_calls_per_day (tenant_id, day, calls) SELECT $1, * FROM unnest($2::TEXT[], $3::BIGINT[]) \
     ON CONFLICT (tenant_id, day) DO UPDATE SET calls = summary_calls_per_day.calls + excluded.calls",
    "INSERT INTO summary_intentions_per_day (tenant_id, day, intention, turns) \
     SELECT $1, * FROM unnest($2::TEXT[], $3::TEXT[], $4::BIGINT[]) \
     ON CONFLICT (tenant_id, day, md5(intention)) DO UPDATE SET turns = summary_intentions_per_day.turns + excluded.turns",
    "INSERT INTO summary_answers (tenant_id, question_title, answer_intent, answers) \
     SELECT $1, * FROM unnest($2::TEXT[], $3::TEXT[], $4::BIGINT[]) \
     ON CONFLICT (tenant_id, md5(question_title), md5(answer_intent)) DO UPDATE SET answers = summary_answers.answers + excluded.answers",
];

type Texts<'a> = Vec<Option<&'a str>>;
type Ints = Vec<Option<i64>>;

/// A page's records, turns and Q&A rows as one array a column.
struct PageArrays<'a> {
    texts: Vec<Texts<'a>>,
    ints: Vec<Ints>,
    turn_texts: Vec<Texts<'a>>,
    turn_ints: Vec<Ints>,
    turn_keys: (Texts<'a>, Vec<i64>),
    qa_texts: Vec<Texts<'a>>,
    qa_create: Ints,
    qa_keys: (Texts<'a>, Vec<i64>),
}

impl<'a> PageArrays<'a> {
    fn new(page: &[&'a Record], first_seen: impl Fn(&str) -> i64) -> Self {
        let text = |f: fn(&'a Record) -> Option<&'a str>| page.iter().map(|r| f(r)).collect::<Texts<'a>>();
        let int = |f: fn(&Record) -> Option<i64>| page.iter().map(|r| f(r)).collect::<Ints>();
        let texts = vec![
            text(|r| Some(&r.log_id)),
            text(|r| r.call_sor_id.as_deref()),
            text(|r| r.call_id.as_deref()),
            text(|r| r.cti_call_id.as_deref()),
            text(|r| r.calling_number.as_deref()),
            text(|r| r.called_number.as_deref()),
            text(|r| r.flow_inst_id.as_deref()),
            text(|r| r.dialog_type.as_deref()),
            text(|r| r.call_data.as_deref()),
            text(|r| r.flag.as_deref()),
            text(|r| r.business_info.as_deref()),
            text(|r| r.business_info_str.as_deref()),
            text(|r| r.record_file_name.as_deref()),
            text(|r| r.yugao_file_name.as_deref()),
            text(|r| Some(&r.raw_json)),
            text(|r| Some(&r.content_hash)),
            text(|r| r.tenant_id.as_deref()),
        ];
        let ints = vec![
            int(|r| r.start_time),
            int(|r| r.end_time),
            int(|r| r.last_update_time),
            int(|r| r.location_id),
            page.iter().map(|r| Some(first_seen(&r.log_id))).collect(),
        ];
        let turns: Vec<(&'a str, i64, &'a Turn)> = page
            .iter()
            .flat_map(|r| r.details.iter().enumerate().map(|(i, t)| (r.log_id.as_str(), i as i64, t)))
            .collect();
        let turn_text = |f: fn(&'a Turn) -> Option<&'a str>| turns.iter().map(|(_, _, t)| f(t)).collect::<Texts<'a>>();
        let turn_int = |f: fn(&Turn) -> Option<i64>| turns.iter().map(|(_, _, t)| f(t)).collect::<Ints>();
        let qas: Vec<(&'a str, i64, &'a Qa)> =
            page.iter().flat_map(|r| r.qa.iter().enumerate().map(|(i, q)| (r.log_id.as_str(), i as i64, q))).collect();
        let qa_text = |f: fn(&'a Qa) -> Option<&'a str>| qas.iter().map(|(_, _, q)| f(q)).collect::<Texts<'a>>();
        Self {
            texts,
            ints,
            turn_texts: vec![
                turn_text(|t| t.inter_no.as_deref()),
                turn_text(|t| t.user_saying.as_deref()),
                turn_text(|t| t.intention.as_deref()),
                turn_text(|t| t.system_reply.as_deref()),
                turn_text(|t| t.extra_json.as_deref()),
            ],
            turn_ints: vec![
                turn_int(|t| t.reply_time),
                turn_int(|t| t.request_time),
                turn_int(|t| t.response_source),
                turn_int(|t| t.involve_mode),
            ],
            turn_keys: (turns.iter().map(|(id, _, _)| Some(*id)).collect(), turns.iter().map(|(_, s, _)| *s).collect()),
            qa_texts: vec![
                qa_text(|q| q.inter_no.as_deref()),
                qa_text(|q| q.series_id.as_deref()),
                qa_text(|q| q.question_title.as_deref()),
                qa_text(|q| q.question_type.as_deref()),
                qa_text(|q| q.answer_intent.as_deref()),
                qa_text(|q| q.original_answer.as_deref()),
                qa_text(|q| q.extra_json.as_deref()),
            ],
            qa_create: qas.iter().map(|(_, _, q)| q.create_time).collect(),
            qa_keys: (qas.iter().map(|(id, _, _)| Some(*id)).collect(), qas.iter().map(|(_, s, _)| *s).collect()),
        }
    }

    /// The parameters of [`INSERT_RECORDS`].
    fn records<'p>(&'p self, tenant: &'p String, now_ms: &'p i64) -> Vec<Param<'p>> {
        let (t, i) = (&self.texts, &self.ints);
        vec![
            tenant, &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &i[0], &i[1], &i[2], &t[6], &t[7], &t[8], &i[3], &t[9],
            &t[10], &t[11], &t[12], &t[13], now_ms, &t[14], &t[15], &i[4], &t[16],
        ]
    }

    /// The parameters of [`INSERT_TURNS`].
    fn turns<'p>(&'p self, tenant: &'p String) -> Vec<Param<'p>> {
        let (t, i) = (&self.turn_texts, &self.turn_ints);
        vec![
            tenant,
            &self.turn_keys.0,
            &self.turn_keys.1,
            &t[0],
            &t[1],
            &t[2],
            &t[3],
            &i[0],
            &i[1],
            &i[2],
            &i[3],
            &t[4],
        ]
    }

    /// The parameters of [`INSERT_QA`].
    fn qa<'p>(&'p self, tenant: &'p String) -> Vec<Param<'p>> {
        let t = &self.qa_texts;
        vec![tenant, &self.qa_keys.0, &self.qa_keys.1, &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &self.qa_create, &t[6]]
    }
}

/// A page's summary counts as arrays, for [`SUMMARY`].
struct SummaryArrays {
    days: Vec<String>,
    calls: Vec<i64>,
    intention_keys: (Vec<String>, Vec<String>),
    turns: Vec<i64>,
    answer_keys: (Vec<String>, Vec<String>),
    answers: Vec<i64>,
}

impl SummaryArrays {
    fn new(s: Summary) -> Self {
        let (days, calls) = s.calls.into_iter().unzip();
        let (mut intention_keys, mut turns) = ((Vec::new(), Vec::new()), Vec::new());
        for ((day, intention), n) in s.intentions {
            intention_keys.0.push(day);
            intention_keys.1.push(intention);
            turns.push(n);
        }
        let (mut answer_keys, mut answers) = ((Vec::new(), Vec::new()), Vec::new());
        for ((question, answer), n) in s.answers {
            answer_keys.0.push(question);
            answer_keys.1.push(answer);
            answers.push(n);
        }
        Self { days, calls, intention_keys, turns, answer_keys, answers }
    }

    fn params<'p>(&'p self, tenant: &'p String) -> [Vec<Param<'p>>; 3] {
        [
            vec![tenant, &self.days, &self.calls],
            vec![tenant, &self.intention_keys.0, &self.intention_keys.1, &self.turns],
            vec![tenant, &self.answer_keys.0, &self.answer_keys.1, &self.answers],
        ]
    }
}
