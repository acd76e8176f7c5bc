//! A consistent copy of the store for analysts, safe while the daemon
//! writes: SQLite's `VACUUM INTO` reads one snapshot of the database into a
//! new, compact file, which then replaces the target in one rename.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use crate::config::{Access, is_the_store};

/// Writes a copy of the store at `store` to `to`; returns the records it holds.
/// A target that is the store itself is refused before anything is touched.
pub fn snapshot(store: &Path, to: &Path, access: &Access) -> Result<i64, StoreError> {
    let fail = |msg: String| StoreError::Snapshot { to: to.to_path_buf(), msg };
    if is_the_store(store, to) {
        return Err(fail(format!("it is the store {} itself; name another file", store.display())));
    }
    let gid = access.group.as_deref().map(group_id).transpose().map_err(fail)?;
    let conn = Connection::open_with_flags(store, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::Open { store: store.display().to_string(), msg: e.to_string() })?;
    let tmp = PathBuf::from(format!("{}.tmp-{}", to.display(), std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        conn.execute("VACUUM INTO ?1", [tmp.display().to_string()]).map_err(|e| fail(e.to_string()))?;
        let copy =
            Connection::open_with_flags(&tmp, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| fail(e.to_string()))?;
        let records: i64 =
            copy.query_row("SELECT count(*) FROM records", [], |r| r.get(0)).map_err(|e| fail(e.to_string()))?;
        drop(copy);
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(access.mode))
            .map_err(|e| fail(e.to_string()))?;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(&tmp, None, Some(gid))
                .map_err(|e| fail(format!("cannot give it to the group: {e}")))?;
        }
        std::fs::rename(&tmp, to).map_err(|e| fail(e.to_string()))?;
        Ok(records)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The id of group `name`, from `/etc/group`.
fn group_id(name: &str) -> Result<u32, String> {
    let groups = std::fs::read_to_string("/etc/group").map_err(|e| format!("cannot read /etc/group: {e}"))?;
    groups
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            Some((f.next()?, f.nth(1)?))
        })
        .find(|(n, _)| *n == name)
        .and_then(|(_, gid)| gid.parse().ok())
        .ok_or_else(|| format!("no group named {name:?}"))
}
