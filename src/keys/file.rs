//! The keys file, read incrementally: only the bytes appended since the last
//! read, up to the last complete line. A file that was replaced (another
//! inode), truncated or rewritten in place (any byte already read changed,
//! as `sort -o keys.txt keys.txt` does) is read again from the start.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{BadLine, QueryKey, parse_line};
use crate::fnv::{START, fnv1a};

/// How far a keys file has been read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    /// `device:inode` of the file read.
    pub file_id: String,
    /// Bytes read: everything before is taken.
    pub offset: u64,
    /// Lines read, for the line numbers of bad lines.
    pub lines: u64,
    /// `LEN:HASH`, a hash of the first LEN bytes (everything read), to
    /// notice a rewrite in place. Marks of earlier releases cover 256 bytes.
    pub head: String,
}

/// What one read found.
#[derive(Debug, Default)]
pub struct Appended {
    pub mark: Mark,
    /// Valid keys read (duplicates included).
    pub keys: u64,
    /// The first bad lines (at most [`MAX_BAD_LINES`]) and how many in all.
    pub bad: Vec<BadLine>,
    pub bad_count: u64,
    /// The file was read again from its start.
    pub from_start: bool,
}

/// Bad lines kept for the report; the rest are counted.
pub const MAX_BAD_LINES: usize = 20;
/// Keys handed over at a time, so memory does not grow with the file.
const BATCH: usize = 10_000;

/// Reads what was appended to `path` since `prev`, handing valid keys to
/// `sink` in batches. Returns the new mark; the caller stores it with the keys.
pub fn read_appended<E>(
    path: &Path,
    prev: Option<&Mark>,
    sink: &mut dyn FnMut(&[QueryKey]) -> Result<(), E>,
) -> Result<Result<Appended, E>, String> {
    let cannot = |e: std::io::Error| format!("keys file {} cannot be read: {e}", path.display());
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    let file_id = format!("{}:{}", meta.dev(), meta.ino());
    // The file goes on where it was left only if every byte read is unchanged.
    let mut continues = None;
    if let Some(m) = prev.filter(|m| m.file_id == file_id && m.offset <= meta.len()) {
        let covered = m.head.split_once(':').and_then(|(len, _)| len.parse::<u64>().ok()).unwrap_or(u64::MAX);
        if covered <= m.offset && hash_prefix(&mut file, covered).map_err(cannot)? == m.head {
            // A mark of an earlier release covers fewer bytes than were read.
            let state =
                if covered == m.offset { m.head.clone() } else { hash_prefix(&mut file, m.offset).map_err(cannot)? };
            continues = Some((m, state));
        }
    }
    let (offset, lines, mut state) = match &continues {
        Some((m, head)) => (m.offset, m.lines, parse_state(head)),
        None => (0, 0, START),
    };
    let mut out = Appended { from_start: continues.is_none() && prev.is_some(), ..Appended::default() };
    file.seek(SeekFrom::Start(offset)).map_err(cannot)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let (mut offset, mut lines) = (offset, lines);
    let mut batch = Vec::with_capacity(BATCH);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(cannot)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break; // the end, or a line still being written: taken next time
        }
        offset += n as u64;
        lines += 1;
        state = fnv1a(state, &buf);
        let text = String::from_utf8_lossy(&buf);
        match parse_line(&text) {
            Some(Ok(key)) => {
                out.keys += 1;
                batch.push(key);
                if batch.len() == BATCH {
                    if let Err(e) = sink(&batch) {
                        return Ok(Err(e));
                    }
                    batch.clear();
                }
            }
            Some(Err(msg)) => {
                out.bad_count += 1;
                if out.bad.len() < MAX_BAD_LINES {
                    out.bad.push(BadLine { line: lines, msg });
                }
            }
            None => {}
        }
    }
    if !batch.is_empty()
        && let Err(e) = sink(&batch)
    {
        return Ok(Err(e));
    }
    out.mark = Mark { file_id, offset, lines, head: format!("{offset}:{state:016x}") };
    Ok(Ok(out))
}

fn parse_state(head: &str) -> u64 {
    head.split_once(':').and_then(|(_, h)| u64::from_str_radix(h, 16).ok()).unwrap_or(START)
}

