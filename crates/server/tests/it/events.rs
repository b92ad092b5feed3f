//! The events webhook (`--events-webhook-url`) against a REAL receiver: an HTTP server on a
//! socket that checks every request's signature (HMAC-SHA-256 over "<t>.<body>", computed here
//! from sha2 alone) and timestamp (within 5 minutes), and records what it accepted.
//! Registration, sign-in, removal, a link that cannot be delivered and a code that expires
//! unredeemed each reach it; an outage (503) and a restart on the same data directory lose
//! nothing and keep each user's order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use passlink_core::secret::Secret;
use passlink_core::store::JobState;
use passlink_server::config::{Config, Delivery, EventsWebhook};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clients::{Api, Generated, Rest};
use crate::harness::{self, TestServer};
use crate::session::{assertion, enroll};
use crate::setup::{caller, human, ok, world};

const SECRET: &str = "events-secret-for-tests";
const REMOVE: &str = "zitadel.user.v2.UserService/RemovePasskey";
const LINK: &str = "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink";

/// HMAC-SHA-256 (RFC 2104) from the hash alone: the receiver's own check, independent of
/// passlink's code.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(msg).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
}

/// Why a request's signature is refused, if it is. The receiver is the application, outside
/// passlink: it checks the timestamp against its own wall clock.
#[allow(clippy::disallowed_methods)]
fn check_signature(header: &str, body: &[u8]) -> Result<(), String> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return Err(format!("unparsable: {header}")) };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    if (now - t).abs() > 300 {
        return Err(format!("timestamp {t} too far from {now}"));
    }
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    let want: String = hmac_sha256(SECRET.as_bytes(), &msg).iter().map(|b| format!("{b:02x}")).collect();
    // Constant time, as a receiver should.
    let same = want.len() == v1.len() && want.bytes().zip(v1.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
    if same { Ok(()) } else { Err("signature mismatch".into()) }
}

#[derive(Default)]
struct Seen {
    /// Bodies accepted (valid signature, answered 200), in arrival order.
    accepted: Vec<Value>,
    /// Requests answered with the outage status.
    refused: usize,
    /// Requests whose signature, timestamp or id header was wrong.
    bad: Vec<String>,
}

/// The receiving application: `/events` checks and records; `/link` refuses link deliveries
/// for good (410), so they end as `link.delivery_failed`.
struct Receiver {
    url: String,
    link_url: String,
    seen: Arc<Mutex<Seen>>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        Receiver::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    fn on(listener: tokio::net::TcpListener) -> Receiver {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let status = Arc::new(AtomicU16::new(200));
        let (s, st) = (seen.clone(), status.clone());
        let app = axum::Router::new()
            .route(
                "/events",
                axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (s, st) = (s.clone(), st.clone());
                    async move {
                        let header =
                            |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let mut seen = s.lock().unwrap();
                        if let Err(why) = check_signature(&header("x-passlink-signature"), &body) {
                            seen.bad.push(why);
                            return axum::http::StatusCode::UNAUTHORIZED;
                        }
                        if header("x-passlink-event-id") != parsed["id"].as_str().unwrap_or("-")
                            || header("x-passlink-event-type") != parsed["type"].as_str().unwrap_or("-")
                        {
                            seen.bad.push(format!("headers do not match the body: {parsed}"));
                            return axum::http::StatusCode::BAD_REQUEST;
                        }
                        let code = st.load(Ordering::SeqCst);
                        if code != 200 {
                            seen.refused += 1;
                            return axum::http::StatusCode::from_u16(code).unwrap();
                        }
                        seen.accepted.push(parsed);
                        axum::http::StatusCode::OK
                    }
                }),
            )
            .route("/link", axum::routing::post(|| async { axum::http::StatusCode::GONE }));
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/events"),
            link_url: format!("http://{addr}/link"),
            seen,
            status,
            task,
        }
    }

    fn accepted(&self) -> Vec<Value> {
        self.seen.lock().unwrap().accepted.clone()
    }

    /// The accepted events of one user, in arrival order, without repeats of an id.
    fn of_user(&self, user: &str) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        for v in self.accepted().into_iter().filter(|v| v["userId"] == user) {
            if !out.iter().any(|o| o["id"] == v["id"]) {
                out.push(v);
            }
        }
        out
    }

    async fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&Receiver) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < timeout,
                "{what}: not within {timeout:?}; accepted: {:?}",
                self.accepted()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            self.seen.lock().unwrap().bad.is_empty(),
            "bad requests: {:?}",
            self.seen.lock().unwrap().bad
        );
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The test configuration plus the events webhook, fast retries and a running worker.
fn with_events(cfg: &mut Config, url: &str) {
    cfg.events_webhook = Some(EventsWebhook::new(url, Secret::new(SECRET)));
    cfg.delivery_worker = true;
    cfg.delivery_poll_interval = Duration::from_millis(100);
    cfg.delivery_policy.min_backoff = Duration::from_millis(100);
    cfg.delivery_policy.max_backoff = Duration::from_millis(400);
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|v| v["type"].as_str().unwrap()).collect()
}

