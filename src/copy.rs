//! `oifde-sync copy`: one store into another (SQLite into PostgreSQL, or a
//! PostgreSQL tenant into a SQLite file), table by table in key order, a
//! batch a transaction. The target records how far each table has come, so
//! an interrupted copy resumes where it stopped. A target holding anything
//! else is refused (or, asked to, replaced). At the end both sides are
//! compared row by row.

use crate::progress::ProgressSink;
use crate::store::tables::{Cell, Table, tables};
use crate::store::{Store, StoreError};

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
