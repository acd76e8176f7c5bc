//! Every page of one window (or of one key-only query), committed in order as
//! it arrives (pages that arrived together in one transaction), later pages
//! fetched ahead while earlier ones commit. A window that comes back short of
//! the server's `total` is read again; a `total` that the pages contradict is
//! not believed.

use std::collections::{HashSet, VecDeque};

use tokio::task::JoinHandle;

use super::Engine;
use super::pass_state::Pass;
use super::plan::{Split, Window};
use crate::api::{ApiError, Page, Query};
use crate::keys::QueryKey;
use crate::record::Record;
use crate::store::StoreError;
use crate::tz;

/// How many times a window that came back short is read again.
pub(super) const MAX_REREADS: usize = 2;

/// Why a window did not complete.
pub(super) enum WindowError {
    Api(ApiError),
    Store(StoreError),
    Cancelled,
    /// Fewer distinct records than the server's total, after every re-read.
    Incomplete {
        distinct: u64,
        total: u64,
    },
    /// The store refused these records (log id, why); the rest of the page
    /// is committed.
    Refused(Vec<(String, String)>),
}

/// One window (or key-only query) read whole.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Leaf {
    pub records: u64,
    /// Records of the key's own call (all of them for a stream key), and
    /// their newest `endTime`/`lastUpdateTime`, epoch ms: a server that ignores the `callId` filter sends
    /// other calls' records too.
    pub own: u64,
    pub own_newest_ms: Option<i64>,
}

pub(super) enum LeafOutcome {
    Read(Leaf),
    /// Above `split_above` and cut into parts by `windows`; nothing committed.
    Split,
}

/// The newest moment a record tells of: when the call ended or last changed.
fn newest(records: &[Record]) -> Option<i64> {
    records.iter().filter_map(|r| [r.end_time, r.last_update_time, r.start_time].into_iter().flatten().max()).max()
}

