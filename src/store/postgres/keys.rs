//! The query keys of one tenant in PostgreSQL: the same lifecycle as in
//! SQLite (`store/keys.rs`), every statement scoped by `tenant_id`.

use std::collections::HashSet;
use std::path::Path;

use tokio_postgres::Row;

use super::Postgres;
use crate::keys::QueryKey;
use crate::keys::file::KeysFileRead;
use crate::keys::file::{Appended, Mark, read_appended};
use crate::keys::{KeyRow, KeyState, KeyUpdate, SkippedWindow, StreamCursor};
use crate::store::StoreError;
use crate::store::contract::Keys;
use crate::store::sql::ordered_counts;

const SELECT_KEY: &str = "SELECT k.query_key, k.kind, k.source, k.state, k.added_at, k.last_query_at, \
     k.next_query_at, k.records_found, k.misses, c.cursor_time, k.failed_passes, k.last_error, k.call_begin, k.call_end FROM query_keys k \
     LEFT JOIN sync_cursors c ON c.tenant_id = k.tenant_id AND c.query_key = k.query_key \
     WHERE k.tenant_id = $1";

fn key_row(r: &Row) -> KeyRow {
    KeyRow {
        query_key: r.get(0),
        kind: r.get(1),
        source: r.get(2),
        state: KeyState::parse(r.get(3)).unwrap_or(KeyState::Removed),
        added_at: r.get(4),
        last_query_at: r.get(5),
        next_query_at: r.get(6),
        records_found: r.get(7),
        misses: r.get(8),
        cursor_time: r.get(9),
        failed_passes: r.get(10),
        last_error: r.get(11),
        call_begin: r.get(12),
        call_end: r.get(13),
    }
}

/// Adds keys from `source`; those in one of `revive` states become active
/// again. One statement for many keys. Returns how many are new or revived.
pub(super) async fn upsert(
    client: &impl tokio_postgres::GenericClient,
    tenant: &str,
    keys: &[QueryKey],
    source: &str,
    revive: &[KeyState],
    now_ms: i64,
) -> Result<u64, tokio_postgres::Error> {
    let mut seen = HashSet::new();
    let (mut names, mut kinds) = (Vec::new(), Vec::new());
    for key in keys {
        let name = key.to_string();
        if seen.insert(name.clone()) {
            names.push(name);
            kinds.push(key.polling().as_str().to_string());
        }
    }
    let revive: Vec<&str> = revive.iter().map(|s| s.as_str()).collect();
    let merge = format!(
        "UPDATE query_keys SET {}",
        crate::keys::add_source_sql("tenant_id = $1 AND query_key = ANY ($2)", "$3::TEXT")
    );
    client.execute(&merge, &[&tenant, &names, &source]).await?;
    client
        .execute(
            "INSERT INTO query_keys (tenant_id, query_key, kind, source, state, added_at) \
             SELECT $1, k, kind, $4, 'active', $5 FROM unnest($2::TEXT[], $3::TEXT[]) AS t (k, kind) \
             ON CONFLICT (tenant_id, query_key) DO UPDATE SET state = 'active', source = excluded.source, misses = 0, \
             next_query_at = NULL, added_at = excluded.added_at WHERE query_keys.state = ANY ($6)",
            &[&tenant, &names, &kinds, &source, &now_ms, &revive],
        )
        .await
}

impl Postgres {
    fn read_keys_file_in_tx(
        &self,
        file: &Path,
        name: &str,
        now_ms: i64,
    ) -> Result<Result<KeysFileRead, String>, StoreError> {
        let prev: Option<Mark> = self.run(async {
            let row = self
                .client
                .query_opt(
                    "SELECT file_id, \"offset\", lines, head FROM key_files WHERE tenant_id = $1 AND path = $2",
                    &[&self.tenant, &name],
                )
                .await?;
            Ok(row.map(|r| Mark {
                file_id: r.get(0),
                offset: r.get::<_, i64>(1) as u64,
                lines: r.get::<_, i64>(2) as u64,
                head: r.get(3),
            }))
        })?;
        let mut new_keys = 0u64;
        let read = read_appended(file, prev.as_ref(), &mut |keys: &[QueryKey]| {
            new_keys +=
                self.run(upsert(&self.client, &self.tenant, keys, "keys_file", &[KeyState::Removed], now_ms))?;
            Ok::<(), StoreError>(())
        });
        let appended: Appended = match read {
            Err(msg) => return Ok(Err(msg)),
            Ok(inner) => inner?,
        };
        let m = &appended.mark;
        self.run(self.client.execute(
            "INSERT INTO key_files (tenant_id, path, file_id, \"offset\", lines, head, read_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, path) DO UPDATE SET file_id = excluded.file_id, \
             \"offset\" = excluded.\"offset\", lines = excluded.lines, head = excluded.head, read_at = excluded.read_at",
            &[&self.tenant, &name, &m.file_id, &(m.offset as i64), &(m.lines as i64), &m.head, &now_ms],
        ))?;
        Ok(Ok(KeysFileRead::of(file, appended, new_keys)))
    }

