//! The query keys the store knows: where each came from, its state, when it
//! is next due, and how far each keys file has been read.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Sqlite, sql_error};
use crate::keys::file::{Appended, KeysFileRead, Mark, read_appended};
use crate::keys::{KeyRow, KeyState, KeyUpdate, QueryKey, SkippedWindow, StreamCursor};
use crate::store::StoreError;
use crate::store::contract::Keys;
use crate::store::sql::ordered_counts;

const SELECT_KEY: &str = "SELECT k.query_key, k.kind, k.source, k.state, k.added_at, k.last_query_at, \
     k.next_query_at, k.records_found, k.misses, c.cursor_time, k.failed_passes, k.last_error, k.call_begin, k.call_end FROM query_keys k \
     LEFT JOIN sync_cursors c ON c.query_key = k.query_key";

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    let state: String = r.get(3)?;
    Ok(KeyRow {
        query_key: r.get(0)?,
        kind: r.get(1)?,
        source: r.get(2)?,
        state: KeyState::parse(&state).unwrap_or(KeyState::Removed),
        added_at: r.get(4)?,
        last_query_at: r.get(5)?,
        next_query_at: r.get(6)?,
        records_found: r.get(7)?,
        misses: r.get(8)?,
        cursor_time: r.get(9)?,
        failed_passes: r.get(10)?,
        last_error: r.get(11)?,
        call_begin: r.get(12)?,
        call_end: r.get(13)?,
    })
}

/// Adds `key` from `source`: a key that is not removed adds `source` to its
/// set; a key in one of `revive` states becomes active again with it.
/// Returns whether the key is new or revived.
pub(super) fn upsert(
    tx: &Transaction<'_>,
    key: &QueryKey,
    source: &str,
    revive: &[KeyState],
    now_ms: i64,
) -> rusqlite::Result<bool> {
    let name = key.to_string();
    let merge = format!("UPDATE query_keys SET {}", crate::keys::add_source_sql("query_key = ?1", "?2"));
    tx.prepare_cached(&merge)?.execute(params![name, source])?;
    let states: Vec<String> = revive.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let sql = format!(
        "INSERT INTO query_keys (query_key, kind, source, state, added_at) VALUES (?1, ?2, ?3, 'active', ?4) \
         ON CONFLICT (query_key) DO UPDATE SET state = 'active', source = excluded.source, misses = 0, \
         next_query_at = NULL, added_at = excluded.added_at WHERE query_keys.state IN ({})",
        if states.is_empty() { "''".to_string() } else { states.join(", ") }
    );
    let changed = tx.prepare_cached(&sql)?.execute(params![name, key.polling().as_str(), source, now_ms])?;
    Ok(changed > 0)
}

impl Sqlite {
    fn keys_tx(&mut self) -> Result<Transaction<'_>, StoreError> {
        let path = self.path.clone();
        self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| sql_error(&path, e))
    }
}

impl Keys for Sqlite {
    /// Makes the config's keys active and marks config keys no longer listed
    /// as removed.
    fn configure_keys(&mut self, configured: &[QueryKey], now_ms: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self.keys_tx()?;
        for key in configured {
            upsert(&tx, key, "config", &[KeyState::Removed], now_ms).map_err(sql)?;
        }
        let listed: HashSet<String> = configured.iter().map(ToString::to_string).collect();
        let known: Vec<(String, String)> = tx
            .prepare("SELECT query_key, source FROM query_keys WHERE ',' || source || ',' LIKE '%,config,%' AND state != 'removed'")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(sql)?;
        for (key, sources) in known.into_iter().filter(|(k, _)| !listed.contains(k)) {
            // A key stays while another source (the keys file, `keys add`) names it.
            match crate::keys::sources_without(&sources, "config") {
                Some(left) => {
                    tx.execute("UPDATE query_keys SET source = ?2 WHERE query_key = ?1", [&key, &left]).map_err(sql)?;
                }
                None => {
                    tx.execute("UPDATE query_keys SET state = 'removed' WHERE query_key = ?1", [&key]).map_err(sql)?;
                    tracing::info!(key = %key, "key no longer configured; marked removed (its cursor is kept)");
                }
            }
        }
        tx.commit().map_err(sql)
    }

