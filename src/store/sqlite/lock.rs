//! One writer at a time: a lock on `<store>.lock`, held for as long as a
//! `sync`, `backfill` or the daemon runs. The file says who holds it, so a
//! second writer can name the holder. The operating system drops the lock
//! when its holder exits, however it exits.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::StoreError;

pub struct WriterLock {
    _file: File,
}

fn lock_path(store: &Path) -> PathBuf {
    let mut p = store.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Who holds the writer lock of `store` now, for a message: the holder's
/// own line, or "another process (not an oifde-sync writer)" when the lock
/// is free (an analyst's write transaction, an import beside the daemon).
pub fn holder(store: &Path) -> String {
    let other = "another process (not an oifde-sync writer: an analyst's write transaction, or `oifde-sync keys add`)";
    let Ok(mut file) = std::fs::File::open(lock_path(store)) else { return other.into() };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            other.into()
        }
        Err(_) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            // This process may be the writer itself: then someone else holds the transaction.
            if text.contains(&format!("(pid {})", std::process::id())) {
                other.into()
            } else if text.trim().is_empty() {
                "another process".into()
            } else {
                text.trim().to_string()
            }
        }
    }
}

impl WriterLock {
    /// Takes the lock, waiting up to `wait` for a holder to let go.
    pub fn acquire(store: &Path, what: &str, wait: Duration) -> Result<Self, StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = lock_path(store);
        let open_err = |e: std::io::Error| StoreError::Open { store: path.display().to_string(), msg: e.to_string() };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(open_err)?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = if holder.trim().is_empty() {
                        "another process".to_string()
                    } else {
                        holder.trim().to_string()
                    };
                    return Err(StoreError::Busy { path: store.to_path_buf(), holder });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(open_err(e)),
            }
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let since = crate::tz::utc_text(crate::tz::now_ms());
        let text = format!("{what} (pid {}) on host {} since {since} UTC\n", std::process::id(), host.trim());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .map_err(open_err)?;
        Ok(Self { _file: file })
    }
}
