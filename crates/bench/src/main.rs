//! `passlink-bench`: the documented benchmark.
//!
//! Against a release build of `passlink` (spawned here on a free port with a fresh data dir, or an
//! already-running server given by `--url`), it creates passkey registration links over REST
//! (`POST /v2beta/users/{userId}/passkeys/registration_link`) on N concurrent HTTP/1.1 keep-alive
//! connections for T seconds after a warm-up (`--duration`, default 60 s: the long run; a quick
//! run is `--duration 8`), then does the same for `GET /healthz`, and prints requests, errors,
//! req/s, p50, p99, p99.9 and max latency for every phase plus the throughput ratios.
//!
//! Every link is acknowledged by the server only after its commit is on disk, so the links row is
//! a durable-write benchmark; `/healthz` is the transport's ceiling on the same machine.
//!
//! The hot-user phase sends the same link request, but every connection for one user (one
//! aggregate, created for it during setup): the writes contend on one aggregate's sequence.
//!
//! `--prefill N` first grows each backend's database by N links (the links request, connection i
//! for link user i, all connections, as fast as the server takes them; progress every 10 % and the
//! rate), so that the phases run on a database of that size; it is not measured, but its failures
//! fail the run. The link users' histories then hold about N / `--connections` link events each.
//!
//! After the table, each link phase (links on every backend, hot-user) gets a per-second
//! timeline of its measured window: req/s, p50, p99 and max of the requests completed in that
//! second, failures, and the WAL resets seen in it; seconds whose p99 reaches 5 ms are marked, and
//! a summary names them, the worst second and the spread of req/s. A stall shows there, where a
//! whole window's p99 hides it.
//!
//! For a spawned SQLite server the report ends with its resources (`probe`): the binary's size
//! (and stripped); VmRSS and VmHWM right after start-up and after every phase; for the links and
//! hot-user phases the bytes written per link, from `/proc/<pid>/io` at the start and the end of
//! the measured window (`wchar`, less the HTTP responses the bench received, which `wchar` counts
//! too; and `write_bytes`), and the WAL (`passlink.db-wal`, polled every 5 ms): resets (the file
//! shrank), new WAL headers (a reset or a restart from the file's beginning) and its largest size;
//! `wchar` per `/healthz` request (the socket share, for comparison); the database file's size
//! after setup, after the link phases (its growth per link) and once the server has stopped. With
//! `--url` or a PostgreSQL backend these are skipped, with a note.
//!
//! The sign-in phase measures complete passkey sign-ins: N fresh users (not the link users, whose
//! histories have grown by thousands of link events) each get one ES256 passkey during setup (a returned registration code, RegisterPasskey, VerifyPasskeyRegistration), held by a
//! software authenticator (`passlink_testkit::authenticator`: ring's ES256, one per user, so each credential's
//! signature counter grows with every assertion, cheap enough to leave the cores to the server); one sign-in is `POST /v2/sessions`
//! (`checks.user` by id + a WebAuthN challenge) and `PATCH /v2/sessions/{id}` with the signed
//! assertion, both with the admin PAT, timed end to end.
//!
//! The OIDC phase measures complete OpenID Connect sign-ins of the same users (and the same
//! authenticators) against a public client (a project and a user-agent application with PKCE,
//! created during setup): `GET /oauth/v2/authorize` (code flow, S256 challenge of a fresh random
//! verifier; the 302 to `/ui/login?authRequest=V2_…` is read, not followed), the sign-in above,
//! `POST /v2/oidc/auth_requests/{id}` (CreateCallback with the session, as a login UI does; the
//! admin PAT holds `session.link`) and `POST /oauth/v2/token` (the code with its verifier, an
//! `id_token` back), timed end to end, with each step's p50/p99 printed under the table.
//!
//! `--phases` picks the measured phases (default: links, hot-user, jwt, sign-in, oidc);
//! `/healthz` always runs, so every ratio is to the transport's ceiling measured in the same run.
//!
//! `--backends sqlite,postgres,postgres2` measures link creation on several stores in one run:
//! the embedded SQLite, PostgreSQL (`--postgres-url`) with one replica, and PostgreSQL with two
//! replicas on one schema (half the connections to each). Each PostgreSQL backend gets a fresh
//! schema, dropped at the end. `--prefill`, links and hot-user run on every backend; the JWT,
//! sign-in, OIDC and `/healthz` phases on the first backend only.
//!
//! Each connection is its own hyper HTTP/1.1 client connection, driving sequential requests, and
//! (except in the hot-user phase) uses its own user (created during setup) so that concurrent
//! requests never contend on one aggregate's sequence. Non-200 responses and transport errors
//! count as errors; the process exits non-zero if any request failed.

// The bulk enrollment phase (CreateRegistrationLinks over a large organization).
mod bulk;
mod prefill;
mod probe;
mod stats;
mod timeline;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use passlink_testkit::authenticator::Passkey;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::stats::{Stats, Window, micros, pct_ms};

type Res<T> = Result<T, String>;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Medium {
    /// The code is returned in the response (no outbox job).
    #[value(name = "returnCode")]
    ReturnCode,
    /// The link is "sent": an outbox job with the sealed code is written in the same commit.
    #[value(name = "sendLink")]
    SendLink,
}

impl Medium {
    fn name(self) -> &'static str {
        match self {
            Medium::ReturnCode => "returnCode",
            Medium::SendLink => "sendLink",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The embedded SQLite store (one process).
    Sqlite,
    /// PostgreSQL, one replica.
    Postgres,
    /// PostgreSQL, two replicas on one schema; the load is split between them.
    Postgres2,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres x1",
            Backend::Postgres2 => "postgres x2",
        }
    }

    fn replicas(self) -> usize {
        if self == Backend::Postgres2 { 2 } else { 1 }
    }
}

/// The measured phases (`--phases`); `/healthz` always runs.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    /// Passkey registration links with the PAT (on every backend).
    Links,
    /// The same, every connection for one user (one aggregate; on every backend).
    HotUser,
    /// The same with a JWT access token.
    Jwt,
    /// Passkey sign-ins: CreateSession + SetSession.
    SignIn,
    /// Complete OpenID Connect sign-ins: authorize, CreateSession, SetSession, CreateCallback, token.
    Oidc,
    /// Bulk enrollment: CreateRegistrationLinks over an organization of --bulk-users users, in
    /// pages (first backend only; not in the default list).
    Bulk,
}

