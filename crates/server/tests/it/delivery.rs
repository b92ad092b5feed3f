//! Delivery end to end with real components: the link reaches a real SMTP server process
//! (aiosmtpd) or a real HTTP webhook receiver; retries, give-ups, expiry and the outbox's
//! erasure of codes are checked on the store.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use passlink_core::event::{AggregateKind, Event};
use passlink_core::ports::{Clock, FixedClock};
use passlink_core::secret::Secret;
use passlink_core::store::JobState;
use passlink_server::config::{Delivery, DeliveryPolicy, SmtpConfig, SmtpTls};
use passlink_server::{Config, Server};
use passlink_testkit::{SmtpSink, WebhookReceiver, free_port};
use serde_json::{Value, json};

use crate::harness::{self, TestServer};

const TEMPLATE: &str = "https://app.example.com/passkey?u={{.UserID}}&o={{.OrgID}}&c={{.CodeID}}&k={{.Code}}";

pub(crate) fn smtp(port: u16) -> Delivery {
    Delivery::Smtp(SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        user: None,
        password: None,
        from: "passlink@id.example.com".into(),
        from_name: Some("Example Login".into()),
        ca_pem: None,
        timeout: Duration::from_secs(10),
    })
}

/// Retries fast enough for a test.
fn fast_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        lease: Duration::from_secs(30),
        max_attempts: 50,
        max_age: Duration::from_secs(3600),
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
    }
}

pub(crate) async fn start_with(
    dir: &Path,
    delivery: Delivery,
    worker: bool,
    clock: Option<Arc<FixedClock>>,
) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = Config::new(addr, dir);
    cfg.delivery = delivery;
    cfg.delivery_worker = worker;
    cfg.delivery_policy = fast_policy();
    cfg.delivery_poll_interval = Duration::from_millis(100);
    let server = match clock {
        Some(c) => Server::start_with_clock(cfg, listener, c).await.unwrap(),
        None => Server::start(cfg, listener).await.unwrap(),
    };
    let admin_token = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    TestServer { base: format!("http://{addr}"), server, admin_token, dir: dir.to_path_buf() }
}

/// `passlink_deliveries_total{channel="smtp",outcome}` as the server's metrics say now.
fn deliveries(s: &TestServer, outcome: &str) -> f64 {
    let samples = crate::metrics::parse(&s.server.metrics.render(None));
    crate::metrics::value(&samples, "passlink_deliveries_total", &[("channel", "smtp"), ("outcome", outcome)])
}

