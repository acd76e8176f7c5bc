//! The dedup rule in PostgreSQL (see `store/upsert.rs`): a page is decided
//! record by record against what is stored, then written in a few
//! statements of arrays (`unnest`), one transaction a page.

use std::collections::{HashMap, HashSet};

use super::Postgres;
use crate::api::Record;
use crate::store::StoreError;
use crate::store::upsert::{Decision, PageOutcome, Summary, decide};

/// The day (UTC) of epoch ms in a column, as the summaries count it.
fn day_of(column: &str) -> String {
    format!("coalesce(to_char(to_timestamp({column} / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '')")
}

impl Postgres {
    pub fn apply_page(&mut self, records: &[Record], now_ms: i64) -> Result<PageOutcome, StoreError> {
        let tenant = self.tenant.clone();
        let client = &mut self.client;
        super::run_on(self.rt.as_ref(), &self.shown, async move {
            let tx = client.transaction().await?;
            let ids: Vec<&str> = records.iter().map(|r| r.log_id.as_str()).collect();
            let rows = tx
                .query(
                    "SELECT log_id, last_update_time, content_hash FROM records WHERE tenant_id = $1 AND log_id = ANY ($2)",
                    &[&tenant, &ids],
                )
                .await?;
            let mut current: HashMap<String, (Option<i64>, String)> =
                rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect();
            let stored_before: HashSet<String> = current.keys().cloned().collect();
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
            let replaced: Vec<&str> = written.keys().copied().filter(|id| stored_before.contains(*id)).collect();
            if !replaced.is_empty() {
                uncount(&tx, &tenant, &replaced).await?;
                tx.execute(
                    "DELETE FROM record_details WHERE tenant_id = $1 AND log_id = ANY ($2)",
                    &[&tenant, &replaced],
                )
                .await?;
                tx.execute("DELETE FROM qa_records WHERE tenant_id = $1 AND log_id = ANY ($2)", &[&tenant, &replaced])
                    .await?;
            }
            // In page order, each record once (a page may repeat a record).
            let page: Vec<&Record> = records
                .iter()
                .filter(|r| written.get(r.log_id.as_str()).is_some_and(|w| std::ptr::eq(*w, *r)))
                .collect();
            write_records(&tx, &tenant, &page, now_ms).await?;
            write_children(&tx, &tenant, &page).await?;
            let mut summary = Summary::default();
            for r in &page {
                summary.add(r);
            }
            write_summary(&tx, &tenant, summary).await?;
            tx.commit().await?;
            Ok(outcome)
        })
    }
}

/// Takes the stored rows of `log_ids` out of the summary tables, before they are replaced.
async fn uncount(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: &str,
    log_ids: &[&str],
) -> Result<(), tokio_postgres::Error> {
    let statements = [
        format!(
            "INSERT INTO summary_calls_per_day (tenant_id, day, calls) SELECT $1, {}, -count(*) FROM records \
             WHERE tenant_id = $1 AND log_id = ANY ($2) GROUP BY 2 \
             ON CONFLICT (tenant_id, day) DO UPDATE SET calls = summary_calls_per_day.calls + excluded.calls",
            day_of("start_time")
        ),
        format!(
            "INSERT INTO summary_intentions_per_day (tenant_id, day, intention, turns) SELECT $1, {}, intention, -count(*) \
             FROM record_details WHERE tenant_id = $1 AND log_id = ANY ($2) AND intention IS NOT NULL GROUP BY 2, 3 \
             ON CONFLICT (tenant_id, day, intention) DO UPDATE SET turns = summary_intentions_per_day.turns + excluded.turns",
            day_of("request_time")
        ),
        "INSERT INTO summary_answers (tenant_id, question_title, answer_intent, answers) \
         SELECT $1, coalesce(question_title, ''), coalesce(answer_intent, ''), -count(*) FROM qa_records \
         WHERE tenant_id = $1 AND log_id = ANY ($2) GROUP BY 2, 3 \
         ON CONFLICT (tenant_id, question_title, answer_intent) DO UPDATE SET answers = summary_answers.answers + excluded.answers"
            .to_string(),
    ];
    for sql in &statements {
        tx.execute(sql, &[&tenant, &log_ids]).await?;
    }
    Ok(())
}

