//! Rows of any table in and out of a SQLite store, for `oifde-sync copy`.

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params_from_iter};

use super::{FullText, Sqlite, StoreError};
use crate::store::contract::CopyRows;
use crate::store::tables::{Cell, Table, Ty};

fn to_value(c: &Cell) -> Value {
    match c {
        Cell::Int(v) => v.map_or(Value::Null, Value::Integer),
        Cell::Text(v) => v.clone().map_or(Value::Null, Value::Text),
    }
}

impl CopyRows for Sqlite {
    fn read_snapshot(&self) -> Result<(), StoreError> {
        // A deferred transaction takes its snapshot at its first read.
        self.conn.execute_batch("BEGIN DEFERRED; SELECT count(*) FROM sqlite_master;").map_err(|e| self.sql(e))
    }

    fn count_rows(&self, table: &str) -> Result<i64, StoreError> {
        self.conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0)).map_err(|e| self.sql(e))
    }

    /// Up to `limit` rows after the key `after`, in key order.
    fn read_rows(&self, t: &Table, after: Option<&[Cell]>, limit: usize) -> Result<Vec<Vec<Cell>>, StoreError> {
        let placeholders = vec!["?"; t.key].join(", ");
        let filter = match after {
            Some(_) => format!("WHERE ({}) > ({placeholders})", t.key_list()),
            None => String::new(),
        };
        let sql =
            format!("SELECT {} FROM \"{}\" {filter} ORDER BY {} LIMIT {limit}", t.column_list(), t.name, t.key_list());
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        let params: Vec<Value> = after.unwrap_or(&[]).iter().map(to_value).collect();
        stmt.query_map(params_from_iter(params), |r| {
            t.columns
                .iter()
                .enumerate()
                .map(|(i, (_, ty))| match ty {
                    Ty::Int => r.get(i).map(Cell::Int),
                    Ty::Text => r.get(i).map(Cell::Text),
                })
                .collect()
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.sql(e))
    }

    /// Writes copied rows (keeping rows already there) and the copy's
    /// position, in one transaction.
    fn write_rows(
        &mut self,
        t: &Table,
        rows: &[Vec<Cell>],
        source: &str,
        key: &str,
        done: bool,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |e| super::sql_error(&path, e);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
        {
            // Turns and Q&A rows are written through their views, whose
            // triggers keep rows already there and key them by the record's
            // rowid in this store.
            let view: bool = tx
                .query_row("SELECT type = 'view' FROM sqlite_master WHERE name = ?1", [t.name], |r| r.get(0))
                .map_err(sql)?;
            let insert = format!(
                "INSERT INTO \"{}\" ({}) VALUES ({}){}",
                t.name,
                t.column_list(),
                vec!["?"; t.columns.len()].join(", "),
                if view { "" } else { " ON CONFLICT DO NOTHING" }
            );
            let mut stmt = tx.prepare(&insert).map_err(sql)?;
            for row in rows {
                stmt.execute(params_from_iter(row.iter().map(to_value))).map_err(sql)?;
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO copy_progress (source, table_name, last_key, done) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![source, t.name, key, done],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Where a copy from `source` stands for table `t`: the last key and whether it is done.
    fn copy_position(&self, source: &str, t: &Table) -> Result<Option<(Vec<Cell>, bool)>, StoreError> {
        let row: Option<(String, bool)> = self
            .conn
            .query_row(
                "SELECT last_key, done FROM copy_progress WHERE source = ?1 AND table_name = ?2",
                [source, t.name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        Ok(row.and_then(|(key, done)| t.parse_key(&key).map(|k| (k, done))))
    }

    /// Deletes every row of `tables` (children first) and the copy's
    /// positions, in one transaction.
    fn clear_tables(&mut self, tables: &[Table]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |e| super::sql_error(&path, e);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
        for t in tables.iter().rev() {
            tx.execute(&format!("DELETE FROM \"{}\"", t.name), []).map_err(sql)?;
        }
        tx.execute("DELETE FROM copy_progress", []).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// The full-text index is built again over the copied turns.
    fn finish_copy(&mut self) -> Result<(), StoreError> {
        if self.full_text != FullText::Off {
            self.conn
                .execute("INSERT INTO record_details_fts (record_details_fts) VALUES ('rebuild')", [])
                .map_err(|e| self.sql(e))?;
        }
        Ok(())
    }
}
