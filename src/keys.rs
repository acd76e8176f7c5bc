//! Query keys: the API needs one of `userMobile`, `callId` or `ctiCallId` in
//! every query, so the daemon polls a set of keys, each with its own cursor.

use std::fmt;
use std::path::Path;

use crate::config::QuerySettings;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyKind {
    Mobile,
    Call,
    Cti,
}

/// One query key; `None` value means a window-only query with no key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueryKey {
    Keyed(KeyKind, String),
    WindowOnly,
}

impl QueryKey {
    /// The text form used in the keys file, the `--key` flag and `sync_cursors`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (prefix, value) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?} needs a prefix: mobile:<number>, call:<id> or cti:<id>"))?;
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("{text:?} has no value after the prefix"));
        }
        let kind = match prefix.trim() {
            "mobile" => KeyKind::Mobile,
            "call" => KeyKind::Call,
            "cti" => KeyKind::Cti,
            other => {
                return Err(format!("unknown prefix {other:?} in {text:?}: use mobile:, call: or cti:"));
            }
        };
        Ok(QueryKey::Keyed(kind, value.to_string()))
    }

    /// The field of the request body this key sets, with its value.
    pub fn body_field(&self) -> Option<(&'static str, &str)> {
        match self {
            QueryKey::Keyed(KeyKind::Mobile, v) => Some(("userMobile", v)),
            QueryKey::Keyed(KeyKind::Call, v) => Some(("callId", v)),
            QueryKey::Keyed(KeyKind::Cti, v) => Some(("ctiCallId", v)),
            QueryKey::WindowOnly => None,
        }
    }
}

impl fmt::Display for QueryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryKey::Keyed(KeyKind::Mobile, v) => write!(f, "mobile:{v}"),
            QueryKey::Keyed(KeyKind::Call, v) => write!(f, "call:{v}"),
            QueryKey::Keyed(KeyKind::Cti, v) => write!(f, "cti:{v}"),
            QueryKey::WindowOnly => f.write_str("*"),
        }
    }
}

/// A line of the keys file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub msg: String,
}

/// The keys of a pass: the config lists plus the keys file, read now.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<QueryKey>,
    pub bad_lines: Vec<BadLine>,
}

/// Reads every configured key. A missing keys file is an error; bad lines are
/// reported and skipped. With no key at all, one window-only key is returned.
pub fn collect(q: &QuerySettings) -> Result<KeySet, String> {
    let mut set = KeySet::default();
    let lists = [(KeyKind::Mobile, &q.user_mobiles), (KeyKind::Call, &q.call_ids), (KeyKind::Cti, &q.cti_call_ids)];
    for (kind, values) in lists {
        for v in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            set.keys.push(QueryKey::Keyed(kind, v.to_string()));
        }
    }
    if let Some(path) = &q.keys_file {
        let (keys, bad) = read_keys_file(path)?;
        set.keys.extend(keys);
        set.bad_lines = bad;
    }
    let mut seen = std::collections::HashSet::new();
    set.keys.retain(|k| seen.insert(k.clone()));
    if set.keys.is_empty() {
        set.keys.push(QueryKey::WindowOnly);
    }
    Ok(set)
}

fn read_keys_file(path: &Path) -> Result<(Vec<QueryKey>, Vec<BadLine>), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("keys file {} cannot be read: {e}", path.display()))?;
    Ok(parse_keys(&text))
}

/// Parses keys-file text: one key a line, `#` starts a comment.
pub fn parse_keys(text: &str) -> (Vec<QueryKey>, Vec<BadLine>) {
    let mut keys = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        match QueryKey::parse(content) {
            Ok(k) => keys.push(k),
            Err(msg) => bad.push(BadLine { line: i + 1, msg }),
        }
    }
    (keys, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_file_lines() {
        let (keys, bad) = parse_keys("# cdr import\nmobile:138000\n\ncall:abc # note\nfoo:1\ncti:\n");
        assert_eq!(
            keys,
            vec![QueryKey::Keyed(KeyKind::Mobile, "138000".into()), QueryKey::Keyed(KeyKind::Call, "abc".into()),]
        );
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![5, 6]);
        assert!(bad[0].msg.contains("unknown prefix"));
    }

    #[test]
    fn display_round_trips() {
        for text in ["mobile:1", "call:x-y", "cti:9"] {
            assert_eq!(QueryKey::parse(text).unwrap().to_string(), text);
        }
    }
}
