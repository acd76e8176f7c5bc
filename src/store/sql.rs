//! SQL both stores share: the schema's steps, the run log's statements,
//! and rows read alike (PostgreSQL's parameters are `$N` where SQLite's are `?N`).

use std::collections::HashMap;

use crate::keys::KeyState;
use crate::run_log::Figures;

/// A schema file's steps: version 1, then each `-- migration: N` section.
pub fn split_steps(schema: &'static str) -> Vec<&'static str> {
    let mut steps = Vec::new();
    let mut rest = schema;
    while let Some(at) = rest.find("\n-- migration: ") {
        steps.push(&rest[..at]);
        rest = &rest[at + 1..];
    }
    steps.push(rest);
    steps
}

/// `keys = ?5, windows = ?6, …`: the figures' columns set from parameters
/// numbered from `first`, with `mark` (`?` for SQLite, `$` for PostgreSQL).
pub fn figure_sets(mark: char, first: usize) -> String {
    let sets: Vec<String> =
        Figures::COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = {mark}{}", i + first)).collect();
    sets.join(", ")
}

/// Finished backfill windows `(key, start, end)` as spans by key.
pub fn spans_by_key(rows: Vec<(String, i64, i64)>) -> HashMap<String, Vec<(i64, i64)>> {
    let mut done: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for (key, start, end) in rows {
        done.entry(key).or_default().push((start, end));
    }
    done
}

/// A session's outcome bucket from its `turns` and `transferred`, by the
/// definitions of the platform's statistics report (SQL both stores run).
pub const OUTCOME: &str = "CASE WHEN turns <= 1 THEN 'exit_no_consult' \
    WHEN transferred IS NULL THEN 'unknown' \
    WHEN transferred = 1 AND turns <= 3 THEN 'staff_no_consult' \
    WHEN transferred = 1 THEN 'staff_consult' \
    ELSE 'bot_only' END";

/// Marks the runs left `running` by a process that ended mid-pass.
pub const ABANDONED: &str = "UPDATE sync_runs SET status = 'failed', finished_at = coalesce(finished_at, ?1), \
     error = coalesce(error, 'the process ended before the pass finished (killed, or it lost its store)') \
     WHERE status = 'running'";

/// Counts by state name, as states in their order (unknown names left out).
pub fn ordered_counts(rows: Vec<(String, i64)>) -> Vec<(KeyState, i64)> {
    let mut counts: Vec<(KeyState, i64)> =
        rows.into_iter().filter_map(|(s, n)| KeyState::parse(&s).ok().map(|s| (s, n))).collect();
    counts.sort_by_key(|(s, _)| KeyState::ALL.iter().position(|x| x == s));
    counts
}
