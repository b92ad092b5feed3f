//! A database outage while serving: passlink talks to PostgreSQL through a TCP proxy in this
//! test; cutting the proxy (listener closed, every live connection dropped) must make requests
//! fail fast with 503 / Unavailable, and restoring it must bring them back by themselves, without
//! restarting passlink. Stalling it (connections stay open, nothing is forwarded: a network
//! partition or a hung server) must make requests fail within the store's timeouts too, and
//! resuming it must bring them back. The machine's real PostgreSQL is never touched. gRPC health
//! follows the database: NOT_SERVING while it is cut (Check, and a Watch opened before is told),
//! SERVING again when it is back.
//!
//! PostgreSQL from `PASSLINK_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`);
//! a schema of its own per run, dropped at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use passlink_server::{Config, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// "Fast": an answer during the outage must come within this (the store's own timeouts are 3 s).
const FAST: Duration = Duration::from_secs(5);
/// During a stall nothing answers: requests must end within the store's own timeouts (5 s per
/// operation) and some slack.
const STALL_FAST: Duration = Duration::from_secs(8);
/// Recovery after the database is back must happen within this.
const RECOVERY: Duration = Duration::from_secs(20);

/// `host:port` of a `postgres://[user[:pw]@]host[:port]/...` URL, and the URL with another
/// `host:port` in its place.
fn split_url(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h.to_string()),
        None => (String::new(), authority.to_string()),
    };
    let hostport = if hostport.contains(':') { hostport } else { format!("{hostport}:5432") };
    (format!("{scheme}://{userinfo}"), hostport, tail.to_string())
}

/// A TCP proxy to PostgreSQL that can be cut (listener closed, every connection dropped) and
/// restored on the same port, or stalled (connections accepted and kept, nothing forwarded either
/// way) and resumed.
struct Proxy {
    addr: SocketAddr,
    target: String,
    accept: Option<JoinHandle<()>>,
    conns: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    stalled: watch::Sender<bool>,
}

/// Forward `from` to `to`, holding the bytes while stalled.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // (The guard `wait_for` returns must not live across the write.)
        if stalled.wait_for(|s| !*s).await.map(|_| ()).is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut p =
            Proxy { addr, target, accept: None, conns: Arc::default(), stalled: watch::channel(false).0 };
        p.serve(listener);
        p
    }

    fn serve(&mut self, listener: TcpListener) {
        let (target, conns, stalled) = (self.target.clone(), self.conns.clone(), self.stalled.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let (target, stalled) = (target.clone(), stalled.subscribe());
                let task = tokio::spawn(async move {
                    if let Ok(up) = TcpStream::connect(&target).await {
                        let ((down_r, down_w), (up_r, up_w)) = (down.into_split(), up.into_split());
                        tokio::join!(pipe(down_r, up_w, stalled.clone()), pipe(up_r, down_w, stalled));
                    }
                });
                conns.lock().unwrap().push(task);
            }
        }));
    }

    /// Close the listener and drop every live connection (both sides).
    async fn cut(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
            let _ = a.await;
        }
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.conns.lock().unwrap());
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Stop (true) or resume (false) forwarding, on live and new connections.
    fn stall(&self, stalled: bool) {
        self.stalled.send_replace(stalled);
    }

    /// Listen again on the same port.
    async fn restore(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding the proxy on {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot rebind the proxy on {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}

/// One request's outcome: HTTP status, JSON body (or Null), and how long it took.
async fn send(rb: reqwest::RequestBuilder) -> (u16, Value, Duration) {
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(30), rb.send())
        .await
        .expect("a request hung for 30 s")
        .expect("transport error");
    let status = r.status().as_u16();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, v, t.elapsed())
}

struct Api {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Api {
    /// CreatePasskeyRegistrationLink over REST.
    async fn link_rest(&self, user: &str, token: &str) -> (u16, Value, Duration) {
        send(
            self.http
                .post(format!("{}/v2beta/users/{user}/passkeys/registration_link", self.base))
                .bearer_auth(token)
                .json(&json!({"returnCode": {}})),
        )
        .await
    }

    /// CreatePasskeyRegistrationLink over Connect JSON.
    async fn link_connect(&self, user: &str) -> (u16, Value, Duration) {
        send(
            self.http
                .post(format!("{}/zitadel.user.v2beta.UserService/CreatePasskeyRegistrationLink", self.base))
                .bearer_auth(&self.token)
                .json(&json!({"userId": user, "returnCode": {}})),
        )
        .await
    }

