//! Connecting to PostgreSQL: TLS through rustls (the server's certificate
//! checked against the system's roots, or `store.ca_file`), as on the API side.

use tokio_postgres::Client;
use tokio_postgres::config::SslMode;

use crate::config::PgSettings;
use crate::store::StoreError;

fn tls_config(settings: &PgSettings) -> Result<rustls::ClientConfig, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match &settings.ca_file {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("store.ca_file {} cannot be read: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("store.ca_file {} is not PEM: {e}", path.display()))?;
                roots.add(cert).map_err(|e| format!("store.ca_file {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("store.ca_file {} holds no certificate", path.display()));
            }
            Ok(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
        }
        None => {
            use rustls_platform_verifier::ConfigVerifierExt;
            rustls::ClientConfig::with_platform_verifier().map_err(|e| format!("system certificate roots: {e}"))
        }
    }
}

/// An error with its causes: "error performing TLS handshake: invalid peer certificate: UnknownIssuer".
pub(super) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Starts the connection's task on the current runtime; returns the client.
fn drive<S, T>((client, conn): (Client, tokio_postgres::Connection<S, T>)) -> Client
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!("PostgreSQL connection closed: {e}");
        }
    });
    client
}

/// Connects and starts the connection's task on the current runtime.
pub(super) async fn connect(settings: &PgSettings) -> Result<Client, StoreError> {
    let open_err = |msg: String| StoreError::Open { store: settings.shown.clone(), msg };
    let mut config = settings.config.clone();
    if config.get_application_name().is_none() {
        // What a DBA sees in pg_stat_activity.
        config.application_name(format!("oifde-sync {}", settings.tenant));
    }
    let result = if config.get_ssl_mode() == SslMode::Disable {
        config.connect(tokio_postgres::NoTls).await.map(drive)
    } else {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(settings).map_err(open_err)?);
        config.connect(tls).await.map(drive)
    };
    let client = result.map_err(|e| {
        let mut msg = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => with_causes(&e),
        };
        if msg.contains("password authentication failed") || msg.contains("no password") {
            msg.push_str(&format!("; give the password in {}", settings.password_from));
        }
        open_err(msg)
    })?;
    // A commit returns before its WAL reaches the disk: a crash of the server
    // may lose the last commits, in order (a cursor never survives without
    // the records it covers), as SQLite's synchronous = NORMAL may. Not the
    // daemon's own crash: that loses nothing either way.
    // Each execution of a prepared statement is planned for its arguments:
    // a plan made while the tables were empty (a scan) would otherwise stay
    // as they grow, and a page's lookup would read the whole table.
    // No JIT compilation: the statements are small and run once a page, but
    // the refresh of a page's measures is estimated above `jit_above_cost`
    // once the tables grow, and compiling it took 200 ms of its 250 a page.
    client.batch_execute(SESSION).await.map_err(|e| open_err(e.to_string()))?;
    Ok(client)
}

/// The settings of the daemon's sessions (see [`connect`]).
const SESSION: &str = "SET synchronous_commit = off; SET plan_cache_mode = force_custom_plan; SET jit = off";

#[cfg(test)]
mod tests {
    use super::*;

    /// The test server's URL, found as the integration tests find it.
    fn server() -> String {
        if let Some(url) = std::env::var("OIFDE_TEST_PG_URL").ok().filter(|u| !u.is_empty()) {
            return url;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/postgres");
        // Stopped once these tests end, as the integration tests' server is.
        let out = std::process::Command::new(script)
            .args(["--stop-with", &std::process::id().to_string()])
            .output()
            .expect(".ci/postgres runs");
        assert!(out.status.success(), ".ci/postgres failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[tokio::test]
    #[cfg_attr(no_postgres, ignore = "needs PostgreSQL: Debian's postgresql package, or OIFDE_TEST_PG_URL")]
    async fn the_daemons_session_does_not_jit_compile_and_plans_each_execution() {
        let settings = PgSettings::parse(&server(), "tenant001").unwrap();
        let client = connect(&settings).await.unwrap();
        for (setting, want) in [("jit", "off"), ("plan_cache_mode", "force_custom_plan"), ("synchronous_commit", "off")]
        {
            let got: String = client.query_one(&format!("SHOW {setting}"), &[]).await.unwrap().get(0);
            assert_eq!(got, want, "{setting} of the daemon's session");
        }
    }
}