#[derive(Parser)]
#[command(
    name = "passlink-bench",
    about = "Durable passkey-link creation, passkey sign-ins and OIDC sign-ins over REST vs /healthz on N keep-alive connections"
)]
struct Cli {
    /// Concurrent keep-alive connections (one user per connection for the links phase).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds per phase (the long run; a quick run: --duration 8).
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Warm-up seconds per phase (requests run, but are not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The passlink binary to spawn (default: next to this binary, else target/release/passlink).
    #[arg(long)]
    passlink: Option<PathBuf>,
    /// Use an already-running server, e.g. http://127.0.0.1:8080 (requires --token-file).
    #[arg(long, requires = "token_file", conflicts_with_all = ["passlink", "data_dir"])]
    url: Option<String>,
    /// File with an IAM_OWNER bearer token (default: <data-dir>/admin.pat of the spawned server).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Data dir for the spawned server (default: a fresh temp dir, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// How the link is delivered.
    #[arg(long, value_enum, default_value = "returnCode")]
    medium: Medium,
    /// Worker threads of the load generator's runtime (default: the core count).
    #[arg(long)]
    threads: Option<usize>,
    /// Log filter passed to the spawned server (--log).
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// Stores to measure link creation on, in order (comma-separated): sqlite, postgres (one
    /// replica), postgres2 (two replicas, half the connections to each). The JWT, sign-in and /healthz
    /// phases run on the first.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sqlite", conflicts_with = "url")]
    backends: Vec<Backend>,
    /// The WebAuthn origin the bench's authenticator signs for (default: each spawned replica's
    /// `http://localhost:<port>`, or `--url`); must match the server's external URL.
    #[arg(long)]
    origin: Option<String>,
    /// PostgreSQL for the postgres backends; each gets a fresh schema, dropped at the end.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// The phases to measure (comma-separated): links, hot-user, jwt, sign-in, oidc. GET /healthz
    /// is always measured (the ratios' denominator); links and hot-user are the only phases of
    /// backends after the first.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "links,hot-user,jwt,sign-in,oidc")]
    phases: Vec<Phase>,
    /// Before the measured phases, grow each backend's database by this many links (the links
    /// request on every connection, the link users in turn), as fast as the server takes them.
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// The bulk phase: users created in its organization (setup, not measured).
    #[arg(long, default_value_t = 100_000)]
    bulk_users: u64,
    /// The bulk phase: users per CreateRegistrationLinks page (at most 1000).
    #[arg(long, default_value_t = 1000)]
    bulk_page_size: usize,
}

// ------------------------------------------------------------------------------------------ HTTP

/// One HTTP/1.1 keep-alive connection; requests on it are sequential.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: &str) -> Res<Conn> {
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("set_nodelay: {e}"))?;
        // Counting the bytes read: the server's socket writes, which its wchar counts too.
        let (sender, conn) = http1::handshake(TokioIo::new(probe::Counted(stream)))
            .await
            .map_err(|e| format!("handshake with {addr}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> Res<(StatusCode, Bytes)> {
        let (status, _, body) = self.send_location(req).await?;
        Ok((status, body))
    }

    /// [`Conn::send`], also returning the `Location` header.
    async fn send_location(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Res<(StatusCode, Option<HeaderValue>, Bytes)> {
        self.sender.ready().await.map_err(|e| format!("connection closed: {e}"))?;
        let resp = self.sender.send_request(req).await.map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let location = resp.headers().get(header::LOCATION).cloned();
        let body = resp.into_body().collect().await.map_err(|e| format!("reading the body: {e}"))?.to_bytes();
        Ok((status, location, body))
    }
}

/// What a phase sends: the same request on every connection, except for the path.
struct RequestSpec {
    method: Method,
    host: HeaderValue,
    auth: Option<HeaderValue>,
    body: Bytes,
}

impl RequestSpec {
    fn build(&self, path: &str) -> Res<Request<Full<Bytes>>> {
        let mut b =
            Request::builder().method(self.method.clone()).uri(path).header(header::HOST, self.host.clone());
        if let Some(a) = &self.auth {
            b = b.header(header::AUTHORIZATION, a.clone());
        }
        if !self.body.is_empty() {
            b = b.header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        b.body(Full::new(self.body.clone())).map_err(|e| format!("building a request for {path}: {e}"))
    }
}

fn body_text(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 500 { format!("{}…", s.chars().take(500).collect::<String>()) } else { s.into_owned() }
}

// ------------------------------------------------------------------------------------- the server

/// A passlink spawned for this run; stopped (SIGTERM, then wait) and cleaned up on drop.
struct Spawned {
    children: Vec<Child>,
    temp_dir: Option<PathBuf>,
}

impl Spawned {
    fn exited(&mut self) -> Option<String> {
        for child in &mut self.children {
            match child.try_wait() {
                Ok(Some(st)) => return Some(format!("passlink exited during start-up ({st})")),
                Ok(None) => {}
                Err(e) => return Some(format!("waiting for passlink: {e}")),
            }
        }
        None
    }

    async fn stop(&mut self) -> Res<()> {
        let mut out = Ok(());
        for mut child in std::mem::take(&mut self.children) {
            let pid = child.id().to_string();
            // SIGTERM lets the server drain; `kill` avoids unsafe libc calls (the workspace denies them).
            let _ = Command::new("kill")
                .args(["-TERM", &pid])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match child.try_wait() {
                    Ok(Some(st)) => {
                        if !st.success() {
                            out = Err(format!("passlink exited with {st} after SIGTERM"));
                        }
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        out = Err("passlink did not stop within 15s of SIGTERM; killed it".into());
                        break;
                    }
                }
            }
        }
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(&d);
        }
        out
    }
}

impl Drop for Spawned {
    /// Only on early exits (errors): the normal path calls [`Spawned::stop`] first.
    fn drop(&mut self) {
        for mut child in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}

fn default_passlink() -> PathBuf {
    let sibling = std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("passlink")));
    match sibling {
        Some(p) if p.is_file() => p,
        _ => PathBuf::from("target/release/passlink"),
    }
}

/// A per-run tag for unique names (org name, e-mails, temp dir): pid + a random number.
fn unique_tag() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("{}-{:08x}", std::process::id(), random & 0xffff_ffff)
}

fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// How a replica is started besides its data dir and address.
struct Store<'a> {
    /// `--database` (none: SQLite in the data dir).
    database: Option<&'a str>,
    /// `--keys-file` (a second replica uses the first one's keys).
    keys_file: Option<&'a Path>,
    machine_id: u16,
}

fn spawn_server(cli: &Cli, binary: &Path, data_dir: &Path, addr: &str, store: &Store<'_>) -> Res<Child> {
    let mut cmd = Command::new(binary);
    cmd.arg("--listen").arg(addr).arg("--data-dir").arg(data_dir).arg("--log").arg(&cli.server_log);
    if let Some(db) = store.database {
        cmd.arg("--database").arg(db).arg("--machine-id").arg(store.machine_id.to_string());
    }
    if let Some(k) = store.keys_file {
        cmd.arg("--keys-file").arg(k);
    }
    if cli.medium == Medium::SendLink {
        // sendLink needs a provider; the bench measures the request path (code request and
        // delivery job in one commit), so no worker drains the queue.
        let secret = data_dir.join("bench-webhook.secret");
        std::fs::write(&secret, "bench").map_err(|e| format!("{}: {e}", secret.display()))?;
        cmd.args(["--webhook-url", "http://127.0.0.1:9/bench", "--delivery-worker", "false"])
            .arg("--webhook-secret-file")
            .arg(&secret);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().map_err(|e| {
        format!("starting {}: {e} (build it: cargo build --release -p passlink)", binary.display())
    })
}

/// Spawn a replica on a free port and wait until it is ready; returns its address. A free port can
/// be taken between probing and binding: tries a few.
async fn start_replica(
    cli: &Cli,
    binary: &Path,
    data_dir: &Path,
    store: &Store<'_>,
    server: &mut Spawned,
) -> Res<String> {
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let mut last_err = String::new();
    for _ in 0..3 {
        let addr = format!("127.0.0.1:{}", free_port()?);
        server.children.push(spawn_server(cli, binary, data_dir, &addr, store)?);
        match wait_ready(&addr, server).await {
            Ok(()) => return Ok(addr),
            Err(e) => {
                last_err = e;
                if let Some(mut c) = server.children.pop() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
    }
    Err(last_err)
}

/// Poll GET /readyz until 200, the child exits, or 30 s pass.
async fn wait_ready(addr: &str, server: &mut Spawned) -> Res<()> {
    let spec = RequestSpec { method: Method::GET, host: host_value(addr)?, auth: None, body: Bytes::new() };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(e) = server.exited() {
            return Err(e);
        }
        if let Ok(mut c) = Conn::open(addr).await
            && let Ok((StatusCode::OK, _)) = c.send(spec.build("/readyz")?).await
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{addr}/readyz did not answer 200 within 30s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn host_value(addr: &str) -> Res<HeaderValue> {
    HeaderValue::from_str(addr).map_err(|e| format!("bad host {addr}: {e}"))
}

/// `http://host:port[/]` → `host:port`.
fn parse_url(url: &str) -> Res<String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("--url {url}: {e}"))?;
    if uri.scheme_str().is_some_and(|s| s != "http") {
        return Err(format!("--url {url}: only http:// is supported"));
    }
    let host = uri.host().ok_or_else(|| format!("--url {url}: no host"))?;
    Ok(format!("{host}:{}", uri.port_u16().unwrap_or(80)))
}

// ---------------------------------------------------------------------------------------- setup

struct Api {
    conn: Conn,
    spec_host: HeaderValue,
    auth: HeaderValue,
}

impl Api {
    async fn post(&mut self, path: &str, body: serde_json::Value) -> Res<serde_json::Value> {
        let spec = RequestSpec {
            method: Method::POST,
            host: self.spec_host.clone(),
            auth: Some(self.auth.clone()),
            body: Bytes::from(body.to_string()),
        };
        self.call(path, spec.build(path)?).await
    }

    /// A Connect unary call with the JSON codec (`connect-protocol-version: 1`).
    async fn connect(&mut self, path: &str, body: serde_json::Value) -> Res<serde_json::Value> {
        let spec = RequestSpec {
            method: Method::POST,
            host: self.spec_host.clone(),
            auth: Some(self.auth.clone()),
            body: Bytes::from(body.to_string()),
        };
        let mut req = spec.build(path)?;
        req.headers_mut().insert("connect-protocol-version", HeaderValue::from_static("1"));
        self.call(path, req).await
    }

    async fn call(&mut self, path: &str, req: Request<Full<Bytes>>) -> Res<serde_json::Value> {
        let (status, resp) = self.conn.send(req).await?;
        if !status.is_success() {
            return Err(format!("POST {path}: HTTP {status}: {}", body_text(&resp)));
        }
        serde_json::from_slice(&resp)
            .map_err(|e| format!("POST {path}: bad JSON ({e}): {}", body_text(&resp)))
    }
}

impl Api {
    /// `POST /oauth/v2/token` (client_credentials, client_secret_basic): an access token (JWT).
    async fn client_credentials_token(&mut self, client_id: &str, secret: &str) -> Res<String> {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
        let req = Request::builder()
            .method(Method::POST)
            .uri("/oauth/v2/token")
            .header(header::HOST, self.spec_host.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, format!("Basic {basic}"))
            .body(Full::new(Bytes::from_static(
                b"grant_type=client_credentials&scope=openid+urn%3Azitadel%3Aiam%3Aorg%3Aproject%3Aid%3Azitadel%3Aaud",
            )))
            .map_err(|e| format!("token request: {e}"))?;
        let (status, resp) = self.conn.send(req).await?;
        if !status.is_success() {
            return Err(format!("POST /oauth/v2/token: HTTP {status}: {}", body_text(&resp)));
        }
        let v: serde_json::Value = serde_json::from_slice(&resp)
            .map_err(|e| format!("token response: {e}: {}", body_text(&resp)))?;
        str_field(&v, "access_token")
    }
}

fn str_field(v: &serde_json::Value, name: &str) -> Res<String> {
    v.get(name)
        .and_then(|s| s.as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("no \"{name}\" in the response: {v}"))
}

/// One organization, `n` active human users in it, and a machine user (ORG_OWNER there) with a
/// client secret; returns the org id, the user ids and a JWT access token of the machine user.
async fn setup(addr: &str, token: &str, n: usize) -> Res<(String, Vec<String>, String)> {
    let auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "the token is not a valid header value".to_string())?;
    let mut api = Api { conn: Conn::open(addr).await?, spec_host: host_value(addr)?, auth };
    let tag = unique_tag();
    let org = api.post("/v2/organizations", serde_json::json!({ "name": format!("bench-{tag}") })).await?;
    let org_id = str_field(&org, "organizationId")?;
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let u = api
            .post(
                "/v2/users/human",
                serde_json::json!({
                    "organization": { "orgId": org_id },
                    "profile": { "givenName": "B", "familyName": format!("{i}") },
                    "email": { "email": format!("b{i}.{tag}@example.com"), "isVerified": true },
                }),
            )
            .await?;
        users.push(str_field(&u, "userId")?);
    }
    let client_id = format!("bench-svc-{tag}");
    let m = api
        .post(
            "/zitadel.user.v2.UserService/CreateUser",
            serde_json::json!({"organizationId": org_id, "username": client_id, "machine": {"name": "bench"}}),
        )
        .await?;
    let machine_id = str_field(&m, "id")?;
    api.post(
        "/zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
        serde_json::json!({"userId": machine_id, "resource": {"organizationId": org_id}, "roles": ["ORG_OWNER"]}),
    )
    .await?;
    let secret =
        api.post("/zitadel.user.v2.UserService/AddSecret", serde_json::json!({"userId": machine_id})).await?;
    let jwt = api.client_credentials_token(&client_id, &str_field(&secret, "clientSecret")?).await?;
    Ok((org_id, users, jwt))
}

