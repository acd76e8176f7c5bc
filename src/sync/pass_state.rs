//! The state of one running pass, shared by its key tasks and the pager:
//! its figures, its failed windows, and whether it stops.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use super::PassKind;
use super::plan::Window;
use super::report::Tally;
use crate::keys::QueryKey;
use crate::tz;

/// State of one running pass, shared by its key tasks.
pub(super) struct Pass<'a> {
    pub kind: &'a PassKind,
    pub job: String,
    pub tally: Tally,
    pub errors: Mutex<Vec<String>>,
    pub fatal: Mutex<Option<String>>,
    pub stop: AtomicBool,
    pub cancel: &'a CancellationToken,
}

impl Pass<'_> {
    /// Logs a failed window, counts it, and keeps its line for the run log.
    pub fn report_failure(&self, key: &QueryKey, span: Option<Window>, why: &str) {
        let line = match span {
            Some(w) => {
                format!("key {key}, window {} .. {}: {why}", tz::utc_text(w.start * 1000), tz::utc_text(w.end * 1000))
            }
            None => format!("key {key}: {why}"),
        };
        tracing::error!("{line}");
        self.tally.count(|f| f.failed_windows += 1);
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }

    pub fn end(&self, why: String) {
        *self.fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.cancel.is_cancelled() || self.stop.load(Ordering::Relaxed)
    }
}