async fn write_records(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: &str,
    page: &[&Record],
    now_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    let text = |f: fn(&Record) -> Option<&str>| page.iter().map(|r| f(r)).collect::<Vec<Option<&str>>>();
    let int = |f: fn(&Record) -> Option<i64>| page.iter().map(|r| f(r)).collect::<Vec<Option<i64>>>();
    tx.execute(
        "INSERT INTO records (tenant_id, log_id, call_sor_id, call_id, cti_call_id, calling_number, called_number, \
         start_time, end_time, last_update_time, flow_inst_id, dialog_type, call_data, location_id, flag, \
         business_info, business_info_str, record_file_name, yugao_file_name, raw_json, content_hash, \
         first_seen_at, synced_at) \
         SELECT $1, t.*, $20, $20 FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], \
         $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::BIGINT[], $15::TEXT[], \
         $16::TEXT[], $17::TEXT[], $18::TEXT[], $19::TEXT[], $21::TEXT[], $22::TEXT[]) AS t \
         ON CONFLICT (tenant_id, log_id) DO UPDATE SET call_sor_id = excluded.call_sor_id, call_id = excluded.call_id, \
         cti_call_id = excluded.cti_call_id, calling_number = excluded.calling_number, \
         called_number = excluded.called_number, start_time = excluded.start_time, end_time = excluded.end_time, \
         last_update_time = excluded.last_update_time, flow_inst_id = excluded.flow_inst_id, \
         dialog_type = excluded.dialog_type, call_data = excluded.call_data, location_id = excluded.location_id, \
         flag = excluded.flag, business_info = excluded.business_info, business_info_str = excluded.business_info_str, \
         record_file_name = excluded.record_file_name, yugao_file_name = excluded.yugao_file_name, \
         raw_json = excluded.raw_json, content_hash = excluded.content_hash, synced_at = excluded.synced_at",
        &[
            &tenant,
            &text(|r| Some(&r.log_id)),
            &text(|r| r.call_sor_id.as_deref()),
            &text(|r| r.call_id.as_deref()),
            &text(|r| r.cti_call_id.as_deref()),
            &text(|r| r.calling_number.as_deref()),
            &text(|r| r.called_number.as_deref()),
            &int(|r| r.start_time),
            &int(|r| r.end_time),
            &int(|r| r.last_update_time),
            &text(|r| r.flow_inst_id.as_deref()),
            &text(|r| r.dialog_type.as_deref()),
            &text(|r| r.call_data.as_deref()),
            &int(|r| r.location_id),
            &text(|r| r.flag.as_deref()),
            &text(|r| r.business_info.as_deref()),
            &text(|r| r.business_info_str.as_deref()),
            &text(|r| r.record_file_name.as_deref()),
            &text(|r| r.yugao_file_name.as_deref()),
            &now_ms,
            &text(|r| Some(&r.raw_json)),
            &text(|r| Some(&r.content_hash)),
        ],
    )
    .await
    .map(drop)
}