/// A bench user with its passkey: the software authenticator holds the ES256 private key and a
/// signature counter that grows with every assertion.
struct Enrolled {
    user: String,
    key: Passkey,
}

/// Create `n` fresh users in `org_id` (the link users carry thousands of link events by now, which
/// every command on the user folds) and enroll one ES256 passkey for each through a returned
/// registration code (CreatePasskeyRegistrationLink, RegisterPasskey with the code,
/// VerifyPasskeyRegistration); returns the users with their authenticators and the relying-party id.
async fn enroll_all(
    addr: &str,
    token: &str,
    org_id: &str,
    n: usize,
    origin: &str,
) -> Res<(Vec<Enrolled>, String)> {
    let auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "the token is not a valid header value".to_string())?;
    let mut api = Api { conn: Conn::open(addr).await?, spec_host: host_value(addr)?, auth };
    let tag = unique_tag();
    let mut out = Vec::with_capacity(n);
    let mut rp_id = String::new();
    for i in 0..n {
        let u = api
            .post(
                "/v2/users/human",
                serde_json::json!({
                    "organization": { "orgId": org_id },
                    "profile": { "givenName": "S", "familyName": format!("{i}") },
                    "email": { "email": format!("s{i}.{tag}@example.com"), "isVerified": true },
                }),
            )
            .await?;
        let user = &str_field(&u, "userId")?;
        let link = api
            .post(
                "/zitadel.user.v2.UserService/CreatePasskeyRegistrationLink",
                serde_json::json!({"userId": user, "returnCode": {}}),
            )
            .await?;
        let code = link.get("code").cloned().ok_or_else(|| format!("no code in {link}"))?;
        let started = api
            .post(
                "/zitadel.user.v2.UserService/RegisterPasskey",
                serde_json::json!({"userId": user, "code": {"id": code.get("id"), "code": code.get("code")}}),
            )
            .await?;
        let passkey_id = str_field(&started, "passkeyId")?;
        let options = started
            .get("publicKeyCredentialCreationOptions")
            .ok_or_else(|| format!("no publicKeyCredentialCreationOptions in {started}"))?;
        rp_id = options
            .pointer("/publicKey/rp/id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("no publicKey.rp.id in {options}"))?
            .to_string();
        let mut key = Passkey::new()?;
        let cred = key.register(options, origin)?;
        api.post(
            "/zitadel.user.v2.UserService/VerifyPasskeyRegistration",
            serde_json::json!({"userId": user, "passkeyId": passkey_id, "publicKeyCredential": cred,
                               "passkeyName": "bench"}),
        )
        .await?;
        out.push(Enrolled { user: user.clone(), key });
    }
    Ok((out, rp_id))
}

// ---------------------------------------------------------------------------------------- phases

/// The worker's keep-alive connection, opened again if it broke; `None` (after counting the
/// error and a 10 ms pause) when it cannot be opened.
async fn connected<'a>(
    conn: &'a mut Option<Conn>,
    addr: &str,
    stats: &mut Stats,
    w: &Window,
) -> Option<&'a mut Conn> {
    if conn.is_none() {
        match Conn::open(addr).await {
            Ok(c) => *conn = Some(c),
            Err(e) => {
                stats.error("transport".into(), e, w, Instant::now());
                tokio::time::sleep(Duration::from_millis(10)).await;
                return None;
            }
        }
    }
    conn.as_mut()
}

async fn worker(addr: Arc<str>, spec: Arc<RequestSpec>, path: String, w: Arc<Window>) -> Res<Stats> {
    let mut stats = Stats::default();
    let mut conn: Option<Conn> = None;
    while Instant::now() < w.end {
        let Some(c) = connected(&mut conn, &addr, &mut stats, &w).await else { continue };
        let req = spec.build(&path)?;
        let t = Instant::now();
        let r = c.send(req).await;
        let done = Instant::now();
        match r {
            Ok((StatusCode::OK, _)) => {
                stats.success(&w, t, done);
            }
            Ok((status, body)) => {
                let detail = format!("{} {path}: HTTP {status}: {}", spec.method, body_text(&body));
                stats.error(format!("HTTP {}", status.as_u16()), detail, &w, done);
            }
            Err(e) => {
                stats.error("transport".into(), format!("{} {path}: {e}", spec.method), &w, done);
                conn = None;
            }
        }
    }
    Ok(stats)
}

/// What every sign-in worker shares.
struct SignIn {
    host: HeaderValue,
    auth: HeaderValue,
    rp_id: String,
}

impl SignIn {
    fn request(&self, method: Method, path: &str, body: serde_json::Value) -> Res<Request<Full<Bytes>>> {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.clone())
            .header(header::AUTHORIZATION, self.auth.clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| format!("building a request for {path}: {e}"))
    }
}

