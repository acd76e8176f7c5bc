//! What a pass did: one figures type, counted while the pass runs, written
//! to `sync_runs` by column name, printed in one line, fed to the metrics.

use std::fmt;
use std::sync::Mutex;

use serde::Serialize;

/// Declares the figures once: the struct, its column names and its values.
macro_rules! figures {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// The figures of one pass; each is a `sync_runs` column of the same name.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
        pub struct Figures {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl Figures {
            /// The `sync_runs` columns, in the order of [`Figures::values`].
            pub const COLUMNS: &'static [&'static str] = &[$(stringify!($name)),*];

            pub fn values(&self) -> Vec<u64> {
                vec![$(self.$name),*]
            }

            /// The inverse of [`Figures::values`].
            pub fn from_values(values: &[u64]) -> Self {
                let mut it = values.iter().copied();
                Self { $($name: it.next().unwrap_or(0),)* }
            }

            pub fn add(&mut self, other: &Figures) {
                $(self.$name += other.$name;)*
            }
        }
    };
}

figures! {
    /// Keys read.
    keys,
    /// Windows completed (a point key's key-only query counts as one).
    windows,
    pages,
    records_fetched,
    inserted,
    updated,
    unchanged,
    stale,
    failed_windows,
    /// Windows read again because they came back short of the server's total.
    rereads,
    /// HTTP requests, token requests included.
    requests,
    retries,
    /// Records whose text held NUL characters, stored as U+FFFD (the
    /// original kept in `raw_json` / `extra_json`).
    nul_replaced,
}

impl Figures {
    /// `(name, value)` pairs, for the metrics.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, u64)> {
        Self::COLUMNS.iter().copied().zip(self.values())
    }
}

impl fmt::Display for Figures {
    /// "3 keys, 5 windows, …, 0 retries".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.pairs().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{value} {}", name.replace('_', " "))?;
        }
        Ok(())
    }
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassStatus {
    /// Every window committed.
    Ok,
    /// Some windows failed; their keys' cursors stayed put.
    Partial,
    /// The pass could not go on (credentials refused, store failure).
    Failed,
    /// Stopped by a shutdown request; committed pages stay.
    Interrupted,
    /// Nothing to read: a keys file with no valid key yet.
    Skipped,
}

impl PassStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PassStatus::Ok => "ok",
            PassStatus::Partial => "partial",
            PassStatus::Failed => "failed",
            PassStatus::Interrupted => "interrupted",
            PassStatus::Skipped => "skipped",
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_display_names_every_figure() {
        let f = Figures::from_values(&(1..=Figures::COLUMNS.len() as u64).collect::<Vec<_>>());
        assert_eq!(Figures::from_values(&f.values()), f);
        let text = f.to_string();
        assert!(text.starts_with("1 keys, 2 windows"), "{text}");
        assert!(text.contains("10 rereads") && text.ends_with("13 nul replaced"), "{text}");
    }
}
