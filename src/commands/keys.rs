//! `keys add | import | list | forget`: the query keys kept in the store.

use std::io::BufRead;
use std::path::Path;

use clap::Subcommand;
use serde::Serialize;

use super::{CommandError, Exit, load_offline_settings};
use crate::keys::{KeyRow, KeyState};
use crate::keys::{QueryKey, parse_line};
use crate::ledgers::cdr_import::{CdrRules, import_files};
use crate::store::Store;
use crate::tz;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Adds keys (mobile:<number>, call:<id>, cti:<id>); `-` reads one a line
    /// from standard input. A done or given-up key becomes active again.
    Add {
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Reads Huawei CDR files now (`*.csv`, `*.zip` bundles; `-`: CSV on
    /// standard input): every call with an IVR leg becomes a point key, every
    /// row a `cdr_legs` row. Calls no API; a refused file or line is reported.
    Import {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Lists the keys with their state.
    List {
        /// Only keys in this state: active, settling, waiting, done, given_up, removed.
        #[arg(long)]
        state: Option<String>,
        /// One JSON object a line, with stable field names.
        #[arg(long)]
        json: bool,
    },
    /// Deletes keys and their cursors (a configured key comes back at the next pass).
    Forget {
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

pub fn keys(config: &Path, cmd: KeysCommand) -> Result<Exit, CommandError> {
    let settings = load_offline_settings(config)?;
    match cmd {
        KeysCommand::Add { keys } => return add(&settings, &keys),
        KeysCommand::Import { files } => {
            let rules = CdrRules::of(&settings);
            let mut store = Store::open_configured(&settings.store)?;
            store.wait_when_busy(IMPORT_WAIT);
            let total = import_files(&mut store, &files, &rules, tz::now_ms())?;
            for warning in total.warnings() {
                eprintln!("{warning}");
            }
            println!("{}", total.summary());
        }
        KeysCommand::List { state, json } => {
            let state = state.as_deref().map(KeyState::parse).transpose().map_err(CommandError::Usage)?;
            let store = Store::open_configured_read_only(&settings.store)?;
            let rows = store.list_keys(state)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for row in &rows {
                let line = if json {
                    serde_json::to_string(&KeyJson::from(row)).expect("a key serializes")
                } else {
                    text_line(row)
                };
                std::io::Write::write_all(&mut out, format!("{line}\n").as_bytes())
                    .map_err(|e| CommandError::Failed(format!("cannot write the list: {e}")))?;
            }
        }
        KeysCommand::Forget { keys } => {
            let keys = read_keys(&keys)?;
            let mut store = Store::open_configured(&settings.store)?;
            let known = store.forget_keys(&keys)?;
            println!("{known} of {} keys forgotten", keys.len());
        }
    }
    Ok(Exit::Success)
}

/// How long `keys add` waits for a write transaction of another process (the
/// daemon's pass, another import) to end.
const IMPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// `keys add`: the arguments (all valid, or none is added), then standard
/// input for `-`, read and written a bounded chunk at a time, so that a
/// million keys hold neither the memory nor the store; a bad line is
/// named and the others are added.
fn add(settings: &crate::config::Settings, args: &[String]) -> Result<Exit, CommandError> {
    let listed: Vec<QueryKey> = args
        .iter()
        .filter(|a| *a != "-")
        .map(|a| QueryKey::parse(a).map_err(CommandError::Usage))
        .collect::<Result<_, _>>()?;
    let mut store = Store::open_configured(&settings.store)?;
    store.wait_when_busy(IMPORT_WAIT);
    let now = tz::now_ms();
    let (mut read, mut changed, mut refused) = (listed.len() as u64, store.add_keys(&listed, now)?, 0u64);
    if args.iter().any(|a| a == "-") {
        let mut chunk = Vec::with_capacity(crate::store::KEYS_PER_TRANSACTION);
        for (i, line) in std::io::stdin().lock().lines().enumerate() {
            let line = line.map_err(|e| CommandError::Usage(format!("standard input: {e}")))?;
            match parse_line(&line) {
                Some(Ok(key)) => chunk.push(key),
                Some(Err(m)) => {
                    refused += 1;
                    if refused <= 20 {
                        eprintln!("refused: standard input line {}: {m}", i + 1);
                    }
                }
                None => {}
            }
            if chunk.len() == crate::store::KEYS_PER_TRANSACTION {
                read += chunk.len() as u64;
                changed += store.add_keys(&chunk, now)?;
                chunk.clear();
            }
        }
        read += chunk.len() as u64;
        changed += store.add_keys(&chunk, now)?;
    }
    println!("{read} keys read, {changed} added or made active again");
    if refused > 0 {
        eprintln!("{refused} lines refused (see above); the other keys were added");
        return Ok(Exit::Config);
    }
    Ok(Exit::Success)
}

/// The keys of the command line; `-` stands for standard input, one key a line.
fn read_keys(args: &[String]) -> Result<Vec<QueryKey>, CommandError> {
    let mut keys = Vec::new();
    for arg in args {
        if arg == "-" {
            for (i, line) in std::io::stdin().lock().lines().enumerate() {
                let line = line.map_err(|e| CommandError::Usage(format!("standard input: {e}")))?;
                if let Some(key) = parse_line(&line) {
                    keys.push(key.map_err(|m| CommandError::Usage(format!("standard input line {}: {m}", i + 1)))?);
                }
            }
        } else {
            keys.push(QueryKey::parse(arg).map_err(CommandError::Usage)?);
        }
    }
    Ok(keys)
}

/// A key in `keys list --json`; times as epoch ms and readable UTC.
#[derive(Serialize)]
struct KeyJson<'a> {
    #[serde(flatten)]
    row: &'a KeyRow,
    added_utc: String,
    next_query_utc: Option<String>,
}

impl<'a> From<&'a KeyRow> for KeyJson<'a> {
    fn from(row: &'a KeyRow) -> Self {
        Self { row, added_utc: tz::utc_text(row.added_at), next_query_utc: row.next_query_at.map(tz::utc_text) }
    }
}

fn text_line(r: &KeyRow) -> String {
    let mut line = format!(
        "{:<40} {:<6} {:<9} {:<9} {} records",
        r.query_key,
        r.kind,
        r.state.as_str(),
        r.source,
        r.records_found
    );
    if let Some(next) = r.next_query_at.filter(|_| r.state == KeyState::Waiting) {
        line.push_str(&format!(", next query {} UTC", tz::utc_text(next)));
    }
    if let Some(why) = &r.last_error {
        line.push_str(&format!(", refused by the server: {why}"));
    }
    if let Some(cursor) = r.cursor_time {
        line.push_str(&format!(", through {} UTC", tz::utc_text(cursor)));
    }
    line
}
