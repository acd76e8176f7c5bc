//! Integration tests: the real client and store against the simulator over
//! real HTTP, on SQLite files on disk. One binary, modules by concern.

mod analysts;
mod cli;
mod copying;
mod crash;
mod helpers;
mod hostile;
mod install;
mod keys;
mod kpis;
mod layers;
mod ledgers;
mod lifecycle;
mod migration;
mod monitoring;
mod network;
mod newcomer;
mod parser;
mod postgres;
mod retention;
mod service;
mod soak;
mod store_faults;
mod sync_path;
mod values;
