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
        faults: if args.fault_rate > 0.0 { Faults::all_at(args.fault_rate) } else { Faults::default() },
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
    println!("  first user mobiles (query keys):");
    for m in sim.mobiles().iter().take(5) {
        println!("    mobile:{m}");
    }
    println!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
    sim.stop().await;
    Ok(Exit::Success)
}