    fn select_keys(
        &self,
        filter: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<KeyRow>, StoreError> {
        let sql = format!("{SELECT_KEY} {filter}");
        self.run(async {
            let rows = self.client.query(&sql, params).await?;
            Ok(rows.iter().map(key_row).collect())
        })
    }
}

impl Keys for Postgres {
    fn configure_keys(&mut self, configured: &[QueryKey], now_ms: i64) -> Result<(), StoreError> {
        let listed: Vec<String> = configured.iter().map(ToString::to_string).collect();
        let tenant = self.tenant.clone();
        let client = &mut self.client;
        let removed: Vec<String> = super::run_on(self.rt.as_ref(), &self.shown, async move {
            let tx = client.transaction().await?;
            upsert(&tx, &tenant, configured, "config", &[KeyState::Removed], now_ms).await?;
            let rows = tx
                .query(
                    "SELECT query_key, source FROM query_keys WHERE tenant_id = $1 \
                     AND ',' || source || ',' LIKE '%,config,%' AND state != 'removed' AND NOT (query_key = ANY ($2))",
                    &[&tenant, &listed],
                )
                .await?;
            let mut removed = Vec::new();
            for row in rows {
                let (key, sources): (String, String) = (row.get(0), row.get(1));
                // A key stays while another source (the keys file, `keys add`) names it.
                match crate::keys::sources_without(&sources, "config") {
                    Some(left) => {
                        tx.execute(
                            "UPDATE query_keys SET source = $3 WHERE tenant_id = $1 AND query_key = $2",
                            &[&tenant, &key, &left],
                        )
                        .await?;
                    }
                    None => {
                        tx.execute(
                            "UPDATE query_keys SET state = 'removed' WHERE tenant_id = $1 AND query_key = $2",
                            &[&tenant, &key],
                        )
                        .await?;
                        removed.push(key);
                    }
                }
            }
            tx.commit().await?;
            Ok(removed)
        })?;
        for key in removed {
            tracing::info!(key = %key, "key no longer configured; marked removed (its cursor is kept)");
        }
        Ok(())
    }

    /// Reads what was appended to the keys file and adds its keys, in one
    /// transaction with the file's new mark.
    fn read_keys_file(&mut self, file: &Path, now_ms: i64) -> Result<Result<KeysFileRead, String>, StoreError> {
        let name = file.display().to_string();
        self.run(self.client.batch_execute("BEGIN"))?;
        let result = self.read_keys_file_in_tx(file, &name, now_ms);
        let end = if matches!(result, Ok(Ok(_))) { "COMMIT" } else { "ROLLBACK" };
        self.run(self.client.batch_execute(end))?;
        result
    }

    /// Written [`crate::store::KEYS_PER_TRANSACTION`] at a time, each
    /// chunk its own transaction, so that the daemon is never kept waiting long.
    fn add_keys(&mut self, keys: &[QueryKey], now_ms: i64) -> Result<u64, StoreError> {
        let revive = [KeyState::Done, KeyState::GivenUp, KeyState::Removed];
        let mut changed = 0;
        for chunk in keys.chunks(crate::store::KEYS_PER_TRANSACTION) {
            changed += self.run(upsert(&self.client, &self.tenant, chunk, "command", &revive, now_ms))?;
        }
        Ok(changed)
    }

    fn forget_keys(&mut self, keys: &[QueryKey]) -> Result<u64, StoreError> {
        let names: Vec<String> = keys.iter().map(ToString::to_string).collect();
        let tenant = self.tenant.clone();
        let client = &mut self.client;
        super::run_on(self.rt.as_ref(), &self.shown, async move {
            let tx = client.transaction().await?;
            let known = tx
                .execute("DELETE FROM query_keys WHERE tenant_id = $1 AND query_key = ANY ($2)", &[&tenant, &names])
                .await?;
            tx.execute("DELETE FROM sync_cursors WHERE tenant_id = $1 AND query_key = ANY ($2)", &[&tenant, &names])
                .await?;
            tx.commit().await?;
            Ok(known)
        })
    }