    async fn readyz(&self) -> (u16, Value, Duration) {
        send(self.http.get(format!("{}/readyz", self.base))).await
    }

    async fn rpc(&self, rpc: &str, body: Value) -> Value {
        let (s, v, _) =
            send(self.http.post(format!("{}/{rpc}", self.base)).bearer_auth(&self.token).json(&body)).await;
        assert_eq!(s, 200, "{rpc}: {v}");
        v
    }
}

/// A failure during the outage: fast, 503, and the protocol's Unavailable code.
fn assert_unavailable(what: &str, r: &(u16, Value, Duration), rest: bool) {
    assert_unavailable_within(what, r, rest, FAST);
}

fn assert_unavailable_within(
    what: &str,
    (status, body, took): &(u16, Value, Duration),
    rest: bool,
    bound: Duration,
) {
    assert!(*took < bound, "{what} took {took:?} during the outage (must fail fast)");
    assert_eq!(*status, 503, "{what} during the outage: {status} {body}");
    if rest {
        assert_eq!(body["code"], json!(14), "{what}: REST body code must be 14 (Unavailable): {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_fail_fast_during_a_database_outage_and_recover_by_themselves() {
    let run = passlink_testkit::PgRun::new("outage");
    let url = run.url.clone();

    let (prefix, target, tail) = split_url(&url);
    let mut proxy = Proxy::start(target).await;
    let sep = if tail.contains('?') { '&' } else { '?' };
    let database = format!("{prefix}{}{tail}{sep}options=-csearch_path%3D{}", proxy.addr, run.schema);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = Config::new(listener.local_addr().unwrap(), run.dir.join("data"));
    cfg.database = Some(database);
    let server = match Server::start(cfg, listener).await {
        Ok(s) => s,
        Err(e) => panic!(
            "cannot start passlink on PostgreSQL {url} through a proxy (set PASSLINK_TEST_POSTGRES \
             to a reachable PostgreSQL URL): {e}"
        ),
    };
    let token = std::fs::read_to_string(&server.admin_token_file).unwrap().trim().to_string();
    let api = Api {
        base: format!("http://{}", server.addr),
        // A short pool idle timeout: connections are never reused across the cut on this side.
        http: reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap(),
        token,
    };
    let org = server.app.store().instance().await.unwrap().expect("instance").default_org_id;

    // Set up: a human to link, and a second token (a machine user's PAT) never used before the
    // outage, so its check needs the database (the admin token is cached once used).
    let user = api
        .rpc(
            "zitadel.user.v2.UserService/AddHumanUser",
            json!({"organization": {"orgId": org}, "profile": {"givenName": "O", "familyName": "U"},
                   "email": {"email": "outage@example.com", "isVerified": true}}),
        )
        .await["userId"]
        .as_str()
        .unwrap()
        .to_string();
    let machine = api
        .rpc(
            "zitadel.user.v2.UserService/CreateUser",
            json!({"organizationId": org, "username": "outage-svc", "machine": {"name": "svc"}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.rpc(
        "zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
        json!({"userId": machine, "resource": {"organizationId": org}, "roles": ["ORG_OWNER"]}),
    )
    .await;
    let fresh_token = api
        .rpc(
            "zitadel.user.v2.UserService/AddPersonalAccessToken",
            json!({"userId": machine, "expirationDate": "2099-01-01T00:00:00Z"}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v, _) = api.link_rest(&user, &api.token).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(api.readyz().await.0, 200);

    // Load while the database goes away: every answer is a success or a fast 503, none hangs.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (base, token, user, stop) = (api.base.clone(), api.token.clone(), user.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let api = Api { base, http: reqwest::Client::new(), token };
            let (mut ok, mut unavailable) = (0u32, 0u32);
            while !stop.load(Ordering::SeqCst) {
                let r = api.link_rest(&user, &api.token).await;
                match r.0 {
                    200 => ok += 1,
                    503 => {
                        assert_unavailable("a link under load", &r, true);
                        unavailable += 1;
                    }
                    // Concurrent links on one user may lose a race: a clean retryable 409.
                    409 => assert_eq!(r.1["code"], json!(10), "{}", r.1),
                    s => panic!("a link under load: {s} {}", r.1),
                }
                assert!(r.2 < FAST, "a link under load took {:?}", r.2);
            }
            (ok, unavailable)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cut_at = Instant::now();
    proxy.cut().await;

    // During the outage: links (REST and Connect), a token never seen before, and /readyz.
    for round in 0..3 {
        assert_unavailable("REST link", &api.link_rest(&user, &api.token).await, true);
        assert_unavailable(
            "REST link with an uncached token",
            &api.link_rest(&user, &fresh_token).await,
            true,
        );
        let connect = api.link_connect(&user).await;
        assert_unavailable("Connect link", &connect, false);
        assert_eq!(connect.1["code"], json!("unavailable"), "Connect error code: {}", connect.1);
        assert_unavailable("/readyz", &api.readyz().await, false);
        if round < 2 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    // Many requests at once do not queue behind each other for long either.
    let burst: Vec<_> = (0..32)
        .map(|_| {
            let (base, token, user) = (api.base.clone(), api.token.clone(), user.clone());
            tokio::spawn(async move {
                let api = Api { base, http: reqwest::Client::new(), token };
                api.link_rest(&user, &api.token).await
            })
        })
        .collect();
    for b in burst {
        assert_unavailable("a link in a burst", &b.await.unwrap(), true);
    }
    eprintln!("outage checks done {:?} after the cut", cut_at.elapsed());

    // Back: requests succeed again by themselves, within a bounded time.
    proxy.restore().await;
    let back = Instant::now();
    loop {
        let (s, v, took) = api.link_rest(&user, &api.token).await;
        assert!(took < FAST, "a link took {took:?} while recovering");
        if s == 200 && api.readyz().await.0 == 200 {
            break;
        }
        assert!(matches!(s, 200 | 409 | 503), "while recovering: {s} {v}");
        assert!(
            back.elapsed() < RECOVERY,
            "not recovered {RECOVERY:?} after the database came back: {s} {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("recovered {:?} after the database came back", back.elapsed());
    stop.store(true, Ordering::SeqCst);
    let (mut ok, mut unavailable) = (0, 0);
    for l in load {
        let (o, u) = l.await.unwrap();
        ok += o;
        unavailable += u;
    }
    eprintln!("load: {ok} links created, {unavailable} answered 503 during the outage");
    assert!(unavailable > 0, "the load saw no outage");

    // Everything works again: writes, an uncached token, Connect, readiness.
    for _ in 0..5 {
        let (s, v, _) = api.link_rest(&user, &api.token).await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, v, _) = api.link_rest(&user, &fresh_token).await;
    assert_eq!(s, 200, "the fresh token after recovery: {v}");
    assert_eq!(api.link_connect(&user).await.0, 200);
    assert_eq!(api.readyz().await.0, 200);

    // A second outage behaves the same (nothing was left in a broken state by the first).
    proxy.cut().await;
    assert_unavailable("REST link (second outage)", &api.link_rest(&user, &api.token).await, true);
    assert_unavailable("/readyz (second outage)", &api.readyz().await, false);
    proxy.restore().await;
    let back = Instant::now();
    loop {
        let (s, v, _) = api.link_rest(&user, &api.token).await;
        if s == 200 {
            break;
        }
        assert!(back.elapsed() < RECOVERY, "not recovered after the second outage: {s} {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A stall: the database's connections stay open but nothing answers (a partition, a hung
    // server). Requests end within the store's timeouts, concurrent ones too, and the server
    // recovers when the database answers again; nothing is left waiting on a dead connection.
    // Warm the pool first, so that stalled requests also meet established connections that
    // stop answering (not only connections that cannot be made).
    let warm: Vec<_> = (0..8)
        .map(|_| {
            let base = api.base.clone();
            tokio::spawn(
                async move { reqwest::get(format!("{base}/readyz")).await.map(|r| r.status().as_u16()) },
            )
        })
        .collect();
    for w in warm {
        assert_eq!(w.await.unwrap().unwrap(), 200);
    }
    proxy.stall(true);
    let stalled_at = Instant::now();
    let stalled: Vec<_> = (0..24)
        .map(|i| {
            let (base, token, user, fresh) =
                (api.base.clone(), api.token.clone(), user.clone(), fresh_token.clone());
            tokio::spawn(async move {
                let api = Api { base, http: reqwest::Client::new(), token };
                match i % 4 {
                    0 => ("/readyz", api.readyz().await, false),
                    1 => ("Connect link", api.link_connect(&user).await, false),
                    2 => ("REST link with an uncached token", api.link_rest(&user, &fresh).await, true),
                    _ => ("REST link", api.link_rest(&user, &api.token).await, true),
                }
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for t in stalled {
        let (what, r, rest) = t.await.unwrap();
        assert_unavailable_within(&format!("{what} (stalled database)"), &r, rest, STALL_FAST);
        slowest = slowest.max(r.2);
    }
    // Once the store noticed, it fails at once (no more waiting for a timeout per request).
    let r = api.link_rest(&user, &api.token).await;
    assert_unavailable_within("a link once the stall is known", &r, true, Duration::from_secs(1));
    eprintln!("stall checks done {:?} after the stall; slowest answer {slowest:?}", stalled_at.elapsed());
    proxy.stall(false);
    let back = Instant::now();
    loop {
        let (s, v, took) = api.link_rest(&user, &api.token).await;
        assert!(took < STALL_FAST, "a link took {took:?} after the stall");
        if s == 200 && api.readyz().await.0 == 200 {
            break;
        }
        assert!(back.elapsed() < RECOVERY, "not recovered after the stall: {s} {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("recovered {:?} after the stall ended", back.elapsed());
    let (s, v, _) = api.link_rest(&user, &fresh_token).await;
    assert_eq!(s, 200, "the fresh token after the stall: {v}");

    server.shutdown().await.unwrap();
    proxy.cut().await;
}

/// Passlink on this run's schema through `proxy`.
async fn start_through(run: &passlink_testkit::PgRun, proxy: &Proxy) -> Server {
    let (prefix, _, tail) = split_url(&run.url);
    let sep = if tail.contains('?') { '&' } else { '?' };
    let database = format!("{prefix}{}{tail}{sep}options=-csearch_path%3D{}", proxy.addr, run.schema);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = Config::new(listener.local_addr().unwrap(), run.dir.join("data"));
    cfg.database = Some(database);
    match Server::start(cfg, listener).await {
        Ok(s) => s,
        Err(e) => panic!(
            "cannot start passlink on PostgreSQL {} through a proxy (set PASSLINK_TEST_POSTGRES \
             to a reachable PostgreSQL URL): {e}",
            run.url
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_health_follows_the_database() {
    use connectrpc::client::{ClientConfig, HttpClient};
    use passlink_wire::grpc::health::v1::health_check_response::ServingStatus;
    use passlink_wire::grpc::health::v1::{HealthCheckRequest, HealthClient};

    let run = passlink_testkit::PgRun::new("health");
    let (_, target, _) = split_url(&run.url);
    let mut proxy = Proxy::start(target).await;
    let server = start_through(&run, &proxy).await;
    let base = format!("http://{}", server.addr);
    let config = ClientConfig::new(base.parse().unwrap()).with_protocol(connectrpc::Protocol::Grpc);
    let health = HealthClient::new(HttpClient::plaintext_http2_only(), config);
    let whole = || HealthCheckRequest::default();
    let check = || async {
        let t = Instant::now();
        let status = health.check(whole()).await.unwrap().into_owned().status;
        assert!(t.elapsed() < FAST, "Check took {:?}", t.elapsed());
        status
    };
    // The next status a Watch sends, within `bound`.
    macro_rules! next {
        ($watch:expr, $bound:expr) => {
            tokio::time::timeout($bound, $watch.message())
                .await
                .expect("the Watch did not report the change in time")
                .unwrap()
                .expect("the Watch ended")
                .to_owned_message()
        };
    }

    assert_eq!(check().await, ServingStatus::SERVING);
    let mut watch = health.watch(whole()).await.unwrap();
    assert_eq!(next!(watch, FAST).status, ServingStatus::SERVING);

    proxy.cut().await;
    assert_eq!(check().await, ServingStatus::NOT_SERVING, "Check while the database is cut");
    assert_eq!(next!(watch, FAST).status, ServingStatus::NOT_SERVING, "Watch after the cut");

    proxy.restore().await;
    assert_eq!(next!(watch, RECOVERY).status, ServingStatus::SERVING, "Watch after the restore");
    assert_eq!(check().await, ServingStatus::SERVING, "Check after the restore");

    server.shutdown().await.unwrap();
    proxy.cut().await;
}