/// `LEN:HASH` of the file's first `len` bytes.
fn hash_prefix(file: &mut std::fs::File, len: u64) -> std::io::Result<String> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(1 << 16, file.by_ref().take(len));
    let mut state = START;
    let mut read = 0u64;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        state = fnv1a(state, chunk);
        let n = chunk.len();
        read += n as u64;
        reader.consume(n);
    }
    if read < len {
        return Ok(String::new()); // shorter than what was read before
    }
    Ok(format!("{len}:{state:016x}"))
}

/// What reading a keys file found.
#[derive(Debug, Default)]
pub struct KeysFileRead {
    /// Keys the store did not know (or had removed).
    pub new_keys: u64,
    /// Valid lines read.
    pub keys: u64,
    pub bad: Vec<BadLine>,
    pub bad_count: u64,
    pub from_start: bool,
    /// The file holds no byte at all.
    pub empty: bool,
}

impl KeysFileRead {
    /// What reading `file` found: `appended`, of which `new_keys` were new.
    pub fn of(file: &Path, appended: Appended, new_keys: u64) -> Self {
        Self {
            new_keys,
            keys: appended.keys,
            bad: appended.bad,
            bad_count: appended.bad_count,
            from_start: appended.from_start,
            empty: std::fs::metadata(file).is_ok_and(|m| m.len() == 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read(path: &Path, prev: Option<&Mark>) -> (Vec<String>, Appended) {
        let mut got = Vec::new();
        let out = read_appended::<()>(path, prev, &mut |keys| {
            got.extend(keys.iter().map(ToString::to_string));
            Ok(())
        })
        .unwrap()
        .unwrap();
        (got, out)
    }

    #[test]
    fn only_appended_complete_lines_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "\u{feff}call:a\r\nbad\ncall:b\ncall:c").unwrap();
        let (keys, first) = read(&path, None);
        assert_eq!(keys, ["call:a", "call:b"], "the unfinished last line waits");
        assert_eq!(first.bad.iter().map(|b| b.line).collect::<Vec<_>>(), [2]);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"\nmobile:1\n").unwrap();
        let (keys, second) = read(&path, Some(&first.mark));
        assert_eq!(keys, ["call:c", "mobile:1"]);
        assert!(!second.from_start);
        let (keys, third) = read(&path, Some(&second.mark));
        assert!(keys.is_empty());
        assert_eq!(third.mark, second.mark);
    }

    #[test]
    fn a_file_sorted_in_place_is_read_again_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        // Long enough that the first 256 bytes stay the same after sorting.
        let mut lines: Vec<String> = (0..40).map(|i| format!("call:k{:03}", i * 2)).collect();
        std::fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        let (_, first) = read(&path, None);
        // `echo call:k041 >> keys; sort -o keys keys`: same inode, a key mid-file.
        lines.push("call:k041".into());
        lines.sort();
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        drop(f);
        let (keys, again) = read(&path, Some(&first.mark));
        assert!(again.from_start, "a rewrite in place is noticed");
        assert!(keys.contains(&"call:k041".to_string()), "{keys:?}");
        assert_eq!(keys.len(), 41);
        // An old mark (the first 256 bytes only) still goes on where it was.
        let mut old = again.mark.clone();
        let mut file = std::fs::File::open(&path).unwrap();
        old.head = hash_prefix(&mut file, 256).unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"call:z\n").unwrap();
        let (keys, next) = read(&path, Some(&old));
        assert_eq!((keys, next.from_start), (vec!["call:z".to_string()], false));
        assert!(next.mark.head.starts_with(&format!("{}:", next.mark.offset)));
    }

    #[test]
    fn a_replaced_or_truncated_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "call:a\ncall:b\n").unwrap();
        let (_, first) = read(&path, None);
        // Rewritten in place with other text of the same length.
        std::fs::write(&path, "call:x\ncall:y\n").unwrap();
        let (keys, again) = read(&path, Some(&first.mark));
        assert_eq!(keys, ["call:x", "call:y"]);
        assert!(again.from_start);
        std::fs::write(&path, "").unwrap();
        let (keys, empty) = read(&path, Some(&again.mark));
        assert!(keys.is_empty());
        assert_eq!(empty.mark.offset, 0);
        // Replaced by another file.
        let other = dir.path().join("keys.new");
        std::fs::write(&other, "cti:9\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(read(&path, Some(&empty.mark)).0, ["cti:9"]);
    }
}
