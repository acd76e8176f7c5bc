//! The install as the README describes it, run the way systemd runs the unit:
//! as an unprivileged user of its own (`DynamicUser=`), with the config owned
//! by root and readable to all (no secret in it), the secret from
//! `LoadCredential=` in `$CREDENTIALS_DIRECTORY`, and the store in
//! `$STATE_DIRECTORY`.

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::Path;
use std::process::{Command, Output};

use crate::cli::text;
use crate::helpers::*;

const SERVICE_UID: u32 = 65534;

/// Runs the binary as the service's user, with the unit's environment.
async fn as_service(args: &[&str], creds: &Path, state: &Path) -> Option<Output> {
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].into_iter().find(|p| Path::new(p).exists())?;
    let mut cmd = Command::new(setpriv);
    cmd.args(["--reuid", &SERVICE_UID.to_string(), "--regid", &SERVICE_UID.to_string(), "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_oifde-sync"))
        .args(args)
        .current_dir(state)
        .env_remove("OIFDE_SYNC_CONFIG")
        .env("CREDENTIALS_DIRECTORY", creds)
        .env("STATE_DIRECTORY", state);
    Some(tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root (to switch to the service's uid) and setpriv; .ci/run runs this as root"]
async fn the_readme_install_starts_as_the_services_own_user() {
    assert_eq!(unsafe_geteuid(), 0, "this test needs root to switch to the service's uid");
    let sim = simulator(options(200)).await;
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // /etc/oifde-sync: root's, 0755; config.toml 0644 without the secret.
    let etc = root.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let state = root.path().join("state");
    std::fs::create_dir(&state).unwrap();
    chown(&state, Some(SERVICE_UID), Some(SERVICE_UID)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mobiles: Vec<String> = sim.mobiles().iter().map(|m| format!("\"{m}\"")).collect();
    let config = etc.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nbase_url = \"{}\"\ntenant_id = \"{}\"\napp_secret_file = \"app_secret\"\n\n\
             [query]\nuser_mobiles = [{}]\n\n[sync]\nstart = \"2026-11-02 00:00:00\"\n\n\
             [store]\npath = \"{}/oifde-sync.db\"\n",
            sim.base_url(),
            sim.options().tenant_id,
            mobiles.join(", "),
            state.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    // What LoadCredential= gives the service: a private directory it can read.
    let creds = root.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("app_secret"), format!("{}\n", sim.options().app_secret)).unwrap();
    std::fs::set_permissions(creds.join("app_secret"), std::fs::Permissions::from_mode(0o400)).unwrap();
    chown(creds.join("app_secret"), Some(SERVICE_UID), Some(SERVICE_UID)).unwrap();
    chown(&creds, Some(SERVICE_UID), Some(SERVICE_UID)).unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o500)).unwrap();

    let config_arg = config.display().to_string();
    let check =
        as_service(&["--config", &config_arg, "check"], &creds, &state).await.expect("setpriv (util-linux) runs");
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    let sync = as_service(&["--config", &config_arg, "sync"], &creds, &state).await.unwrap();
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync));
    assert_mirrors(&state.join("oifde-sync.db"), &sim.records());

    // The mistake the README used to lead to: a config only root can read.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let denied = as_service(&["--config", &config_arg, "check"], &creds, &state).await.unwrap();
    assert_eq!(denied.status.code(), Some(2), "{}", text(&denied));
    assert!(text(&denied).contains("permission denied"), "{}", text(&denied));
    assert!(!text(&denied).contains("not found"), "{}", text(&denied));
}

fn unsafe_geteuid() -> u32 {
    unsafe extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() }
}

#[tokio::test(flavor = "multi_thread")]
async fn analysts_get_a_consistent_snapshot_while_the_daemon_writes() {
    use std::os::unix::fs::MetadataExt;
    let faults = oifde_sync::simulator::Faults {
        slow_rate: 1.0,
        slow_delay: std::time::Duration::from_millis(30),
        ..Default::default()
    };
    let sim = simulator(oifde_sync::simulator::SimOptions { faults, ..options(3000) }).await;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let config = crate::cli::write_config(
        dir.path(),
        &sim,
        &sim.options().app_secret.clone(),
        "",
        &format!("snapshot_to = \"{}\"\nsnapshot_group = \"nogroup\"\n", shared.join("auto.db").display()),
    );
    let _ = config;
    let mut daemon = spawn(dir.path(), &["run"], &[], std::process::Stdio::null());
    // Mid-pass: a snapshot by hand, with the analysts' mode and group.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let snap = shared.join("now.db");
    let out = crate::cli::run(
        dir.path(),
        &["snapshot", "--to", snap.to_str().unwrap(), "--mode", "0640", "--group", "nogroup"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let meta = std::fs::metadata(&snap).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(meta.gid(), SERVICE_UID, "given to the group nogroup");
    let conn = rusqlite::Connection::open(&snap).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    // After the daemon's pass, store.snapshot_to holds everything.
    let auto = shared.join("auto.db");
    for _ in 0..300 {
        if auto.exists()
            && rusqlite::Connection::open(&auto)
                .and_then(|c| c.query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0)))
                .is_ok_and(|n| n == 3000)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = daemon.0.kill();
    assert_mirrors(&auto, &sim.records());
}