/// Why one sign-in failed: the error kind and a detail line.
enum SignInError {
    /// The server answered with an unexpected status.
    Http(String, String),
    /// The connection broke (reopen it).
    Transport(String),
    /// A malformed answer or an assertion the authenticator could not make.
    Client(String),
}

/// CreateSession (the user by id + a WebAuthN challenge): the session id and the request options.
async fn create_session(
    c: &mut Conn,
    s: &SignIn,
    e: &Enrolled,
) -> Result<(String, serde_json::Value), SignInError> {
    let client = SignInError::Client;
    let create = s
        .request(
            Method::POST,
            "/v2/sessions",
            serde_json::json!({
                "checks": {"user": {"userId": e.user}},
                "challenges": {"webAuthN": {"domain": s.rp_id,
                    "userVerificationRequirement": "USER_VERIFICATION_REQUIREMENT_REQUIRED"}},
            }),
        )
        .map_err(client)?;
    let (status, body) = c.send(create).await.map_err(SignInError::Transport)?;
    if status != StatusCode::CREATED {
        let detail = format!("POST /v2/sessions: HTTP {status}: {}", body_text(&body));
        return Err(SignInError::Http(format!("CreateSession HTTP {}", status.as_u16()), detail));
    }
    let mut created: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| SignInError::Client(format!("CreateSession: bad JSON ({e}): {}", body_text(&body))))?;
    let session_id = str_field(&created, "sessionId").map_err(client)?;
    let options = created
        .pointer_mut("/challenges/webAuthN/publicKeyCredentialRequestOptions")
        .map(serde_json::Value::take)
        .ok_or_else(|| SignInError::Client(format!("CreateSession: no request options in {created}")))?;
    Ok((session_id, options))
}

/// The assertion signed by the user's authenticator, then SetSession with it; the SetSession
/// response body (it holds the new `sessionToken`).
async fn set_session(
    c: &mut Conn,
    s: &SignIn,
    origin: &str,
    e: &mut Enrolled,
    session_id: &str,
    options: &serde_json::Value,
) -> Result<Bytes, SignInError> {
    let client = SignInError::Client;
    let assertion = e.key.assert(options, origin).map_err(client)?;
    let path = format!("/v2/sessions/{session_id}");
    let set = s
        .request(
            Method::PATCH,
            &path,
            serde_json::json!({"checks": {"webAuthN": {"credentialAssertionData": assertion}}}),
        )
        .map_err(client)?;
    let (status, body) = c.send(set).await.map_err(SignInError::Transport)?;
    if status != StatusCode::OK {
        let detail = format!("PATCH /v2/sessions/{{id}}: HTTP {status}: {}", body_text(&body));
        return Err(SignInError::Http(format!("SetSession HTTP {}", status.as_u16()), detail));
    }
    Ok(body)
}

/// One complete sign-in: CreateSession (the user by id + a WebAuthN challenge), the assertion
/// signed by the user's authenticator, SetSession with it.
async fn sign_in(c: &mut Conn, s: &SignIn, origin: &str, e: &mut Enrolled) -> Result<(), SignInError> {
    let (session_id, options) = create_session(c, s, e).await?;
    set_session(c, s, origin, e, &session_id, &options).await?;
    Ok(())
}

/// Sign one user in again and again on one keep-alive connection; the latency is the whole
/// sign-in (both requests and the signature). Hands the user (its authenticator's counter) back.
async fn sign_in_worker(
    addr: Arc<str>,
    origin: String,
    s: Arc<SignIn>,
    mut e: Enrolled,
    w: Arc<Window>,
) -> Res<(Stats, Enrolled)> {
    let mut stats = Stats::default();
    let mut conn: Option<Conn> = None;
    while Instant::now() < w.end {
        let Some(c) = connected(&mut conn, &addr, &mut stats, &w).await else { continue };
        let t = Instant::now();
        let r = sign_in(c, &s, &origin, &mut e).await;
        let done = Instant::now();
        match r {
            Ok(()) => {
                stats.success(&w, t, done);
            }
            Err(SignInError::Http(kind, detail)) => stats.error(kind, detail, &w, done),
            Err(SignInError::Client(detail)) => stats.error("client".into(), detail, &w, done),
            Err(SignInError::Transport(detail)) => {
                stats.error("transport".into(), detail, &w, done);
                conn = None;
            }
        }
    }
    Ok((stats, e))
}

// ------------------------------------------------------------------------------------------ OIDC

/// The public OIDC client of the OIDC phase (a user-agent application, PKCE, no secret).
struct OidcClient {
    client_id: String,
    redirect_uri: String,
}

/// The steps of one OIDC sign-in, in order (the per-step latencies' labels).
const OIDC_STEPS: [&str; 5] = [
    "GET /oauth/v2/authorize",
    "POST /v2/sessions",
    "PATCH /v2/sessions/{id}",
    "POST /v2/oidc/auth_requests/{id}",
    "POST /oauth/v2/token",
];

/// The value of query parameter `name` in `url` (absolute, or relative to the server).
fn query_param(url: &str, name: &str) -> Option<String> {
    let base = url::Url::parse("http://server/").ok()?;
    let u = base.join(url).ok()?;
    u.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A PKCE verifier (32 random bytes, base64url) and its S256 challenge.
fn pkce(rng: &ring::rand::SystemRandom) -> Result<(String, String), SignInError> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = [0u8; 32];
    rng.fill(&mut raw).map_err(|_| SignInError::Client("drawing a PKCE verifier".into()))?;
    let verifier = b64.encode(raw);
    let challenge = b64.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()));
    Ok((verifier, challenge))
}

/// One complete OpenID Connect sign-in (authorization code + PKCE) of user `e`; `steps[i]` gets
/// the latency of step i ([`OIDC_STEPS`]). `n` makes the state and nonce unique.
#[allow(clippy::too_many_arguments)]
async fn oidc_sign_in(
    c: &mut Conn,
    s: &SignIn,
    o: &OidcClient,
    origin: &str,
    e: &mut Enrolled,
    rng: &ring::rand::SystemRandom,
    n: u64,
    steps: &mut [Duration; OIDC_STEPS.len()],
) -> Result<(), SignInError> {
    let client = SignInError::Client;
    let (verifier, challenge) = pkce(rng)?;
    let state = format!("s{n}");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &o.client_id)
        .append_pair("redirect_uri", &o.redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile")
        .append_pair("state", &state)
        .append_pair("nonce", &format!("n{n}"))
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();

    // 1. The authorization request: a 302 to the login UI, not followed.
    let t = Instant::now();
    let authorize = Request::builder()
        .method(Method::GET)
        .uri(format!("/oauth/v2/authorize?{query}"))
        .header(header::HOST, s.host.clone())
        .body(Full::new(Bytes::new()))
        .map_err(|e| SignInError::Client(format!("building the authorize request: {e}")))?;
    let (status, location, body) = c.send_location(authorize).await.map_err(SignInError::Transport)?;
    if status != StatusCode::FOUND {
        let detail = format!("GET /oauth/v2/authorize: HTTP {status}: {}", body_text(&body));
        return Err(SignInError::Http(format!("authorize HTTP {}", status.as_u16()), detail));
    }
    let location = location.as_ref().and_then(|l| l.to_str().ok()).unwrap_or_default();
    let auth_request = query_param(location, "authRequest").filter(|id| !id.is_empty()).ok_or_else(|| {
        SignInError::Client(format!("authorize: no authRequest in the Location {location:?}"))
    })?;
    let t1 = Instant::now();
    steps[0] = t1 - t;

    // 2., 3. The passkey sign-in (the same requests as the sign-in phase).
    let (session_id, options) = create_session(c, s, e).await?;
    let t2 = Instant::now();
    steps[1] = t2 - t1;
    let set = set_session(c, s, origin, e, &session_id, &options).await?;
    let t3 = Instant::now();
    steps[2] = t3 - t2;
    let set: serde_json::Value = serde_json::from_slice(&set)
        .map_err(|e| SignInError::Client(format!("SetSession: bad JSON ({e}): {}", body_text(&set))))?;
    let session_token = str_field(&set, "sessionToken").map_err(client)?;

    // 4. CreateCallback: the session finishes the authorization request.
    let path = format!("/v2/oidc/auth_requests/{auth_request}");
    let callback = s
        .request(
            Method::POST,
            &path,
            serde_json::json!({"session": {"sessionId": session_id, "sessionToken": session_token}}),
        )
        .map_err(client)?;
    let (status, body) = c.send(callback).await.map_err(SignInError::Transport)?;
    if status != StatusCode::OK {
        let detail = format!("POST /v2/oidc/auth_requests/{{id}}: HTTP {status}: {}", body_text(&body));
        return Err(SignInError::Http(format!("CreateCallback HTTP {}", status.as_u16()), detail));
    }
    let callback: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| SignInError::Client(format!("CreateCallback: bad JSON ({e}): {}", body_text(&body))))?;
    let callback_url = str_field(&callback, "callbackUrl").map_err(client)?;
    let code = query_param(&callback_url, "code")
        .ok_or_else(|| SignInError::Client(format!("CreateCallback: no code in {callback_url}")))?;
    if query_param(&callback_url, "state").as_deref() != Some(state.as_str()) {
        return Err(SignInError::Client(format!("CreateCallback: not state {state} in {callback_url}")));
    }
    let t4 = Instant::now();
    steps[3] = t4 - t3;

    // 5. The code exchange (public client: client_id + code_verifier).
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("redirect_uri", &o.redirect_uri)
        .append_pair("client_id", &o.client_id)
        .append_pair("code_verifier", &verifier)
        .finish();
    let token = Request::builder()
        .method(Method::POST)
        .uri("/oauth/v2/token")
        .header(header::HOST, s.host.clone())
        .header(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| SignInError::Client(format!("building the token request: {e}")))?;
    let (status, body) = c.send(token).await.map_err(SignInError::Transport)?;
    if status != StatusCode::OK {
        let detail = format!("POST /oauth/v2/token: HTTP {status}: {}", body_text(&body));
        return Err(SignInError::Http(format!("token HTTP {}", status.as_u16()), detail));
    }
    let tokens: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| SignInError::Client(format!("token: bad JSON ({e}): {}", body_text(&body))))?;
    if str_field(&tokens, "id_token").map_err(client)?.is_empty() {
        return Err(SignInError::Client(format!("token: an empty id_token in {tokens}")));
    }
    steps[4] = t4.elapsed();
    Ok(())
}

