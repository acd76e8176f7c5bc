//! `keys add | list | forget`: the query keys kept in the store.

use std::io::BufRead;
use std::path::Path;

use clap::Subcommand;
use serde::Serialize;

use super::{CommandError, Exit, load_offline_settings};
use crate::keys::{QueryKey, parse_line};
use crate::store::{KeyRow, KeyState, Store};
use crate::tz;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Adds keys (mobile:<number>, call:<id>, cti:<id>); `-` reads one a line
    /// from standard input. A done or given-up key becomes active again.
    Add {
        #[arg(required = true)]
        keys: Vec<String>,
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
        KeysCommand::Add { keys } => {
            let keys = read_keys(&keys)?;
            let mut store = Store::open_configured(&settings)?;
            let changed = store.add_keys(&keys, tz::now_ms())?;
            println!("{} keys read, {changed} added or made active again", keys.len());
        }
        KeysCommand::List { state, json } => {
            let state = state.as_deref().map(KeyState::parse).transpose().map_err(CommandError::Usage)?;
            let store = Store::open_configured_read_only(&settings)?;
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
            let mut store = Store::open_configured(&settings)?;
            let known = store.forget_keys(&keys)?;
            println!("{known} of {} keys forgotten", keys.len());
        }
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