async fn write_children(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: &str,
    page: &[&Record],
) -> Result<(), tokio_postgres::Error> {
    let turns: Vec<(&str, i64, &crate::api::Turn)> =
        page.iter().flat_map(|r| r.details.iter().enumerate().map(|(i, t)| (r.log_id.as_str(), i as i64, t))).collect();
    if !turns.is_empty() {
        let text = |f: fn(&crate::api::Turn) -> Option<&str>| turns.iter().map(|(_, _, t)| f(t)).collect::<Vec<_>>();
        let int = |f: fn(&crate::api::Turn) -> Option<i64>| turns.iter().map(|(_, _, t)| f(t)).collect::<Vec<_>>();
        let ids: Vec<&str> = turns.iter().map(|(id, _, _)| *id).collect();
        let seqs: Vec<i64> = turns.iter().map(|(_, seq, _)| *seq).collect();
        tx.execute(
            "INSERT INTO record_details (tenant_id, log_id, seq, inter_no, user_saying, intention, system_reply, \
             reply_time, request_time, response_source, involve_mode, extra_json) \
             SELECT $1, t.* FROM unnest($2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], \
             $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::BIGINT[], $12::TEXT[]) AS t",
            &[
                &tenant,
                &ids,
                &seqs,
                &text(|t| t.inter_no.as_deref()),
                &text(|t| t.user_saying.as_deref()),
                &text(|t| t.intention.as_deref()),
                &text(|t| t.system_reply.as_deref()),
                &int(|t| t.reply_time),
                &int(|t| t.request_time),
                &int(|t| t.response_source),
                &int(|t| t.involve_mode),
                &text(|t| t.extra_json.as_deref()),
            ],
        )
        .await?;
    }
    let qas: Vec<(&str, i64, &crate::api::Qa)> =
        page.iter().flat_map(|r| r.qa.iter().enumerate().map(|(i, q)| (r.log_id.as_str(), i as i64, q))).collect();
    if !qas.is_empty() {
        let text = |f: fn(&crate::api::Qa) -> Option<&str>| qas.iter().map(|(_, _, q)| f(q)).collect::<Vec<_>>();
        let ids: Vec<&str> = qas.iter().map(|(id, _, _)| *id).collect();
        let seqs: Vec<i64> = qas.iter().map(|(_, seq, _)| *seq).collect();
        let create: Vec<Option<i64>> = qas.iter().map(|(_, _, q)| q.create_time).collect();
        tx.execute(
            "INSERT INTO qa_records (tenant_id, log_id, seq, inter_no, series_id, question_title, question_type, \
             answer_intent, original_answer, create_time, extra_json) \
             SELECT $1, t.* FROM unnest($2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], \
             $8::TEXT[], $9::TEXT[], $10::BIGINT[], $11::TEXT[]) AS t",
            &[
                &tenant,
                &ids,
                &seqs,
                &text(|q| q.inter_no.as_deref()),
                &text(|q| q.series_id.as_deref()),
                &text(|q| q.question_title.as_deref()),
                &text(|q| q.question_type.as_deref()),
                &text(|q| q.answer_intent.as_deref()),
                &text(|q| q.original_answer.as_deref()),
                &create,
                &text(|q| q.extra_json.as_deref()),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Adds a page's counts to the summary tables: one statement a table.
async fn write_summary(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: &str,
    s: Summary,
) -> Result<(), tokio_postgres::Error> {
    let (days, calls): (Vec<String>, Vec<i64>) = s.calls.into_iter().unzip();
    tx.execute(
        "INSERT INTO summary_calls_per_day (tenant_id, day, calls) SELECT $1, * FROM unnest($2::TEXT[], $3::BIGINT[]) \
         ON CONFLICT (tenant_id, day) DO UPDATE SET calls = summary_calls_per_day.calls + excluded.calls",
        &[&tenant, &days, &calls],
    )
    .await?;
    let (mut days, mut intentions, mut turns) = (Vec::new(), Vec::new(), Vec::new());
    for ((day, intention), n) in s.intentions {
        days.push(day);
        intentions.push(intention);
        turns.push(n);
    }
    tx.execute(
        "INSERT INTO summary_intentions_per_day (tenant_id, day, intention, turns) \
         SELECT $1, * FROM unnest($2::TEXT[], $3::TEXT[], $4::BIGINT[]) \
         ON CONFLICT (tenant_id, day, intention) DO UPDATE SET turns = summary_intentions_per_day.turns + excluded.turns",
        &[&tenant, &days, &intentions, &turns],
    )
    .await?;
    let (mut questions, mut answers, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for ((question, answer), n) in s.answers {
        questions.push(question);
        answers.push(answer);
        counts.push(n);
    }
    tx.execute(
        "INSERT INTO summary_answers (tenant_id, question_title, answer_intent, answers) \
         SELECT $1, * FROM unnest($2::TEXT[], $3::TEXT[], $4::BIGINT[]) \
         ON CONFLICT (tenant_id, question_title, answer_intent) DO UPDATE SET answers = summary_answers.answers + excluded.answers",
        &[&tenant, &questions, &answers, &counts],
    )
    .await?;
    Ok(())
}
