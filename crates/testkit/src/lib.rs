//! Test support shared by the delivery tests of several crates (a dev-dependency only), and the
//! runner of the external suites.
//!
//! - [`SmtpSink`]: a real SMTP server process (Python's aiosmtpd, `tests/smtp/sink.py`, installed
//!   into `tests/smtp/.venv` by `scripts/setup`), and the messages it received, parsed.
//! - [`WebhookReceiver`]: a real HTTP server on a socket recording what it is sent, answering
//!   with the statuses it is told to.
//! - [`authenticator::Passkey`]: a software ES256 passkey building the browser's WebAuthn JSON
//!   (also the bench's authenticator), with settable flags and counter.
//! - [`attestation::AttestationCa`]: a test authenticator vendor's root CA, issuing attestation
//!   certificates a [`authenticator::Passkey`] signs `packed` attestations with.
//! - [`tls::TestCa`]: a test certificate authority issuing passlink's server certificates
//!   (`--tls-cert-file`), with the leaf's SPKI hash for Chromium.
//! - [`free_port`], [`wait_healthy`], and [`postgres_url`] / [`test_schema`] for the
//!   PostgreSQL tests.
//! - `src/bin/external-suites/`: the runner `scripts/test` calls after `cargo test` for the suites
//!   outside Cargo (wire conformance, browser, SDKs) against the real binary; built on the helpers
//!   above. Its `main.rs` lists the suites.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)] // test support: waits on real processes and sockets

pub mod attestation;
pub mod authenticator;
pub mod tls;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The PostgreSQL the tests use: `PASSLINK_TEST_POSTGRES`, else the local one.
pub fn postgres_url() -> String {
    std::env::var("PASSLINK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A schema name of its own for one test run (`plt_<pid>_<nanos>_<tag>`), so runs in parallel
/// do not collide.
pub fn test_schema(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("plt_{}_{nanos}_{tag}", std::process::id())
}

/// A PostgreSQL schema and a data directory of one test run (named by [`test_schema`]); both
/// are removed when it is dropped, also on panic.
pub struct PgRun {
    pub url: String,
    pub schema: String,
    pub dir: PathBuf,
}

impl PgRun {
    pub fn new(tag: &str) -> PgRun {
        let schema = test_schema(tag);
        let dir = std::env::temp_dir().join(format!("passlink-{schema}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        PgRun { url: postgres_url(), schema, dir }
    }

    /// The database URL that selects (and creates) this run's schema.
    pub fn database(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.url, self.schema)
    }
}

impl Drop for PgRun {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop may run inside a runtime: drop the schema on a thread with its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(async {
                    if let Err(e) = passlink_store_postgres::drop_schema(&url, &schema).await {
                        eprintln!("could not drop test schema {schema}: {e}");
                    }
                });
            }
        })
        .join();
    }
}

/// Wait until `GET {base}/healthz` answers 200 (panics after 10 s).
pub async fn wait_healthy(base: &str) {
    wait_healthy_with(&reqwest::Client::new(), base).await
}

