//! Connecting to PostgreSQL: TLS through rustls (the server's certificate
//! checked against the system's roots, or `store.ca_file`), as on the API side.

use tokio_postgres::Client;
use tokio_postgres::config::SslMode;

use crate::config::PgSettings;
use crate::store::StoreError;

/// The URL with its password replaced by `***`, for messages and logs.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    // The user information ends at the last `@`: a password typed with a raw
    // `/`, `?` or `@` in it is still hidden whole.
    let (authority, tail) = match rest.rfind('@') {
        Some(at) => {
            let (user_info, after) = (&rest[..at], &rest[at + 1..]);
            let shown = match user_info.split_once(':') {
                Some((user, _password)) => format!("{user}:***@"),
                None => format!("{user_info}@"),
            };
            let end = after.find(['/', '?']).unwrap_or(after.len());
            (format!("{shown}{}", &after[..end]), &after[end..])
        }
        None => {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            (rest[..end].to_string(), &rest[end..])
        }
    };
    // `password=` may also come as a query parameter.
    let tail: Vec<String> = tail
        .split('&')
        .map(|part| match part.split_once("password=") {
            Some((before, _)) if before.is_empty() || before.ends_with('?') => format!("{before}password=***"),
            _ => part.to_string(),
        })
        .collect();
    format!("{scheme}://{authority}{}", tail.join("&"))
}

/// A URL's user and password must be percent-encoded: a raw reserved
/// character there (`/ ? # @ [ ]`, a space, or `%` not starting `%XX`)
/// would be read as part of the host or path. Says which rule, never the
/// password.
pub fn check_user_info(url: &str) -> Result<(), String> {
    let Some((_, rest)) = url.split_once("://") else { return Ok(()) };
    let Some(at) = rest.rfind('@') else { return Ok(()) };
    let user_info = &rest[..at];
    let bytes = user_info.as_bytes();
    let bad_percent = (0..bytes.len())
        .any(|i| bytes[i] == b'%' && !bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
    if user_info.contains(['/', '?', '#', '@', '[', ']', ' ']) || bad_percent {
        return Err(
            "the user or password in the URL holds a reserved character typed as is (one of / ? # @ [ ] % or a \
             space); percent-encode it (e.g. / as %2F, @ as %40, % as %25), or give the password in \
             store.password_file or PGPASSWORD instead"
                .into(),
        );
    }
    Ok(())
}

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
    let open_err = |msg: String| StoreError::Open { path: settings.shown.clone().into(), msg };
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
    client
        .batch_execute("SET synchronous_commit = off; SET plan_cache_mode = force_custom_plan")
        .await
        .map_err(|e| open_err(e.to_string()))?;
    Ok(client)
}

#[cfg(test)]
#[test]
fn urls_are_shown_without_their_password() {
    assert_eq!(without_password("postgres://u:s3cret@h:5432/db"), "postgres://u:***@h:5432/db");
    assert_eq!(without_password("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(
        without_password("postgresql://h/db?password=s3cret&sslmode=require"),
        "postgresql://h/db?password=***&sslmode=require"
    );
    assert_eq!(without_password("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
    for raw in ["p/ss", "p?ss", "p#ss", "p@ss", "p[ss", "p]ss", "p%zz", "p ss", "/?#@"] {
        let url = format!("postgres://u:{raw}@h:5432/db?sslmode=require");
        let shown = without_password(&url);
        assert_eq!(shown, "postgres://u:***@h:5432/db?sslmode=require", "{raw}");
        let refused = check_user_info(&url).unwrap_err();
        assert!(!refused.contains(raw), "{refused}");
    }
    assert!(check_user_info("postgres://u:p%2Fss%40x@h/db").is_ok());
    assert!(check_user_info("postgres://h/db").is_ok());
}