/// The sequence part of `evt-<user>-<seq>` (the order key).
fn seq(v: &Value, user: &str) -> u64 {
    let id = v["id"].as_str().unwrap();
    id.strip_prefix(&format!("evt-{user}-")).unwrap_or_else(|| panic!("id {id}")).parse().unwrap()
}

/// `passlink_events_webhook_depth` as `GET /metrics` answers it now.
async fn events_depth(s: &TestServer) -> f64 {
    let text = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
    crate::metrics::value(&crate::metrics::parse(&text), "passlink_events_webhook_depth", &[])
}

async fn remove_passkey(s: &TestServer, admin: &str, user: &str) -> String {
    let passkeys = s.server.app.store().passkeys_of(user).await.unwrap();
    let id = passkeys.first().unwrap().id.clone();
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    ok(rest.call(REMOVE, json!({"userId": user, "passkeyId": id}), Some(admin), None).await);
    id
}

#[tokio::test]
async fn every_event_type_reaches_the_receiver_signed_and_in_order() {
    let r = Receiver::start().await;
    let s = harness::start_configured(harness::temp_dir("events-all"), |cfg| {
        with_events(cfg, &r.url);
        cfg.delivery = Delivery::Webhook { url: r.link_url.clone(), secret: Secret::new("link-secret") };
    })
    .await;
    let w = world(&s, "ev").await;
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    // passkey.registered
    let mut e = enroll(&s, &w.admin, &w.org_a, "ev-user").await;
    // session.passkey_checked: a sign-in with the passkey
    let grpc = Generated::new("grpc", &s.base, connectrpc::Protocol::Grpc);
    let (_, ui) = caller(&grpc, &w.admin, &w.org_a, "ev-login-ui", &["IAM_LOGIN_CLIENT"]).await;
    let created = ok(rest
        .call(
            "zitadel.session.v2.SessionService/CreateSession",
            json!({"checks": {"user": {"userId": e.user}}, "challenges": {"webAuthN": {"domain": "localhost",
                   "userVerificationRequirement": "USER_VERIFICATION_REQUIREMENT_REQUIRED"}}}),
            Some(&ui),
            None,
        )
        .await);
    let session_id = created["sessionId"].as_str().unwrap().to_string();
    let options = &created["challenges"]["webAuthN"]["publicKeyCredentialRequestOptions"];
    let data = assertion(&mut e.key, &s.server.external_url, options);
    ok(rest
        .call(
            "zitadel.session.v2.SessionService/SetSession",
            json!({"sessionId": session_id, "checks": {"webAuthN": {"credentialAssertionData": data}}}),
            Some(&ui),
            None,
        )
        .await);
    // passkey.removed
    let passkey_id = remove_passkey(&s, &w.admin, &e.user).await;
    // link.delivery_failed: the link webhook answers 410 (permanent)
    let link = ok(rest.call(LINK, json!({"userId": e.user, "sendLink": {}}), Some(&w.admin), None).await);
    let code_id = link["code"]["id"].as_str().map(str::to_string);
    r.wait_for("four events of the user", Duration::from_secs(30), |r| r.of_user(&e.user).len() >= 4).await;

    let got = r.of_user(&e.user);
    assert_eq!(
        types(&got),
        ["passkey.registered", "session.passkey_checked", "passkey.removed", "link.delivery_failed"]
    );
    let seqs: Vec<u64> = got.iter().map(|v| seq(v, &e.user)).collect();
    assert!(seqs.windows(2).all(|p| p[0] < p[1]), "ids follow the user's sequence: {seqs:?}");
    for v in &got {
        assert_eq!(v["orgId"], w.org_a.as_str());
        assert!(v["createdAt"].as_str().unwrap().ends_with('Z'), "{v}");
    }
    assert_eq!(got[0]["data"]["passkeyId"], passkey_id.as_str());
    assert_eq!(got[0]["data"]["name"], "key");
    assert_eq!(got[1]["data"], json!({"sessionId": session_id, "passkeyId": passkey_id}));
    assert_eq!(got[2]["data"], json!({"passkeyId": passkey_id}));
    let failed = &got[3]["data"];
    assert!(failed["reason"].as_str().unwrap().contains("410"), "{failed}");
    if let Some(code_id) = code_id {
        assert_eq!(failed["codeId"], code_id.as_str());
    }
    // Delivered notifications are finished in the store.
    let first = got[0]["id"].as_str().unwrap();
    let st = s.server.app.store().notification(first).await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Delivered);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_code_that_expires_unredeemed_is_announced() {
    let r = Receiver::start().await;
    let s = harness::start_configured(harness::temp_dir("events-expiry"), |cfg| {
        with_events(cfg, &r.url);
        cfg.code_lifetime = Duration::from_secs(1);
    })
    .await;
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let admin = s.admin_token.clone();
    let org = ok(rest
        .call(
            "zitadel.org.v2.OrganizationService/AddOrganization",
            json!({"name": "ev-exp"}),
            Some(&admin),
            None,
        )
        .await)["organizationId"]
        .as_str()
        .unwrap()
        .to_string();
    let user = human(&rest, &admin, &org, "ev-exp-user").await;
    let link = ok(rest.call(LINK, json!({"userId": user, "returnCode": {}}), Some(&admin), None).await);
    let code_id = link["code"]["id"].as_str().unwrap().to_string();
    r.wait_for("registration_code.expired", Duration::from_secs(20), |r| !r.of_user(&user).is_empty()).await;
    let got = r.of_user(&user);
    assert_eq!(types(&got), ["registration_code.expired"]);
    assert_eq!(got[0]["data"], json!({"codeId": code_id}));
    assert_eq!(got[0]["orgId"], org.as_str());
    // Recorded on the user as passlink's own event.
    let events =
        s.server.app.store().events_of(passlink_core::event::AggregateKind::User, &user).await.unwrap();
    assert_eq!(events.last().unwrap().event, passlink_core::event::Event::PasskeyCodeExpired { id: code_id });
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_outage_delays_but_loses_nothing_and_keeps_each_users_order() {
    let r = Receiver::start().await;
    r.status.store(503, Ordering::SeqCst);
    let s =
        harness::start_configured(harness::temp_dir("events-outage"), |cfg| with_events(cfg, &r.url)).await;
    let w = world(&s, "evo").await;
    let mut users = Vec::new();
    for i in 0..3 {
        let e = enroll(&s, &w.admin, &w.org_a, &format!("evo-{i}")).await;
        remove_passkey(&s, &w.admin, &e.user).await;
        users.push(e.user);
    }
    // Down: attempts are made and refused, nothing is accepted.
    r.wait_for("refused attempts", Duration::from_secs(20), |r| r.seen.lock().unwrap().refused >= 6).await;
    assert!(r.accepted().is_empty());
    // While down, a user's second event is not even tried before the first got through.
    for u in &users {
        let second =
            s.server.app.store().events_of(passlink_core::event::AggregateKind::User, u).await.unwrap();
        let removed = second.iter().rev().find(|e| e.event.type_name().ends_with("token.removed")).unwrap();
        let st = s
            .server
            .app
            .store()
            .notification(&format!("evt-{u}-{}", removed.sequence))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((st.state, st.notification.attempts), (JobState::Pending, 0), "{u}");
    }
    // The backlog shows in the metrics: six events pending.
    assert_eq!(events_depth(&s).await, 6.0, "passlink_events_webhook_depth while the receiver is down");
    let status: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/passlink/v1/status", s.base))
        .bearer_auth(&w.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["eventsBacklog"], 6, "GetStatus: {status}");
    // Up again: everything arrives, each user's events in their order.
    r.status.store(200, Ordering::SeqCst);
    r.wait_for("all six events", Duration::from_secs(30), |r| users.iter().all(|u| r.of_user(u).len() >= 2))
        .await;
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for v in r.accepted() {
        *by_id.entry(v["id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    for u in &users {
        assert_eq!(types(&r.of_user(u)), ["passkey.registered", "passkey.removed"], "{u}");
    }
    // At least once: a repeat carries the same id (and the same body).
    assert_eq!(by_id.len(), 6, "{by_id:?}");
    // And the backlog drains to zero.
    let drained = std::time::Instant::now();
    while events_depth(&s).await != 0.0 {
        assert!(drained.elapsed() < Duration::from_secs(10), "the events backlog did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_pending_at_a_stop_are_delivered_after_the_restart() {
    // The receiver's port is known but nothing listens yet: every attempt fails to connect.
    let port = passlink_testkit::free_port();
    let url = format!("http://127.0.0.1:{port}/events");
    let dir = harness::temp_dir("events-restart");
    let s = harness::start_configured(dir.clone(), |cfg| with_events(cfg, &url)).await;
    let w = world(&s, "evr").await;
    let e = enroll(&s, &w.admin, &w.org_a, "evr-user").await;
    remove_passkey(&s, &w.admin, &e.user).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events =
        s.server.app.store().events_of(passlink_core::event::AggregateKind::User, &e.user).await.unwrap();
    let verified = events.iter().find(|r| r.event.type_name().ends_with("token.verified")).unwrap();
    let first = format!("evt-{}-{}", e.user, verified.sequence);
    let st = s.server.app.store().notification(&first).await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Pending, "undeliverable while the receiver is down");
    assert!(st.last_error.is_some(), "an attempt failed: {st:?}");
    s.server.shutdown().await.unwrap();

    let r = Receiver::on(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap());
    let s2 = harness::start_configured(dir.clone(), |cfg| with_events(cfg, &url)).await;
    r.wait_for("both events after the restart", Duration::from_secs(30), |r| r.of_user(&e.user).len() >= 2)
        .await;
    let got = r.of_user(&e.user);
    assert_eq!(types(&got), ["passkey.registered", "passkey.removed"]);
    assert_eq!(got[0]["id"], first.as_str(), "the id stays the same across the restart");
    s2.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