    /// Reads what was appended to the keys file and adds its keys, in one
    /// transaction with the file's new mark. `Err` inside: the file cannot be read.
    fn read_keys_file(&mut self, file: &Path, now_ms: i64) -> Result<Result<KeysFileRead, String>, StoreError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let name = file.display().to_string();
        let tx = self.keys_tx()?;
        let prev: Option<Mark> = tx
            .query_row("SELECT file_id, offset, lines, head FROM key_files WHERE path = ?1", [&name], |r| {
                Ok(Mark {
                    file_id: r.get(0)?,
                    offset: r.get::<_, i64>(1)? as u64,
                    lines: r.get::<_, i64>(2)? as u64,
                    head: r.get(3)?,
                })
            })
            .optional()
            .map_err(sql)?;
        let mut new_keys = 0u64;
        let read = read_appended(file, prev.as_ref(), &mut |keys: &[QueryKey]| {
            for key in keys {
                new_keys += u64::from(upsert(&tx, key, "keys_file", &[KeyState::Removed], now_ms)?);
            }
            Ok::<(), rusqlite::Error>(())
        });
        let appended: Appended = match read {
            Err(msg) => return Ok(Err(msg)),
            Ok(inner) => inner.map_err(sql)?,
        };
        let m = &appended.mark;
        tx.execute(
            "INSERT OR REPLACE INTO key_files (path, file_id, offset, lines, head, read_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, m.file_id, m.offset as i64, m.lines as i64, m.head, now_ms],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(Ok(KeysFileRead::of(file, appended, new_keys)))
    }

    /// `keys add`: new keys, and done, given-up or removed ones made active
    /// again. Returns how many changed.
    /// Written [`crate::store::KEYS_PER_TRANSACTION`] at a time, so that a pass
    /// of the daemon beside it is never kept waiting long.
    fn add_keys(&mut self, keys: &[QueryKey], now_ms: i64) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let mut changed = 0;
        for chunk in keys.chunks(crate::store::KEYS_PER_TRANSACTION) {
            let tx = self.keys_tx()?;
            for key in chunk {
                let revive = [KeyState::Done, KeyState::GivenUp, KeyState::Removed];
                changed += u64::from(upsert(&tx, key, "command", &revive, now_ms).map_err(sql)?);
            }
            tx.commit().map_err(sql)?;
            if chunk.len() == crate::store::KEYS_PER_TRANSACTION {
                // More may follow: a writer waiting for the store (the daemon) gets its turn.
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
        }
        Ok(changed)
    }

    /// `keys forget`: the keys and their cursors are deleted. Returns how many were known.
    fn forget_keys(&mut self, keys: &[QueryKey]) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self.keys_tx()?;
        let mut known = 0;
        for key in keys.iter().map(ToString::to_string) {
            known += tx.execute("DELETE FROM query_keys WHERE query_key = ?1", [&key]).map_err(sql)? as u64;
            tx.execute("DELETE FROM sync_cursors WHERE query_key = ?1", [&key]).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(known)
    }

