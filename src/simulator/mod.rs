//! A local stand-in for the OIFDE server: `gettoken` and
//! `queryRecordHistory` as documented, over a generated tenant, for trying the
//! tool and for its tests. Start it in-process with [`Simulator::start`].

pub mod cdr;
pub mod dataset;
mod server;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

pub use dataset::{BusinessInfoStr, Quirks, SimRecord};
pub use server::{Faults, RequestLogEntry};
pub use tls::TlsIdentity;

use crate::tz::ServerZone;

/// What the simulated tenant holds and how the server behaves.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub records: usize,
    pub seed: u64,
    /// Start times fall in `[from, to)`, epoch seconds.
    pub from: i64,
    pub to: i64,
    /// How many distinct user mobiles the records belong to.
    pub users: usize,
    pub tenant_id: String,
    pub app_secret: String,
    /// `expireTime` of issued tokens, seconds.
    pub token_ttl: u64,
    /// Zone of `beginTime`/`endTime`.
    pub timezone: ServerZone,
    /// Accept queries without `userMobile`, `callId` or `ctiCallId`.
    pub lenient_keys: bool,
    /// Refuse queries without `beginTime` and `endTime` (as some releases do).
    pub require_window: bool,
    pub faults: Faults,
    /// Serve HTTPS with this certificate instead of HTTP.
    pub tls: Option<TlsIdentity>,
}

impl Default for SimOptions {
    fn default() -> Self {
        let now = crate::tz::now_ms() / 1000;
        let to = now - now.rem_euclid(3600);
        Self {
            records: 1000,
            seed: 1,
            from: to - 2 * 86_400,
            to,
            users: 20,
            tenant_id: "tenant001".into(),
            app_secret: "demo-secret".into(),
            token_ttl: 3600,
            timezone: ServerZone::utc(),
            lenient_keys: false,
            require_window: false,
            faults: Faults::default(),
            tls: None,
        }
    }
}

/// A running simulator; dropping it does not stop it, [`Simulator::stop`] does.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
    https: bool,
}

impl Simulator {
    /// Binds `listen` (port 0 picks a free port) and serves in the background.
    pub async fn start(options: SimOptions, listen: SocketAddr) -> std::io::Result<Self> {
        let tls = options.tls.clone();
        let https = tls.is_some();
        let shared = Arc::new(server::Shared::new(options));
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let stop = tokio_util::sync::CancellationToken::new();
        let app = server::router(shared.clone());
        let until = stop.clone();
        let task = match tls {
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, app).with_graceful_shutdown(until.cancelled_owned()).await;
            }),
            Some(identity) => {
                let listener = tls::TlsListener::new(listener, &identity)?;
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).with_graceful_shutdown(until.cancelled_owned()).await;
                })
            }
        };
        Ok(Self { addr, shared, stop, task, https })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (or `https://`), for `api.base_url`.
    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn options(&self) -> &SimOptions {
        &self.shared.options
    }

    /// The tenant's records as they are now.
    pub fn records(&self) -> Vec<SimRecord> {
        self.shared.lock().records.iter().map(|e| e.record.clone()).collect()
    }

    /// The user mobiles the records belong to.
    pub fn mobiles(&self) -> Vec<String> {
        self.shared.mobiles.clone()
    }

    /// Changes a record in place (an update on the server).
    pub fn update(&self, log_id: &str, change: impl FnOnce(&mut SimRecord)) -> bool {
        self.shared.update(log_id, change)
    }

    /// Adds a record (for example a late one, inside an already read window).
    pub fn insert(&self, record: SimRecord) {
        self.shared.insert(record);
    }

    /// Makes every issued token expire now.
    pub fn expire_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    pub fn token_calls(&self) -> u64 {
        self.shared.lock().token_calls
    }

    pub fn query_calls(&self) -> u64 {
        self.shared.lock().query_calls
    }

    /// Every token issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().issued.clone()
    }

    /// Queries received for `key` (`call:…`, `mobile:…`).
    pub fn queries_for(&self, key: &str) -> usize {
        self.shared.lock().log.iter().filter(|e| e.key.as_deref() == Some(key)).count()
    }

    /// Every request received so far.
    pub fn request_log(&self) -> Vec<RequestLogEntry> {
        self.shared.lock().log.clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
