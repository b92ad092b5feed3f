//! The embedded SQLite store survives `kill -9` under passkey registrations and sign-in
//! sessions: 8 clients (two per user) each register a passkey with a fresh code (link, start,
//! verify) and sign in with it twice (CreateSession with a WebAuthn challenge, SetSession with
//! the assertion), over and over, until the binary is killed with SIGKILL. After a restart every
//! acknowledged passkey is listed as ready and every acknowledged session answers GetSession with
//! its last token and its WebAuthn factor; the database passes `PRAGMA integrity_check` and goes
//! on taking registrations and sign-ins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use passlink_testkit::authenticator::Passkey;
use serde_json::{Value, json};

mod crash;
use crash::{Run, org_with_users, post};

const USERS: usize = 4;
const CLIENTS: usize = 8;
const LOAD: Duration = Duration::from_millis(2500);
const SIGN_INS_PER_PASSKEY: usize = 2;

/// What one client got acknowledged, and what it was refused (there must be nothing).
#[derive(Default)]
struct Acked {
    /// (user, passkey id) of verified registrations.
    passkeys: Vec<(String, String)>,
    /// (session id, its last token) of sign-ins whose WebAuthn check was answered 200.
    sessions: Vec<(String, String)>,
    refused: Vec<String>,
}

/// A POST answered with a status and a JSON body, or None when the server went away.
async fn send(rb: reqwest::RequestBuilder) -> Option<(u16, Value)> {
    let r = rb.send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.json::<Value>().await.ok()?))
}

struct Target {
    base: String,
    origin: String,
    admin: String,
}

/// One registration: link, start with the code, verify. None when the server went away.
async fn register(c: &reqwest::Client, t: &Target, user: &str, out: &mut Acked) -> Option<Passkey> {
    let (s, link) = send(
        c.post(format!("{}/v2beta/users/{user}/passkeys/registration_link", t.base))
            .bearer_auth(&t.admin)
            .json(&json!({"returnCode": {}})),
    )
    .await?;
    if s != 200 {
        out.refused.push(format!("link {s}: {link}"));
        return None;
    }
    let code = json!({"id": link["code"]["id"], "code": link["code"]["code"]});
    let (s, started) = send(
        c.post(format!("{}/v2beta/users/{user}/passkeys", t.base))
            .json(&json!({"code": code, "authenticator": "PASSKEY_AUTHENTICATOR_PLATFORM"})),
    )
    .await?;
    if s != 200 {
        out.refused.push(format!("register {s}: {started}"));
        return None;
    }
    let id = started["passkeyId"].as_str().unwrap().to_string();
    let mut passkey = Passkey::new().unwrap();
    let cred = passkey.register(&started["publicKeyCredentialCreationOptions"], &t.origin).unwrap();
    let (s, v) = send(
        c.post(format!("{}/v2/users/{user}/passkeys/{id}", t.base))
            .json(&json!({"publicKeyCredential": cred, "passkeyName": "crash"})),
    )
    .await?;
    if s != 200 {
        out.refused.push(format!("verify {s}: {v}"));
        return None;
    }
    out.passkeys.push((user.to_string(), id));
    Some(passkey)
}

/// One sign-in with `passkey`: a session with a WebAuthn challenge, then the assertion.
async fn sign_in(
    c: &reqwest::Client,
    t: &Target,
    user: &str,
    passkey: &mut Passkey,
    out: &mut Acked,
) -> bool {
    let challenge = json!({"domain": "localhost", "userVerificationRequirement": "USER_VERIFICATION_REQUIREMENT_REQUIRED"});
    let Some((s, created)) = send(
        c.post(format!("{}/v2/sessions", t.base))
            .bearer_auth(&t.admin)
            .json(&json!({"checks": {"user": {"userId": user}}, "challenges": {"webAuthN": challenge}})),
    )
    .await
    else {
        return false;
    };
    if s != 201 {
        out.refused.push(format!("create session {s}: {created}"));
        return false;
    }
    let id = created["sessionId"].as_str().unwrap().to_string();
    let options = &created["challenges"]["webAuthN"]["publicKeyCredentialRequestOptions"];
    let assertion = passkey.assert(options, &t.origin).unwrap();
    let Some((s, set)) = send(
        c.patch(format!("{}/v2/sessions/{id}", t.base))
            .bearer_auth(&t.admin)
            .json(&json!({"checks": {"webAuthN": {"credentialAssertionData": assertion}}})),
    )
    .await
    else {
        return false;
    };
    if s != 200 {
        out.refused.push(format!("set session {s}: {set}"));
        return false;
    }
    out.sessions.push((id, set["sessionToken"].as_str().unwrap().to_string()));
    true
}

