//! `copy` never loses or keeps a stale row: a target holding anything of its
//! own is refused untouched (or replaced when asked), and a resumed copy
//! whose source changed meanwhile is done again.

use std::os::unix::fs::PermissionsExt;

use crate::cli::{run, text, write_config};
use crate::helpers::*;

/// The target of a copy: a PostgreSQL tenant or a new SQLite file.
fn target(kind: Kind, dir: &std::path::Path) -> String {
    match kind {
        Kind::Sqlite => dir.join("target.db").display().to_string(),
        Kind::Postgres => pg_database(),
    }
}

/// A SQLite file, or the PostgreSQL tenant copied into one, as rows.
fn rows_of(kind: Kind, target: &str, dir: &std::path::Path) -> Vec<String> {
    let file = match kind {
        Kind::Sqlite => std::path::PathBuf::from(target),
        Kind::Postgres => {
            let path = dir.join(format!("back-{}.db", fastrand::u32(..)));
            let pg = oifde_sync::config::PgSettings::parse(target, "tenant001").unwrap();
            let from = oifde_sync::store::Store::open_postgres_read_only(&pg).unwrap();
            let mut to = oifde_sync::store::Store::open(&path).unwrap();
            oifde_sync::copy::copy(&from, &mut to, &Quiet, &oifde_sync::copy::Target::Empty, false).unwrap();
            path
        }
    };
    dump_tables(&file)
}

per_store!(a_target_with_state_of_its_own_is_refused_untouched_unless_replaced);

