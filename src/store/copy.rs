//! `oifde-sync copy`: one store into another (SQLite into PostgreSQL, or a
//! PostgreSQL tenant into a SQLite file), table by table in key order, a
//! batch a transaction. The target records how far each table has come, so
//! an interrupted copy resumes where it stopped. A target holding anything
//! else is refused (or, asked to, replaced). At the end both sides are
//! compared row by row.

use super::{Store, StoreError};
use crate::progress::ProgressSink;
use crate::run_log::Figures;

/// A column's type in both stores: INTEGER/BIGINT or TEXT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Int,
    Text,
}

/// One value, typed even when NULL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Cell {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Cell::Int(v) => v.map_or(serde_json::Value::Null, Into::into),
            Cell::Text(v) => v.clone().map_or(serde_json::Value::Null, Into::into),
        }
    }

    fn from_json(ty: Ty, v: &serde_json::Value) -> Cell {
        match ty {
            Ty::Int => Cell::Int(v.as_i64()),
            Ty::Text => Cell::Text(v.as_str().map(str::to_string)),
        }
    }
}

/// A table as both stores hold it: its columns, the key's first.
pub struct Table {
    pub name: &'static str,
    pub columns: Vec<(&'static str, Ty)>,
    /// The first `key` columns are the table's key (without `tenant_id` in PostgreSQL).
    pub key: usize,
}

impl Table {
    pub fn column_list(&self) -> String {
        self.columns.iter().map(|(c, _)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
    }

    pub fn key_list(&self) -> String {
        self.columns[..self.key].iter().map(|(c, _)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
    }

    fn key_text(&self, key: &[Cell]) -> String {
        serde_json::Value::Array(key.iter().map(Cell::to_json).collect()).to_string()
    }

    /// The key stored by [`Table::key_text`]; `None` when it does not fit this table.
    /// A key as [`Table::key_text`] wrote it; `[]` is a table copied with no row.
    pub fn parse_key(&self, text: &str) -> Option<Vec<Cell>> {
        let values: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
        (values.len() == self.key || values.is_empty())
            .then(|| values.iter().zip(&self.columns).map(|(v, (_, ty))| Cell::from_json(*ty, v)).collect())
    }
}

/// Every table copied, in an order that keeps references valid.
pub fn tables() -> Vec<Table> {
    use Ty::{Int, Text};
    let t = |name, key, columns: &[(&'static str, Ty)]| Table { name, columns: columns.to_vec(), key };
    let mut runs = vec![("id", Int), ("kind", Text), ("started_at", Int), ("finished_at", Int), ("status", Text)];
    runs.extend(Figures::COLUMNS.iter().map(|c| (*c, Int)));
    runs.push(("error", Text));
    vec![
        t(
            "records",
            1,
            &[
                ("log_id", Text),
                ("tenant_id", Text),
                ("call_sor_id", Text),
                ("call_id", Text),
                ("cti_call_id", Text),
                ("calling_number", Text),
                ("called_number", Text),
                ("start_time", Int),
                ("end_time", Int),
                ("last_update_time", Int),
                ("flow_inst_id", Text),
                ("dialog_type", Text),
                ("call_data", Text),
                ("location_id", Int),
                ("flag", Text),
                ("business_info", Text),
                ("business_info_str", Text),
                ("record_file_name", Text),
                ("yugao_file_name", Text),
                ("raw_json", Text),
                ("content_hash", Text),
                ("first_seen_at", Int),
                ("synced_at", Int),
            ],
        ),
        t(
            "record_details",
            2,
            &[
                ("log_id", Text),
                ("seq", Int),
                ("inter_no", Text),
                ("user_saying", Text),
                ("intention", Text),
                ("system_reply", Text),
                ("reply_time", Int),
                ("request_time", Int),
                ("response_source", Int),
                ("involve_mode", Int),
                ("extra_json", Text),
            ],
        ),
        t(
            "qa_records",
            2,
            &[
                ("log_id", Text),
                ("seq", Int),
                ("inter_no", Text),
                ("series_id", Text),
                ("question_title", Text),
                ("question_type", Text),
                ("answer_intent", Text),
                ("original_answer", Text),
                ("create_time", Int),
                ("extra_json", Text),
            ],
        ),
        t(
            "query_keys",
            1,
            &[
                ("query_key", Text),
                ("kind", Text),
                ("source", Text),
                ("state", Text),
                ("added_at", Int),
                ("last_query_at", Int),
                ("next_query_at", Int),
                ("records_found", Int),
                ("misses", Int),
                ("failed_passes", Int),
                ("last_error", Text),
            ],
        ),
        t("sync_cursors", 1, &[("query_key", Text), ("cursor_time", Int), ("updated_at", Int)]),
        Table { name: "sync_runs", columns: runs, key: 1 },
        t(
            "backfill_progress",
            3,
            &[("job", Text), ("query_key", Text), ("window_start", Int), ("window_end", Int), ("finished_at", Int)],
        ),
        t(
            "skipped_windows",
            2,
            &[("query_key", Text), ("window_start", Int), ("window_end", Int), ("reason", Text), ("skipped_at", Int)],
        ),
        t(
            "key_files",
            1,
            &[("path", Text), ("file_id", Text), ("offset", Int), ("lines", Int), ("head", Text), ("read_at", Int)],
        ),
        t("summary_calls_per_day", 1, &[("day", Text), ("calls", Int)]),
        t("summary_intentions_per_day", 2, &[("day", Text), ("intention", Text), ("turns", Int)]),
        t("summary_answers", 2, &[("question_title", Text), ("answer_intent", Text), ("answers", Int)]),
    ]
}

/// Rows a transaction.
const BATCH: usize = 2000;

/// What a copy did: each table's rows in the source and in the target.
#[derive(Debug)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, i64, i64)>,
    pub resumed: bool,
    /// A resumed copy found rows that changed in the source since it was
    /// interrupted, and copied everything again.
    pub redone: bool,
}

/// What the target holds, before a copy into it.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// Nothing: a copy starts.
    Empty,
    /// An unfinished copy from the same source: it resumes.
    Unfinished,
    /// A finished copy, or state of its own (records, keys, cursors, runs):
    /// refused unless replaced. Says what it holds.
    Holds(String),
}

/// What `to` holds with respect to a copy from `source`.
pub fn target_state(source: &str, to: &Store) -> Result<Target, StoreError> {
    let tables = tables();
    let mut positions = Vec::new();
    for t in &tables {
        positions.push(to.copy_position(source, t)?);
    }
    if positions.iter().any(Option::is_some) {
        return Ok(if positions.iter().all(|p| p.as_ref().is_some_and(|(_, done)| *done)) {
            Target::Holds(format!("a finished copy of {source}"))
        } else {
            Target::Unfinished
        });
    }
    let mut held = Vec::new();
    for t in &tables {
        let n = to.count_rows(t.name)?;
        if n > 0 {
            held.push(format!("{n} rows of {}", t.name));
        }
    }
    Ok(if held.is_empty() { Target::Empty } else { Target::Holds(held.join(", ")) })
}

/// Copies `from` into `to`, whose [`target_state`] the caller found (and
/// passes as `state`): empty, holding an unfinished copy from `from`
/// (resumed), or, with `replace`, anything (deleted first). At the end both
/// sides are compared table by table, row by row (a digest in key order): a
/// resumed copy whose source changed meanwhile is done again from the start,
/// so that no stale row is kept.
pub fn copy(
    from: &Store,
    to: &mut Store,
    progress: &dyn ProgressSink,
    state: &Target,
    replace: bool,
) -> Result<CopyReport, StoreError> {
    let tables = tables();
    if replace && *state != Target::Empty {
        to.clear_tables(&tables)?;
    }
    let resumed = !replace && *state == Target::Unfinished;
    let mut counts = Vec::new();
    for t in &tables {
        counts.push(from.count_rows(t.name)?);
    }
    progress.planned(counts.iter().sum::<i64>() as u64);
    copy_tables(from, to, &tables, progress)?;
    let mut redone = false;
    if differs(from, to, &tables)?.is_some() {
        // Rows copied before an interruption changed in the source since.
        to.clear_tables(&tables)?;
        copy_tables(from, to, &tables, progress)?;
        redone = true;
        if let Some(table) = differs(from, to, &tables)? {
            return Err(StoreError::Database {
                url: to.describe(),
                msg: format!("the copy of table {table} differs from its source after a second copy"),
            });
        }
    }
    to.finish_copy()?;
    let mut report = CopyReport { tables: Vec::new(), resumed, redone };
    for (t, n) in tables.iter().zip(counts) {
        report.tables.push((t.name, n, to.count_rows(t.name)?));
    }
    Ok(report)
}

/// Every table, from where an earlier copy stopped.
fn copy_tables(from: &Store, to: &mut Store, tables: &[Table], progress: &dyn ProgressSink) -> Result<(), StoreError> {
    let source = from.describe();
    for t in tables {
        let mut after = match to.copy_position(&source, t)? {
            Some((_, true)) => {
                let n = to.count_rows(t.name)?;
                progress.advanced(n as u64, 0);
                continue;
            }
            Some((key, false)) => Some(key).filter(|k| !k.is_empty()),
            None => None,
        };
        loop {
            let rows = from.read_rows(t, after.as_deref(), BATCH)?;
            let done = rows.len() < BATCH;
            if let Some(last) = rows.last() {
                after = Some(last[..t.key].to_vec());
            }
            let key = t.key_text(after.as_deref().unwrap_or(&[]));
            to.write_rows(t, &rows, &source, &key, done)?;
            progress.advanced(rows.len() as u64, if t.name == "records" { rows.len() as u64 } else { 0 });
            if done {
                break;
            }
        }
    }
    Ok(())
}

/// The first table whose rows differ between the two stores, if any.
fn differs(a: &Store, b: &Store, tables: &[Table]) -> Result<Option<&'static str>, StoreError> {
    for t in tables {
        if digest(a, t)? != digest(b, t)? {
            return Ok(Some(t.name));
        }
    }
    Ok(None)
}

/// FNV-1a over a table's rows in key order, every column, with NULL apart
/// from any value.
pub fn digest(store: &Store, t: &Table) -> Result<(u64, u64), StoreError> {
    let mut h = crate::fnv::START;
    let mut feed = |bytes: &[u8]| h = crate::fnv::fnv1a(h, bytes);
    let (mut after, mut rows) = (None::<Vec<Cell>>, 0u64);
    loop {
        let batch = store.read_rows(t, after.as_deref(), BATCH)?;
        for row in &batch {
            for cell in row {
                match cell {
                    Cell::Int(None) | Cell::Text(None) => feed(b"\x00N"),
                    Cell::Int(Some(v)) => feed(&[b"\x01".as_slice(), &v.to_le_bytes()].concat()),
                    Cell::Text(Some(v)) => {
                        feed(&(v.len() as u64).to_le_bytes());
                        feed(v.as_bytes());
                    }
                }
            }
        }
        rows += batch.len() as u64;
        if batch.len() < BATCH {
            return Ok((rows, h));
        }
        after = batch.last().map(|r| r[..t.key].to_vec());
    }
}

#[cfg(test)]
#[test]
fn keys_survive_their_text_form() {
    let t = &tables()[1];
    let key = vec![Cell::Text(Some("a\"b".into())), Cell::Int(Some(3))];
    assert_eq!(t.parse_key(&t.key_text(&key)), Some(key));
    assert_eq!(t.parse_key("[\"only one\"]"), None);
}