async fn client(t: Arc<Target>, user: String, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>) -> Acked {
    let c = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut out = Acked::default();
    'load: while !stop.load(Ordering::SeqCst) {
        let Some(mut passkey) = register(&c, &t, &user, &mut out).await else { break };
        done.fetch_add(1, Ordering::SeqCst);
        for _ in 0..SIGN_INS_PER_PASSKEY {
            if !sign_in(&c, &t, &user, &mut passkey, &mut out).await {
                break 'load;
            }
            done.fetch_add(1, Ordering::SeqCst);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_registrations_and_sign_ins_loses_no_acknowledged_one() {
    let mut run = Run::in_temp("kill-signin");
    let base = run.start("first.log").await;
    let admin = run.admin_token();
    let c = reqwest::Client::new();
    let (_org, users) = org_with_users(&base, &admin, "kill-signin", "s", USERS).await;

    // Load, then SIGKILL in the middle of it.
    let origin = base.replace("127.0.0.1", "localhost");
    let t = Arc::new(Target { base: base.clone(), origin: origin.clone(), admin: admin.clone() });
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(client(t.clone(), users[i % USERS].clone(), stop.clone(), done.clone())))
        .collect();
    let started = Instant::now();
    while done.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(LOAD).await;
    assert!(clients.iter().all(|c| !c.is_finished()), "every client is still going at the kill");
    run.kill_9();
    let load_time = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut acked = Acked::default();
    for w in clients {
        let a = tokio::time::timeout(Duration::from_secs(60), w).await.expect("clients end").unwrap();
        acked.passkeys.extend(a.passkeys);
        acked.sessions.extend(a.sessions);
        acked.refused.extend(a.refused);
    }
    assert!(
        acked.refused.is_empty(),
        "refused under load: {:?}",
        &acked.refused[..acked.refused.len().min(5)]
    );
    assert!(acked.passkeys.len() >= CLIENTS && !acked.sessions.is_empty(), "the load was real");

    // The crashed database, as SQLite recovers it.
    let copy = run.dir.join("crashed.db");
    std::fs::copy(run.data().join("passlink.db"), &copy).unwrap();
    if run.data().join("passlink.db-wal").exists() {
        std::fs::copy(run.data().join("passlink.db-wal"), run.dir.join("crashed.db-wal")).unwrap();
    }
    let integrity: String = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");

    // After a restart: every acknowledged passkey is ready, every acknowledged session is there
    // with its last token and its passkey check.
    let base = run.start("second.log").await;
    let mut ready = HashSet::new();
    for user in &users {
        let (s, list) = post(&c, format!("{base}/v2/users/{user}/passkeys/_search"), &admin, json!({})).await;
        assert_eq!(s, 200, "{list}");
        for p in list["result"].as_array().cloned().unwrap_or_default() {
            if p["state"] == "AUTH_FACTOR_STATE_READY" {
                ready.insert((user.clone(), p["id"].as_str().unwrap().to_string()));
            }
        }
    }
    let lost: Vec<_> = acked.passkeys.iter().filter(|p| !ready.contains(*p)).collect();
    assert!(lost.is_empty(), "acknowledged passkeys missing after the crash: {lost:?}");
    for (id, token) in &acked.sessions {
        let r = c
            .get(format!("{base}/v2/sessions/{id}?sessionToken={token}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged session {id} after the crash");
        let v: Value = r.json().await.unwrap();
        assert!(v["session"]["factors"]["webAuthN"]["verifiedAt"].is_string(), "its passkey check: {v}");
    }
    // And it goes on: a new registration on each user.
    let t =
        Target { base: base.clone(), origin: base.replace("127.0.0.1", "localhost"), admin: admin.clone() };
    let mut after = Acked::default();
    for user in &users {
        let mut passkey = register(&c, &t, user, &mut after).await.expect("a registration after the restart");
        assert!(sign_in(&c, &t, user, &mut passkey, &mut after).await, "{:?}", after.refused);
    }
    assert!(after.refused.is_empty(), "{:?}", after.refused);
    run.terminate().await;
    eprintln!(
        "kill -9 under registrations and sign-ins: {} passkeys and {} sign-in sessions acknowledged \
         in {:?}, all present after the restart ({} passkeys ready in all)",
        acked.passkeys.len(),
        acked.sessions.len(),
        load_time,
        ready.len()
    );
}
