//! Retention: the sessions older than a cut removed, a batch a
//! transaction, so that a daemon writing beside it waits milliseconds at
//! most; then the CDR legs of calls older than the cut that no session
//! meets (`prune`, and the daemon's `store.keep`).

use std::time::Duration;

use crate::progress::ProgressSink;
use crate::store::{Store, StoreError};
use crate::sync::Engine;

/// Sessions a transaction removes, unless told otherwise.
pub const BATCH: usize = 500;

/// What a prune removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub sessions: u64,
    pub legs: u64,
}

/// The cut for `store.keep`: sessions that started more than `keep` before `now_ms` go.
pub fn cut_for(keep: Duration, now_ms: i64) -> i64 {
    now_ms - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX).min(now_ms)
}

/// Removes every session that started before `before_ms` (a command's own store).
pub fn prune(
    store: &mut Store,
    before_ms: i64,
    batch: usize,
    progress: &dyn ProgressSink,
) -> Result<Pruned, StoreError> {
    progress.planned(store.count_before(before_ms)?);
    let mut pruned = Pruned::default();
    loop {
        match store.prune_sessions(before_ms, batch)? {
            0 => break,
            n => {
                pruned.sessions += n;
                progress.advanced(n, n);
            }
        }
    }
    loop {
        match store.prune_legs(before_ms, batch)? {
            0 => break,
            n => pruned.legs += n,
        }
    }
    Ok(pruned)
}

/// The same through the daemon's store thread, a batch a job, so that the
/// pass's pages go between the batches.
pub async fn prune_beside_passes(engine: &Engine, before_ms: i64) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
    loop {
        match engine.with_store(move |s| s.prune_sessions(before_ms, BATCH)).await? {
            0 => break,
            n => pruned.sessions += n,
        }
    }
    loop {
        match engine.with_store(move |s| s.prune_legs(before_ms, BATCH)).await? {
            0 => break,
            n => pruned.legs += n,
        }
    }
    Ok(pruned)
}