/// Complete OIDC sign-ins of one user again and again on one keep-alive connection; the latency
/// is the whole sign-in (five requests, the signature and the PKCE hash). Hands the user back.
async fn oidc_worker(
    addr: Arc<str>,
    origin: String,
    s: Arc<SignIn>,
    o: Arc<OidcClient>,
    mut e: Enrolled,
    w: Arc<Window>,
) -> Res<(Stats, Enrolled)> {
    let rng = ring::rand::SystemRandom::new();
    let mut stats = Stats { steps: vec![Vec::new(); OIDC_STEPS.len()], ..Stats::default() };
    let mut conn: Option<Conn> = None;
    let mut n = 0u64;
    let mut steps = [Duration::ZERO; OIDC_STEPS.len()];
    while Instant::now() < w.end {
        let Some(c) = connected(&mut conn, &addr, &mut stats, &w).await else { continue };
        n += 1;
        let t = Instant::now();
        let r = oidc_sign_in(c, &s, &o, &origin, &mut e, &rng, n, &mut steps).await;
        let done = Instant::now();
        match r {
            Ok(()) => {
                if stats.success(&w, t, done) {
                    for (v, d) in stats.steps.iter_mut().zip(steps) {
                        v.push(micros(d));
                    }
                }
            }
            Err(SignInError::Http(kind, detail)) => stats.error(kind, detail, &w, done),
            Err(SignInError::Client(detail)) => stats.error("client".into(), detail, &w, done),
            Err(SignInError::Transport(detail)) => {
                stats.error("transport".into(), detail, &w, done);
                conn = None;
            }
        }
    }
    Ok((stats, e))
}

struct PhaseResult {
    label: String,
    stats: Stats,
    secs: f64,
    /// The server-side figures of the phase (a spawned SQLite server).
    probe: Option<probe::PhaseFigures>,
    /// Whether the report prints its per-second timeline (the link phases).
    timeline: bool,
}

impl PhaseResult {
    fn ok(&self) -> usize {
        self.stats.lat_us.len()
    }
    fn rps(&self) -> f64 {
        self.ok() as f64 / self.secs
    }
    fn pct_ms(&self, p: f64) -> f64 {
        pct_ms(&self.stats.lat_us, p)
    }
}

/// `spec` on `n` connections (connection i on `paths[i mod len]`); with `server` (a spawned SQLite
/// server), its WAL and `/proc/<pid>/io` are probed during the phase.
#[allow(clippy::too_many_arguments)]
async fn run_phase(
    label: &str,
    addrs: &[String],
    spec: RequestSpec,
    paths: &[String],
    n: usize,
    warmup: Duration,
    duration: Duration,
    server: Option<&probe::Server>,
) -> Res<PhaseResult> {
    let addrs: Vec<Arc<str>> = addrs.iter().map(|a| Arc::from(a.as_str())).collect();
    let spec = Arc::new(spec);
    let w = Arc::new(Window::after(warmup, duration));
    let probing = server.map(|s| probe::PhaseProbe::start(s, &w));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let path = paths.get(i % paths.len().max(1)).cloned().ok_or("no request path")?;
        // Connection i goes to replica i mod the number of replicas.
        let addr = addrs.get(i % addrs.len().max(1)).cloned().ok_or("no server address")?;
        tasks.push(tokio::spawn(worker(addr, spec.clone(), path, w.clone())));
    }
    let mut stats = Stats::default();
    for t in tasks {
        stats.merge(t.await.map_err(|e| format!("a worker failed: {e}"))??);
    }
    stats.finish();
    let probe = match probing {
        Some(p) => Some(p.finish().await?),
        None => None,
    };
    Ok(PhaseResult { label: label.to_string(), stats, secs: duration.as_secs_f64(), probe, timeline: false })
}

/// Complete passkey sign-ins, connection i signing in user i with its own authenticator on
/// replica i mod the replicas (whose WebAuthn origin is `origins[i mod the replicas]`); hands the
/// users back (their authenticators' counters have grown).
async fn run_sign_ins(
    label: &str,
    addrs: &[String],
    origins: &[String],
    s: SignIn,
    users: Vec<Enrolled>,
    warmup: Duration,
    duration: Duration,
) -> Res<(PhaseResult, Vec<Enrolled>)> {
    let s = Arc::new(s);
    let w = Arc::new(Window::after(warmup, duration));
    let mut tasks = Vec::with_capacity(users.len());
    for (i, e) in users.into_iter().enumerate() {
        let addr =
            addrs.get(i % addrs.len().max(1)).map(|a| Arc::from(a.as_str())).ok_or("no server address")?;
        let origin = origins.get(i % addrs.len().max(1)).cloned().ok_or("no WebAuthn origin")?;
        tasks.push(tokio::spawn(sign_in_worker(addr, origin, s.clone(), e, w.clone())));
    }
    gather_users(label, duration, tasks).await
}

/// The stats of sign-in workers that each hand their user (its authenticator's counter) back.
async fn gather_users(
    label: &str,
    duration: Duration,
    tasks: Vec<tokio::task::JoinHandle<Res<(Stats, Enrolled)>>>,
) -> Res<(PhaseResult, Vec<Enrolled>)> {
    let mut stats = Stats::default();
    let mut users = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (st, e) = t.await.map_err(|e| format!("a worker failed: {e}"))??;
        stats.merge(st);
        users.push(e);
    }
    stats.finish();
    Ok((
        PhaseResult {
            label: label.to_string(),
            stats,
            secs: duration.as_secs_f64(),
            probe: None,
            timeline: false,
        },
        users,
    ))
}

/// Complete OIDC sign-ins, connection i signing in user i (as [`run_sign_ins`]) through client `o`.
#[allow(clippy::too_many_arguments)]
async fn run_oidc(
    label: &str,
    addrs: &[String],
    origins: &[String],
    s: SignIn,
    o: OidcClient,
    users: Vec<Enrolled>,
    warmup: Duration,
    duration: Duration,
) -> Res<(PhaseResult, Vec<Enrolled>)> {
    let s = Arc::new(s);
    let o = Arc::new(o);
    let w = Arc::new(Window::after(warmup, duration));
    let mut tasks = Vec::with_capacity(users.len());
    for (i, e) in users.into_iter().enumerate() {
        let addr =
            addrs.get(i % addrs.len().max(1)).map(|a| Arc::from(a.as_str())).ok_or("no server address")?;
        let origin = origins.get(i % addrs.len().max(1)).cloned().ok_or("no WebAuthn origin")?;
        tasks.push(tokio::spawn(oidc_worker(addr, origin, s.clone(), o.clone(), e, w.clone())));
    }
    gather_users(label, duration, tasks).await
}