    /// Whether any key other than the window-only one is still polled.
    fn has_keys(&self) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM query_keys WHERE state != 'removed' AND query_key != '*')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))
    }

    /// Turns the window-only key `*` on or off.
    fn set_window_only(&mut self, on: bool, now_ms: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self.keys_tx()?;
        if on {
            upsert(&tx, &QueryKey::WindowOnly, "auto", &[KeyState::Removed], now_ms).map_err(sql)?;
        } else {
            tx.execute("UPDATE query_keys SET state = 'removed' WHERE query_key = '*' AND state != 'removed'", [])
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// The keys a pass at `now_ms` reads: active and settling ones, and
    /// waiting ones whose time has come. Done keys cost nothing.
    fn due_keys(&self, now_ms: i64) -> Result<Vec<KeyRow>, StoreError> {
        let sql = format!(
            "{SELECT_KEY} WHERE k.state = 'active' UNION ALL {SELECT_KEY} WHERE k.state = 'settling' \
             UNION ALL {SELECT_KEY} WHERE k.state = 'waiting' AND k.next_query_at <= ?1"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        stmt.query_map([now_ms], key_row).and_then(|rows| rows.collect()).map_err(|e| self.sql(e))
    }

    /// Every key, or those in `state`, by key.
    fn list_keys(&self, state: Option<KeyState>) -> Result<Vec<KeyRow>, StoreError> {
        let sql = format!("{SELECT_KEY} WHERE ?1 IS NULL OR k.state = ?1 ORDER BY k.query_key");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        stmt.query_map([state.map(KeyState::as_str)], key_row).and_then(|rows| rows.collect()).map_err(|e| self.sql(e))
    }

    /// Records a point key's query, once its records are committed, with
    /// why the server refused it (`None`: it did not).
    fn key_queried(&mut self, key: &str, u: KeyUpdate, error: Option<&str>, now_ms: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE query_keys SET state = ?2, next_query_at = ?3, records_found = coalesce(?4, records_found), \
                 misses = ?5, last_query_at = ?6, last_error = ?7 WHERE query_key = ?1",
                params![key, u.state.as_str(), u.next_query_at, u.records_found, u.misses, now_ms, error],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Records that a stream key was read this pass, to its end.
    fn stream_key_read(&mut self, key: &str, records: i64, now_ms: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE query_keys SET last_query_at = ?2, records_found = records_found + ?3, failed_passes = 0 \
                 WHERE query_key = ?1",
                params![key, now_ms, records],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// One more pass of `key` ended at a window that cannot complete; returns
    /// how many in a row.
    fn key_failed_pass(&mut self, key: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "UPDATE query_keys SET failed_passes = failed_passes + 1 WHERE query_key = ?1 RETURNING failed_passes",
                [key],
                |r| r.get(0),
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| self.sql(e))
    }

    /// Records a window the key moves on without, and moves its cursor past
    /// it, in one transaction.
    fn skip_window(&mut self, key: &str, start: i64, end: i64, reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self.keys_tx()?;
        tx.execute(
            "INSERT OR REPLACE INTO skipped_windows (query_key, window_start, window_end, reason, skipped_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key, start, end, reason, now_ms],
        )
        .map_err(sql)?;
        tx.execute("UPDATE query_keys SET failed_passes = 0 WHERE query_key = ?1", [key]).map_err(sql)?;
        tx.execute(
            "INSERT INTO sync_cursors (query_key, cursor_time, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (query_key) DO UPDATE SET cursor_time = excluded.cursor_time, updated_at = excluded.updated_at \
             WHERE excluded.cursor_time > sync_cursors.cursor_time",
            params![key, end * 1000, now_ms],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Windows keys moved on without, oldest first.
    fn skipped_windows(&self) -> Result<Vec<SkippedWindow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT query_key, window_start, window_end, reason FROM skipped_windows ORDER BY window_start, query_key")
            .map_err(|e| self.sql(e))?;
        stmt.query_map([], |r| {
            Ok(SkippedWindow { query_key: r.get(0)?, start: r.get(1)?, end: r.get(2)?, reason: r.get(3)? })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.sql(e))
    }

    /// A completed backfill of `key` over `[start, end)` covers the skipped windows inside it.
    fn clear_skipped(&mut self, key: Option<&str>, start: i64, end: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM skipped_windows WHERE (?1 IS NULL OR query_key = ?1) AND window_start >= ?2 AND window_end <= ?3",
                params![key, start, end],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// How many keys are in each state (states with none left out).
    fn key_counts(&self) -> Result<Vec<(KeyState, i64)>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT state, count(*) FROM query_keys GROUP BY state").map_err(|e| self.sql(e))?;
        let rows: Vec<(String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))?;
        Ok(ordered_counts(rows))
    }

    /// The active stream keys with their cursors.
    fn stream_cursors(&self) -> Result<Vec<StreamCursor>, StoreError> {
        let sql = format!("{SELECT_KEY} WHERE k.state = 'active' AND k.kind = 'stream' ORDER BY k.query_key");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        stmt.query_map([], |r| Ok(StreamCursor { query_key: r.get(0)?, cursor_time: r.get(9)? }))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))
    }
}
