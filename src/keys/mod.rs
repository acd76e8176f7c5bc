//! Query keys: the API needs one of `userMobile`, `callId` or `ctiCallId` in
//! every query, so the daemon polls a set of keys. Stream keys (`mobile:`,
//! and `*`) are read from a cursor every pass; point keys (`call:`, `cti:`)
//! name one call and are read until it settles.

pub mod file;
mod state;

pub use state::{KeyRow, KeyState, KeyUpdate, SkippedWindow, StreamCursor};

use std::fmt;

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
    /// The text form used in the keys file, the `--key` flag and `sync_cursors`,
    /// validated: see [`check_value`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (prefix, value) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?} needs a prefix: mobile:<number>, call:<id> or cti:<id>"))?;
        let kind = match prefix.trim() {
            "mobile" => KeyKind::Mobile,
            "call" => KeyKind::Call,
            "cti" => KeyKind::Cti,
            other => {
                return Err(format!("unknown prefix {other:?} in {text:?}: use mobile:, call: or cti:"));
            }
        };
        Self::of(kind, value)
    }

    /// A key of `kind` with `value` (as written after the prefix), validated.
    pub fn of(kind: KeyKind, value: &str) -> Result<Self, String> {
        let value = value.trim();
        check_value(kind, value)?;
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

    /// Whether a record of `call_id` / `cti_call_id` belongs to this key:
    /// a point key names one call; a stream key takes every record.
    pub fn names_call(&self, call_id: Option<&str>, cti_call_id: Option<&str>) -> bool {
        match self {
            QueryKey::Keyed(KeyKind::Call, v) => call_id == Some(v.as_str()),
            QueryKey::Keyed(KeyKind::Cti, v) => cti_call_id == Some(v.as_str()),
            QueryKey::Keyed(KeyKind::Mobile, _) | QueryKey::WindowOnly => true,
        }
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

/// The longest key value accepted.
pub const MAX_KEY_LEN: usize = 64;

/// What a key's value may be: not empty, at most [`MAX_KEY_LEN`] characters,
/// no whitespace or control character inside, no second prefix; a mobile is
/// digits with an optional leading `+` and the API's own masking `*`
/// (`180****9999`).
pub fn check_value(kind: KeyKind, value: &str) -> Result<(), String> {
    let name = match kind {
        KeyKind::Mobile => "mobile",
        KeyKind::Call => "call",
        KeyKind::Cti => "cti",
    };
    if value.is_empty() {
        return Err(format!("{name}: has no value after the prefix"));
    }
    if value.chars().count() > MAX_KEY_LEN {
        return Err(format!(
            "{name}:{}… is longer than {MAX_KEY_LEN} characters",
            value.chars().take(16).collect::<String>()
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{name}:{value:?} has {} inside; a key is one word",
            if c.is_whitespace() { "a space" } else { "a control character" }
        ));
    }
    if let Some(p) = ["mobile:", "call:", "cti:"].iter().find(|p| value.starts_with(**p)) {
        return Err(format!("{name}:{value} has a second prefix {p:?}; write {name}:{}", &value[p.len()..]));
    }
    if kind == KeyKind::Mobile {
        let digits = value.strip_prefix('+').unwrap_or(value);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '*') {
            return Err(format!(
                "mobile:{value} is not a number: digits only, with an optional leading + (the API's masked form 180****9999 is accepted)"
            ));
        }
    }
    Ok(())
}

/// A key's sources (`query_keys.source`) are a comma-separated set:
/// `config`, `keys_file`, `command`. SQL that adds `?` to the set of a key
/// that is not removed, in both stores' dialects (the placeholder is given).
pub fn add_source_sql(key: &str, source: &str) -> String {
    format!(
        "source = source || ',' || {source} WHERE {key} AND state != 'removed' \
         AND NOT (',' || source || ',' LIKE '%,' || {source} || ',%')"
    )
}

/// The set `sources` without `gone`; `None` when nothing is left, and the
/// key is to be removed.
pub fn sources_without(sources: &str, gone: &str) -> Option<String> {
    let left: Vec<&str> = sources.split(',').filter(|s| !s.is_empty() && *s != gone).collect();
    (!left.is_empty()).then(|| left.join(","))
}

/// A line of the keys file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
    pub msg: String,
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
    fn a_key_keeps_its_other_sources() {
        assert_eq!(sources_without("config,keys_file", "config").as_deref(), Some("keys_file"));
        assert_eq!(sources_without("keys_file,config,command", "config").as_deref(), Some("keys_file,command"));
        assert_eq!(sources_without("config", "config"), None);
    }

    #[test]
    fn keys_are_validated() {
        for good in ["mobile:13800000000", "mobile:+8618400004443", "mobile:180****9999", "call:a-b_c.9", "cti:1234"] {
            assert!(QueryKey::parse(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("mobile:184 0000 4443", "a space"),
            ("mobile:mobile:13200019769", "second prefix"),
            ("cti:abc def", "a space"),
            ("mobile:12ab", "not a number"),
            ("call:", "no value"),
            ("call:call:x", "second prefix"),
            ("mobile:+", "not a number"),
        ] {
            let e = QueryKey::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let long = format!("call:{}", "x".repeat(65));
        assert!(QueryKey::parse(&long).unwrap_err().contains("longer than 64"));
        assert!(QueryKey::parse(&format!("call:{}", "x".repeat(64))).is_ok());
    }

    #[test]
    fn display_round_trips() {
        for text in ["mobile:1", "call:x-y", "cti:9"] {
            assert_eq!(QueryKey::parse(text).unwrap().to_string(), text);
        }
    }
}
