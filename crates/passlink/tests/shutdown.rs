//! SIGTERM with the real binary: /readyz answers 503 at once while a slow request is still in
//! flight, the request is answered, the process exits 0 within the bound; past
//! `--shutdown-timeout` it exits anyway with a log line; a delivery in flight to a webhook that
//! never answers is released (pending again, no lease) rather than left to its lease.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("passlink-shutdown-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn serve(data: &Path, port: u16, extra: &[&str], log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_passlink"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir", data.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn terminate(child: &Child) {
    let ok = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success();
    assert!(ok, "kill -TERM failed");
}

/// Wait for the process to exit; its status and how long that took.
async fn exited(mut child: Child, within: Duration) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return (s, start.elapsed());
        }
        assert!(start.elapsed() < within, "still running after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Connect call whose body is sent but for its last byte: the request is in flight until
/// `finish` is called.
struct SlowRequest(std::net::TcpStream);

impl SlowRequest {
    fn start(port: u16, token: &str) -> SlowRequest {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let head = format!(
            "POST /zitadel.org.v2.OrganizationService/ListOrganizations HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: Bearer {token}\r\nContent-Type: application/json\r\nConnect-Protocol-Version: 1\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{{"
        );
        s.write_all(head.as_bytes()).unwrap();
        s.flush().unwrap();
        SlowRequest(s)
    }

    /// Send the last byte; the response's status line.
    fn finish(mut self) -> String {
        self.0.write_all(b"}").unwrap();
        self.0.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = String::new();
        let _ = self.0.read_to_string(&mut out);
        out.lines().next().unwrap_or_default().to_string()
    }
}

async fn ready_status(base: &str) -> Option<u16> {
    reqwest::get(format!("{base}/readyz")).await.ok().map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_while_a_slow_request_drains_then_exit_0() {
    let d = dir("drain");
    let port = passlink_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = serve(&d.join("data"), port, &["--shutdown-timeout-secs", "10"], &d.join("log"));
    passlink_testkit::wait_healthy(&base).await;
    assert_eq!(ready_status(&base).await, Some(200));
    let token = std::fs::read_to_string(d.join("data/admin.pat")).unwrap().trim().to_string();

    let slow = SlowRequest::start(port, &token);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    terminate(&child);
    // /readyz says 503 at once, while the slow request holds the drain open.
    let mut seen = None;
    for _ in 0..50 {
        seen = ready_status(&base).await;
        if seen == Some(503) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, Some(503), "/readyz during the drain");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ready_status(&base).await, Some(503), "still draining while the request is in flight");
    // The in-flight request is answered, then the process exits 0, well within the bound.
    assert_eq!(slow.finish(), "HTTP/1.1 200 OK");
    let (status, _) = exited(child, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
    let log = std::fs::read_to_string(d.join("log")).unwrap();
    assert!(log.contains("shutdown complete"), "{log}");
    let _ = std::fs::remove_dir_all(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_shutdown_timeout_the_process_exits_anyway() {
    let d = dir("timeout");
    let port = passlink_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = serve(&d.join("data"), port, &["--shutdown-timeout-secs", "2"], &d.join("log"));
    passlink_testkit::wait_healthy(&base).await;
    let token = std::fs::read_to_string(d.join("data/admin.pat")).unwrap().trim().to_string();
    let _slow = SlowRequest::start(port, &token); // never finished
    tokio::time::sleep(Duration::from_millis(300)).await;
    terminate(&child);
    let (status, took) = exited(child, Duration::from_secs(6)).await;
    assert!(status.success(), "{status:?}");
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(5), "{took:?}");
    let log = std::fs::read_to_string(d.join("log")).unwrap();
    assert!(log.contains("shutdown timeout"), "{log}");
    let _ = std::fs::remove_dir_all(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_is_released_at_shutdown() {
    let d = dir("release");
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // A webhook that accepts connections and never answers: the send stays in flight.
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let held = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((c, _)) = hook.accept().await {
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                conns.push(c);
            }
        })
    };
    let secret = d.join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let port = passlink_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let args = ["--webhook-url", &hook_url, "--webhook-secret-file", secret.to_str().unwrap()];
    let args = [&args[..], &["--shutdown-timeout-secs", "4", "--delivery-lease-secs", "600"]].concat();
    let child = serve(&data, port, &args, &d.join("log"));
    passlink_testkit::wait_healthy(&base).await;
    let token = std::fs::read_to_string(data.join("admin.pat")).unwrap().trim().to_string();
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{base}/v2/users/human"))
        .bearer_auth(&token)
        .json(&json!({"profile": {"givenName": "R", "familyName": "L"}, "email": {"email": "r@example.com", "isVerified": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let user = r.json::<serde_json::Value>().await.unwrap()["userId"].as_str().unwrap().to_string();
    let r = c
        .post(format!("{base}/v2/users/{user}/passkeys/registration_link"))
        .bearer_auth(&token)
        .json(&json!({"sendLink": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let start = Instant::now();
    while accepted.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "the worker never called the webhook");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    terminate(&child);
    let (status, took) = exited(child, Duration::from_secs(8)).await;
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    held.abort();
    // The job is pending again, without a lease, due now: not held for the 600 s lease.
    let db = rusqlite::Connection::open(data.join("passlink.db")).unwrap();
    let (state, owner, until, error): (String, Option<String>, Option<i64>, Option<String>) = db
        .query_row("SELECT state, lease_owner, lease_until, last_error FROM outbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!((state.as_str(), owner, until), ("pending", None, None));
    assert_eq!(error.as_deref(), Some("released unsent at shutdown"));
    let log = std::fs::read_to_string(d.join("log")).unwrap();
    assert!(log.contains("released the jobs it had not sent"), "{log}");
    let _ = std::fs::remove_dir_all(d);
}
