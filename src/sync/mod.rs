//! One pass over the query keys, shared by `sync`, `run`, `backfill` and the
//! resweep. The stages, each in its own file:
//! - [`pass`]: the pass top-down: gather keys, plan, read every key, report;
//! - [`plan`]: pure decisions: spans, adaptive windows, point-key states;
//! - [`pager`]: every page of one window or key-only query, committed in order;
//! - [`report`]: the figures of a pass and how they are shown.

mod pager;
mod pass;
mod pass_state;
pub mod plan;
pub mod report;

use std::sync::{Arc, Mutex};

use crate::api::ApiClient;
use crate::config::Settings;
use crate::keys::QueryKey;
use crate::progress::{ProgressSink, Silent};
use crate::store::{Store, StoreError, Worker};

pub use report::PassReport;

/// What a pass covers.
#[derive(Clone, Debug)]
pub enum PassKind {
    /// Due keys: stream keys from their cursor (less the overlap) to now less
    /// the lag; point keys whole.
    Incremental { now: i64, label: &'static str },
    /// A fixed period, `[from, to]` inclusive in epoch seconds, of the stream
    /// keys or of one key; cursors stay put; resumable.
    Backfill { from: i64, to: i64, key: Option<QueryKey> },
    /// `sync.resweep` before now, of every stream key; cursors stay put.
    Resweep { now: i64 },
}

impl PassKind {
    /// The pass's "now", epoch seconds: what keys are due and whether a call
    /// has settled are decided against it.
    pub fn now(&self) -> i64 {
        match self {
            PassKind::Incremental { now, .. } | PassKind::Resweep { now } => *now,
            PassKind::Backfill { .. } => crate::tz::now_ms() / 1000,
        }
    }

    /// The `sync_runs.kind` of the pass.
    pub fn label(&self) -> &'static str {
        match self {
            PassKind::Incremental { label, .. } => label,
            PassKind::Backfill { .. } => "backfill",
            PassKind::Resweep { .. } => "resweep",
        }
    }
}

/// Errors that stop a pass before it starts or while it writes.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("{0}")]
    Keys(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The pass machinery: the API client and the store's single writer.
#[derive(Clone)]
pub struct Engine {
    pub settings: Arc<Settings>,
    pub client: Arc<ApiClient>,
    /// The store, on a thread of its own.
    store: Arc<Worker>,
    progress: Arc<dyn ProgressSink>,
    /// Whether the server refuses key-only queries, from evidence.
    point_windows: Arc<Mutex<PointWindows>>,
    /// The server was seen to ignore the call filter (said once).
    foreign_said: Arc<std::sync::atomic::AtomicBool>,
}

/// What is known of a server's refusal of key-only queries. A refusal of one
/// key says little (its call ID may be malformed, the refusal may pass); two
/// distinct keys that the server refuses key-only but which have records in
/// a window say the server needs windows. That is asked again after
/// [`REPROBE_MS`]: a server can be upgraded.
#[derive(Debug, Default)]
pub(crate) struct PointWindows {
    /// Since when point keys are read in windows (epoch ms).
    pub since: Option<i64>,
    /// Keys refused key-only that had records in a window.
    pub evidence: std::collections::HashSet<String>,
    /// A key is trying a key-only query again.
    pub reprobing: bool,
}

/// How long point keys are read in windows before a key-only query is tried again.
pub(crate) const REPROBE_MS: i64 = 3600 * 1000;

impl Engine {
    pub fn new(settings: Arc<Settings>, client: Arc<ApiClient>, store: Store) -> Self {
        Self {
            settings,
            client,
            store: Arc::new(Worker::start(store)),
            progress: Arc::new(Silent),
            point_windows: Arc::new(Mutex::new(PointWindows::default())),
            foreign_said: Arc::default(),
        }
    }

    pub fn with_progress(mut self, progress: Arc<dyn ProgressSink>) -> Self {
        self.progress = progress;
        self
    }

    /// Runs `f` on the store's thread and waits for it.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.store.run(f).await
    }
}