/// A target that holds keys and a cursor but no records (a tenant a daemon
/// started on): refused, left as it was; `--replace` makes it the source.
async fn a_target_with_state_of_its_own_is_refused_untouched_unless_replaced(kind: Kind) {
    let sim = simulator(options(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let to = target(kind, dir.path());
    // The target's own state: a sync of a tenant with keys but no records.
    let other = tempfile::tempdir().unwrap();
    let empty = simulator(options(0)).await;
    let cfg = write_config(other.path(), &empty, &empty.options().app_secret.clone(), "", "");
    match kind {
        Kind::Sqlite => {
            let text = std::fs::read_to_string(&cfg)
                .unwrap()
                .replace(&other.path().join("mirror.db").display().to_string(), &to);
            std::fs::write(&cfg, text).unwrap();
        }
        Kind::Postgres => use_url(&cfg, &to),
    }
    assert_eq!(run(other.path(), &["sync"], &[]).await.status.code(), Some(0));
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    let before = rows_of(kind, &to, dir.path());
    assert!(before.iter().any(|r| r.starts_with("sync_cursors")), "the target has a cursor of its own");
    if kind == Kind::Sqlite {
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let bytes = (kind == Kind::Sqlite).then(|| std::fs::read(&to).unwrap());

    let out = run(dir.path(), &["copy", "--to", &to], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("already holds") && text(&out).contains("--replace"), "{}", text(&out));
    assert_eq!(rows_of(kind, &to, dir.path()), before, "left as it was");
    if let Some(bytes) = bytes {
        assert_eq!(std::fs::read(&to).unwrap(), bytes);
        assert_eq!(std::fs::metadata(&to).unwrap().permissions().mode() & 0o777, 0o644, "not even its mode");
    }

    let out = run(dir.path(), &["copy", "--to", &to, "--replace"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(rows_of(kind, &to, dir.path()), dump_tables(&dir.path().join("mirror.db")), "the source, exactly");
    // Run again: a finished copy is refused too.
    let out = run(dir.path(), &["copy", "--to", &to], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("a finished copy"), "{}", text(&out));
}

per_store!(a_resumed_copy_whose_source_changed_keeps_no_stale_row);

async fn a_resumed_copy_whose_source_changed_keeps_no_stale_row(kind: Kind) {
    let sim = simulator(options(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let to = target(kind, dir.path());
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let backfill = ["backfill", "--from", "2026-11-02 00:00:00", "--to", "2026-11-03 23:59:59"];
    assert_eq!(run(dir.path(), &backfill, &[]).await.status.code(), Some(0));
    assert_eq!(run(dir.path(), &["copy", "--to", &to], &[]).await.status.code(), Some(0));
    // As if the copy had been killed after every batch was written but
    // before any table was marked done.
    let unfinish = "UPDATE copy_progress SET done = false";
    match kind {
        Kind::Sqlite => {
            rusqlite::Connection::open(&to).unwrap().execute_batch("UPDATE copy_progress SET done = 0").unwrap();
        }
        Kind::Postgres => {
            pg_rows(&to, unfinish);
        }
    }
    // The source changes meanwhile: 40 records get a newer version.
    let changed: Vec<String> = sim.records().iter().take(40).map(|r| r.log_id.clone()).collect();
    for id in &changed {
        sim.update(id, |r| {
            r.last_update_time = r.last_update_time.map(|t| t + 1000);
            r.flag = Some("changed".into());
            r.details.truncate(1);
        });
    }
    let out = run(dir.path(), &backfill, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(dir.path(), &["copy", "--to", &to], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("resumed") && text(&out).contains("copied again"), "{}", text(&out));
    let source = dump_tables(&dir.path().join("mirror.db"));
    assert_eq!(rows_of(kind, &to, dir.path()), source, "no stale row");
}

/// A record's own `tenantId` (another tenant's, say) survives SQLite →
/// PostgreSQL → SQLite, while PostgreSQL partitions it under the configured
/// tenant.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn a_records_own_tenant_id_survives_the_round_trip() {
    let sim = simulator(options(50)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = target(Kind::Postgres, dir.path());
    let mut other = sim.records()[0].clone();
    other.log_id = "other-tenant-record".into();
    other.tenant_id = "someone-else".into();
    sim.insert(other);
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    let out = run(dir.path(), &["copy", "--to", &url], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let pg = pg_rows(&url, "SELECT tenant_id, api_tenant_id FROM records WHERE log_id = 'other-tenant-record'");
    assert_eq!(pg, vec![vec![Some("tenant001".to_string()), Some("someone-else".to_string())]]);
    assert_eq!(rows_of(Kind::Postgres, &url, dir.path()), dump_tables(&dir.path().join("mirror.db")));
}

per_store!(the_copied_tables_match_the_schema_column_by_column);

/// Tables a copy leaves out, and why: the copy's own positions, what
/// belongs to the store's machinery (its version, its writer, the
/// full-text index built again after a copy), the last verification (made
/// again by the next `verify`). The fallback intentions go with the measures
/// computed from them.
const NOT_COPIED: &[&str] = &["copy_progress", "oifde_schema", "writers", "verifications"];

/// `copy`'s table list is the schema's: every table, every column, on both
/// stores. A column added to a schema and not to the list (or the other
/// way round) would be dropped by `copy` without a word.
async fn the_copied_tables_match_the_schema_column_by_column(kind: Kind) {
    let store = TestStore::new(kind);
    let (tables_sql, columns_sql): (&str, fn(&str) -> String) = match kind {
        Kind::Sqlite => {
            oifde_sync::store::Store::open(&store.db).unwrap();
            (
                // Turns, Q&A rows and a session's figures are copied through
                // their views, which stand for the integer-keyed tables beneath.
                "SELECT name FROM sqlite_master WHERE (type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
                 AND name NOT LIKE 'record\\_details\\_fts%' ESCAPE '\\' \
                 AND name NOT IN ('turn_rows', 'qa_rows', 'session_figures')) \
                 OR (type = 'view' AND name IN ('record_details', 'qa_records', 'session_facts'))",
                |t| format!("SELECT name FROM pragma_table_info('{t}')"),
            )
        }
        Kind::Postgres => {
            oifde_sync::store::Store::open_postgres(&store.pg().unwrap(), oifde_sync::config::FullText::Callers)
                .unwrap();
            (
                // Turns and Q&A rows are copied through their views, which
                // stand for the tables keyed by the record's number beneath.
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() \
                 AND ((table_type = 'BASE TABLE' AND table_name NOT IN ('turn_rows', 'qa_rows')) \
                      OR (table_type = 'VIEW' AND table_name IN ('record_details', 'qa_records')))",
                |t| {
                    format!(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() \
                         AND table_name = '{t}'"
                    )
                },
            )
        }
    };
    let list = oifde_sync::store::tables::tables();
    let mut schema_tables = store.column(tables_sql);
    schema_tables.retain(|t| !NOT_COPIED.contains(&t.as_str()));
    schema_tables.sort();
    let mut listed: Vec<String> = list.iter().map(|t| t.name.to_string()).collect();
    listed.sort();
    assert_eq!(schema_tables, listed, "{kind:?}: the schema's tables against copy's list");
    for t in &list {
        let mut in_schema: Vec<String> = store
            .column(&columns_sql(t.name))
            .into_iter()
            // PostgreSQL's partition column; a record's own tenant is `api_tenant_id` there.
            .filter(|c| !(kind == Kind::Postgres && c == "tenant_id"))
            // The views' row id and PostgreSQL's record number, which name the
            // row in this store only.
            .filter(|c| !(kind == Kind::Sqlite && c == "rowid"))
            .filter(|c| !(kind == Kind::Postgres && t.name == "records" && c == "id"))
            .map(|c| if c == "api_tenant_id" { "tenant_id".to_string() } else { c })
            .collect();
        in_schema.sort();
        let mut in_list: Vec<String> = t.columns.iter().map(|(c, _)| c.to_string()).collect();
        in_list.sort();
        assert_eq!(in_schema, in_list, "{kind:?}: the columns of {}", t.name);
    }
}
