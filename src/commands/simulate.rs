//! `simulate`: the stand-in OIFDE server as a command, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{CommandError, Exit};
use crate::simulator::{Faults, SimOptions, Simulator, TlsIdentity};
use crate::tz::ServerZone;

/// The `simulate` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[arg(long, default_value_t = 1000)]
    pub records: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Distinct user mobiles the records belong to.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Records start within this many days before now.
    #[arg(long, default_value_t = 2)]
    pub days: u32,
    /// Zone of beginTime/endTime: UTC, +08:00 or an IANA name.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    #[arg(long, default_value = "tenant001")]
    pub tenant_id: String,
    /// The appSecret gettoken accepts.
    #[arg(
        long,
        env = "OIFDE_SIM_APP_SECRET",
        default_value = "demo-secret",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub app_secret: String,
    /// Accept queries without userMobile, callId or ctiCallId.
    #[arg(long)]
    pub lenient: bool,
    /// Share of requests answered with a fault (500/503, 429, internal error, cut body, dropped connection).
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// expireTime of issued tokens, seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl: u64,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also write a config that points oifde-sync at this simulator to FILE.
    #[arg(long, value_name = "FILE")]
    pub print_config: Option<PathBuf>,
    /// Writes the tenant's CDR files into DIR, as CC-FS delivers them (a zip a
    /// day); the config of --print-config then reads its keys from there.
    #[arg(long, value_name = "DIR")]
    pub cdr_dir: Option<PathBuf>,
    /// Hides N sessions from queryRecordHistory while the call statistics
    /// still count them: a gap for `verify` to find.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub hide_sessions: usize,
}

/// Writes `text` to `path`, readable by its owner only (it holds the secret).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(text.as_bytes())
}

/// The faults of `--fault-rate`.
fn sim_faults(rate: f64) -> Faults {
    if rate > 0.0 { Faults::all_at(rate) } else { Faults::default() }
}

pub async fn simulate(args: SimulateArgs) -> Result<Exit, CommandError> {
    crate::telemetry::init(crate::config::LogFormat::Text, "info");
    let timezone = ServerZone::parse(&args.timezone).map_err(|m| CommandError::Usage(format!("--timezone: {m}")))?;
    if !(0.0..=1.0).contains(&args.fault_rate) {
        return Err(CommandError::Usage("--fault-rate must be between 0 and 1".into()));
    }
    let tls = match args.tls_cert.as_deref().zip(args.tls_key.as_deref()) {
        None => None,
        Some((cert, key)) => {
            let read = |p: &std::path::Path, flag: &str| {
                std::fs::read(p).map_err(|e| CommandError::Usage(format!("{flag} {}: {e}", p.display())))
            };
            Some(TlsIdentity { cert_chain_pem: read(cert, "--tls-cert")?, key_pem: read(key, "--tls-key")? })
        }
    };
    let defaults = SimOptions::default();
    let options = SimOptions {
        records: args.records,
        seed: args.seed,
        from: defaults.to - i64::from(args.days.max(1)) * 86_400,
        users: args.users.max(1),
        tenant_id: args.tenant_id,
        app_secret: args.app_secret,
        timezone,
        lenient_keys: args.lenient,
        token_ttl: args.token_ttl,
        tls,
        faults: sim_faults(args.fault_rate),
        ..defaults
    };
    let sim = Simulator::start(options, args.listen)
        .await
        .map_err(|e| CommandError::Usage(format!("--listen {}: {e}", args.listen)))?;
    let o = sim.options();
    println!("simulated OIFDE server on {}", sim.base_url());
    println!(
        "  tenant {:?}, {} records from {} to {} UTC, {} user mobiles, filter zone {}",
        o.tenant_id,
        o.records,
        crate::tz::utc_text(o.from * 1000),
        crate::tz::utc_text(o.to * 1000),
        o.users,
        o.timezone.name()
    );
    let mobiles: Vec<String> = sim.mobiles().iter().map(|m| format!("{m:?}")).collect();
    println!("  its query keys, for [query] in a config:");
    println!("    user_mobiles = [{}]", mobiles.join(", "));
    let mut query = format!("user_mobiles = [{}]", mobiles.join(", "));
    if let Some(dir) = &args.cdr_dir {
        let legs = crate::simulator::cdr::legs(&sim.records(), o.seed);
        let files = crate::simulator::cdr::write_dir(dir, &legs, &o.timezone)
            .map_err(|e| CommandError::Usage(format!("--cdr-dir {}: {e}", dir.display())))?;
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        println!("  wrote {} CDR files ({} legs) into {}", files.len(), legs.len(), dir.display());
        query = format!("cdr_dir = {:?}", dir.display().to_string());
    }
    if let Some(path) = &args.print_config {
        let text = format!(
            "# A config for the simulator on {url}; try: oifde-sync --config {file} sync\n\
             [api]\nbase_url = \"{url}\"\ntenant_id = {tenant:?}\napp_secret = {secret:?}\n\n\
             [query]\n{query}\n\n[reconcile]\naccess_codes = {codes:?}\n\n[sync]\nstart = \"{days}d\"\n\n[store]\npath = \"oifde-sync.db\"\n",
            url = sim.base_url(),
            file = path.display(),
            tenant = o.tenant_id,
            secret = o.app_secret,
            days = args.days.max(1) + 1,
            codes = crate::simulator::dataset::ACCESS_CODES,
        );
        write_private(path, &text)
            .map_err(|e| CommandError::Usage(format!("--print-config {}: {e}", path.display())))?;
        println!("  wrote {}: try `oifde-sync --config {} sync`", path.display(), path.display());
    }
    let counted: Vec<String> =
        sim.records().into_iter().filter(|r| r.called_number.is_some()).map(|r| r.log_id).collect();
    if let Some(step) = counted.len().checked_div(args.hide_sessions) {
        let step = step.max(1);
        let hidden: Vec<String> = counted.into_iter().step_by(step).take(args.hide_sessions).collect();
        println!("  hides {} sessions from queryRecordHistory; its call statistics still count them", hidden.len());
        let faults = Faults { hidden, ..sim_faults(args.fault_rate) };
        sim.set_faults(faults);
    }
    println!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
    sim.stop().await;
    Ok(Exit::Success)
}