impl Engine {
    /// Reads `span` of `key` (`None`: a key-only query). A window above
    /// `split_above` is handed to `split` after its first page; when that
    /// cuts it, nothing is read here and the parts come back through the plan.
    pub(super) async fn read_leaf(
        &self,
        pass: &Pass<'_>,
        key: &QueryKey,
        span: Option<Window>,
        mut split: impl FnMut(Window, u64, Option<u64>) -> Split,
    ) -> Result<LeafOutcome, WindowError> {
        let split_above = self.settings.sync.split_above;
        // A server whose total ignores the window: its totals say nothing.
        let mut total_ignored = false;
        let mut previous: Option<(u64, u64)> = None;
        for attempt in 0..=MAX_REREADS {
            let first = self.fetch(pass, key, span, 1).await?;
            if let (Some(w), Some(total)) = (span, first.total.filter(|t| *t > split_above)) {
                let mut outcome = split(w, total, None);
                if let Split::Probe(other) = outcome {
                    // One first page of the rest of the window: its total tells
                    // crowded records from a total that ignores the window.
                    let probe = self.fetch(pass, key, Some(other), 1).await?;
                    outcome = split(w, total, Some(probe.total.unwrap_or(probe.records.len() as u64)));
                }
                match outcome {
                    Split::Done => {
                        tracing::debug!(key = %key, total, seconds = w.seconds(), "window above sync.split_above; cut");
                        return Ok(LeafOutcome::Split);
                    }
                    Split::OneSecond => tracing::warn!(
                        key = %key, total,
                        "a one-second window holds more than sync.split_above records; reading all of it"
                    ),
                    Split::NotLower | Split::Probe(_) => {
                        total_ignored = true;
                        tracing::warn!(
                            key = %key, total,
                            "the server reports the same total for a part of the window as for the whole: \
                             its total ignores the window; reading the window whole instead of cutting it further"
                        )
                    }
                }
            }
            let total = first.total.filter(|_| !total_ignored);
            let (leaf, distinct, believed) = self.read_pages(pass, key, span, first).await?;
            // Every record the total promised came, some of them twice, and a
            // re-read came back the same: the server itself repeats records
            // (pages shifting under the reader would not repeat exactly).
            let repeats = total.is_some_and(|t| leaf.records >= t) && previous == Some((leaf.records, distinct));
            if repeats {
                tracing::warn!(key = %key, read = leaf.records, distinct, "the server sends some records twice in this window; each is counted once");
                return Ok(LeafOutcome::Read(leaf));
            }
            previous = Some((leaf.records, distinct));
            match total {
                Some(total) if believed && distinct < total && attempt < MAX_REREADS => {
                    tracing::warn!(key = %key, distinct, total, "fewer records than the server reported; reading the window again");
                    pass.tally.count(|f| f.rereads += 1);
                }
                Some(total) if believed && distinct < total => {
                    return Err(WindowError::Incomplete { distinct, total });
                }
                _ => return Ok(LeafOutcome::Read(leaf)),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Reads and commits every page from the first on. Returns what was read,
    /// how many distinct log ids it held, and whether `total` held up.
    async fn read_pages(
        &self,
        pass: &Pass<'_>,
        key: &QueryKey,
        span: Option<Window>,
        first: Page,
    ) -> Result<(Leaf, u64, bool), WindowError> {
        let page_size = self.settings.api.page_size as usize;
        let mut total = first.total;
        let mut seen = Distinct::default();
        seen.extend(&first.records);
        let mut own = Own::default();
        own.add(key, &first.records);
        let mut got = self.commit(pass, first.records, 1).await?;
        let mut read = got as u64;
        let mut believed = true;
        // Where the total tells how many pages there are, later pages are
        // fetched ahead (up to api.concurrency), and go on arriving while
        // earlier ones commit.
        let mut ahead = Ahead::default();
        let mut next_page = 2u32;
        loop {
            if total.is_some_and(|t| read > t) {
                tracing::warn!(key = %key, total = total.unwrap_or(0), read, "the server's total is below the records it sent; reading on while pages come back full");
                total = None;
                believed = false;
            }
            if got < page_size || total.is_some_and(|t| read == t) {
                break;
            }
            self.top_up(&mut ahead, key, span, total, &mut next_page);
            let Some(handle) = ahead.0.pop_front() else { break };
            let page = tokio::select! {
                biased;
                _ = pass.cancel.cancelled() => return Err(WindowError::Cancelled),
                page = handle => page.expect("fetch task panicked").map_err(WindowError::Api)?,
            };
            // Pages that have arrived meanwhile commit with this one, in one
            // transaction: fewer commits when the network outpaces the disk.
            let mut batch = vec![page];
            while batch.last().is_some_and(|p| p.records.len() == page_size)
                && ahead.0.front().is_some_and(JoinHandle::is_finished)
            {
                let handle = ahead.0.pop_front().expect("checked above");
                batch.push(handle.await.expect("fetch task panicked").map_err(WindowError::Api)?);
            }
            got = batch.last().map_or(0, |p| p.records.len());
            let pages = batch.len() as u64;
            let records: Vec<Record> = batch.into_iter().flat_map(|p| p.records).collect();
            seen.extend(&records);
            own.add(key, &records);
            // The next pages are on their way while these commit.
            if got == page_size && total.is_none_or(|t| read + (records.len() as u64) < t) {
                self.top_up(&mut ahead, key, span, total, &mut next_page);
            }
            read += self.commit(pass, records, pages).await? as u64;
        }
        let leaf = Leaf { records: read, own: own.records, own_newest_ms: own.newest_ms };
        Ok((leaf, seen.0.len() as u64, believed))
    }

    /// Fetches ahead up to `api.concurrency` pages, not past the last page
    /// `total` gives; with no total, one page at a time.
    fn top_up(&self, ahead: &mut Ahead, key: &QueryKey, span: Option<Window>, total: Option<u64>, next_page: &mut u32) {
        let page_size = self.settings.api.page_size as u64;
        let last_page = total.map_or(*next_page, |t| t.div_ceil(page_size).max(1) as u32);
        let depth = if total.is_some() { self.settings.api.concurrency.max(1) } else { 1 };
        while ahead.0.len() < depth && (*next_page <= last_page || ahead.0.is_empty()) {
            ahead.0.push_back(self.spawn_fetch(key, span, *next_page));
            *next_page += 1;
        }
    }

    fn spawn_fetch(&self, key: &QueryKey, span: Option<Window>, page_num: u32) -> JoinHandle<Result<Page, ApiError>> {
        let (client, key) = (self.client.clone(), key.clone());
        let span = span.map(|w| (w.start, w.last_second()));
        tokio::spawn(async move { client.query(&Query { key: &key, span, page_num }).await })
    }

    async fn fetch(
        &self,
        pass: &Pass<'_>,
        key: &QueryKey,
        span: Option<Window>,
        page_num: u32,
    ) -> Result<Page, WindowError> {
        let q = Query { key, span: span.map(|w| (w.start, w.last_second())), page_num };
        tokio::select! {
            biased;
            _ = pass.cancel.cancelled() => Err(WindowError::Cancelled),
            page = self.client.query(&q) => page.map_err(WindowError::Api),
        }
    }

    /// Commits `pages` pages' records in one transaction and counts them;
    /// returns how many records.
    async fn commit(&self, pass: &Pass<'_>, records: Vec<Record>, pages: u64) -> Result<usize, WindowError> {
        let len = records.len();
        let nul = records.iter().filter(|r| r.nul_replaced).count() as u64;
        let (o, refused) = self
            .with_store(move |s| {
                let now = tz::now_ms();
                match s.apply_page(&records, now) {
                    Ok(o) => Ok((o, Vec::new())),
                    // One record's value: the others are written one by one.
                    Err(StoreError::Content { .. }) => {
                        let (mut sum, mut refused) = (crate::store::dedup::PageOutcome::default(), Vec::new());
                        for r in &records {
                            match s.apply_page(std::slice::from_ref(r), now) {
                                Ok(o) => sum.add(o),
                                Err(e @ StoreError::Content { .. }) => refused.push((r.log_id.clone(), e.to_string())),
                                Err(e) => return Err(e),
                            }
                        }
                        Ok((sum, refused))
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .map_err(WindowError::Store)?;
        pass.tally.count(|f| {
            f.pages += pages;
            f.records_fetched += len as u64;
            f.inserted += o.inserted;
            f.updated += o.updated;
            f.unchanged += o.unchanged;
            f.stale += o.stale;
            f.nul_replaced += nul;
        });
        if !refused.is_empty() {
            return Err(WindowError::Refused(refused));
        }
        Ok(len)
    }
}

/// The records of a point key's own call among those read.
#[derive(Default)]
struct Own {
    records: u64,
    newest_ms: Option<i64>,
}

impl Own {
    fn add(&mut self, key: &QueryKey, records: &[Record]) {
        for r in records.iter().filter(|r| key.names_call(r.call_id.as_deref(), r.cti_call_id.as_deref())) {
            self.records += 1;
            self.newest_ms = self.newest_ms.max(newest(std::slice::from_ref(r)));
        }
    }
}

/// Pages being fetched ahead; dropped (on an error, a short page or a
/// shutdown) they are aborted.
#[derive(Default)]
struct Ahead(VecDeque<JoinHandle<Result<Page, ApiError>>>);

impl Drop for Ahead {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

/// The distinct log ids of a window, kept as 64-bit hashes: 8 bytes a record
/// instead of the id itself, so that a window of a million records (a server
/// whose totals are ignored, a large `split_above`) stays a few MB. Two ids
/// sharing a hash (about one chance in 10^7 at a million) would count once:
/// the window would be read again, never cut short.
#[derive(Default)]
struct Distinct(HashSet<u64>);

impl Distinct {
    fn extend(&mut self, records: &[Record]) {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        self.0.extend(records.iter().map(|r| hasher.hash_one(r.log_id.as_bytes())));
    }
}