// ----------------------------------------------------------------------------------------- main

fn secs(name: &str, v: f64) -> Res<Duration> {
    Duration::try_from_secs_f64(v).map_err(|e| format!("--{name} {v}: {e}"))
}

fn print_table(results: &[&PhaseResult]) {
    println!();
    println!(
        "{:<62} {:>9} {:>7} {:>10} {:>8} {:>8} {:>9} {:>8}",
        "route", "requests", "errors", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for r in results {
        println!(
            "{:<62} {:>9} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>8.2}",
            r.label,
            r.ok() as u64 + r.stats.errors,
            r.stats.errors,
            r.rps(),
            r.pct_ms(50.0),
            r.pct_ms(99.0),
            r.pct_ms(99.9),
            r.pct_ms(100.0),
        );
    }
}

fn report_errors(r: &PhaseResult) {
    let s = &r.stats;
    if s.errors + s.errors_outside == 0 {
        return;
    }
    println!(
        "{}: {} failed requests in the measured window, {} outside it (warm-up / after the end)",
        r.label, s.errors, s.errors_outside
    );
    for (k, v) in &s.kinds {
        println!("  {k}: {v}");
    }
    match s.first_errors.as_slice() {
        [] => {}
        [e] => println!("  first error: {e}"),
        es => {
            println!("  first {} errors:", es.len());
            for e in es {
                println!("    {e}");
            }
        }
    }
}

/// The phases measured on one store (`None`: not selected by `--phases`).
struct BackendResult {
    name: String,
    /// `--prefill` (not in the table; its failures fail the run).
    prefill: Option<PhaseResult>,
    links: Option<PhaseResult>,
    hot: Option<PhaseResult>,
    /// The JWT links, sign-in, OIDC and `/healthz` phases (the first backend only).
    extra: Option<Extra>,
    /// The server-side figures (a spawned SQLite server), or why there are none.
    server: Result<probe::ServerFigures, String>,
}

struct Extra {
    jwt: Option<PhaseResult>,
    sign_ins: Option<PhaseResult>,
    oidc: Option<PhaseResult>,
    health: PhaseResult,
}

/// A project and a public OIDC application (user agent, PKCE, no secret) in `org_id`, through
/// Connect JSON with the admin PAT; returns the client.
async fn create_oidc_client(addr: &str, token: &str, org_id: &str) -> Res<OidcClient> {
    let auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "the token is not a valid header value".to_string())?;
    let mut api = Api { conn: Conn::open(addr).await?, spec_host: host_value(addr)?, auth };
    let project = api
        .connect(
            "/zitadel.project.v2.ProjectService/CreateProject",
            serde_json::json!({"organizationId": org_id, "name": "bench"}),
        )
        .await?;
    let project_id = str_field(&project, "projectId")?;
    let redirect_uri = "https://bench.example/cb".to_string();
    let app = api
        .connect(
            "/zitadel.application.v2.ApplicationService/CreateApplication",
            serde_json::json!({
                "projectId": project_id,
                "name": "bench",
                "oidcConfiguration": {
                    "redirectUris": [redirect_uri],
                    "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                    "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE"],
                    "applicationType": "OIDC_APP_TYPE_USER_AGENT",
                    "authMethodType": "OIDC_AUTH_METHOD_TYPE_NONE",
                },
            }),
        )
        .await?;
    let client_id = app
        .pointer("/oidcConfiguration/clientId")
        .and_then(|v| v.as_str())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("no oidcConfiguration.clientId in {app}"))?
        .to_string();
    Ok(OidcClient { client_id, redirect_uri })
}

