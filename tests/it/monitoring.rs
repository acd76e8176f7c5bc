//! The monitoring folder as its users run it: the rules through promtool,
//! the daemon dashboard's metrics against a real scrape, and every SQL of
//! the analyst dashboard against a real PostgreSQL mirror.

use std::path::{Path, PathBuf};

use crate::helpers::*;

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring")
}

/// Every `expr` or `rawSql` of a dashboard's panels.
fn queries(dashboard: &str, field: &str) -> Vec<String> {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(monitoring().join("dashboards").join(dashboard)).unwrap())
            .unwrap();
    doc["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t[field].as_str().unwrap().to_string()))
        .collect()
}

#[test]
#[ignore = "needs promtool (Debian's prometheus package); .ci/run installs it and runs this"]
fn the_rules_pass_promtool_and_their_unit_tests() {
    for args in [vec!["check", "rules", "alerts.yml"], vec!["test", "rules", "tests/alerts_test.yml"]] {
        let out = std::process::Command::new("promtool").args(&args).current_dir(monitoring()).output().unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every metric the daemon dashboard reads is one the daemon exports (or a
/// recording rule of `alerts.yml`).
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_dashboard_reads_only_metrics_that_exist() {
    let sim = simulator(options(20)).await;
    let (_dir, db) = temp_db();
    let engine = engine(settings(&sim, &db));
    let metrics = oifde_sync::metrics::Metrics::new(&engine.client.stats);
    metrics.record_pass(&incremental(&engine, TO + 60).await, std::time::Duration::from_secs(1));
    let view = engine.with_store(|s| oifde_sync::metrics::StoreView::of(s)).await.unwrap();
    let scrape = metrics.render(&engine, &view);
    let rules = std::fs::read_to_string(monitoring().join("alerts.yml")).unwrap();
    let mut names = Vec::new();
    for expr in queries("daemon.json", "expr") {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("oifde_sync") {
            let name: String =
                rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
            rest = &rest[at + name.len()..];
            names.push(name);
        }
    }
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let known = if name.contains(':') {
            rules.contains(&format!("record: {name}"))
        } else {
            let family = name.trim_end_matches("_bucket");
            scrape.lines().any(|l| {
                l.starts_with(&format!("# TYPE {family} "))
                    || l.starts_with(&format!("# TYPE {} ", family.trim_end_matches("_total")))
            })
        };
        assert!(known, "the dashboard reads {name}, which the daemon does not export:\n{scrape}");
    }
}

/// Every SQL of the analyst dashboard runs on a PostgreSQL mirror with CDRs
/// and the platform's count, and answers.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
async fn every_sql_of_the_analyst_dashboard_runs_on_a_postgres_mirror() {
    let sim = simulator(options(200)).await;
    let store = TestStore::new(Kind::Postgres);
    mirror_with_ledgers(&store, &sim, "").await;
    let sqls = queries("analysts.json", "rawSql");
    assert!(sqls.len() >= 6);
    for sql in sqls {
        let sql = sql.replace("$tenant", &store.tenant);
        let rows = try_pg_rows(store.url.as_ref().unwrap(), &sql).unwrap_or_else(|e| panic!("{e}:\n{sql}"));
        assert!(!rows.is_empty() || sql.contains("platform_difference <> 0"), "no rows from:\n{sql}");
    }
}