/// Wait until the worker counted `n` deliveries with `outcome` (it counts right after it recorded
/// the outcome in the store).
async fn deliveries_reach(s: &TestServer, outcome: &str, n: f64) {
    let start = Instant::now();
    while deliveries(s, outcome) < n {
        assert!(start.elapsed() < Duration::from_secs(10), "{outcome}: {} < {n}", deliveries(s, outcome));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(deliveries(s, outcome), n);
}

async fn post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", s.base))
        .bearer_auth(&s.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A human in the admin's organization, with an email address.
pub(crate) async fn human(s: &TestServer, name: &str, display: &str, lang: &str, email: &str) -> String {
    let (status, r) = post(
        s,
        "/v2/users/human",
        json!({"username": name, "profile": {"givenName": name, "familyName": "Test", "displayName": display,
               "preferredLanguage": lang}, "email": {"email": email, "isVerified": true}}),
    )
    .await;
    assert!((200..300).contains(&status), "{status} {r}");
    r["userId"].as_str().unwrap().to_string()
}

pub(crate) async fn link(s: &TestServer, user: &str, body: Value) -> (u16, Value) {
    post(s, &format!("/v2beta/users/{user}/passkeys/registration_link"), body).await
}

pub(crate) async fn events(s: &TestServer, user: &str) -> Vec<Event> {
    s.server
        .app
        .store()
        .events_of(AggregateKind::User, user)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect()
}

/// The code id of the user's newest code request.
pub(crate) async fn last_code_id(s: &TestServer, user: &str) -> String {
    events(s, user)
        .await
        .into_iter()
        .rev()
        .find_map(|e| match e {
            Event::PasskeyCodeRequested(c) => Some(c.id),
            _ => None,
        })
        .unwrap()
}

pub(crate) async fn job_of(s: &TestServer, code_id: &str) -> passlink_core::store::JobStatus {
    // Jobs are found by code id through the pending list while pending; afterwards by id.
    let store = s.server.app.store();
    for j in store.pending_jobs(10_000).await.unwrap() {
        if j.code_id == code_id {
            return store.job(&j.id).await.unwrap().unwrap();
        }
    }
    panic!("no pending job for code {code_id}")
}

pub(crate) async fn wait_job(
    s: &TestServer,
    job_id: &str,
    state: JobState,
    within: Duration,
) -> passlink_core::store::JobStatus {
    let start = Instant::now();
    loop {
        let j = s.server.app.store().job(job_id).await.unwrap().unwrap();
        if j.state == state {
            return j;
        }
        assert!(start.elapsed() < within, "job {job_id} not {state:?} within {within:?}: {j:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The query value of `key` in `url`.
pub(crate) fn query(url: &str, key: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    u.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.to_string()).unwrap()
}

/// RegisterPasskey with the code from a delivered link: 200 once delivered.
pub(crate) async fn redeem(s: &TestServer, user: &str, code_id: &str, code: &str) -> u16 {
    let r = reqwest::Client::new()
        .post(format!("{}/v2/users/{user}/passkeys", s.base))
        .json(&json!({"code": {"id": code_id, "code": code}}))
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

#[tokio::test]
async fn smtp_delivers_the_link_as_html_and_text_in_the_users_language() {
    let dir = harness::temp_dir("dl-smtp");
    let sink = SmtpSink::start(free_port(), &dir.join("mail"));
    let s = start_with(&dir.join("data"), smtp(sink.port), true, None).await;
    let ada = human(&s, "ada", "Ada Lovelace", "en", "ada@example.com").await;
    let emmy = human(&s, "emmy", "Emmy Noether", "de", "emmy@example.de").await;

    let (status, r) = link(&s, &ada, json!({"sendLink": {"urlTemplate": TEMPLATE}})).await;
    assert_eq!(status, 200, "{r}");
    assert!(r.get("code").is_none() && r["details"]["sequence"].is_string(), "details only: {r}");
    let ada_code = last_code_id(&s, &ada).await;
    let (status, _) = link(&s, &emmy, json!({})).await;
    assert_eq!(status, 200);
    let emmy_code = last_code_id(&s, &emmy).await;

    let msgs = sink.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(msgs.len(), 2);
    let to_ada = msgs.iter().find(|m| m.rcpt_tos == ["ada@example.com"]).unwrap();
    let to_emmy = msgs.iter().find(|m| m.rcpt_tos == ["emmy@example.de"]).unwrap();
    // English, custom template: subject, greeting, the exact link in the text part and as the
    // button and plain link in the HTML part; a stable Message-ID from the code id.
    assert_eq!(to_ada.subject, "Set up your passkey");
    assert_eq!(to_ada.mail_from, "passlink@id.example.com");
    assert!(to_ada.from.contains("Example Login") && to_ada.from.contains("<passlink@id.example.com>"));
    assert!(to_ada.to.contains("Ada Lovelace"), "{}", to_ada.to);
    assert_eq!(to_ada.content_type, "multipart/alternative");
    assert_eq!(to_ada.message_id, format!("<passkey-link-{ada_code}@id.example.com>"));
    let ada_link = to_ada.text.lines().find(|l| l.starts_with("https://")).unwrap().to_string();
    let ada_secret = query(&ada_link, "k");
    assert_eq!(
        ada_link,
        format!(
            "https://app.example.com/passkey?u={ada}&o={}&c={ada_code}&k={ada_secret}",
            query(&ada_link, "o")
        )
    );
    assert_eq!(ada_secret.len(), 12);
    assert!(to_ada.text.starts_with("Hello Ada Lovelace,"), "{}", to_ada.text);
    let escaped = ada_link.replace('&', "&amp;");
    assert!(to_ada.html.contains(&format!("<a href=\"{escaped}\" style=\"display:inline-block")), "button");
    assert!(to_ada.html.contains("Hello Ada Lovelace,") && to_ada.html.contains("Set up passkey"));
    // German, default link: the hosted page on the external URL.
    assert_eq!(to_emmy.subject, "Passkey einrichten");
    assert!(to_emmy.text.starts_with("Hallo Emmy Noether,"));
    let emmy_link = to_emmy.text.lines().find(|l| l.starts_with("http")).unwrap().to_string();
    let base = s.server.external_url.clone();
    assert!(
        emmy_link.starts_with(&format!("{base}/ui/passkey/register?userID={emmy}&orgID=")),
        "{emmy_link}"
    );
    assert_eq!(query(&emmy_link, "codeID"), emmy_code);

    // Recorded: code.sent after success, the job delivered and its sealed code erased.
    let ada_job = {
        let store = s.server.app.store();
        let mut found = None;
        // The SMTP server has both emails, but a worker records each outcome just after its send:
        // wait for both records (code.sent of ada, no job pending), not only the first.
        for _ in 0..200 {
            if events(&s, &ada).await.contains(&Event::PasskeyCodeSent { id: ada_code.clone() })
                && store.pending_jobs(100).await.unwrap().is_empty()
            {
                found = Some(());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(found.is_some(), "code.sent recorded");
        assert!(
            events(&s, &ada).await.contains(&Event::PasskeyCodeSent { id: ada_code.clone() }),
            "code.sent recorded"
        );
        assert!(store.pending_jobs(100).await.unwrap().is_empty(), "no job left pending");
        s.server.app.store().code(&ada_code).await.unwrap().unwrap()
    };
    assert_eq!(ada_job.state, passlink_core::code::CodeState::Active);
    // The delivered code works (it was usable only after code.sent).
    assert_eq!(redeem(&s, &ada, &ada_code, &ada_secret).await, 200);
    assert_eq!(redeem(&s, &emmy, &emmy_code, &query(&emmy_link, "code")).await, 200);
    s.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn provider_down_retries_with_backoff_and_delivers_when_it_is_back() {
    let dir = harness::temp_dir("dl-down");
    let port = free_port(); // nothing listens yet
    let s = start_with(&dir.join("data"), smtp(port), true, None).await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(
            human(&s, &format!("down{i}"), &format!("Down {i}"), "en", &format!("down{i}@example.com")).await,
        );
    }
    let mut jobs = Vec::new();
    for u in &users {
        // Delivery is not on the request path: the answer does not wait for the dead server.
        let t = Instant::now();
        let (status, _) = link(&s, u, json!({"sendLink": {}})).await;
        assert_eq!(status, 200);
        assert!(t.elapsed() < Duration::from_secs(2), "request waited for SMTP: {:?}", t.elapsed());
        let code = last_code_id(&s, u).await;
        jobs.push(job_of(&s, &code).await.job.id);
    }
    // Failed attempts are recorded with their reason and a later next attempt.
    let start = Instant::now();
    loop {
        let st = s.server.app.store().job(&jobs[0]).await.unwrap().unwrap();
        if st.job.attempts >= 2 {
            assert_eq!(st.state, JobState::Pending);
            assert!(st.last_error.as_deref().unwrap_or_default().contains("smtp"), "{st:?}");
            assert!(st.job.sealed_code.is_some(), "kept for the next attempt");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no retries: {st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The codes are not usable while undelivered.
    for (u, j) in users.iter().zip(&jobs) {
        let st = s.server.app.store().job(j).await.unwrap().unwrap();
        let plain = s.server.app.keys().open(st.job.sealed_code.as_ref().unwrap(), j.as_bytes()).unwrap();
        assert_eq!(redeem(&s, u, &st.job.code_id, std::str::from_utf8(&plain).unwrap()).await, 400);
    }
    let sink = SmtpSink::start(port, &dir.join("mail"));
    let msgs = sink.wait_for(5, Duration::from_secs(15)).await;
    for j in &jobs {
        let st = wait_job(&s, j, JobState::Delivered, Duration::from_secs(10)).await;
        assert!(st.job.sealed_code.is_none(), "erased after delivery");
    }
    let mut rcpts: Vec<String> = msgs.iter().flat_map(|m| m.rcpt_tos.clone()).collect();
    rcpts.sort();
    rcpts.dedup();
    assert_eq!(rcpts.len(), 5, "every pending link delivered");
    // The metrics: five sent, the failed attempts before as retries.
    deliveries_reach(&s, "sent", 5.0).await;
    assert!(deliveries(&s, "retried") >= 2.0);
    assert_eq!(deliveries(&s, "given_up"), 0.0);
    s.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn failures_are_given_up_recorded_and_erased() {
    let dir = harness::temp_dir("dl-fail");
    let sink = SmtpSink::start(free_port(), &dir.join("mail"));
    let s = start_with(&dir.join("data"), smtp(sink.port), true, None).await;
    // A permanent failure (550 for the recipient) is given up at once.
    let bad = human(&s, "bad", "Bad Address", "en", "reject-me@example.com").await;
    assert_eq!(link(&s, &bad, json!({})).await.0, 200);
    let code = last_code_id(&s, &bad).await;
    let job = job_of(&s, &code).await.job.id;
    let st = wait_job(&s, &job, JobState::Abandoned, Duration::from_secs(15)).await;
    assert!(st.job.sealed_code.is_none(), "erased when abandoned");
    let reason = st.last_error.unwrap();
    assert!(reason.starts_with("permanent failure: smtp"), "{reason}");
    let evs = events(&s, &bad).await;
    assert!(
        evs.iter().any(|e| matches!(e, Event::PasskeyCodeSendFailed { id, reason } if *id == code && reason.contains("550"))),
        "code.send.failed recorded with the reason: {evs:?}"
    );
    assert!(!evs.iter().any(|e| matches!(e, Event::PasskeyCodeSent { .. })));
    assert!(sink.messages().is_empty());
    deliveries_reach(&s, "given_up", 1.0).await;
    assert_eq!(deliveries(&s, "sent"), 0.0);
    s.server.shutdown().await.unwrap();

    // Transient failures are retried up to max attempts, then given up.
    let port = free_port();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = Config::new(addr, dir.join("data"));
    cfg.delivery = smtp(port);
    cfg.delivery_policy = DeliveryPolicy { max_attempts: 3, ..fast_policy() };
    cfg.delivery_poll_interval = Duration::from_millis(100);
    let server = Server::start(cfg, listener).await.unwrap();
    let s = TestServer {
        base: format!("http://{addr}"),
        server,
        admin_token: s.admin_token.clone(),
        dir: dir.join("data"),
    };
    let user = human(&s, "flaky", "Flaky", "en", "flaky@example.com").await;
    assert_eq!(link(&s, &user, json!({})).await.0, 200);
    let code = last_code_id(&s, &user).await;
    let job = job_of(&s, &code).await.job.id;
    let st = wait_job(&s, &job, JobState::Abandoned, Duration::from_secs(15)).await;
    assert_eq!(st.job.attempts, 3);
    assert!(st.job.sealed_code.is_none());
    assert!(st.last_error.unwrap().starts_with("gave up after 3 attempts"));
    s.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn expired_codes_are_not_sent() {
    let dir = harness::temp_dir("dl-exp");
    let data = dir.join("data");
    let sink = SmtpSink::start(free_port(), &dir.join("mail"));
    let real = passlink_server::platform::SystemClock.now();
    let clock = Arc::new(FixedClock::at(real));
    // Queued by a replica without a worker …
    let s = start_with(&data, smtp(sink.port), false, Some(clock.clone())).await;
    let user = human(&s, "late", "Late", "en", "late@example.com").await;
    assert_eq!(link(&s, &user, json!({})).await.0, 200);
    let code = last_code_id(&s, &user).await;
    let job = job_of(&s, &code).await.job.id;
    s.server.shutdown().await.unwrap();
    // … and found by a worker only after the code expired (1 h by default).
    clock.set(real.plus(Duration::from_secs(3601)));
    let s = start_with(&data, smtp(sink.port), true, Some(clock.clone())).await;
    let st = wait_job(&s, &job, JobState::Abandoned, Duration::from_secs(15)).await;
    assert!(st.last_error.unwrap().contains("expired"));
    assert!(st.job.sealed_code.is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.messages().is_empty(), "an expired code is not sent");
    s.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn webhook_gets_signed_json_and_retries_on_5xx_with_the_same_delivery_id() {
    let dir = harness::temp_dir("dl-hook");
    let receiver = WebhookReceiver::start(vec![503]).await;
    let secret = "whsec-test-0123456789";
    let delivery = Delivery::Webhook { url: receiver.url.clone(), secret: Secret::new(secret) };
    let s = start_with(&dir.join("data"), delivery, true, None).await;
    let user = human(&s, "hook", "Hook User", "de-CH", "hook@example.com").await;
    assert_eq!(link(&s, &user, json!({"sendLink": {"urlTemplate": TEMPLATE}})).await.0, 200);
    let code = last_code_id(&s, &user).await;
    let hooks = receiver.wait_for_successes(1, Duration::from_secs(15)).await;
    assert_eq!(hooks.iter().map(|h| h.status).collect::<Vec<_>>(), vec![503, 200], "retried after 503");
    for h in &hooks {
        // The same body and delivery id both times; the signature verifies over the raw body.
        assert_eq!(h.body, hooks[0].body);
        assert_eq!(h.headers["x-passlink-delivery-id"], format!("passkey-link-{code}").as_str());
        let sig = h.headers["x-passlink-signature"].to_str().unwrap();
        assert_eq!(sig, passlink_delivery::sign(secret.as_bytes(), &h.body));
        assert_eq!(h.headers["content-type"], "application/json");
    }
    let body: Value = serde_json::from_slice(&hooks[1].body).unwrap();
    assert_eq!(body["deliveryId"], format!("passkey-link-{code}"));
    assert_eq!(body["type"], "passkey_registration_link");
    assert_eq!(body["recipient"]["email"], "hook@example.com");
    assert_eq!(body["recipient"]["displayName"], "Hook User");
    assert_eq!(body["recipient"]["givenName"], "hook");
    assert_eq!(body["recipient"]["familyName"], "Test");
    assert_eq!(body["recipient"]["preferredLanguage"], "de-CH");
    assert_eq!(
        (body["userId"].as_str(), body["codeId"].as_str()),
        (Some(user.as_str()), Some(code.as_str()))
    );
    let l = body["link"].as_str().unwrap();
    assert_eq!(
        l,
        format!(
            "https://app.example.com/passkey?u={user}&o={}&c={code}&k={}",
            body["orgId"].as_str().unwrap(),
            query(l, "k")
        )
    );
    assert!(body["expiresAt"].as_str().unwrap().ends_with('Z'));
    // A signature made with another secret does not match.
    assert_ne!(
        hooks[1].headers["x-passlink-signature"].to_str().unwrap(),
        passlink_delivery::sign(b"other", &hooks[1].body)
    );
    let start = Instant::now();
    while !events(&s, &user).await.contains(&Event::PasskeyCodeSent { id: code.clone() }) {
        assert!(start.elapsed() < Duration::from_secs(10), "code.sent after the webhook accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(redeem(&s, &user, &code, &query(l, "k")).await, 200);
    s.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_a_provider_send_link_is_a_400_and_writes_nothing() {
    let dir = harness::temp_dir("dl-none");
    let s = start_with(&dir.join("data"), Delivery::None, true, None).await;
    let user = human(&s, "nobody", "No Provider", "en", "nobody@example.com").await;
    let before = events(&s, &user).await.len();
    for body in [json!({}), json!({"sendLink": {}}), json!({"sendLink": {"urlTemplate": TEMPLATE}})] {
        let (status, r) = link(&s, &user, body).await;
        assert_eq!(status, 400, "{r}");
        assert_eq!(r["code"], 9, "FailedPrecondition: {r}");
        assert_eq!(r["details"][0]["id"], "MAIL-83nof", "{r}");
        assert!(r["message"].as_str().unwrap().contains("No delivery provider"), "{r}");
    }
    // The same over Connect.
    let r = reqwest::Client::new()
        .post(format!("{}/zitadel.user.v2.UserService/CreatePasskeyRegistrationLink", s.base))
        .bearer_auth(&s.admin_token)
        .json(&json!({"userId": user, "sendLink": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "failed_precondition");
    assert_eq!(events(&s, &user).await.len(), before, "nothing written");
    assert!(s.server.app.store().pending_jobs(10).await.unwrap().is_empty());
    // returnCode needs no provider.
    assert_eq!(link(&s, &user, json!({"returnCode": {}})).await.0, 200);
    s.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_hosted_page_draws_its_own_link_as_a_qr_code() {
    let dir = harness::temp_dir("dl-qr");
    let s = start_with(&dir.join("data"), Delivery::None, false, None).await;
    let q = "userID=123&orgID=456&codeID=789&code=AbCdEf123456";
    let r = reqwest::get(format!("{}/ui/passkey/register/qr.svg?{q}", s.base)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let svg = r.text().await.unwrap();
    // Exactly the QR code of the page's own URL on the external URL.
    let link = format!("{}/ui/passkey/register?{q}", s.server.external_url);
    let expected = qrcode::QrCode::with_error_correction_level(&link, qrcode::EcLevel::M)
        .unwrap()
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    assert_eq!(svg, expected);
    assert!(svg.contains("<svg"));
    // Only plain ids: nothing else can be smuggled into the code.
    for bad in [
        "userID=1&orgID=2&codeID=3",
        "userID=1&orgID=2&codeID=3&code=a%26b",
        "userID=../x&orgID=2&codeID=3&code=x",
    ] {
        let r = reqwest::get(format!("{}/ui/passkey/register/qr.svg?{bad}", s.base)).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    s.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn smtp_with_starttls_a_login_and_a_private_ca() {
    let dir = harness::temp_dir("dl-tls");
    let certs = dir.join("certs");
    let sink =
        SmtpSink::start_with(free_port(), &dir.join("mail"), Some(&certs), Some(("passlink", "s3cret pw")));
    let ca = std::fs::read(certs.join("ca.pem")).unwrap();
    let tls = |ca: Option<Vec<u8>>, password: &str| {
        Delivery::Smtp(SmtpConfig {
            tls: SmtpTls::Starttls,
            user: Some("passlink".into()),
            password: Some(Secret::new(password)),
            ca_pem: ca,
            ..match smtp(sink.port) {
                Delivery::Smtp(c) => c,
                _ => unreachable!(),
            }
        })
    };
    // Trusted through --smtp-ca-file, logged in after STARTTLS: delivered.
    let s = start_with(&dir.join("ok"), tls(Some(ca.clone()), "s3cret pw"), true, None).await;
    let user = human(&s, "tls", "Tls User", "en", "tls@example.com").await;
    assert_eq!(link(&s, &user, json!({})).await.0, 200);
    let m = sink.wait_for(1, Duration::from_secs(15)).await;
    assert!(m[0].tls, "sent over TLS");
    assert_eq!(m[0].auth_user.as_deref(), Some("passlink"));
    assert_eq!(m[0].rcpt_tos, ["tls@example.com"]);
    s.server.shutdown().await.unwrap();

    // A certificate of an unknown CA is not trusted: nothing is sent, the attempt is retried.
    let s = start_with(&dir.join("untrusted"), tls(None, "s3cret pw"), true, None).await;
    let user = human(&s, "tls2", "Tls Two", "en", "tls2@example.com").await;
    assert_eq!(link(&s, &user, json!({})).await.0, 200);
    let job = job_of(&s, &last_code_id(&s, &user).await).await.job.id;
    let start = Instant::now();
    loop {
        let st = s.server.app.store().job(&job).await.unwrap().unwrap();
        if st.job.attempts >= 1 {
            assert_eq!(st.state, JobState::Pending, "a TLS failure is retried: {st:?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no attempt: {st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.server.shutdown().await.unwrap();

    // A wrong password is refused by the server (535): given up at once.
    let s = start_with(&dir.join("badpw"), tls(Some(ca), "wrong"), true, None).await;
    let user = human(&s, "tls3", "Tls Three", "en", "tls3@example.com").await;
    assert_eq!(link(&s, &user, json!({})).await.0, 200);
    let job = job_of(&s, &last_code_id(&s, &user).await).await.job.id;
    let st = wait_job(&s, &job, JobState::Abandoned, Duration::from_secs(15)).await;
    assert!(st.last_error.unwrap().starts_with("permanent failure: smtp"));
    assert_eq!(sink.messages().len(), 1, "only the first message arrived");
    s.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_smtp_from_the_sender_is_passlink_at_the_external_host() {
    let dir = harness::temp_dir("dl-from");
    let sink = SmtpSink::start(free_port(), &dir.join("mail"));
    let Delivery::Smtp(mut cfg) = smtp(sink.port) else { unreachable!() };
    cfg.from = String::new();
    cfg.from_name = None;
    let s = start_with(&dir.join("data"), Delivery::Smtp(cfg), true, None).await;
    let user = human(&s, "from", "From Test", "en", "from@example.com").await;
    assert_eq!(link(&s, &user, json!({})).await.0, 200);
    let m = sink.wait_for(1, Duration::from_secs(15)).await;
    // The external URL defaults to http://localhost:<port> on loopback.
    assert_eq!(m[0].mail_from, "passlink@localhost");
    assert_eq!(m[0].message_id, format!("<passkey-link-{}@localhost>", last_code_id(&s, &user).await));
    s.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
