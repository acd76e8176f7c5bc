//! CDR files into the store: every leg into `cdr_legs`, every call with an
//! IVR leg a point key carrying the call's span. A file is read as a stream,
//! a batch of legs a transaction; one read whole is marked (its size and
//! modification time) and not read again until it changes; one changed in
//! the last [`QUIET`] may still be being written, and waits for a later pass.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cdr::{self, FileError, FileRead, IVR, Leg};
use crate::config::Settings;
use crate::keys::KeyKind;
use crate::store::{Store, StoreError};
use crate::tz::ServerZone;

/// A file changed more recently than this is left for a later pass.
pub const QUIET: Duration = Duration::from_secs(30);

/// How CDR call IDs become keys, and the zone of the files' times.
#[derive(Clone, Debug)]
pub struct CdrRules {
    /// `cti` (the CDR `call_id` is OIFDE's `ctiCallId`, the default) or `call`.
    pub kind: KeyKind,
    pub zone: ServerZone,
}

impl CdrRules {
    /// `query.cdr_key` and `query.cdr_timezone` (else `api.server_timezone`).
    pub fn of(settings: &Settings) -> Self {
        let q = &settings.query;
        Self { kind: q.cdr_key, zone: q.cdr_timezone.clone().unwrap_or_else(|| settings.api.server_timezone.clone()) }
    }
}

/// What an import did, over one or more files.
#[derive(Debug, Default)]
pub struct Imported {
    /// Files read whole.
    pub files: u64,
    /// CDR rows (legs) read, lines refused, and the first few named.
    pub read: FileRead,
    /// Distinct calls with an IVR leg in what was read.
    pub calls: u64,
    /// Point keys added (or brought back).
    pub keys_added: u64,
    /// Files refused, each with why; read again at the next pass.
    pub refused: Vec<String>,
    /// Files left for a later pass: still being written.
    pub waiting: u64,
}

impl Imported {
    /// One line: files, rows, calls, keys added, lines refused.
    pub fn summary(&self) -> String {
        format!(
            "{} files, {} rows, {} IVR calls, {} keys added, {} lines refused",
            self.files, self.read.rows, self.calls, self.keys_added, self.read.bad_count
        )
    }

    /// The bad lines and refused files, as warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self.read.bad.iter().map(|b| format!("CDR line refused: {b}")).collect();
        if self.read.bad_count > self.read.bad.len() as u64 {
            out.push(format!("… and {} more CDR lines refused", self.read.bad_count - self.read.bad.len() as u64));
        }
        out.extend(self.refused.iter().map(|r| format!("CDR file refused: {r} (tried again at the next pass)")));
        out
    }
}

/// Reads one file (`-`: standard input, as CSV) into the store.
pub fn import_file(store: &mut Store, path: &Path, rules: &CdrRules, now_ms: i64) -> Result<Imported, StoreError> {
    let mut imported = Imported::default();
    let mut calls = std::collections::HashSet::new();
    let mut store_error = None;
    let mut sink = |legs: &[Leg]| -> Result<(), String> {
        for l in legs.iter().filter(|l| l.device_type == Some(IVR)) {
            calls.insert(crate::fnv::fnv1a(crate::fnv::START, l.call_id.as_bytes()));
        }
        match store.add_cdr_legs(legs, rules.kind, now_ms) {
            Ok(added) => {
                imported.keys_added += added;
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                store_error = Some(e);
                Err(msg)
            }
        }
    };
    let result = if path == Path::new("-") {
        cdr::read_csv(std::io::stdin().lock(), "standard input", &rules.zone, &mut sink)
    } else {
        cdr::read_file(path, &rules.zone, &mut sink)
    };
    match result {
        Ok(read) => {
            imported.files = 1;
            imported.read = read;
        }
        Err(FileError::Refused { file, msg }) => imported.refused.push(format!("{file}: {msg}")),
        Err(FileError::Sink(_)) => return Err(store_error.expect("a sink error is the store's")),
    }
    imported.calls = calls.len() as u64;
    Ok(imported)
}

/// Reads `files` (`-`: standard input) into the store, one after the other.
pub fn import_files(
    store: &mut Store,
    files: &[impl AsRef<Path>],
    rules: &CdrRules,
    now_ms: i64,
) -> Result<Imported, StoreError> {
    let mut total = Imported::default();
    for file in files {
        total.add(import_file(store, file.as_ref(), rules, now_ms)?);
    }
    Ok(total)
}

/// Reads every new or changed `*.csv` and `*.zip` of `dir` into the store,
/// in name order; a file read whole is marked.
pub fn import_dir(store: &mut Store, dir: &Path, rules: &CdrRules, now_ms: i64) -> Result<Imported, StoreError> {
    let mut total = Imported::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            total.refused.push(format!("{}: the CDR directory cannot be read: {e}", dir.display()));
            return Ok(total);
        }
    };
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.is_file() && cdr::is_cdr_file(p)).collect();
    files.sort();
    for path in files {
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        let modified_ms = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let size = meta.len() as i64;
        if now_ms - modified_ms < QUIET.as_millis() as i64 {
            total.waiting += 1;
            continue;
        }
        let shown = path.display().to_string();
        if store.cdr_file_mark(&shown)? == Some((size, modified_ms)) {
            continue;
        }
        let one = import_file(store, &path, rules, now_ms)?;
        if one.files == 1 {
            store.cdr_file_read(&shown, size, modified_ms, one.read.rows, now_ms)?;
            tracing::info!(file = %shown, rows = one.read.rows, keys_added = one.keys_added, "CDR file read");
        }
        total.add(one);
    }
    Ok(total)
}

impl Imported {
    pub fn add(&mut self, other: Imported) {
        self.files += other.files;
        self.read.add(other.read);
        self.calls += other.calls;
        self.keys_added += other.keys_added;
        self.refused.extend(other.refused);
        self.waiting += other.waiting;
    }
}