/// Set up users on the first replica, grow the store by `--prefill` links, then measure links with
/// the PAT over every replica (connection i to replica i mod the replicas) and links of one hot
/// user; with `full`, also links with a JWT access token, passkey sign-ins (after enrolling a
/// passkey per user; `origins` are the replicas' WebAuthn origins, in the order of `addrs`),
/// complete OIDC sign-ins of the same users and `GET /healthz`. Only the phases of `--phases` run
/// (`/healthz` always does). With `server` (a spawned SQLite server), the link phases and
/// `/healthz` are probed on the server's side.
#[allow(clippy::too_many_arguments)]
async fn bench(
    cli: &Cli,
    name: &str,
    addrs: &[String],
    token: &str,
    origins: &[String],
    full: bool,
    server: Option<&probe::Server>,
) -> Res<BackendResult> {
    let n = cli.connections;
    let warmup = secs("warmup", cli.warmup)?;
    let duration = secs("duration", cli.duration)?;
    let addr = addrs.first().ok_or("no server address")?;
    let phase = |p: Phase| cli.phases.contains(&p);
    let link_users =
        if phase(Phase::Links) || (full && phase(Phase::Jwt)) || cli.prefill > 0 { n } else { 0 };
    let hot_users = usize::from(phase(Phase::HotUser));
    let t = Instant::now();
    let (org_id, mut users, jwt) = setup(addr, token, link_users + hot_users).await?;
    let hot_user = if hot_users > 0 { users.pop() } else { None };
    println!(
        "[{name}] setup: organization {org_id}, {} users{} ({:.1}s)",
        users.len(),
        if hot_user.is_some() { " + the hot user" } else { "" },
        t.elapsed().as_secs_f64()
    );
    let mut figures = server.map(|s| probe::ServerFigures { pid: s.pid, ..Default::default() });
    if let (Some(s), Some(f)) = (server, figures.as_mut()) {
        tokio::time::sleep(CHECKPOINT_SETTLE).await;
        f.db_before_links = probe::file_len(&s.db);
    }

    let body = match cli.medium {
        Medium::ReturnCode => r#"{"returnCode":{}}"#,
        Medium::SendLink => r#"{"sendLink":{}}"#,
    };
    let links_spec = || -> Res<RequestSpec> {
        let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| "bad token".to_string())?;
        Ok(RequestSpec {
            method: Method::POST,
            host: host_value(addr)?,
            auth: Some(auth),
            body: Bytes::from_static(body.as_bytes()),
        })
    };
    let link_paths: Vec<String> =
        users.iter().map(|u| format!("/v2beta/users/{u}/passkeys/registration_link")).collect();
    let prefill = if cli.prefill > 0 {
        let wal = server.map(probe::Server::wal);
        Some(prefill::prefill(name, addrs, links_spec()?, &link_paths, n, cli.prefill, wal).await?)
    } else {
        None
    };
    let links = if phase(Phase::Links) {
        println!(
            "[{name}] links: POST /v2beta/users/{{userId}}/passkeys/registration_link {body}, {n} connections \
             over {} replica(s), {:.1}s warm-up + {:.1}s",
            addrs.len(),
            warmup.as_secs_f64(),
            duration.as_secs_f64()
        );
        let mut r = run_phase(
            &format!("{name}: POST …/passkeys/registration_link ({})", cli.medium.name()),
            addrs,
            links_spec()?,
            &link_paths,
            n,
            warmup,
            duration,
            server,
        )
        .await?;
        r.timeline = true;
        Some(r)
    } else {
        None
    };
    let hot = if let Some(u) = &hot_user {
        println!(
            "[{name}] hot-user: POST /v2beta/users/{u}/passkeys/registration_link {body}: all {n} connections \
             for this one user, over {} replica(s), {:.1}s warm-up + {:.1}s",
            addrs.len(),
            warmup.as_secs_f64(),
            duration.as_secs_f64()
        );
        let mut r = run_phase(
            &format!("{name}:   … every connection for one user ({})", cli.medium.name()),
            addrs,
            links_spec()?,
            &[format!("/v2beta/users/{u}/passkeys/registration_link")],
            n,
            warmup,
            duration,
            server,
        )
        .await?;
        r.timeline = true;
        Some(r)
    } else {
        None
    };
    if let (Some(s), Some(f)) = (server, figures.as_mut()) {
        let created: u64 =
            [&prefill, &links, &hot].iter().filter_map(|p| p.as_ref()).map(|p| p.stats.ok_total()).sum();
        if created > 0 {
            tokio::time::sleep(CHECKPOINT_SETTLE).await;
            f.db_after_links =
                probe::file_len(&s.db).map(|size| (size, probe::file_len(&s.wal()).unwrap_or(0), created));
        }
    }
    let server_figures = figures.ok_or_else(|| "not a spawned SQLite server".to_string());
    if !full {
        return Ok(BackendResult {
            name: name.to_string(),
            prefill,
            links,
            hot,
            extra: None,
            server: server_figures,
        });
    }

    let links_jwt = if phase(Phase::Jwt) {
        let jwt_auth = HeaderValue::from_str(&format!("Bearer {jwt}")).map_err(|_| "bad jwt".to_string())?;
        let jwt_spec = RequestSpec {
            method: Method::POST,
            host: host_value(addr)?,
            auth: Some(jwt_auth),
            body: Bytes::from_static(body.as_bytes()),
        };
        println!(
            "[{name}] the same with a JWT access token from /oauth/v2/token instead of the PAT, {:.1}s warm-up + {:.1}s",
            warmup.as_secs_f64(),
            duration.as_secs_f64()
        );
        Some(
            run_phase(
                &format!("{name}:   … with a JWT access token ({})", cli.medium.name()),
                addrs,
                jwt_spec,
                &link_paths,
                n,
                warmup,
                duration,
                None,
            )
            .await?,
        )
    } else {
        None
    };

    let mut sign_ins = None;
    let mut oidc = None;
    if phase(Phase::SignIn) || phase(Phase::Oidc) {
        let t = Instant::now();
        // The client data carries the origin as a browser serializes it: no trailing slash.
        let origins: Vec<String> = origins.iter().map(|o| o.trim_end_matches('/').to_string()).collect();
        let origin = origins.first().ok_or("no WebAuthn origin")?;
        let (mut enrolled, rp_id) = enroll_all(addr, token, &org_id, n, origin).await?;
        println!(
            "[{name}] setup: {n} fresh users with one ES256 passkey each, relying party {rp_id}, origin {} ({:.1}s)",
            origins.join(", "),
            t.elapsed().as_secs_f64()
        );
        let sign_in = || -> Res<SignIn> {
            Ok(SignIn {
                host: host_value(addr)?,
                auth: HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| "bad token".to_string())?,
                rp_id: rp_id.clone(),
            })
        };
        if phase(Phase::SignIn) {
            println!(
                "[{name}] sign-ins: POST /v2/sessions (checks.user by id + webAuthN challenge) + PATCH \
                 /v2/sessions/{{id}} (the assertion), PAT, {n} connections, {:.1}s warm-up + {:.1}s",
                warmup.as_secs_f64(),
                duration.as_secs_f64()
            );
            let (r, back) = run_sign_ins(
                &format!("{name}: passkey sign-in (CreateSession + SetSession)"),
                addrs,
                &origins,
                sign_in()?,
                enrolled,
                warmup,
                duration,
            )
            .await?;
            sign_ins = Some(r);
            enrolled = back;
        }
        if phase(Phase::Oidc) {
            let t = Instant::now();
            let client = create_oidc_client(addr, token, &org_id).await?;
            println!(
                "[{name}] setup: project + public OIDC application (user agent, PKCE), client {}, redirect {} ({:.1}s)",
                client.client_id,
                client.redirect_uri,
                t.elapsed().as_secs_f64()
            );
            println!(
                "[{name}] OIDC sign-ins: GET /oauth/v2/authorize (code, S256) + POST /v2/sessions + PATCH \
                 /v2/sessions/{{id}} + POST /v2/oidc/auth_requests/{{id}} (CreateCallback, PAT) + POST \
                 /oauth/v2/token (code + verifier), the same {n} users, {n} connections, {:.1}s warm-up + {:.1}s",
                warmup.as_secs_f64(),
                duration.as_secs_f64()
            );
            let (r, _) = run_oidc(
                &format!("{name}: OIDC sign-in (authorize … token, 5 requests)"),
                addrs,
                &origins,
                sign_in()?,
                client,
                enrolled,
                warmup,
                duration,
            )
            .await?;
            oidc = Some(r);
        }
    }

    let bulk = if phase(Phase::Bulk) {
        Some(bulk::run(name, addr, token, cli.bulk_users, cli.bulk_page_size, n).await?)
    } else {
        None
    };

    let health_spec =
        RequestSpec { method: Method::GET, host: host_value(addr)?, auth: None, body: Bytes::new() };
    println!(
        "[{name}] GET /healthz, {n} connections, {:.1}s warm-up + {:.1}s",
        warmup.as_secs_f64(),
        duration.as_secs_f64()
    );
    let health = run_phase(
        &format!("{name}: GET /healthz"),
        addrs,
        health_spec,
        &["/healthz".to_string()],
        n,
        warmup,
        duration,
        server,
    )
    .await?;
    if let Some(b) = &bulk {
        b.print(name, health.rps());
        if !b.ok() {
            return Err(format!("bulk: {} of {} users got no link", b.users - b.created, b.users));
        }
    }
    Ok(BackendResult {
        name: name.to_string(),
        prefill,
        links,
        hot,
        extra: Some(Extra { jwt: links_jwt, sign_ins, oidc, health }),
        server: server_figures,
    })
}

/// How long to wait for the server's checkpointer (every 500 ms) to copy the WAL into the
/// database file before reading its size.
const CHECKPOINT_SETTLE: Duration = Duration::from_millis(1100);

/// `a / b`, NaN without a denominator.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

/// Print the table, the ratios, the link phases' timelines, the server-side figures (`binary`:
/// the spawned binary's sizes) and the errors; true when no request failed.
fn report(results: &[BackendResult], binary: Option<&str>) -> bool {
    let mut phases: Vec<&PhaseResult> = Vec::new();
    for r in results {
        phases.extend(&r.links);
        phases.extend(&r.hot);
        if let Some(x) = &r.extra {
            phases.extend(&x.jwt);
        }
    }
    let extra = results.iter().find_map(|r| r.extra.as_ref());
    if let Some(x) = extra {
        phases.extend(&x.sign_ins);
        phases.extend(&x.oidc);
        phases.push(&x.health);
    }
    let health = extra.map(|x| &x.health);
    print_table(&phases);
    if let Some(x) = extra.and_then(|x| x.oidc.as_ref()) {
        let steps: Vec<String> = OIDC_STEPS
            .iter()
            .zip(&x.stats.steps)
            .map(|(label, v)| format!("{label} {:.2}/{:.2}", pct_ms(v, 50.0), pct_ms(v, 99.0)))
            .collect();
        println!("OIDC sign-in steps, p50/p99 ms: {}", steps.join(", "));
    }
    if let Some(health) = health {
        let ratios = |pick: fn(&BackendResult) -> Option<&PhaseResult>| -> Vec<String> {
            results
                .iter()
                .filter_map(|r| pick(r).map(|p| format!("{} {:.3}", r.name, ratio(p.rps(), health.rps()))))
                .collect()
        };
        let links = ratios(|r| r.links.as_ref());
        if !links.is_empty() {
            println!("links/healthz throughput ratio: {}", links.join(", "));
        }
        let hot = ratios(|r| r.hot.as_ref());
        if !hot.is_empty() {
            println!("hot-user/healthz throughput ratio: {}", hot.join(", "));
        }
    }
    if let Some(x) = extra {
        if let Some(s) = &x.sign_ins {
            let r = ratio(s.rps(), x.health.rps());
            println!("sign-ins/healthz throughput ratio: {r:.3} (a sign-in is two requests)");
        }
        if let Some(o) = &x.oidc {
            let r = ratio(o.rps(), x.health.rps());
            println!("OIDC sign-ins/healthz throughput ratio: {r:.3} (an OIDC sign-in is five requests)");
        }
    }
    for r in results {
        if let (Some(links), Some(jwt)) = (&r.links, r.extra.as_ref().and_then(|x| x.jwt.as_ref())) {
            println!("JWT/PAT links throughput ratio ({}): {:.3}", r.name, ratio(jwt.rps(), links.rps()));
        }
    }
    for p in phases.iter().filter(|p| p.timeline) {
        let resets = p.probe.as_ref().map(probe::PhaseFigures::resets_in_window_ms);
        p.stats.timeline.print(&p.label, p.secs, resets.as_deref());
    }
    report_server(results, binary);
    let prefills: Vec<&PhaseResult> = results.iter().filter_map(|r| r.prefill.as_ref()).collect();
    for p in prefills.iter().chain(&phases) {
        report_errors(p);
    }
    !prefills.iter().chain(&phases).any(|r| r.stats.errors + r.stats.errors_outside > 0)
}