    fn has_keys(&self) -> Result<bool, StoreError> {
        self.run(async {
            let row = self
                .client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM query_keys WHERE tenant_id = $1 AND state != 'removed' \
                     AND query_key != '*')",
                    &[&self.tenant],
                )
                .await?;
            Ok(row.get(0))
        })
    }

    fn set_window_only(&mut self, on: bool, now_ms: i64) -> Result<(), StoreError> {
        if on {
            self.run(upsert(&self.client, &self.tenant, &[QueryKey::WindowOnly], "auto", &[KeyState::Removed], now_ms))
                .map(drop)
        } else {
            self.run(self.client.execute(
                "UPDATE query_keys SET state = 'removed' WHERE tenant_id = $1 AND query_key = '*' AND state != 'removed'",
                &[&self.tenant],
            ))
            .map(drop)
        }
    }

    fn due_keys(&self, now_ms: i64) -> Result<Vec<KeyRow>, StoreError> {
        self.select_keys(
            "AND (k.state IN ('active', 'settling') OR (k.state = 'waiting' AND k.next_query_at <= $2)) \
             ORDER BY CASE k.state WHEN 'active' THEN 0 WHEN 'settling' THEN 1 ELSE 2 END",
            &[&self.tenant, &now_ms],
        )
    }

    fn list_keys(&self, state: Option<KeyState>) -> Result<Vec<KeyRow>, StoreError> {
        let state = state.map(KeyState::as_str);
        self.select_keys("AND ($2::TEXT IS NULL OR k.state = $2) ORDER BY k.query_key", &[&self.tenant, &state])
    }

    fn key_queried(&mut self, key: &str, u: KeyUpdate, error: Option<&str>, now_ms: i64) -> Result<(), StoreError> {
        self.run(self.client.execute(
            "UPDATE query_keys SET state = $3, next_query_at = $4, records_found = coalesce($5, records_found), \
             misses = $6, last_query_at = $7, last_error = $8 WHERE tenant_id = $1 AND query_key = $2",
            &[&self.tenant, &key, &u.state.as_str(), &u.next_query_at, &u.records_found, &u.misses, &now_ms, &error],
        ))
        .map(drop)
    }

    fn stream_key_read(&mut self, key: &str, records: i64, now_ms: i64) -> Result<(), StoreError> {
        self.run(self.client.execute(
            "UPDATE query_keys SET last_query_at = $3, records_found = records_found + $4, failed_passes = 0 \
             WHERE tenant_id = $1 AND query_key = $2",
            &[&self.tenant, &key, &now_ms, &records],
        ))
        .map(drop)
    }

    fn key_failed_pass(&mut self, key: &str) -> Result<i64, StoreError> {
        self.run(async {
            let row = self
                .client
                .query_opt(
                    "UPDATE query_keys SET failed_passes = failed_passes + 1 WHERE tenant_id = $1 AND query_key = $2 \
                     RETURNING failed_passes",
                    &[&self.tenant, &key],
                )
                .await?;
            Ok(row.map_or(0, |r| r.get(0)))
        })
    }

    fn skip_window(&mut self, key: &str, start: i64, end: i64, reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let tenant = self.tenant.clone();
        let client = &mut self.client;
        super::run_on(self.rt.as_ref(), &self.shown, async move {
            let tx = client.transaction().await?;
            tx.execute(
                "INSERT INTO skipped_windows (tenant_id, query_key, window_start, window_end, reason, skipped_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, query_key, window_start) DO UPDATE SET \
                 window_end = excluded.window_end, reason = excluded.reason, skipped_at = excluded.skipped_at",
                &[&tenant, &key, &start, &end, &reason, &now_ms],
            )
            .await?;
            tx.execute(
                "UPDATE query_keys SET failed_passes = 0 WHERE tenant_id = $1 AND query_key = $2",
                &[&tenant, &key],
            )
            .await?;
            tx.execute(super::ledger::SET_CURSOR, &[&tenant, &key, &(end * 1000), &now_ms]).await?;
            tx.commit().await
        })
    }

    fn skipped_windows(&self) -> Result<Vec<SkippedWindow>, StoreError> {
        self.run(async {
            let rows = self
                .client
                .query(
                    "SELECT query_key, window_start, window_end, reason FROM skipped_windows WHERE tenant_id = $1 \
                     ORDER BY window_start, query_key",
                    &[&self.tenant],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| SkippedWindow { query_key: r.get(0), start: r.get(1), end: r.get(2), reason: r.get(3) })
                .collect())
        })
    }

    fn clear_skipped(&mut self, key: Option<&str>, start: i64, end: i64) -> Result<(), StoreError> {
        self.run(self.client.execute(
            "DELETE FROM skipped_windows WHERE tenant_id = $1 AND ($2::TEXT IS NULL OR query_key = $2) \
             AND window_start >= $3 AND window_end <= $4",
            &[&self.tenant, &key, &start, &end],
        ))
        .map(drop)
    }

    fn key_counts(&self) -> Result<Vec<(KeyState, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = self.run(async {
            let rows = self
                .client
                .query("SELECT state, count(*) FROM query_keys WHERE tenant_id = $1 GROUP BY state", &[&self.tenant])
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })?;
        Ok(ordered_counts(rows))
    }

    fn stream_cursors(&self) -> Result<Vec<StreamCursor>, StoreError> {
        let rows =
            self.select_keys("AND k.state = 'active' AND k.kind = 'stream' ORDER BY k.query_key", &[&self.tenant])?;
        Ok(rows.into_iter().map(|k| StreamCursor { query_key: k.query_key, cursor_time: k.cursor_time }).collect())
    }
}
