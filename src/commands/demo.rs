//! `demo`: the simulator in-process, a sync of its tenant into `./demo.db`,
//! the figures, and example queries with their answers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{CommandError, Exit};
use crate::api::ApiClient;
use crate::config::{
    ApiSettings, Credential, LogFormat, LogSettings, QuerySettings, Settings, StoreSettings, SyncSettings,
};
use crate::keys::KeyKind;
use crate::ledgers::cdr_import::{CdrRules, import_files};
use crate::ledgers::verify::{check, day_start_ms, fetch};
use crate::secret::Secret;
use crate::simulator::{SimOptions, Simulator};
use crate::store::Store;
use crate::sync::{Engine, PassKind};
use crate::tz;

/// Settings for syncing a simulator's whole tenant into `path`.
pub fn settings_for(sim: &Simulator, path: PathBuf) -> Settings {
    let o = sim.options();
    Settings {
        api: ApiSettings {
            base_url: sim.base_url(),
            tenant_id: o.tenant_id.clone(),
            credential: Credential::AppSecret(Secret::new(o.app_secret.clone())),
            server_timezone: o.timezone.clone(),
            page_size: 100,
            timeout: Duration::from_secs(10),
            max_requests_per_second: 200,
            concurrency: 4,
            ca_file: None,
            insecure_skip_tls_verify: false,
            max_retries: 5,
            retry_delay: Duration::from_millis(100),
        },
        query: QuerySettings { user_mobiles: sim.mobiles(), ..QuerySettings::default() },
        sync: SyncSettings {
            start: crate::config::Start::At(o.from),
            window: Duration::from_secs(6 * 3600),
            overlap: Duration::from_secs(15 * 60),
            lag: Duration::ZERO,
            split_above: 5000,
            schedule: "0 */5 * * * *".into(),
            settle: Duration::from_secs(15 * 60),
            resweep: None,
            resweep_schedule: "0 30 3 * * *".into(),
        },
        store: StoreSettings::sqlite(path),
        log: LogSettings { format: LogFormat::Text, level: "warn".into() },
        reconcile: crate::config::ReconcileSettings::default(),
        analytics: crate::config::AnalyticsSettings::default(),
        metrics_listen: None,
        file: PathBuf::from("(demo)"),
        secret_in_file: false,
    }
}

pub async fn demo() -> Result<Exit, CommandError> {
    crate::telemetry::init(LogFormat::Text, "warn");
    let path = PathBuf::from("demo.db");
    remove_store(&path).map_err(|e| CommandError::Failed(format!("cannot replace {}: {e}", path.display())))?;
    let options = SimOptions { records: 5000, users: 25, ..SimOptions::default() };
    let sim = Simulator::start(options, "127.0.0.1:0".parse().expect("valid address"))
        .await
        .map_err(|e| CommandError::Failed(format!("cannot start the simulator: {e}")))?;
    let o = sim.options();
    println!(
        "Started a simulated OIFDE server on {} ({} records of {} callers, {} to {} UTC).",
        sim.base_url(),
        o.records,
        o.users,
        tz::utc_text(o.from * 1000),
        tz::utc_text(o.to * 1000)
    );
    let mut settings = settings_for(&sim, path.clone());
    // In-process, the demo may ask faster than a real gateway allows.
    settings.api.max_requests_per_second = 2000;
    let settings = Arc::new(settings);
    let client = Arc::new(ApiClient::new(&settings.api)?);
    let engine = Engine::new(settings, client, Store::open(&path)?);
    let started = Instant::now();
    let cancel = tokio_util::sync::CancellationToken::new();
    let report = engine.pass(PassKind::Incremental { now: tz::now_ms() / 1000, label: "sync" }, &cancel).await?;
    println!("{}", report.summary("sync", started.elapsed().as_secs_f64()));
    let again = Instant::now();
    let second = engine.pass(PassKind::Incremental { now: tz::now_ms() / 1000, label: "sync" }, &cancel).await?;
    println!("{}", second.summary("second sync (overlap only)", again.elapsed().as_secs_f64()));
    cdr_route(&engine, &sim, &cancel).await?;
    sim.stop().await;

    // The pass is over: the file is read as an analyst would, read-only.
    let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| CommandError::Failed(format!("cannot read {}: {e}", path.display())))?;
    println!("\nThe mirror is {}; open it with `sqlite3 {}` and try:", path.display(), path.display());
    for (title, sql) in crate::queries::CANONICAL {
        println!("\n-- {title}\n{sql}");
        print_query(&conn, sql).map_err(|e| CommandError::Failed(format!("example query failed: {e}")))?;
    }
    Ok(super::pass_exit(&report))
}

