//! What a pass asks the API for, as pure functions: the span of each key,
//! windows that adapt to the data, and what a point key's query decides.
//! A window is half-open in epoch seconds, `[start, end)`; the API's own
//! `beginTime`/`endTime` are inclusive, so a query sends `start` and `end - 1`.

use std::time::Duration;

use crate::keys::{KeyState, KeyUpdate};

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
}

/// The parts of `[from, to)` not covered by `done` (finished windows of an
/// interrupted backfill), in order.
pub fn gaps(from: i64, to: i64, done: &[(i64, i64)]) -> Vec<Window> {
    let mut done: Vec<(i64, i64)> = done.to_vec();
    done.sort_unstable();
    let mut out = Vec::new();
    let mut at = from;
    for (start, end) in done {
        if start > at {
            out.push(Window::new(at, start.min(to)));
        }
        at = at.max(end);
        if at >= to {
            break;
        }
    }
    if at < to {
        out.push(Window::new(at, to));
    }
    out.retain(|w| w.start < w.end);
    out
}

/// A window whose `total` is above what one window may hold, cut into equal
/// parts of about `target` records each (at least two, at least a second each).
pub fn split(w: Window, total: u64, target: u64) -> Vec<Window> {
    let parts = total.div_ceil(target.max(1)).max(2).min(w.seconds() as u64) as i64;
    let mut out = Vec::with_capacity(parts as usize);
    for i in 0..parts {
        let start = w.start + w.seconds() * i / parts;
        let end = w.start + w.seconds() * (i + 1) / parts;
        if start < end {
            out.push(Window::new(start, end));
        }
    }
    out
}

/// The next window's length after one of `seconds` held `records`: about
/// `target` records, growing at most 64-fold at a time (a sparse key's history
/// takes a handful of windows), never below a second.
pub fn next_size(seconds: i64, records: u64, target: u64) -> i64 {
    const MAX_GROWTH: u64 = 64;
    let scaled = if records == 0 {
        seconds.saturating_mul(MAX_GROWTH as i64)
    } else {
        let factor = (target as f64 / records as f64).min(MAX_GROWTH as f64);
        (seconds as f64 * factor) as i64
    };
    scaled.max(1)
}

/// Whether a window over `split_above` was cut into parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Done,
    /// A one-second window cannot be cut: it is read whole.
    OneSecond,
    /// The server's total ignores the window (a part disjoint from this one
    /// reported as many records): it is read whole.
    NotLower,
    /// A part holds every record of the window it was cut from: the records
    /// may be concentrated there, or the server's total may ignore the
    /// window. The total of this other part of the window (disjoint from the
    /// one being cut) tells which; ask again with it.
    Probe(Window),
}

/// The windows of one span, in time order: each new window's length adapts
/// to the density of the last one read, and a window over `split_above` is
/// cut into parts that are read before anything after it.
#[derive(Debug)]
pub struct Windows {
    end: i64,
    next_start: i64,
    size: i64,
    target: u64,
    /// Parts still to read, the next on top, with the window they were cut
    /// from and its total.
    parts: Vec<(Window, Window, u64)>,
    /// The window the part last handed out was cut from.
    parent: Option<Window>,
    /// Whether the server's totals follow the window, once known.
    honours_window: Option<bool>,
}

impl Windows {
    pub fn new(span: Window, first: i64, target: u64) -> Self {
        Self {
            end: span.end,
            next_start: span.start,
            size: first.max(1),
            target,
            parts: Vec::new(),
            parent: None,
            honours_window: None,
        }
    }

    /// The next window to read, with the total of the window it was cut from.
    pub fn next_window(&mut self) -> Option<(Window, Option<u64>)> {
        if let Some((w, parent, total)) = self.parts.pop() {
            self.parent = Some(parent);
            return Some((w, Some(total)));
        }
        self.parent = None;
        if self.next_start >= self.end {
            return None;
        }
        let w = Window::new(self.next_start, self.next_start.saturating_add(self.size).min(self.end));
        self.next_start = w.end;
        Some((w, None))
    }

