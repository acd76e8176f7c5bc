//! The command line: parse it and hand over to `oifde_sync::commands`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oifde_sync::commands::{self, CommandError, Exit, simulate::SimulateArgs};

/// Mirrors Huawei OIFDE intelligent-IVR session records into a local SQLite file.
#[derive(Parser)]
#[command(name = "oifde-sync", version)]
struct Cli {
    /// The config file.
    #[arg(long, global = true, env = "OIFDE_SYNC_CONFIG", default_value = "oifde-sync.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The daemon: a pass at start, then one per sync.schedule.
    Run,
    /// One incremental pass now, then exit.
    Sync,
    /// One pass over a past period; resumable; cursors stay put.
    Backfill {
        /// First second, "YYYY-MM-DD HH:MM:SS" in api.server_timezone (included).
        #[arg(long)]
        from: String,
        /// Last second, "YYYY-MM-DD HH:MM:SS" in api.server_timezone (included).
        #[arg(long)]
        to: String,
        /// Only this key: mobile:<number>, call:<id> or cti:<id>.
        #[arg(long)]
        key: Option<String>,
    },
    /// Store counts, cursors and their lag, the last passes.
    Status {
        /// Machine-readable output with stable field names.
        #[arg(long)]
        json: bool,
    },
    /// Validates the config, opens the store, gets a token, makes one small query.
    Check,
    /// A local stand-in for the OIFDE server, for trying the tool.
    Simulate {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 1000)]
        records: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Distinct user mobiles the records belong to.
        #[arg(long, default_value_t = 20)]
        users: usize,
        /// Records start within this many days before now.
        #[arg(long, default_value_t = 2)]
        days: u32,
        /// Zone of beginTime/endTime: UTC, +08:00 or an IANA name.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[arg(long, default_value = "tenant001")]
        tenant_id: String,
        /// The appSecret gettoken accepts.
        #[arg(
            long,
            env = "OIFDE_SIM_APP_SECRET",
            default_value = "demo-secret",
            hide_default_value = true,
            hide_env_values = true
        )]
        app_secret: String,
        /// Accept queries without userMobile, callId or ctiCallId.
        #[arg(long)]
        lenient: bool,
        /// Share of requests answered with a fault (500/503, 429, internal error, cut body, dropped connection).
        #[arg(long, default_value_t = 0.0)]
        fault_rate: f64,
        /// expireTime of issued tokens, seconds.
        #[arg(long, default_value_t = 3600)]
        token_ttl: u64,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Syncs a simulated tenant into ./demo.db and shows example queries.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = cli.config;
    let result: Result<Exit, CommandError> = runtime.block_on(async move {
        match cli.command {
            Command::Run => commands::run::run(&config).await,
            Command::Sync => commands::sync::sync(&config).await,
            Command::Backfill { from, to, key } => commands::sync::backfill(&config, &from, &to, key.as_deref()).await,
            Command::Status { json } => commands::status::status(&config, json),
            Command::Check => commands::check::check(&config).await,
            Command::Simulate {
                listen,
                records,
                seed,
                users,
                days,
                timezone,
                tenant_id,
                app_secret,
                lenient,
                fault_rate,
                token_ttl,
                tls_cert,
                tls_key,
            } => {
                let args = SimulateArgs {
                    listen,
                    records,
                    seed,
                    users,
                    days,
                    timezone,
                    tenant_id,
                    app_secret,
                    lenient,
                    fault_rate,
                    token_ttl,
                    tls: tls_cert.zip(tls_key),
                };
                commands::simulate::simulate(args).await
            }
            Command::Demo => commands::demo::demo().await,
        }
    });
    // Don't wait for stray blocking tasks (a stuck request) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit() as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
