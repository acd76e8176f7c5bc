//! Tells the tests whether a PostgreSQL server can be had here: a URL in
//! `OIFDE_TEST_PG_URL`, or Debian's `postgresql` package for `.ci/postgres`
//! to start. Without either, the PostgreSQL tests are compiled as ignored,
//! so that the test summary shows them as not run rather than passed.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_postgres)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=OIFDE_TEST_PG_URL");
    // Installing or removing a package changes dpkg's status file.
    if Path::new("/var/lib/dpkg/status").exists() {
        println!("cargo::rerun-if-changed=/var/lib/dpkg/status");
    }
    let url = std::env::var("OIFDE_TEST_PG_URL").is_ok_and(|u| !u.is_empty());
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .map(|versions| versions.flatten().any(|v| v.path().join("bin/pg_ctl").exists()))
        .unwrap_or(false);
    if !url && !installed {
        println!("cargo::rustc-cfg=no_postgres");
    }
}
