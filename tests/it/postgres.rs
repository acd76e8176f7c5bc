//! What PostgreSQL adds to the common suite (which runs every store test on
//! both stores): tenants side by side in one database, one writer per
//! tenant, `copy` both ways, the README's PostgreSQL queries, and the
//! config's and `check`'s words for it.

use std::process::Stdio;
use std::time::Duration;

use oifde_sync::simulator::SimOptions;

use crate::cli::{run, text, write_config};
use crate::helpers::*;

/// A config for `sim` in a directory of its own, writing into `store`'s database.
fn tenant_dir(store: &TestStore, sim: &oifde_sync::simulator::Simulator) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sim, &sim.options().app_secret.clone(), "", "[log]\nlevel = \"warn\"\n");
    use_url(&config, store.url.as_ref().unwrap());
    dir
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn two_tenants_share_one_database_and_stay_apart() {
    let store = TestStore::new(Kind::Postgres);
    let north = simulator(SimOptions { tenant_id: "north".into(), seed: 11, ..options(700) }).await;
    let south = simulator(SimOptions { tenant_id: "south".into(), seed: 12, ..options(500) }).await;
    let (dn, ds) = (tenant_dir(&store, &north), tenant_dir(&store, &south));
    // Both at once, as two daemons of the template unit would.
    let (a, b) = tokio::join!(run(dn.path(), &["sync"], &[]), run(ds.path(), &["sync"], &[]));
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    let per_tenant = store.rows("SELECT tenant_id, count(*) FROM records GROUP BY tenant_id ORDER BY tenant_id");
    assert_eq!(
        per_tenant,
        vec![vec![Some("north".into()), Some("700".into())], vec![Some("south".into()), Some("500".into())]]
    );
    assert_mirrors(&store.local_for("north"), &north.records());
    assert_mirrors(&store.local_for("south"), &south.records());
    // Each tenant's status, keys and runs are its own.
    let status = run(ds.path(), &["status", "--json"], &[]).await;
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["records"], 500);
    assert_eq!(doc["cursors"].as_array().unwrap().len(), south.mobiles().len());
    assert_eq!(doc["runs"].as_array().unwrap().len(), 1);
    assert_eq!(doc["db_bytes_counts"], "database", "the size is the shared database's, not the tenant's");
    let plain = run(ds.path(), &["status"], &[]).await;
    assert!(text(&plain).contains("database size") && text(&plain).contains("every tenant's"), "{}", text(&plain));
    // A second pass of one tenant writes nothing and leaves the other alone.
    let again = run(dn.path(), &["sync"], &[]).await;
    assert!(text(&again).contains(" 0 inserted, 0 updated"), "{}", text(&again));
    assert_eq!(store.count("SELECT count(*) FROM records WHERE tenant_id = 'south'"), 500);
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn a_second_writer_for_the_same_tenant_is_refused_naming_the_first() {
    let store = TestStore::new(Kind::Postgres);
    let north = simulator(SimOptions { tenant_id: "north".into(), ..options(100) }).await;
    let south = simulator(SimOptions { tenant_id: "south".into(), ..options(100) }).await;
    let (dn, ds) = (tenant_dir(&store, &north), tenant_dir(&store, &south));
    let mut daemon = spawn(dn.path(), &["run"], &[], Stdio::null());
    let mut held = false;
    for _ in 0..200 {
        if store.column("SELECT holder FROM writers WHERE tenant_id = 'north'").iter().any(|h| h.contains("run")) {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held, "the daemon took the tenant's lock");
    let out = run(dn.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let pid = daemon.0.id().to_string();
    assert!(text(&out).contains("tenant north is already being synced"), "{}", text(&out));
    assert!(text(&out).contains(&format!("pid {pid}")) && text(&out).contains("oifde-sync run"), "{}", text(&out));
    let check = run(dn.path(), &["check"], &[]).await;
    assert!(text(&check).contains("being written by"), "{}", text(&check));
    // Another tenant in the same database is not held up.
    let other = run(ds.path(), &["sync"], &[]).await;
    assert_eq!(other.status.code(), Some(0), "{}", text(&other));
    // The lock goes with its holder's connection, however it ends.
    let _ = daemon.0.kill();
    let _ = daemon.0.wait();
    let after = run(dn.path(), &["sync"], &[]).await;
    assert_eq!(after.status.code(), Some(0), "{}", text(&after));
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn a_daemon_that_loses_its_database_exits_for_a_restart() {
    let store = TestStore::new(Kind::Postgres);
    let sim = simulator(options(100)).await;
    let dir = tenant_dir(&store, &sim);
    let config = dir.path().join("oifde-sync.toml");
    let every_second =
        std::fs::read_to_string(&config).unwrap().replace("[sync]\n", "[sync]\nschedule = \"* * * * * *\"\n");
    std::fs::write(&config, every_second).unwrap();
    let mut daemon = spawn(dir.path(), &["run"], &[], Stdio::piped());
    while store.count("SELECT count(*) FROM sync_runs WHERE status = 'ok'") == 0 {
        assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon ended early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The server ends the daemon's session (a restart or failover looks the same).
    pg_rows(
        store.url.as_ref().unwrap(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'oifde-sync tenant001' \
         AND datname = current_database()",
    );
    let mut child = daemon;
    let status = tokio::task::spawn_blocking(move || {
        for _ in 0..200 {
            if let Some(status) = child.0.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
                return Some((status, err));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    })
    .await
    .unwrap();
    let (status, err) = status.expect("the daemon exits once its connection is gone");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("lost the connection to the database"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn copy_moves_a_sqlite_mirror_exactly_and_resumes_after_a_kill() {
    let pg = TestStore::new(Kind::Postgres);
    let sim = simulator(SimOptions { users: 6, ..options(6000) }).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "[log]\nlevel = \"warn\"\n");
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Keys of every state and skipped windows travel too.
    assert_eq!(run(dir.path(), &["keys", "add", "call:no-such-call"], &[]).await.status.code(), Some(0));
    let db = dir.path().join("mirror.db");
    let url = pg.url.clone().unwrap();

    // Killed part way, then run again: it resumes.
    let mut child = spawn(dir.path(), &["copy", "--to", &url], &[], Stdio::null());
    loop {
        if pg.count("SELECT count(*) FROM record_details") > 0 {
            break;
        }
        assert!(child.0.try_wait().unwrap().is_none(), "the copy ended before it could be interrupted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = child.0.kill();
    let _ = child.0.wait();
    let out = run(dir.path(), &["copy", "--to", &url], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("(resumed)") && text(&out).contains("contents equal"), "{}", text(&out));
    // The PostgreSQL mirror, copied back into SQLite, is the original row for row.
    let back = pg.local();
    assert!(dump_tables(&db).len() > 1000);
    assert_eq!(dump_tables(&back), dump_tables(&db));
    assert_mirrors(&back, &sim.records());
    // Not into the store itself, nor into one that already holds records.
    let out = run(dir.path(), &["copy", "--to", &format!("{}", db.display())], &[]).await;
    assert_eq!(out.status.code(), Some(2), "the store itself: {}", text(&out));
    let taken = tempfile::tempdir().unwrap();
    let other_db = taken.path().join("other.db");
    std::fs::copy(&db, &other_db).unwrap();
    let out = run(dir.path(), &["copy", "--to", &format!("{}", other_db.display())], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("already holds") && text(&out).contains("rows of records"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn the_readmes_postgres_queries_run_and_answer() {
    let blocks = doc_blocks("sql postgres");
    for (title, sql) in oifde_sync::queries::CANONICAL_POSTGRES {
        assert!(blocks.iter().any(|b| b.trim() == sql.trim()), "the docs show {title:?} as the code has it");
    }
    let store = TestStore::new(Kind::Postgres);
    // Recent records, so "the last 7 days" holds data.
    let sim = simulator(SimOptions { records: 600, users: 4, ..SimOptions::default() }).await;
    let engine = engine(store.settings(&sim));
    let (from, to) = (sim.options().from, sim.options().to - 1);
    let kind = oifde_sync::sync::PassKind::Backfill { from, to, key: None };
    let report = engine.pass(kind, &tokio_util::sync::CancellationToken::new()).await.unwrap();
    assert_eq!(report.status, oifde_sync::run_log::PassStatus::Ok);
    for sql in &blocks {
        assert!(!store.rows(sql).is_empty(), "no rows from:\n{sql}");
    }
    // The substring search can be served by the trigram index (on a table
    // this small, a walk of the whole integer key is cheaper still: ruled out).
    let plan = store.column(
        "SET enable_seqscan = off; SET enable_indexscan = off; \
         EXPLAIN SELECT log_id FROM record_details WHERE user_saying LIKE '%转人工%'",
    );
    assert!(plan.iter().any(|l| l.contains("record_details_user_saying_trgm")), "{plan:?}");
    // Turns by intention: a B-tree on the text's digest (a hash index on a
    // column of few values made every insert walk a chain of overflow pages).
    let plan = store.column(
        "SET enable_seqscan = off; EXPLAIN SELECT seq FROM record_details WHERE tenant_id = 'tenant001' \
         AND md5(intention) = md5('转人工') AND intention = '转人工'",
    );
    assert!(
        plan.iter().any(|l| l.contains("Index Cond") && l.contains("md5(intention)")),
        "the intention index serves the digest: {plan:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn config_and_check_speak_of_the_database_without_its_password() {
    let store = TestStore::new(Kind::Postgres);
    let sim = simulator(options(50)).await;
    let dir = tenant_dir(&store, &sim);
    let config = dir.path().join("oifde-sync.toml");
    let check = run(dir.path(), &["check"], &[]).await;
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    let schema = format!("schema {}", oifde_sync::store::postgres::SCHEMA_VERSION);
    assert!(text(&check).contains("postgres://") && text(&check).contains(&schema), "{}", text(&check));

    // Both store.path and store.url: a config error naming the keys.
    let both = std::fs::read_to_string(&config).unwrap().replace("[store]\n", "[store]\npath = \"x.db\"\n");
    std::fs::write(&config, &both).unwrap();
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("store.path") && text(&out).contains("store.url"), "{}", text(&out));

    // A wrong password: exit 3, the URL shown without it.
    let url = store.url.clone().unwrap().replace("postgres@", "nobody:hunter2-pw@");
    let text_cfg = both.replace("[store]\npath = \"x.db\"\n", "[store]\n");
    let line = text_cfg.lines().find(|l| l.starts_with("url = ")).unwrap().to_string();
    std::fs::write(&config, text_cfg.replace(&line, &format!("url = \"{url}\""))).unwrap();
    for args in [&["sync"][..], &["check"][..], &["status"][..]] {
        let out = run(dir.path(), args, &[]).await;
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("hunter2-pw"), "the password leaked: {}", text(&out));
        assert!(text(&out).contains("nobody:***@"), "{}", text(&out));
    }

    // A store written by a newer oifde-sync is refused, as with SQLite.
    pg_rows(store.url.as_ref().unwrap(), "UPDATE oifde_schema SET version = 99");
    std::fs::write(&config, text_cfg).unwrap();
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("newer than this oifde-sync"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn tls_to_the_database_checks_its_certificate_against_the_ca_file() {
    let store = TestStore::new(Kind::Postgres);
    let url = store.url.clone().unwrap();
    // The server's own files: only the throwaway server of .ci/postgres can be given a certificate.
    let port = url.rsplit_once(':').unwrap().1.split('/').next().unwrap().to_string();
    let data = std::path::PathBuf::from(format!("/tmp/oifde-sync-pg-{port}"));
    assert!(
        data.join("PG_VERSION").exists(),
        "the test server must be one .ci/postgres started (its TLS is set up in {}); unset OIFDE_TEST_PG_URL",
        data.display()
    );
    let (ca_pem, identity) = crate::network::private_ca();
    let tls = data.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::write(tls.join("server.crt"), &identity.cert_chain_pem).unwrap();
    std::fs::write(tls.join("server.key"), &identity.key_pem).unwrap();
    std::fs::set_permissions(tls.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(data.join("PG_VERSION")).unwrap());
    for f in ["", "server.crt", "server.key"] {
        std::os::unix::fs::chown(tls.join(f), Some(owner), None).unwrap();
    }
    for sql in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}/server.crt'", tls.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}/server.key'", tls.display()),
        "ALTER SYSTEM SET ssl = on".into(),
        "SELECT pg_reload_conf()".into(),
    ] {
        pg_rows(&url, &sql);
    }
    // The postmaster reloads its configuration a moment later; new sessions then offer TLS.
    for _ in 0..100 {
        if pg_rows(&url, "SHOW ssl")[0][0].as_deref() == Some("on") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sim = simulator(options(100)).await;
    let dir = tenant_dir(&store, &sim);
    let config = dir.path().join("oifde-sync.toml");
    let ca_file = dir.path().join("db-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let base = std::fs::read_to_string(&config).unwrap();
    let with = |url: &str, ca: bool| {
        let line = base.lines().find(|l| l.starts_with("url = ")).unwrap();
        let mut text = base.replace(line, &format!("url = \"{url}\""));
        if ca {
            text = text.replace("[store]\n", &format!("[store]\nca_file = \"{}\"\n", ca_file.display()));
        }
        std::fs::write(&config, text).unwrap();
    };
    let tls_url = url.replace("sslmode=disable", "sslmode=verify-full");
    // The CA file: TLS, and the pass runs.
    with(&tls_url, true);
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The server's certificate from an unknown CA is refused.
    with(&tls_url, false);
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).to_lowercase().contains("certificate"), "{}", text(&out));
    // So is a certificate for another host name (it names 127.0.0.1 only).
    with(&tls_url.replace("127.0.0.1", "localhost"), true);
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).to_lowercase().contains("certificate"), "{}", text(&out));
}

/// A database written by the previous schema (version 1) is migrated in
/// place, its keys kept, and gains the keys' `last_error`.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn a_version_1_database_is_migrated_in_place() {
    let store = TestStore::new(Kind::Postgres);
    let url = store.url.clone().unwrap();
    let schema = include_str!("../../schema.pg.sql");
    let v1 = &schema[..schema.find("\n-- migration: 2").unwrap()];
    pg_rows(&url, &format!("{v1};\nUPDATE oifde_schema SET version = 1;"));
    pg_rows(
        &url,
        "INSERT INTO query_keys (tenant_id, query_key, kind, source, state, added_at) \
         VALUES ('tenant001', 'call:kept', 'point', 'config', 'waiting', 1)",
    );
    pg_rows(
        &url,
        "INSERT INTO records (tenant_id, log_id, raw_json, content_hash, first_seen_at, synced_at) \
         VALUES ('tenant001', 'old', '{\"logId\":\"old\",\"tenantId\":\"someone-else\"}', 'h', 1, 1)",
    );
    let sim = simulator(options(20)).await;
    let engine = engine(store.settings(&sim));
    drop(engine);
    let current = oifde_sync::store::postgres::SCHEMA_VERSION.to_string();
    assert_eq!(pg_rows(&url, "SELECT version FROM oifde_schema")[0][0].as_deref(), Some(current.as_str()));
    assert!(pg_rows(&url, "SELECT * FROM v_calls").len() == 1, "the views work");
    let kept = pg_rows(&url, "SELECT state, last_error FROM query_keys WHERE query_key = 'call:kept'");
    assert_eq!(kept, vec![vec![Some("waiting".to_string()), None]]);
    let own = pg_rows(&url, "SELECT api_tenant_id FROM records WHERE log_id = 'old'");
    assert_eq!(own, vec![vec![Some("someone-else".to_string())]], "the record's own tenant, from raw_json");
}

/// A password with a reserved character typed raw in `store.url` (or the
/// `copy --to` URL) is refused naming the rule, and never shown; encoded,
/// it connects and is shown as `***` everywhere, stored copies included.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn a_password_in_the_url_is_never_shown_whatever_it_holds() {
    let store = TestStore::new(Kind::Postgres);
    let sim = simulator(options(20)).await;
    let dir = tenant_dir(&store, &sim);
    let config = dir.path().join("oifde-sync.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    let url = store.url.clone().unwrap();
    let with_password =
        |password: &str| url.replacen("postgres://postgres@", &format!("postgres://postgres:{password}@"), 1);
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    for c in ["/", "?", "#", "@", "[", "]", "%", " "] {
        let password = format!("Se{c}cretPw");
        std::fs::write(&config, good.replace(&url, &with_password(&password))).unwrap();
        for args in [&["check"][..], &["status"], &["sync"]] {
            let out = run(dir.path(), args, &[]).await;
            assert_eq!(out.status.code(), Some(2), "{c:?} {args:?}: {}", text(&out));
            assert!(text(&out).contains("store.url") && text(&out).contains("percent-encode"), "{}", text(&out));
            assert!(!text(&out).contains("cretPw"), "{c:?} {args:?}: the password was shown: {}", text(&out));
        }
        std::fs::write(&config, &good).unwrap();
        let out = run(dir.path(), &["copy", "--to", &with_password(&password)], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(!text(&out).contains("cretPw"), "{c:?}: {}", text(&out));
    }
    // Percent-encoded: it connects (the test server trusts loopback) and is shown as ***.
    let encoded = with_password("Se%2F%40cretPw");
    std::fs::write(&config, good.replace(&url, &encoded)).unwrap();
    for args in [&["sync"][..], &["status"], &["check"]] {
        let out = run(dir.path(), args, &[]).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("cretPw") && !text(&out).contains("%2F%40"), "{}", text(&out));
    }
    let file = dir.path().join("extract.db");
    let out = run(dir.path(), &["copy", "--to", &file.display().to_string()], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("cretPw"), "{}", text(&out));
    let sources: String = rusqlite::Connection::open(&file)
        .unwrap()
        .query_row("SELECT group_concat(source) FROM copy_progress", [], |r| r.get(0))
        .unwrap();
    assert!(!sources.contains("cretPw") && sources.contains("***"), "{sources}");
}

/// The README's read-only role makes an extract while the tenant's daemon
/// writes: no writer lock, one consistent state, rows equal to the tenant's.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn an_analyst_with_a_read_only_role_extracts_while_the_daemon_writes() {
    let store = TestStore::new(Kind::Postgres);
    let sim = simulator(options(400)).await;
    let dir = tenant_dir(&store, &sim);
    let url = store.url.clone().unwrap();
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    pg_rows(&url, "DO $$ BEGIN CREATE ROLE analyst LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    pg_rows(&url, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO analyst");
    let config = dir.path().join("oifde-sync.toml");
    let text_cfg = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text_cfg.replace("[sync]\n", "[sync]\nschedule = \"* * * * * *\"\n")).unwrap();
    let _daemon = spawn(dir.path(), &["run"], &[], std::process::Stdio::null());
    // The daemon holds the tenant's writer lock.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while store.count("SELECT count(*) FROM writers WHERE tenant_id = 'tenant001'") == 0 {
        assert!(std::time::Instant::now() < deadline, "the daemon did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let analyst = tempfile::tempdir().unwrap();
    let acfg = analyst.path().join("oifde-sync.toml");
    let read_only = url.replacen("postgres://postgres@", "postgres://analyst@", 1);
    std::fs::write(&acfg, text_cfg.replace(&url, &read_only).replace("app_secret = ", "# app_secret = ")).unwrap();
    let out = run(analyst.path(), &["copy", "--to", "mine.db"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("contents equal"), "{}", text(&out));
    let conn = rusqlite::Connection::open(analyst.path().join("mine.db")).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM records", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 400);
}

/// A database of the previous schema version is migrated in place, its keys
/// kept, and holds the indexes the SQLite store has (version 3 added them); afterwards both stores hold the same indexes
/// by name (PostgreSQL's md5 keys of the summary tables apart, which SQLite
/// holds as primary keys).
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn a_database_of_the_previous_version_is_migrated_and_has_the_sqlite_stores_indexes() {
    let store = TestStore::new(Kind::Postgres);
    let url = store.url.clone().unwrap();
    let schema = include_str!("../../schema.pg.sql");
    let current = oifde_sync::store::postgres::SCHEMA_VERSION;
    let previous = &schema[..schema.find(&format!("\n-- migration: {current}")).unwrap()];
    pg_rows(&url, &format!("{previous};\nUPDATE oifde_schema SET version = {};", current - 1));
    pg_rows(
        &url,
        "INSERT INTO query_keys (tenant_id, query_key, kind, source, state, added_at) \
         VALUES ('tenant001', 'call:kept', 'point', 'config', 'waiting', 1)",
    );
    let sim = simulator(options(20)).await;
    drop(engine(store.settings(&sim)));
    assert_eq!(pg_rows(&url, "SELECT version FROM oifde_schema")[0][0].as_deref(), Some(current.to_string().as_str()));
    let kept = pg_rows(&url, "SELECT state, call_begin FROM query_keys WHERE query_key = 'call:kept'");
    assert_eq!(kept, vec![vec![Some("waiting".to_string()), None]], "the key is kept");
    for table in ["cdr_legs", "platform_stats", "verifications"] {
        assert_eq!(pg_rows(&url, &format!("SELECT count(*) FROM {table}"))[0][0].as_deref(), Some("0"), "{table}");
    }
    let mut pg: Vec<String> = pg_rows(
        &url,
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname NOT LIKE '%\\_pkey' \
         AND indexname NOT LIKE '%\\_key' AND indexname NOT LIKE '%\\_trgm'",
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect();
    // PostgreSQL's B-tree entries hold at most about 2.7 KB: the hash index
    // `records_calling_number` serves equality, and this one a caller's day.
    assert!(pg.iter().any(|name| name == "records_caller_time"), "{pg:?}");
    pg.retain(|name| name != "records_caller_time");
    pg.sort();
    let sqlite = TestStore::new(Kind::Sqlite);
    drop(oifde_sync::store::Store::open(&sqlite.db).unwrap());
    let mut lite = sqlite.column("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL");
    lite.sort();
    assert_eq!(pg, lite, "the indexes of the two stores");
}
