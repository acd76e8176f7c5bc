//! The store when things go wrong: a newer schema, a lock held by someone
//! else, a path that cannot be created; and the warning for a readable secret.

use std::os::unix::fs::PermissionsExt;

use crate::cli::{run, text, write_config};
use crate::helpers::*;

fn count(db: &std::path::Path, table: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_from_a_newer_version_is_refused_with_exit_3() {
    let sim = simulator(options(20)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    let db = dir.path().join("mirror.db");
    rusqlite::Connection::open(&db).unwrap().pragma_update(None, "user_version", 99).unwrap();
    for args in [&["sync"][..], &["status"][..]] {
        let out = run(dir.path(), args, &[]).await;
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("schema version 99"), "{}", text(&out));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_locked_by_an_analyst_exits_3_and_writes_nothing() {
    let sim = simulator(options(50)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    let db = dir.path().join("mirror.db");
    let runs_before = count(&db, "sync_runs");
    sim.insert({
        let mut r = sim.records()[0].clone();
        r.log_id = "new-while-locked".into();
        r
    });
    let analyst = rusqlite::Connection::open(&db).unwrap();
    analyst.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("is busy: another process (not an oifde-sync writer"), "{}", text(&out));
    analyst.execute_batch("ROLLBACK").unwrap();
    assert_eq!(count(&db, "sync_runs"), runs_before, "nothing half-written");
    assert_eq!(count(&db, "records"), 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_path_that_cannot_be_created_exits_3() {
    let sim = simulator(options(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let text_ = std::fs::read_to_string(&config).unwrap();
    let bad = text_.replace(&dir.path().join("mirror.db").display().to_string(), "/proc/oifde-sync/mirror.db");
    std::fs::write(&config, bad).unwrap();
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("cannot open the store /proc/oifde-sync/mirror.db"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_warns_when_a_config_holding_the_secret_is_readable_by_others() {
    let sim = simulator(options(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(dir.path(), &["check"], &[]).await;
    assert!(text(&out).contains("holds a secret and other users can read it"), "{}", text(&out));
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(dir.path(), &["check"], &[]).await;
    assert!(!text(&out).contains("other users can read it"), "{}", text(&out));

    // The secret in its own file, as systemd's LoadCredential= provides it.
    let secret_file = dir.path().join("app_secret");
    std::fs::write(&secret_file, format!("{}\n", sim.options().app_secret)).unwrap();
    let with_file = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("app_secret = \"{}\"", sim.options().app_secret), "app_secret_file = \"app_secret\"");
    std::fs::write(&config, with_file).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let creds = dir.path().display().to_string();
    let out = run(dir.path(), &["check"], &[("CREDENTIALS_DIRECTORY", &creds)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("other users can read it"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typo_in_store_path_names_the_missing_directory_and_creates_none() {
    let sim = simulator(options(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let typo = dir.path().join("var/lib/oifde-synk/mirror.db");
    let text_ = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text_.replace(&dir.path().join("mirror.db").display().to_string(), &typo.display().to_string()),
    )
    .unwrap();
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("directory {} does not exist", dir.path().join("var/lib").display())),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("var").exists(), "no directory was created");
    // The store's own directory is made when its parent exists.
    std::fs::create_dir_all(dir.path().join("var/lib")).unwrap();
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    assert!(typo.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relative_secret_file_is_found_beside_the_config_and_the_message_says_where_it_looked() {
    let sim = simulator(options(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let with_file = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("app_secret = \"{}\"", sim.options().app_secret), "app_secret_file = \"app_secret\"");
    std::fs::write(&config, with_file).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let config_arg = config.display().to_string();
    let out = run(elsewhere.path(), &["--config", &config_arg, "check"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("beside the config file") && text(&out).contains("no such file"), "{}", text(&out));
    std::fs::write(dir.path().join("app_secret"), format!("{}\n", sim.options().app_secret)).unwrap();
    let out = run(elsewhere.path(), &["--config", &config_arg, "check"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