/// [`wait_healthy`] with a client of the caller's (an `https://` base with a test CA).
pub async fn wait_healthy_with(c: &reqwest::Client, base: &str) {
    for _ in 0..400 {
        if let Ok(r) = c.get(format!("{base}/healthz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("server at {base} did not become healthy");
}

/// The workspace root (for `tests/...`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The Python of the in-process suite (aiosmtpd, prometheus_client; `tests/smtp/requirements.txt`):
/// `PASSLINK_TEST_SMTP_PYTHON`, else `tests/smtp/.venv/bin/python`.
pub fn smtp_python() -> PathBuf {
    if let Ok(p) = std::env::var("PASSLINK_TEST_SMTP_PYTHON") {
        return PathBuf::from(p);
    }
    let p = workspace_root().join("tests/smtp/.venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup once (it installs aiosmtpd from tests/smtp/requirements.txt), \
         or set PASSLINK_TEST_SMTP_PYTHON to a Python with aiosmtpd",
        p.display()
    );
    p
}

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub raw: String,
    pub subject: String,
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub content_type: String,
    /// The text/plain and text/html parts, decoded.
    pub text: String,
    pub html: String,
    /// Sent over TLS (after STARTTLS)?
    pub tls: bool,
    /// The login the client authenticated with, if any.
    pub auth_user: Option<String>,
}

fn parse(record: &serde_json::Value) -> Received {
    let raw = record["data"].as_str().unwrap().to_string();
    let mail = mailparse::parse_mail(raw.as_bytes()).unwrap();
    let header = |name: &str| {
        mail.headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
            .unwrap_or_default()
    };
    let (mut text, mut html) = (String::new(), String::new());
    for part in mail.parts() {
        match part.ctype.mimetype.as_str() {
            "text/plain" => text = part.get_body().unwrap(),
            "text/html" => html = part.get_body().unwrap(),
            _ => {}
        }
    }
    Received {
        mail_from: record["mail_from"].as_str().unwrap_or_default().to_string(),
        rcpt_tos: record["rcpt_tos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
        subject: header("Subject"),
        message_id: header("Message-ID"),
        from: header("From"),
        to: header("To"),
        content_type: mail.ctype.mimetype.clone(),
        tls: record["tls"].as_bool().unwrap_or(false),
        auth_user: record["auth_user"].as_str().map(str::to_string),
        raw,
        text,
        html,
    }
}

/// A running SMTP server process; killed when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl SmtpSink {
    /// Start the server on `port`, storing messages in `dir`; returns once it accepts.
    pub fn start(port: u16, dir: &Path) -> SmtpSink {
        SmtpSink::start_with(port, dir, None, None)
    }

    /// [`SmtpSink::start`], offering and requiring STARTTLS with a certificate of a test CA
    /// written to `certs` (`certs/ca.pem`), and requiring the login `auth` (user, password).
    pub fn start_with(port: u16, dir: &Path, certs: Option<&Path>, auth: Option<(&str, &str)>) -> SmtpSink {
        std::fs::create_dir_all(dir).unwrap();
        let script = workspace_root().join("tests/smtp/sink.py");
        let mut cmd = Command::new(smtp_python());
        cmd.arg(script).args(["--host", "127.0.0.1", "--port", &port.to_string(), "--out"]).arg(dir);
        if let Some(c) = certs {
            cmd.arg("--starttls").arg(c);
        }
        if let Some((user, password)) = auth {
            cmd.arg("--auth").arg(format!("{user}:{password}"));
        }
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start the SMTP sink");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("READY"), "SMTP sink did not start: {line:?}");
        SmtpSink { child, port, dir: dir.to_path_buf() }
    }

    /// Start on `port` once nothing listens there any more (a previous server's socket closes
    /// asynchronously).
    pub fn start_when_free(port: u16, dir: &Path) -> SmtpSink {
        let start = Instant::now();
        while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "port {port} stays busy");
            std::thread::sleep(Duration::from_millis(20));
        }
        SmtpSink::start(port, dir)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| parse(&serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()))
            .collect()
    }

    /// Wait until at least `n` messages arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(start.elapsed() < timeout, "{} of {n} messages arrived within {timeout:?}", m.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
pub struct Hook {
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

/// A real HTTP server recording POSTs to `/hook`. It answers with the statuses in `script`
/// in turn, then 200.
pub struct WebhookReceiver {
    pub url: String,
    hooks: Arc<Mutex<Vec<Hook>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start(script: Vec<u16>) -> WebhookReceiver {
        let hooks = Arc::new(Mutex::new(Vec::<Hook>::new()));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        let h = hooks.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (h, script) = (h.clone(), script.clone());
                async move {
                    let status = script.lock().unwrap().pop_front().unwrap_or(200);
                    h.lock().unwrap().push(Hook { headers, body: body.to_vec(), status });
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        WebhookReceiver { url, hooks, task }
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().unwrap().clone()
    }

    /// Wait until at least `n` requests were answered 2xx (panics after `timeout`).
    pub async fn wait_for_successes(&self, n: usize, timeout: Duration) -> Vec<Hook> {
        let start = Instant::now();
        loop {
            let all = self.hooks();
            if all.iter().filter(|h| (200..300).contains(&h.status)).count() >= n {
                return all;
            }
            assert!(
                start.elapsed() < timeout,
                "webhook: fewer than {n} successful deliveries within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
