//! Windows over time, as pure functions: what a pass will ask the API for.
//! A window is half-open in epoch seconds, `[start, end)`; the API's own
//! `beginTime`/`endTime` are inclusive, so a query sends `start` and `end - 1`.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    pub fn new(start: i64, end: i64) -> Self {
        debug_assert!(start < end, "empty window {start}..{end}");
        Self { start, end }
    }

    /// The last second the window covers, for the API's inclusive `endTime`.
    pub fn last_second(&self) -> i64 {
        self.end - 1
    }

    pub fn seconds(&self) -> i64 {
        self.end - self.start
    }

    /// The two halves, or `None` for a one-second window.
    pub fn halves(&self) -> Option<(Window, Window)> {
        (self.seconds() >= 2).then(|| {
            let mid = self.start + self.seconds() / 2;
            (Window::new(self.start, mid), Window::new(mid, self.end))
        })
    }
}

/// Consecutive windows of `size` covering `[from, to)`; the last may be shorter.
pub fn windows(from: i64, to: i64, size: Duration) -> Vec<Window> {
    let step = (size.as_secs() as i64).max(1);
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let end = start.saturating_add(step).min(to);
        out.push(Window::new(start, end));
        start = end;
    }
    out
}

/// The span an incremental pass reads for one key: from the cursor less the
/// overlap (or `start` with no cursor) to now less the lag.
pub fn incremental_span(
    cursor: Option<i64>,
    start: i64,
    overlap: Duration,
    lag: Duration,
    now: i64,
) -> Option<(i64, i64)> {
    let from = cursor.map_or(start, |c| c - overlap.as_secs() as i64);
    let to = now - lag.as_secs() as i64;
    (from < to).then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_tile_the_span_without_gaps() {
        let w = windows(0, 10_000, Duration::from_secs(3600));
        assert_eq!(w.len(), 3);
        assert_eq!(w[0], Window::new(0, 3600));
        assert_eq!(w[2], Window::new(7200, 10_000));
        assert!(w.windows(2).all(|p| p[0].end == p[1].start));
        assert!(windows(5, 5, Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn halves_stop_at_one_second() {
        let (a, b) = Window::new(0, 3).halves().unwrap();
        assert_eq!((a, b), (Window::new(0, 1), Window::new(1, 3)));
        assert!(Window::new(7, 8).halves().is_none());
        assert_eq!(Window::new(7, 8).last_second(), 7);
    }

    #[test]
    fn incremental_span_uses_cursor_overlap_and_lag() {
        let m = Duration::from_secs(60);
        assert_eq!(incremental_span(None, 100, m, m, 1000), Some((100, 940)));
        assert_eq!(incremental_span(Some(900), 100, m, m, 1000), Some((840, 940)));
        assert_eq!(incremental_span(Some(990), 100, Duration::ZERO, m, 1000), None);
    }
}
