//! oifde-sync mirrors the intelligent-IVR session records of a Huawei OIFDE
//! tenant into a local SQLite file, or a PostgreSQL database shared by tenants.
//!
//! # Layout
//! - [`config`]: typed settings from TOML and the environment.
//! - [`api`]: the REST client (token, rate limit, retries) and record parsing.
//! - [`keys`]: query keys (stream and point) and the keys file, read as it grows.
//! - [`queries`]: the analysts' canonical questions as SQL.
//! - [`store`]: SQLite or PostgreSQL: schema, dedup upserts, keys, cursors, run log, copy.
//! - [`sync`]: one pass over the due keys in adaptive windows, shared by every command.
//! - [`simulator`]: a local stand-in for the OIFDE server.
//! - [`daemon`]: the scheduled daemon ([`schedule`]: its cron); [`metrics`]: its Prometheus endpoint.
//! - [`progress`]: a bar on a terminal, log lines elsewhere.
//! - [`commands`]: what each CLI command does.

pub mod api;
pub mod cdr;
pub mod commands;
pub mod config;
pub mod copy;
pub mod daemon;
pub mod fnv;
pub mod keys;
pub mod kpi;
pub mod ledgers;
pub mod metrics;
pub mod platform;
pub mod progress;
pub mod queries;
pub mod record;
pub mod report;
pub mod retention;
pub mod run_log;
pub mod schedule;
pub mod secret;
pub mod simulator;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod tz;
