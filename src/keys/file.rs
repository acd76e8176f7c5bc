//! The keys file, read incrementally: only the bytes appended since the last
//! read, up to the last complete line. A file that was replaced (another
//! inode), truncated or rewritten in place (its first bytes changed) is read
//! again from the start.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{BadLine, QueryKey, parse_line};

/// How far a keys file has been read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    /// `device:inode` of the file read.
    pub file_id: String,
    /// Bytes read: everything before is taken.
    pub offset: u64,
    /// Lines read, for the line numbers of bad lines.
    pub lines: u64,
    /// A hash of the first bytes, to notice a rewrite in place.
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
/// Bytes that fingerprint the file's start.
const HEAD: u64 = 256;

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
    let head = head_hash(&mut file, meta.len()).map_err(cannot)?;
    let continues = prev.filter(|m| {
        m.file_id == file_id
            && m.offset <= meta.len()
            && head_hash_prefix(&mut file, m.offset).ok() == Some(m.head.clone())
    });
    let (offset, lines) = continues.map_or((0, 0), |m| (m.offset, m.lines));
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
    // The fingerprint covers the bytes taken so far (the first HEAD of them).
    let head = if offset >= HEAD { head } else { head_hash_prefix(reader.get_mut(), offset).map_err(cannot)? };
    out.mark = Mark { file_id, offset, lines, head };
    Ok(Ok(out))
}

fn head_hash(file: &mut std::fs::File, len: u64) -> std::io::Result<String> {
    head_hash_prefix(file, len.min(HEAD))
}

/// FNV-1a of the file's first `min(len, HEAD)` bytes.
fn head_hash_prefix(file: &mut std::fs::File, len: u64) -> std::io::Result<String> {
    let len = len.min(HEAD);
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.by_ref().take(len).read_to_end(&mut bytes)?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{len}:{h:016x}"))
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
