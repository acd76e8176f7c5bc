//! The dedup rule: a record replaces the stored copy (and all its turns and
//! Q&A rows) only when its `lastUpdateTime` is newer; equal writes nothing;
//! older is ignored; where either side has none, the content hash decides.
//! And what a page adds to the summary tables. Both stores apply these.

use std::collections::HashMap;

use crate::record::Record;

/// What one page did to the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageOutcome {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub stale: u64,
}

impl PageOutcome {
    pub fn add(&mut self, o: PageOutcome) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.stale += o.stale;
    }
}

pub enum Decision {
    Insert,
    Replace,
    Unchanged,
    Stale,
}

pub fn decide(incoming: &Record, stored: Option<(Option<i64>, String)>) -> Decision {
    let Some((stored_time, stored_hash)) = stored else {
        return Decision::Insert;
    };
    match (incoming.last_update_time, stored_time) {
        (Some(new), Some(old)) if new > old => Decision::Replace,
        (Some(new), Some(old)) if new == old => Decision::Unchanged,
        (Some(_), Some(_)) => Decision::Stale,
        _ if stored_hash == incoming.content_hash => Decision::Unchanged,
        _ => Decision::Replace,
    }
}

/// What a page adds to the summary tables, counted in memory from the
/// records written and added with one statement a key at the end of the
/// page's transaction (a few dozen statements a page, not three a record).
#[derive(Default)]
pub struct Summary {
    pub calls: HashMap<String, i64>,
    pub intentions: HashMap<(String, String), i64>,
    pub answers: HashMap<(String, String), i64>,
}

/// `YYYY-MM-DD` (UTC) of epoch ms, as SQLite's `date(ms / 1000, 'unixepoch')`;
/// '' for none, and for a time outside the years 1 to 9999 (as `oifde_utc`
/// in PostgreSQL).
fn day(ms: Option<i64>) -> String {
    ms.filter(|ms| (-62_135_596_800_000..=253_402_300_799_999).contains(ms))
        .and_then(|ms| jiff::Timestamp::from_second(ms / 1000).ok())
        .map_or_else(String::new, |t| t.strftime("%Y-%m-%d").to_string())
}

impl Summary {
    pub fn add(&mut self, r: &Record) {
        *self.calls.entry(day(r.start_time)).or_default() += 1;
        for t in &r.details {
            if let Some(intention) = &t.intention {
                *self.intentions.entry((day(t.request_time), intention.clone())).or_default() += 1;
            }
        }
        for q in &r.qa {
            let key = (q.question_title.clone().unwrap_or_default(), q.answer_intent.clone().unwrap_or_default());
            *self.answers.entry(key).or_default() += 1;
        }
    }
}
