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
async fn the_readme_install_starts_as_the_services_own_user() {
    if unsafe_geteuid() != 0 {
        eprintln!("SKIPPED: this test needs root to switch to the service's uid");
        return;
    }
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
    let Some(check) = as_service(&["--config", &config_arg, "check"], &creds, &state).await else {
        eprintln!("SKIPPED: setpriv is not installed");
        return;
    };
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
