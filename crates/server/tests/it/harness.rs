//! Start the real server in-process on 127.0.0.1:0 with a fresh data directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use passlink_server::config::Delivery;
use passlink_server::{Config, Server};

static N: AtomicU32 = AtomicU32::new(0);

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "passlink-it-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub struct TestServer {
    pub server: Server,
    pub base: String,
    pub admin_token: String,
    pub dir: PathBuf,
}

/// The configuration of the protocol tests: a delivery provider is configured (so `sendLink`
/// is accepted) but no worker drains the outbox here, so the tests see the queued jobs as they
/// were written. Delivery itself is tested in `delivery.rs` with real SMTP and webhook servers.
pub fn config(addr: std::net::SocketAddr, dir: &std::path::Path) -> Config {
    let mut cfg = Config::new(addr, dir);
    cfg.delivery = Delivery::Webhook {
        url: "http://127.0.0.1:9/not-drained".into(),
        secret: passlink_core::secret::Secret::new("test-secret"),
    };
    cfg.delivery_worker = false;
    cfg
}

pub async fn start_in(dir: PathBuf) -> TestServer {
    start_configured(dir, |_| {}).await
}

/// [`start_in`] with the configuration changed by `change`.
pub async fn start_configured(dir: PathBuf, change: impl FnOnce(&mut Config)) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = config(addr, &dir);
    change(&mut cfg);
    let server = Server::start(cfg, listener).await.unwrap();
    let admin_token = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    TestServer { base: format!("http://{addr}"), server, admin_token, dir }
}

pub async fn start(tag: &str) -> TestServer {
    start_in(temp_dir(tag)).await
}