/// The server-side figures of every backend (or why there are none).
fn report_server(results: &[BackendResult], binary: Option<&str>) {
    println!();
    println!("server resources:");
    if let Some(b) = binary {
        println!("  binary: {b}");
    }
    for r in results {
        let name = &r.name;
        let f = match &r.server {
            Ok(f) => f,
            Err(why) => {
                println!("  [{name}] not measured: {why}");
                continue;
            }
        };
        println!("  [{name}] passlink pid {}", f.pid);
        let health = r.extra.as_ref().map(|x| &x.health);
        for (phase, p) in [("links", &r.links), ("hot-user", &r.hot)] {
            if let Some(p) = p
                && let Some(fig) = &p.probe
            {
                println!("  [{name}] {phase}: {}", fig.describe_links(p.ok()));
                println!("  [{name}] {phase}: {}", fig.describe_wal());
            }
        }
        if let Some(h) = health
            && let Some(fig) = &h.probe
        {
            println!("  [{name}] GET /healthz: {}", fig.describe_socket(h.ok()));
        }
        f.print(name);
    }
}

/// A driver error with its sources (tokio-postgres's Display alone says little).
fn pg_error(context: &str, e: &tokio_postgres::Error) -> String {
    let mut text = format!("{context}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Run `sql` on the PostgreSQL at `url` on a connection of its own.
async fn pg_execute(url: &str, sql: &str) -> Res<()> {
    let mut cfg: tokio_postgres::Config = url.parse().map_err(|e| format!("--postgres-url {url}: {e}"))?;
    cfg.connect_timeout(Duration::from_secs(5));
    let (client, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| pg_error(&format!("PostgreSQL at {url} (--postgres-url)"), &e))?;
    let task = tokio::spawn(conn);
    let r = client.batch_execute(sql).await.map_err(|e| pg_error(sql, &e));
    drop(client);
    let _ = task.await;
    r
}

/// Spawn the replicas of `backend`, measure, stop them, and drop the backend's schema.
async fn run_backend(
    cli: &Cli,
    backend: Backend,
    binary: &Path,
    base_dir: &Path,
    full: bool,
) -> Res<BackendResult> {
    let name = backend.label();
    let mut server = Spawned { children: Vec::new(), temp_dir: None };
    let schema =
        (backend != Backend::Sqlite).then(|| format!("passlink_bench_{}", unique_tag().replace('-', "_")));
    if let Some(schema) = &schema {
        pg_execute(&cli.postgres_url, &format!("CREATE SCHEMA \"{schema}\"")).await?;
    }
    let result = async {
        let mut addrs = Vec::new();
        let token_file = match &schema {
            None => {
                let store = Store { database: None, keys_file: None, machine_id: 1 };
                addrs.push(start_replica(cli, binary, base_dir, &store, &mut server).await?);
                cli.token_file.clone().unwrap_or_else(|| base_dir.join("admin.pat"))
            }
            Some(schema) => {
                let sep = if cli.postgres_url.contains('?') { '&' } else { '?' };
                let database = format!("{}{sep}options=-csearch_path%3D{schema}", cli.postgres_url);
                let dir = |r: usize| base_dir.join(format!("{schema}-{r}"));
                // The first replica generates the keys and bootstraps; the others share its keys.
                let keys = dir(0).join("keys.json");
                for r in 0..backend.replicas() {
                    let store = Store {
                        database: Some(&database),
                        keys_file: (r > 0).then_some(keys.as_path()),
                        machine_id: u16::try_from(r + 1).map_err(|e| e.to_string())?,
                    };
                    addrs.push(start_replica(cli, binary, &dir(r), &store, &mut server).await?);
                }
                dir(0).join("admin.pat")
            }
        };
        println!(
            "[{name}] spawned {} on {}{}",
            binary.display(),
            addrs.join(", "),
            schema.as_deref().map(|s| format!(" (PostgreSQL schema {s})")).unwrap_or_default()
        );
        let token = read_token(&token_file)?;
        // A spawned replica's external URL is http://localhost:<its port>.
        let origins: Vec<String> = addrs
            .iter()
            .map(|a| match &cli.origin {
                Some(o) => o.clone(),
                None => format!("http://localhost:{}", a.rsplit(':').next().unwrap_or_default()),
            })
            .collect();
        // The server-side probes: a spawned SQLite server only (PostgreSQL writes in its own server).
        let probed = match (&schema, server.children.first()) {
            (None, Some(child)) => Some(probe::Server { pid: child.id(), db: base_dir.join("passlink.db") }),
            _ => None,
        };
        let idle = probed.as_ref().map(|p| probe::read_mem(p.pid));
        let mut r = bench(cli, name, &addrs, &token, &origins, full, probed.as_ref()).await?;
        match (&mut r.server, &probed) {
            (Ok(f), Some(p)) => {
                f.idle = idle;
                f.end = Some(probe::read_mem(p.pid));
            }
            (Err(why), _) => {
                *why = "PostgreSQL backend (the store's writes happen in the PostgreSQL server)".into();
            }
            _ => {}
        }
        Ok::<_, String>(r)
    }
    .await;
    let stopped = server.stop().await;
    let mut result = result;
    if let Ok(BackendResult { server: Ok(f), .. }) = &mut result {
        // After the server's last checkpoint: every committed page is in the file.
        f.db_end = probe::file_len(&base_dir.join("passlink.db"));
    }
    let dropped = match &schema {
        Some(schema) => pg_execute(&cli.postgres_url, &format!("DROP SCHEMA \"{schema}\" CASCADE")).await,
        None => Ok(()),
    };
    let r = result?;
    stopped?;
    dropped?;
    Ok(r)
}

/// Removes a temporary directory at the end, also on early exits.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn run(cli: &Cli) -> Res<bool> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = cli.threads.unwrap_or(cores).max(1);
    if cli.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if cli.backends.is_empty() {
        return Err("--backends names no backend".into());
    }
    let cmdline: Vec<String> = std::env::args().collect();
    println!("command: {}", cmdline.join(" "));
    println!("cores: {cores} (load generator: {threads} runtime threads, sharing the cores with the server)");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;

    if let Some(url) = &cli.url {
        let addr = parse_url(url)?;
        let token_file = cli.token_file.as_deref().ok_or("--url requires --token-file")?;
        let token = read_token(token_file)?;
        println!("server: {url} (already running)");
        let origin = cli.origin.clone().unwrap_or_else(|| url.trim_end_matches('/').to_string());
        let mut r = rt.block_on(bench(cli, "server", &[addr], &token, &[origin], true, None))?;
        r.server = Err("--url: a server the bench did not spawn".into());
        return Ok(report(&[r], None));
    }

    let binary = cli.passlink.clone().unwrap_or_else(default_passlink);
    let binary_size = probe::binary_size(&binary);
    let (base_dir, temp) = match &cli.data_dir {
        Some(d) => (d.clone(), false),
        None => (std::env::temp_dir().join(format!("passlink-bench-{}", unique_tag())), true),
    };
    std::fs::create_dir_all(&base_dir).map_err(|e| format!("{}: {e}", base_dir.display()))?;
    let _cleanup = TempDir(temp.then(|| base_dir.clone()));
    println!("data dir: {}{}", base_dir.display(), if temp { " (removed afterwards)" } else { "" });
    let mut results = Vec::new();
    for (i, backend) in cli.backends.iter().enumerate() {
        results.push(rt.block_on(run_backend(cli, *backend, &binary, &base_dir, i == 0))?);
    }
    Ok(report(&results, Some(&binary_size)))
}

fn read_token(path: &Path) -> Res<String> {
    let t = std::fs::read_to_string(path).map_err(|e| format!("token file {}: {e}", path.display()))?;
    let t = t.trim().to_string();
    if t.is_empty() {
        return Err(format!("token file {} is empty", path.display()));
    }
    Ok(t)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("passlink-bench: some requests failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("passlink-bench: {e}");
            ExitCode::from(2)
        }
    }
}
