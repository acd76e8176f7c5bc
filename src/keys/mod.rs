//! Query keys: the API needs one of `userMobile`, `callId` or `ctiCallId` in
//! every query, so the daemon polls a set of keys. Stream keys (`mobile:`,
//! and `*`) are read from a cursor every pass; point keys (`call:`, `cti:`)
//! name one call and are read until it settles.

pub mod file;

use std::fmt;

use crate::config::QuerySettings;

/// How a key is polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Polling {
    /// Read every pass from its cursor, in windows.
    Stream,
    /// One call: read whole, without a time window, until it settles.
    Point,
}

impl Polling {
    pub fn as_str(self) -> &'static str {
        match self {
            Polling::Stream => "stream",
            Polling::Point => "point",
        }
    }
}

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

    pub fn polling(&self) -> Polling {
        match self {
            QueryKey::Keyed(KeyKind::Call | KeyKind::Cti, _) => Polling::Point,
            QueryKey::Keyed(KeyKind::Mobile, _) | QueryKey::WindowOnly => Polling::Stream,
        }
    }

    /// Parses a key as stored (`*` included).
    pub fn from_stored(text: &str) -> Result<Self, String> {
        if text == "*" { Ok(QueryKey::WindowOnly) } else { Self::parse(text) }
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
    pub line: u64,
    pub msg: String,
}

/// The keys of the config lists, without duplicates.
pub fn configured(q: &QuerySettings) -> Vec<QueryKey> {
    let mut keys = Vec::new();
    let lists = [(KeyKind::Mobile, &q.user_mobiles), (KeyKind::Call, &q.call_ids), (KeyKind::Cti, &q.cti_call_ids)];
    for (kind, values) in lists {
        for v in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            keys.push(QueryKey::Keyed(kind, v.to_string()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    keys
}

/// One line of a keys file: `None` for a blank or comment line.
pub fn parse_line(line: &str) -> Option<Result<QueryKey, String>> {
    let content = line.split('#').next().unwrap_or("").trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    (!content.is_empty()).then(|| QueryKey::parse(content))
}

/// Parses keys-file text: one key a line, `#` starts a comment.
pub fn parse_keys(text: &str) -> (Vec<QueryKey>, Vec<BadLine>) {
    let mut keys = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line) {
            Some(Ok(k)) => keys.push(k),
            Some(Err(msg)) => bad.push(BadLine { line: i as u64 + 1, msg }),
            None => {}
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
    fn a_bom_and_crlf_are_not_part_of_a_key() {
        let (keys, bad) = parse_keys("\u{feff}call:a\r\nmobile:1\r\n");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            keys,
            vec![QueryKey::Keyed(KeyKind::Call, "a".into()), QueryKey::Keyed(KeyKind::Mobile, "1".into())]
        );
        assert_eq!(keys[0].polling(), Polling::Point);
        assert_eq!(QueryKey::from_stored("*").unwrap().polling(), Polling::Stream);
    }

    #[test]
    fn display_round_trips() {
        for text in ["mobile:1", "call:x-y", "cti:9"] {
            assert_eq!(QueryKey::parse(text).unwrap().to_string(), text);
        }
    }
}
