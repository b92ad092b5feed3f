//! The events webhook's outbox survives `kill -9` (SQLite): with the receiver down, codes expire
//! unredeemed and each is recorded with its `registration_code.expired` notification; the
//! process is killed, the receiver comes up, and the restarted binary delivers every one of them
//! — signed, with the id it was recorded under, nothing lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod crash;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crash::{Run, org_with_users, post};

const USERS: usize = 12;
const CODE_EXPIRED: &str = "user.human.passwordless.initialization.code.expired";

/// Pending notifications and recorded expiries in the (live) database.
fn counts(db: &std::path::Path) -> (i64, i64) {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let pending: i64 = c
        .query_row(
            "SELECT count(*) FROM notifications WHERE state = 'pending' AND kind <> 'code_expiry'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    let expired: i64 = c
        .query_row("SELECT count(*) FROM events WHERE event_type = ?1", [CODE_EXPIRED], |r| r.get(0))
        .unwrap_or(0);
    (pending, expired)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_before_a_kill_9_are_delivered_after_the_restart() {
    let mut run = Run::in_temp("kill-events");
    let secret = run.dir.join("events.secret");
    std::fs::write(&secret, "kill-events-secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The receiver's port, not listening yet.
    let port = passlink_testkit::free_port();
    let url = format!("http://127.0.0.1:{port}/events");
    let flags = [
        "--events-webhook-url",
        &url,
        "--events-webhook-secret-file",
        secret.to_str().unwrap(),
        "--code-lifetime-secs",
        "1",
        "--delivery-retry-min-ms",
        "50",
        "--delivery-retry-max-secs",
        "1",
    ];

    // 1. Codes that expire unredeemed while the receiver is down.
    let base = run.start_with("first.log", &flags).await;
    let token = run.admin_token();
    let (_org, users) = org_with_users(&base, &token, "kill-events", "e", USERS).await;
    let c = reqwest::Client::new();
    let mut codes = BTreeMap::new();
    for user in &users {
        let (s, link) = post(
            &c,
            format!("{base}/v2/users/{user}/passkeys/registration_link"),
            &token,
            json!({"returnCode": {}}),
        )
        .await;
        assert_eq!(s, 200, "{link}");
        codes.insert(user.clone(), link["code"]["id"].as_str().unwrap().to_string());
    }
    let db = run.data().join("passlink.db");
    let started = Instant::now();
    loop {
        let (pending, expired) = counts(&db);
        if pending == USERS as i64 && expired == USERS as i64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "expiries recorded: {expired}, pending: {pending}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The worker has been failing against the closed port; now the crash.
    run.kill_9();

    // 2. The receiver comes up; the restarted binary delivers what was pending.
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post({
            let seen = seen.clone();
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let signature = headers
                        .get("x-passlink-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    seen.lock().unwrap().push((signature, body));
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await });
    run.start_with("second.log", &flags).await;
    let started = Instant::now();
    while seen.lock().unwrap().len() < USERS {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "delivered after the restart: {}",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // no duplicates arriving late either
    run.terminate().await;
    receiver.abort();

    let seen = seen.lock().unwrap().clone();
    let mut by_user = BTreeMap::new();
    for (signature, body) in &seen {
        assert!(signature.starts_with("t=") && signature.contains(",v1="), "signed: {signature}");
        assert_eq!(body["type"], "registration_code.expired", "{body}");
        let user = body["userId"].as_str().unwrap().to_string();
        let id = body["id"].as_str().unwrap().to_string();
        assert!(id.starts_with(&format!("evt-{user}-")), "a stable id of the user's event: {id}");
        assert_eq!(body["data"]["codeId"], codes[&user].as_str(), "{body}");
        assert!(by_user.insert(user, id).is_none(), "each event once: {seen:?}");
    }
    assert_eq!(by_user.len(), USERS, "every user's expiry delivered");
    assert_eq!(counts(&db).0, 0, "nothing left pending");
}