    /// Cuts `w`, which reported `total` records, unless it cannot or should
    /// not be. A part that holds as many records as the window it was cut
    /// from is cut again (records can crowd into one hour of a month) unless
    /// a disjoint part of that window, `probe`d, reports as many too: then
    /// the server's totals ignore the window, which is remembered.
    pub fn split(&mut self, w: Window, total: u64, parent_total: Option<u64>, probe: Option<u64>) -> Split {
        if w.seconds() < 2 {
            return Split::OneSecond;
        }
        match parent_total {
            Some(p) if total >= p => match (self.honours_window, probe) {
                (Some(false), _) => return Split::NotLower,
                (Some(true), _) => {}
                (None, None) => {
                    let parent = self.parent.unwrap_or(w);
                    let other = if w.start > parent.start {
                        Window::new(parent.start, w.start)
                    } else if w.end < parent.end {
                        Window::new(w.end, parent.end)
                    } else {
                        return Split::NotLower;
                    };
                    return Split::Probe(other);
                }
                (None, Some(other)) => {
                    self.honours_window = Some(other < total);
                    if other >= total {
                        return Split::NotLower;
                    }
                }
            },
            Some(_) => self.honours_window = Some(true),
            None => {}
        }
        self.parts.extend(split(w, total, self.target).into_iter().rev().map(|part| (part, w, total)));
        Split::Done
    }

    /// `w` was read whole and held `records`: the next new window adapts.
    pub fn done(&mut self, w: Window, records: u64) {
        self.size = next_size(w.seconds(), records, self.target);
    }
}

/// How many records one window should hold: a full window is cheapest, but
/// no more than half of `split_above`, so a little growth does not split it.
pub fn target_records(split_above: u64, page_size: u32) -> u64 {
    (split_above / 2).max(u64::from(page_size)).max(1)
}

/// Intervals between the queries of a point key that finds nothing yet.
const POINT_RETRIES: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(6 * 3600),
];

/// What a point key's completed query decides: done once its call settled,
/// settling while it may change, waiting (then given up) while it finds nothing.
pub fn point_after_query(
    found: u64,
    newest_ms: Option<i64>,
    misses: i64,
    added_ms: i64,
    now_ms: i64,
    settle: Duration,
    give_up_after: Duration,
) -> KeyUpdate {
    if found > 0 {
        let settled = newest_ms.is_some_and(|t| now_ms - t >= settle.as_millis() as i64);
        let state = if settled { KeyState::Done } else { KeyState::Settling };
        return KeyUpdate { state, next_query_at: None, records_found: Some(found as i64), misses: 0 };
    }
    let misses = misses + 1;
    if now_ms - added_ms >= give_up_after.as_millis() as i64 {
        return KeyUpdate { state: KeyState::GivenUp, next_query_at: None, records_found: Some(0), misses };
    }
    let wait = POINT_RETRIES[(misses as usize - 1).min(POINT_RETRIES.len() - 1)];
    let next = (now_ms + wait.as_millis() as i64).min(added_ms + give_up_after.as_millis() as i64);
    KeyUpdate { state: KeyState::Waiting, next_query_at: Some(next), records_found: Some(0), misses }
}

