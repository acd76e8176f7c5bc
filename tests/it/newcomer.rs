//! What a newcomer meets: paths that resolve beside the config, keys that
//! are checked, a snapshot that cannot overwrite the store, and the
//! documented multi-tenant layout run by hand.

use std::path::Path;

use crate::cli::{run, text, write_config};
use crate::helpers::*;

fn edit(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains(from), "{from} in {text}");
    std::fs::write(config, text.replacen(from, to, 1)).unwrap();
}

/// A config in `dir` for `sim` whose `[query] list` also names `value`.
fn config_with_key(dir: &Path, sim: &oifde_sync::simulator::Simulator, list: &str, value: &str) {
    let config = write_config(dir, sim, &sim.options().app_secret.clone(), "", "");
    if list == "user_mobiles" {
        edit(&config, "user_mobiles = [", &format!("user_mobiles = [\"{value}\", "));
    } else {
        edit(&config, "[query]\n", &format!("[query]\n{list} = [\"{value}\"]\n"));
    }
}

fn quick_check(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_onto_the_store_itself_is_refused_and_the_store_stays_whole() {
    let sim = simulator(options(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    assert_eq!(run(dir.path(), &["sync"], &[]).await.status.code(), Some(0));
    let db = dir.path().join("mirror.db");
    let before = std::fs::read(&db).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    for target in ["mirror.db", "./sub/../mirror.db", "mirror.db-wal", "mirror.db-shm"] {
        let out = run(dir.path(), &["snapshot", "--to", target], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{target}: {}", text(&out));
        assert!(text(&out).contains("is the store itself"), "{target}: {}", text(&out));
    }
    // A hard link is the same file by device and inode.
    std::fs::hard_link(&db, dir.path().join("alias.db")).unwrap();
    let out = run(dir.path(), &["snapshot", "--to", "alias.db"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing touched");
    assert_eq!(quick_check(&db), "ok");

    // From the config: every command refuses it, naming the key.
    edit(&config, "[store]\n", "[store]\nsnapshot_to = \"mirror.db\"\n");
    for args in [&["check"][..], &["sync"], &["snapshot"], &["status"]] {
        let out = run(dir.path(), args, &[]).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("store.snapshot_to"), "{args:?}: {}", text(&out));
    }
    assert_eq!(quick_check(&db), "ok");
    // Another file is fine, and an error names the snapshot, not the store.
    edit(&config, "snapshot_to = \"mirror.db\"", "snapshot_to = \"no-such-dir/copy.db\"");
    let out = run(dir.path(), &["snapshot"], &[]).await;
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("cannot write the snapshot") && text(&out).contains("copy.db"), "{}", text(&out));
    let out = run(dir.path(), &["snapshot", "--to", "copy.db"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn relative_paths_resolve_beside_the_config_and_a_new_store_is_announced() {
    let sim = simulator(options(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let abs = dir.path().join("mirror.db").display().to_string();
    edit(&config, &format!("path = \"{abs}\""), "path = \"data/rel.db\"");
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let keys = sim.records()[0].call_id.clone();
    std::fs::write(dir.path().join("keys.txt"), format!("call:{keys}\n")).unwrap();
    edit(&config, "[query]\n", "[query]\nkeys_file = \"keys.txt\"\n");
    let elsewhere = tempfile::tempdir().unwrap();
    let config_arg = config.display().to_string();
    let out = run(elsewhere.path(), &["--config", &config_arg, "sync"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = dir.path().join("data/rel.db");
    assert!(store.is_file(), "the store is beside the config");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0, "nothing where the command ran");
    let all = text(&out);
    assert!(all.contains("created a new store") && all.contains(&store.display().to_string()), "{all}");
    assert!(!all.contains("schema migrated") && !all.contains("full-text index changed"), "one line: {all}");
    let conn = rusqlite::Connection::open(&store).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM query_keys WHERE query_key = ?1", [format!("call:{keys}")], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "the keys file was found beside the config");
    let again = run(elsewhere.path(), &["--config", &config_arg, "sync"], &[]).await;
    assert!(!text(&again).contains("created a new store"), "{}", text(&again));
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_checked_wherever_they_come_from() {
    let sim = simulator(options(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "", "");
    for (list, value) in [("user_mobiles", "+8618400004443"), ("user_mobiles", "180****9999"), ("call_ids", "abc-1")] {
        let dir = tempfile::tempdir().unwrap();
        config_with_key(dir.path(), &sim, list, value);
        let out = run(dir.path(), &["check"], &[]).await;
        assert_eq!(out.status.code(), Some(0), "{value} is a valid key: {}", text(&out));
    }
    for (list, value) in
        [("user_mobiles", "184 0000 4443"), ("user_mobiles", "mobile:13200019769"), ("cti_call_ids", "abc def")]
    {
        let dir = tempfile::tempdir().unwrap();
        config_with_key(dir.path(), &sim, list, value);
        for args in [&["check"][..], &["sync"]] {
            let out = run(dir.path(), args, &[]).await;
            assert_eq!(out.status.code(), Some(2), "{value}: {}", text(&out));
            assert!(text(&out).contains(&format!("query.{list}")), "{value}: {}", text(&out));
        }
        assert!(!dir.path().join("mirror.db").exists(), "nothing stored for a bad key");
    }
    // A keys file: the bad line is named, the others are read; check and sync agree.
    let keys_file = dir.path().join("keys.txt");
    let call = sim.records()[0].call_id.clone();
    std::fs::write(&keys_file, format!("cti:abc def\nmobile:mobile:1\ncall:{call}\n")).unwrap();
    use_keys_file(&config, &keys_file);
    let check = run(dir.path(), &["check"], &[]).await;
    let sync = run(dir.path(), &["sync"], &[]).await;
    assert_eq!(check.status.code(), sync.status.code(), "{}\n{}", text(&check), text(&sync));
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync));
    for out in [&check, &sync] {
        assert!(text(out).contains("line 1") && text(out).contains("line 2"), "{}", text(out));
    }
    let stored = rusqlite::Connection::open(dir.path().join("mirror.db"))
        .unwrap()
        .prepare("SELECT query_key FROM query_keys")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    assert!(stored.contains(&format!("call:{call}")), "{stored:?}");
    assert!(!stored.iter().any(|k| k.contains(' ') || k.contains("mobile:mobile")), "{stored:?}");
    // `keys add` names the bad argument.
    let out = run(dir.path(), &["keys", "add", "mobile:12 34"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("a space"), "{}", text(&out));
}

/// `/etc/oifde-sync/north.toml` beside `north.app_secret` and
/// `north.db_password`, as the template unit loads them, run by hand from
/// anywhere; the commands that call no API need no secret at all.
#[tokio::test(flavor = "multi_thread")]
async fn the_multi_tenant_layout_works_by_hand() {
    let sim = simulator(options(60)).await;
    let etc = tempfile::tempdir().unwrap();
    let config = write_config(etc.path(), &sim, &sim.options().app_secret.clone(), "", "");
    let north = etc.path().join("north.toml");
    std::fs::rename(&config, &north).unwrap();
    edit(&north, &format!("app_secret = \"{}\"", sim.options().app_secret), "app_secret_file = \"app_secret\"");
    std::fs::write(etc.path().join("north.app_secret"), format!("{}\n", sim.options().app_secret)).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let arg = north.display().to_string();
    for args in [&["check"][..], &["sync"], &["status"], &["keys", "list"], &["snapshot", "--to", "snap.db"]] {
        let mut full = vec!["--config", arg.as_str()];
        full.extend_from_slice(args);
        let out = run(elsewhere.path(), &full, &[]).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    }
    // Without the secret, what calls no API still works; what does says which file it wants.
    std::fs::remove_file(etc.path().join("north.app_secret")).unwrap();
    for args in [&["status"][..], &["keys", "list"], &["snapshot", "--to", "snap2.db"]] {
        let mut full = vec!["--config", arg.as_str()];
        full.extend_from_slice(args);
        let out = run(elsewhere.path(), &full, &[]).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    }
    let out = run(elsewhere.path(), &["--config", &arg, "sync"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("north.app_secret"), "names the file it looked for: {}", text(&out));
}

/// Two TLS mistakes, each said in words that point at the fix.
#[tokio::test(flavor = "multi_thread")]
async fn tls_mistakes_are_named() {
    use oifde_sync::simulator::{SimOptions, TlsIdentity};
    // A CA certificate served as the server's own.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let identity = TlsIdentity { cert_chain_pem: ca.pem().into_bytes(), key_pem: ca_key.serialize_pem().into_bytes() };
    let sim = simulator(SimOptions { tls: Some(identity), ..options(10) }).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "ca_file = \"ca.pem\"", "");
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("a CA certificate"), "{}", text(&out));
    assert!(!text(&out).contains("set api.ca_file"), "it is set: {}", text(&out));

    // http:// against a TLS port.
    let (_, identity) = crate::network::private_ca();
    let sim = simulator(SimOptions { tls: Some(identity), ..options(10) }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.options().app_secret.clone(), "max_retries = 0", "");
    edit(&config, "https://", "http://");
    let out = run(dir.path(), &["sync"], &[]).await;
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("speaks TLS") && text(&out).contains("https://"), "{}", text(&out));
}
