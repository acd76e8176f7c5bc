//! The command line: parse it and hand over to `oifde_sync::commands`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oifde_sync::commands::{self, CommandError, Exit, keys::KeysCommand, simulate::SimulateArgs};

/// Mirrors Huawei OIFDE intelligent-IVR session records into SQLite or PostgreSQL.
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
    Sync {
        /// Re-read sync.resweep of every stream key now instead.
        #[arg(long)]
        resweep: bool,
    },
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
    /// Manage the query keys kept in the store.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Store counts, keys by state, cursors and their lag, the last passes.
    Status {
        /// Machine-readable output with stable field names.
        #[arg(long)]
        json: bool,
    },
    /// A consistent copy of the store for analysts, safe while the daemon writes.
    Snapshot {
        /// Where to write it (default: store.snapshot_to).
        #[arg(long)]
        to: Option<PathBuf>,
        /// Its file mode (default: store.snapshot_mode, 0640).
        #[arg(long)]
        mode: Option<String>,
        /// A group to give it to, e.g. the analysts' (default: store.snapshot_group).
        #[arg(long)]
        group: Option<String>,
    },
    /// Copies the store, exactly and resumably, into PostgreSQL or a SQLite file.
    Copy {
        /// postgres://user@host:5432/db (rows take api.tenant_id; password from PGPASSWORD) or a SQLite file.
        #[arg(long)]
        to: String,
        /// Delete whatever the target holds (its records, keys, cursors, runs) and copy anew.
        #[arg(long)]
        replace: bool,
    },
    /// The mirror against the platform's own call statistics, hour by hour;
    /// exit 1 when a settled hour misses calls.
    Verify {
        /// First day, YYYY-MM-DD in api.server_timezone (default: reconcile.days back).
        #[arg(long)]
        from: Option<String>,
        /// Last day, included (default: today).
        #[arg(long)]
        to: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Use the statistics already fetched; no API call.
        #[arg(long)]
        offline: bool,
    },
    /// One self-contained HTML page of a period's IVR measures.
    Report {
        /// First UTC day, YYYY-MM-DD (default: 29 days before --to).
        #[arg(long)]
        from: Option<String>,
        /// Last UTC day, included (default: today).
        #[arg(long)]
        to: Option<String>,
        /// The HTML file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Removes the sessions that started before a time, with their turns,
    /// Q&A rows, full-text rows and CDR legs; safe beside a running daemon.
    Prune {
        /// "YYYY-MM-DD HH:MM:SS" in api.server_timezone.
        #[arg(long)]
        before: String,
        /// Sessions a transaction: what a daemon writing beside it may wait for.
        #[arg(long, default_value_t = oifde_sync::retention::BATCH)]
        batch: usize,
    },
    /// Validates the config, opens the store, gets a token, makes one small query.
    Check,
    /// A local stand-in for the OIFDE server, for trying the tool.
    Simulate(SimulateArgs),
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
            Command::Sync { resweep } => commands::sync::sync(&config, resweep).await,
            Command::Keys(cmd) => commands::keys::keys(&config, cmd),
            Command::Backfill { from, to, key } => commands::sync::backfill(&config, &from, &to, key.as_deref()).await,
            Command::Status { json } => commands::status::status(&config, json),
            Command::Copy { to, replace } => commands::copy::copy(&config, &to, replace),
            Command::Check => commands::check::check(&config).await,
            Command::Prune { before, batch } => commands::prune::prune(&config, &before, batch),
            Command::Report { from, to, out } => {
                commands::report::report(&config, from.as_deref(), to.as_deref(), &out)
            }
            Command::Verify { from, to, json, offline } => {
                commands::verify::verify(&config, from.as_deref(), to.as_deref(), json, offline).await
            }
            Command::Snapshot { to, mode, group } => commands::snapshot::snapshot(&config, to, mode.as_deref(), group),
            Command::Simulate(args) => commands::simulate::simulate(args).await,
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
