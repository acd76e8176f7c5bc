//! Rows of any table in and out of one tenant of a PostgreSQL store, for
//! `oifde-sync copy`. A copied row takes this store's tenant.

use tokio_postgres::types::ToSql;

use super::Postgres;
use crate::store::StoreError;
use crate::store::contract::CopyRows;
use crate::store::tables::{Cell, Table, Ty};

fn param(c: &Cell) -> Box<dyn ToSql + Sync + Send> {
    match c {
        Cell::Int(v) => Box::new(*v),
        Cell::Text(v) => Box::new(v.clone()),
    }
}

/// The column that holds `column` of table `t` here: a record's own
/// `tenant_id` (as the API sent it) is `api_tenant_id`, since `tenant_id`
/// is the partition.
fn column_here(t: &Table, column: &'static str) -> &'static str {
    if t.name == "records" && column == "tenant_id" { "api_tenant_id" } else { column }
}

fn columns_here(t: &Table) -> String {
    t.columns.iter().map(|(c, _)| format!("\"{}\"", column_here(t, c))).collect::<Vec<_>>().join(", ")
}

impl CopyRows for Postgres {
    fn read_snapshot(&self) -> Result<(), StoreError> {
        self.run(self.client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1"))
    }

    fn count_rows(&self, table: &str) -> Result<i64, StoreError> {
        let sql = format!("SELECT count(*) FROM \"{table}\" WHERE tenant_id = $1");
        self.run(async { Ok(self.client.query_one(&sql, &[&self.tenant]).await?.get(0)) })
    }

    fn read_rows(&self, t: &Table, after: Option<&[Cell]>, limit: usize) -> Result<Vec<Vec<Cell>>, StoreError> {
        let filter = match after {
            Some(_) => {
                let placeholders: Vec<String> = (0..t.key).map(|i| format!("${}", i + 2)).collect();
                format!("AND ({}) > ({})", t.key_list(), placeholders.join(", "))
            }
            None => String::new(),
        };
        let sql = format!(
            "SELECT {} FROM \"{}\" WHERE tenant_id = $1 {filter} ORDER BY {} LIMIT {limit}",
            columns_here(t),
            t.name,
            t.key_list()
        );
        let keys: Vec<Box<dyn ToSql + Sync + Send>> = after.unwrap_or(&[]).iter().map(param).collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.tenant];
        params.extend(keys.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)));
        self.run(async {
            let rows = self.client.query(&sql, &params).await?;
            Ok(rows
                .iter()
                .map(|r| {
                    t.columns
                        .iter()
                        .enumerate()
                        .map(|(i, (_, ty))| match ty {
                            Ty::Int => Cell::Int(r.get(i)),
                            Ty::Text => Cell::Text(r.get(i)),
                        })
                        .collect()
                })
                .collect())
        })
    }

    /// Writes copied rows (one statement of arrays; rows already there are
    /// kept) and the copy's position, in one transaction.
    fn write_rows(
        &mut self,
        t: &Table,
        rows: &[Vec<Cell>],
        source: &str,
        key: &str,
        done: bool,
    ) -> Result<(), StoreError> {
        // tenant_id is this store's; a record's own goes beside it.
        let columns: Vec<(usize, &str, Ty)> =
            t.columns.iter().enumerate().map(|(i, (c, ty))| (i, column_here(t, c), *ty)).collect();
        let names: Vec<String> = columns.iter().map(|(_, c, _)| format!("\"{c}\"")).collect();
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(n, (_, _, ty))| format!("${}::{}[]", n + 2, if *ty == Ty::Int { "BIGINT" } else { "TEXT" }))
            .collect();
        let insert = format!(
            "INSERT INTO \"{}\" (tenant_id, {}) SELECT $1, * FROM unnest({}) ON CONFLICT DO NOTHING",
            t.name,
            names.join(", "),
            arrays.join(", ")
        );
        let values: Vec<Box<dyn ToSql + Sync + Send>> = columns
            .iter()
            .map(|(i, _, ty)| -> Box<dyn ToSql + Sync + Send> {
                match ty {
                    Ty::Int => Box::new(
                        rows.iter().map(|r| if let Cell::Int(v) = &r[*i] { *v } else { None }).collect::<Vec<_>>(),
                    ),
                    Ty::Text => Box::new(
                        rows.iter()
                            .map(|r| if let Cell::Text(v) = &r[*i] { v.clone() } else { None })
                            .collect::<Vec<_>>(),
                    ),
                }
            })
            .collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.tenant];
        params.extend(values.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)));
        let tenant = self.tenant.clone();
        let client = &mut self.client;
        super::run_on(self.rt.as_ref(), &self.shown, async move {
            let tx = client.transaction().await?;
            if !rows.is_empty() {
                tx.execute(&insert, &params).await?;
            }
            tx.execute(
                "INSERT INTO copy_progress (tenant_id, source, table_name, last_key, done) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, source, table_name) DO UPDATE SET last_key = excluded.last_key, done = excluded.done",
                &[&tenant, &source, &t.name, &key, &done],
            )
            .await?;
            tx.commit().await
        })
    }

    fn copy_position(&self, source: &str, t: &Table) -> Result<Option<(Vec<Cell>, bool)>, StoreError> {
        let row: Option<(String, bool)> = self.run(async {
            let row = self
                .client
                .query_opt(
                    "SELECT last_key, done FROM copy_progress WHERE tenant_id = $1 AND source = $2 AND table_name = $3",
                    &[&self.tenant, &source, &t.name],
                )
                .await?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })?;
        Ok(row.and_then(|(key, done)| t.parse_key(&key).map(|k| (k, done))))
    }

    /// Deletes this tenant's rows of `tables` (children first) and its copy
    /// positions, in one transaction.
    fn clear_tables(&mut self, tables: &[Table]) -> Result<(), StoreError> {
        let names: Vec<&'static str> = tables.iter().rev().map(|t| t.name).chain(["copy_progress"]).collect();
        let tenant = self.tenant.clone();
        let client = &mut self.client;
        super::run_on(self.rt.as_ref(), &self.shown, async move {
            let tx = client.transaction().await?;
            for name in names {
                tx.execute(&format!("DELETE FROM \"{name}\" WHERE tenant_id = $1"), &[&tenant]).await?;
            }
            tx.commit().await
        })
    }

    /// New runs are numbered after the copied ones.
    fn finish_copy(&mut self) -> Result<(), StoreError> {
        self.run(self.client.batch_execute(
            "SELECT setval(pg_get_serial_sequence('sync_runs', 'id'), \
             greatest((SELECT max(id) FROM sync_runs), (SELECT last_value FROM sync_runs_id_seq)))",
        ))
    }
}
