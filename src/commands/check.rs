//! `check`: each step of a sync tried once, with a plain verdict and a fix.

use std::path::Path;
use std::sync::Arc;

use super::{CommandError, Exit};
use crate::api::{ApiClient, Query};
use crate::config::Settings;
use crate::keys::{self, QueryKey};
use crate::store::Store;
use crate::tz;

fn ok(step: &str, detail: impl std::fmt::Display) {
    println!("ok      {step}: {detail}");
}

fn failed(step: &str, detail: impl std::fmt::Display) {
    println!("FAILED  {step}: {detail}");
}

pub async fn check(config: &Path) -> Result<Exit, CommandError> {
    let settings = match Settings::load(config) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            failed("config", &e);
            return Ok(Exit::Config);
        }
    };
    crate::telemetry::init(settings.log.format, &settings.log.level);
    ok("config", format!("{} is valid", config.display()));
    if let Some(warning) = super::secret_file_warning(&settings) {
        println!("warn    config: {warning}");
    }
    // The exit code of the worst fault found, as the other commands would
    // exit for it: 1 a query failed, 2 the config or the keys, 3 the store.
    let mut exit = Exit::Success;
    let mut fault = |e: Exit| {
        if e as u8 > exit as u8 {
            exit = e;
        }
    };

    let mut store = Store::open_configured(&settings.store);
    let opened = store
        .as_ref()
        .map_err(|e| e.to_string())
        .and_then(|s| s.quick_check(std::time::Duration::from_secs(60)).map_err(|e| e.to_string()).map(|_| s))
        .and_then(|s| s.status(0).map_err(|e| e.to_string()).map(|r| (s.describe(), r)));
    match (opened, &store) {
        (Ok((name, r)), _) => ok(
            "store",
            format!("{name} opens and passes its quick check (schema {}, {} records)", r.schema_version, r.records),
        ),
        (Err(_), Err(e @ crate::store::StoreError::Damaged { .. })) => {
            failed("store", e);
            return Ok(Exit::Store);
        }
        (Err(e), _) => {
            let fix = if settings.store.postgres().is_some() {
                "check store.url, the password and that the database exists"
            } else {
                "check store.path and that the directory is writable"
            };
            failed("store", format!("{e}; {fix}"));
            fault(Exit::Store);
        }
    }
    if let Ok(store) = store.as_mut() {
        match store.take_writer("oifde-sync check", std::time::Duration::ZERO) {
            Ok(()) => ok("writer", "no other process is writing the store"),
            Err(
                crate::store::StoreError::Busy { holder, .. } | crate::store::StoreError::TenantBusy { holder, .. },
            ) => {
                println!("info    writer: the store is being written by {holder}")
            }
            Err(_) => {}
        }
    }
    drop(store);

    let client = match ApiClient::new(&settings.api) {
        Ok(c) => c,
        Err(e) => {
            failed("tls", format!("{e}; check api.ca_file"));
            return Ok(Exit::Config);
        }
    };
    match client.token().await {
        Ok(_) => ok(
            "token",
            format!("{} accepted the credentials of tenant {}", settings.api.base_url, settings.api.tenant_id),
        ),
        Err(e) => {
            failed("token", format!("{e}{}", e.hint()));
            return Ok(if e.is_fatal() { Exit::Config } else { Exit::Partial });
        }
    }

    let mut keys = settings.query.configured();
    if let Some(file) = &settings.query.keys_file {
        let mut from_file = Vec::new();
        let read = keys::file::read_appended::<()>(file, None, &mut |batch| {
            from_file.extend(batch.iter().cloned());
            from_file.truncate(from_file.len().min(1000));
            Ok(())
        });
        match read {
            Ok(Ok(read)) => {
                // As in a pass: a bad line is reported and the others are read.
                for b in &read.bad {
                    println!("warn    keys: keys file {} line {}: {} (skipped)", file.display(), b.line, b.msg);
                }
                if read.keys == 0 && keys.is_empty() {
                    println!(
                        "warn    keys: keys file {} holds no key yet; passes are skipped until it does",
                        file.display()
                    );
                }
                keys.extend(from_file);
            }
            Ok(Err(())) => {}
            Err(msg) => {
                failed("keys", msg);
                return Ok(Exit::Config);
            }
        }
    } else if keys.is_empty() {
        keys.push(QueryKey::WindowOnly);
    }
    let now = tz::now_ms() / 1000;
    for key in one_per_kind(&keys) {
        let (span, what) = match key.polling() {
            keys::Polling::Stream => (Some((now - 3600, now)), "the last hour holds"),
            keys::Polling::Point => (None, "the call has"),
        };
        let q = Query { key: &key, span, page_num: 1 };
        match client.query(&q).await {
            Ok(page) => ok(
                "query",
                format!(
                    "key {key}: {what} {} records",
                    page.total.map_or("an unknown number of".into(), |t| t.to_string())
                ),
            ),
            Err(e) => {
                failed("query", format!("key {key}: {e}{}", e.hint()));
                fault(if e.action() == crate::api::Action::EndPass { Exit::Config } else { Exit::Partial });
            }
        }
    }
    Ok(exit)
}

/// The first key of each kind: one query each is enough to test them.
fn one_per_kind(keys: &[QueryKey]) -> Vec<QueryKey> {
    let mut kinds = std::collections::HashSet::new();
    keys.iter()
        .filter(|k| {
            kinds.insert(match k {
                QueryKey::Keyed(kind, _) => Some(*kind),
                QueryKey::WindowOnly => None,
            })
        })
        .cloned()
        .collect()
}