/// A cursor later than `now` (written while the clock ran ahead) would
/// skip everything until the clock catches up: it is pulled back to
/// `now - lag`. Returns the cursor to use and whether it was pulled back.
pub fn sane_cursor(cursor: Option<i64>, now: i64, lag: Duration) -> (Option<i64>, bool) {
    match cursor {
        Some(c) if c > now => (Some(now - lag.as_secs() as i64), true),
        other => (other, false),
    }
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
    fn gaps_are_what_is_not_done() {
        assert_eq!(gaps(0, 100, &[]), vec![Window::new(0, 100)]);
        assert_eq!(gaps(0, 100, &[(40, 60), (0, 10)]), vec![Window::new(10, 40), Window::new(60, 100)]);
        assert!(gaps(0, 100, &[(0, 50), (50, 100)]).is_empty());
        assert_eq!(gaps(0, 100, &[(90, 200)]), vec![Window::new(0, 90)]);
    }

    #[test]
    fn split_tiles_the_window_into_parts_of_about_target() {
        let parts = split(Window::new(0, 3600), 10_000, 2500);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0].start, 0);
        assert_eq!(parts[3].end, 3600);
        assert!(parts.windows(2).all(|p| p[0].end == p[1].start));
        assert_eq!(split(Window::new(0, 3), 1_000_000, 10).len(), 3, "never below a second");
        assert_eq!(split(Window::new(0, 100), 5001, 5000).len(), 2, "at least halves");
    }

    #[test]
    fn windows_grow_over_sparse_data_and_shrink_over_dense() {
        assert_eq!(next_size(3600, 0, 2500), 3600 * 64);
        assert_eq!(next_size(3600, 5000, 2500), 1800);
        assert_eq!(next_size(3600, 2500, 2500), 3600);
        assert_eq!(next_size(1, 1_000_000, 2500), 1);
        assert_eq!(target_records(5000, 100), 2500);
        assert_eq!(target_records(10, 100), 100);
    }

    #[test]
    fn point_keys_settle_wait_and_give_up() {
        let (m, h) = (60_000i64, 3_600_000i64);
        let settle = Duration::from_secs(15 * 60);
        let give_up = Duration::from_secs(24 * 3600);
        let now = 100 * h;
        // A call that ended an hour ago is done; one that ended 5 minutes ago settles.
        assert_eq!(point_after_query(2, Some(now - h), 0, now, now, settle, give_up).state, KeyState::Done);
        let settling = point_after_query(1, Some(now - 5 * m), 0, now, now, settle, give_up);
        assert_eq!((settling.state, settling.next_query_at), (KeyState::Settling, None));
        // Nothing found: 1m, 5m, 30m, 2h, 6h, 6h… then given up at 24h.
        let waits: Vec<i64> = (0..6)
            .map(|misses| point_after_query(0, None, misses, now, now, settle, give_up).next_query_at.unwrap() - now)
            .collect();
        assert_eq!(waits, vec![m, 5 * m, 30 * m, 2 * h, 6 * h, 6 * h]);
        let late = point_after_query(0, None, 7, now - 23 * h, now, settle, give_up);
        assert_eq!(late.next_query_at, Some(now + h), "never waits past the give-up time");
        assert_eq!(point_after_query(0, None, 8, now - 24 * h, now, settle, give_up).state, KeyState::GivenUp);
    }

    #[test]
    fn adaptive_windows_cover_the_span_in_order() {
        let mut w = Windows::new(Window::new(0, 10_000), 1000, 100);
        let (first, parent) = w.next_window().unwrap();
        assert_eq!((first, parent), (Window::new(0, 1000), None));
        // 400 records: too many for one window; split in four, read in order.
        assert_eq!(w.split(first, 400, None, None), Split::Done);
        let (a, parent) = w.next_window().unwrap();
        assert_eq!((a, parent), (Window::new(0, 250), Some(400)));
        // A part whose total did not drop: the rest of its window is asked;
        // as many records there too means the totals ignore the window.
        assert_eq!(w.split(a, 400, parent, None), Split::Probe(Window::new(250, 1000)));
        assert_eq!(w.split(a, 400, parent, Some(400)), Split::NotLower);
        assert_eq!(w.split(a, 400, parent, None), Split::NotLower, "remembered");
        w.done(a, 400);
        for _ in 0..3 {
            let (part, _) = w.next_window().unwrap();
            w.done(part, 100);
        }
        // After 100 records in 250 s the next window is 250 s long; an empty one grows 64-fold.
        let (next, _) = w.next_window().unwrap();
        assert_eq!(next, Window::new(1000, 1250));
        w.done(next, 0);
        assert_eq!(w.next_window().unwrap().0, Window::new(1250, 10_000), "clamped to the span");
        assert_eq!(w.split(Window::new(5, 6), 1000, None, None), Split::OneSecond);
    }

    #[test]
    fn records_crowded_into_one_part_are_cut_down_to_a_second() {
        // A month, silent but for 5000 records in its last hour.
        let month = 30 * 86_400;
        let crowd = Window::new(month - 3600, month);
        let records_in = |w: Window| {
            let overlap = (w.end.min(crowd.end) - w.start.max(crowd.start)).max(0) as u64;
            (overlap * 5000).div_ceil(3600)
        };
        let mut w = Windows::new(Window::new(0, month), month, 2500);
        let (mut read, mut probes) = (Vec::new(), 0);
        while let Some((win, parent)) = w.next_window() {
            let total = records_in(win);
            if total <= 4000 {
                w.done(win, total);
                read.push(win);
                continue;
            }
            let mut outcome = w.split(win, total, parent, None);
            if let Split::Probe(other) = outcome {
                probes += 1;
                outcome = w.split(win, total, parent, Some(records_in(other)));
            }
            match outcome {
                Split::Done => {}
                Split::OneSecond => read.push(win),
                other => panic!("{other:?} at {win:?}"),
            }
        }
        assert!(probes <= 1, "the server's honesty is asked once: {probes}");
        assert!(read.windows(2).all(|p| p[0].end == p[1].start), "in order, no gap");
        assert_eq!((read[0].start, read.last().unwrap().end), (0, month));
    }

    #[test]
    fn a_cursor_in_the_future_is_pulled_back() {
        let lag = Duration::from_secs(60);
        assert_eq!(sane_cursor(Some(2000), 1000, lag), (Some(940), true));
        assert_eq!(sane_cursor(Some(1000), 1000, lag), (Some(1000), false));
        assert_eq!(sane_cursor(None, 1000, lag), (None, false));
    }

    #[test]
    fn last_second_is_inclusive_end() {
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
