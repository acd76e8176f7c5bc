//! What a pass did: its figures counted while it runs, and its report.

use std::sync::Mutex;

use crate::run_log::{Figures, PassStatus};

/// Figures counted by the tasks of a running pass.
#[derive(Default)]
pub(crate) struct Tally(Mutex<Figures>);

impl Tally {
    pub fn count(&self, f: impl FnOnce(&mut Figures)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn get(&self) -> Figures {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[derive(Debug)]
pub struct PassReport {
    pub run_id: i64,
    pub status: PassStatus,
    pub figures: Figures,
    /// One line a failed window, or the error that ended the pass.
    pub errors: Vec<String>,
    /// Problems with the keys: bad lines of the keys file, a file with no key.
    pub warnings: Vec<String>,
    /// The error that ended the pass, when it was the API's credentials refusal.
    pub fatal: Option<String>,
}

impl PassReport {
    /// One line with the pass's figures.
    pub fn summary(&self, label: &str, seconds: f64) -> String {
        format!("{label}: {} in {seconds:.1} s: {}", self.status.as_str(), self.figures)
    }
}

/// The run log keeps the first errors and a count of the rest.
pub(crate) fn summarize(errors: &[String]) -> String {
    const KEEP: usize = 5;
    let mut text = errors.iter().take(KEEP).cloned().collect::<Vec<_>>().join("\n");
    if errors.len() > KEEP {
        text.push_str(&format!("\n… and {} more", errors.len() - KEEP));
    }
    text
}