/// The way a real tenant is fed: the simulator's CDR files (as CC-FS
/// delivers them) read into keys and legs, a sync of their calls, and the
/// mirror verified against the platform's own hourly count.
async fn cdr_route(
    engine: &Engine,
    sim: &Simulator,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<(), CommandError> {
    let o = sim.options();
    let dir = std::env::temp_dir().join(format!("oifde-sync-demo-cdr-{}", std::process::id()));
    let legs = crate::simulator::cdr::legs(&sim.records(), o.seed);
    let files = crate::simulator::cdr::write_dir(&dir, &legs, &o.timezone)
        .map_err(|e| CommandError::Failed(format!("cannot write the CDR files into {}: {e}", dir.display())))?;
    let rules = CdrRules { kind: KeyKind::Cti, zone: o.timezone.clone() };
    let now = tz::now_ms();
    let imported = engine.with_store(move |store| import_files(store, &files, &rules, now)).await?;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "
The CDR files of its calls (one zip a day, as CC-FS delivers them): {}.",
        imported.summary()
    );
    let started = Instant::now();
    let report = engine.pass(PassKind::Incremental { now: tz::now_ms() / 1000, label: "sync" }, cancel).await?;
    println!("{}", report.summary("sync of the CDR calls (one query each)", started.elapsed().as_secs_f64()));
    let zone = o.timezone.clone();
    let days: Vec<i64> = (0..=(o.to - o.from) / 86_400).map(|d| day_start_ms(&zone, o.from + d * 86_400)).collect();
    let codes: Vec<String> = crate::simulator::dataset::ACCESS_CODES.map(String::from).to_vec();
    let (hours, refused) = fetch(&engine.client, &codes, &days).await;
    for r in refused {
        println!("warning: {r}");
    }
    let (now, sync, check_zone) = (tz::now_ms(), engine.settings.sync.clone(), zone.clone());
    let verified = engine.with_store(move |store| check(store, &hours, &days, &sync, &check_zone, now)).await?;
    println!("`verify` against the platform's own call statistics, hour by hour:\n{}", verified.text(&zone));
    Ok(())
}

/// Removes a previous demo store with its WAL and shared-memory files.
fn remove_store(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Prints a query's rows as `|`-separated columns, at most ten rows.
pub fn print_query(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let columns = stmt.column_count();
    println!("{}", stmt.column_names().collect::<Vec<_>>().join(" | "));
    let mut rows = stmt.query([])?;
    let mut shown = 0;
    while let Some(row) = rows.next()? {
        if shown == 10 {
            println!("…");
            break;
        }
        let cells: Vec<String> = (0..columns)
            .map(|i| match row.get_ref(i) {
                Ok(rusqlite::types::ValueRef::Null) => "NULL".to_string(),
                Ok(rusqlite::types::ValueRef::Integer(n)) => n.to_string(),
                Ok(rusqlite::types::ValueRef::Real(f)) => f.to_string(),
                Ok(rusqlite::types::ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
                Ok(rusqlite::types::ValueRef::Blob(b)) => format!("<{} bytes>", b.len()),
                Err(e) => e.to_string(),
            })
            .collect();
        println!("{}", cells.join(" | "));
        shown += 1;
    }
    Ok(())
}
