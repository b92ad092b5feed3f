//! Delivery survives a crash: `kill -9` while links are pending and one is in flight (the SMTP
//! server accepted the connection but has not answered); after a restart every link is
//! delivered, each message with its stable id. The logs of both runs, at trace level, contain no
//! code, no link and no token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)] // test support: waits on real processes and sockets

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use passlink_testkit::{SmtpSink, free_port};
use serde_json::{Value, json};

fn spawn(data: &Path, port: u16, smtp_port: u16, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_passlink"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir", data.to_str().unwrap()])
        .args(["--smtp-host", "127.0.0.1", "--smtp-port", &smtp_port.to_string(), "--smtp-tls", "none"])
        .args(["--smtp-from", "passlink@id.example.com", "--smtp-from-name", "Crash Test"])
        .args(["--delivery-retry-min-ms", "200", "--delivery-retry-max-secs", "1"])
        .env("PASSLINK_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn post(c: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let r = c.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// An SMTP server that accepts connections and never says a word: a send to it is in flight
/// until the client's timeout. Dropping it closes the port and every connection.
struct BlackHole {
    accepted: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlackHole {
    fn start(port: u16) -> BlackHole {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (a, st) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        held.push(conn);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        BlackHole { accepted, stop, thread: Some(thread) }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_jobs_pending_and_in_flight_then_every_link_is_delivered() {
    let dir = std::env::temp_dir().join(format!("passlink-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    let (port, smtp_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let hole = BlackHole::start(smtp_port);

    let mut first = spawn(&data, port, smtp_port, &dir.join("run1.log"));
    passlink_testkit::wait_healthy(&base).await;
    let token = std::fs::read_to_string(data.join("admin.pat")).unwrap().trim().to_string();
    let c = reqwest::Client::new();
    let mut users = HashMap::new();
    for i in 0..6 {
        let email = format!("crash{i}@example.com");
        let (s, r) = post(
            &c,
            format!("{base}/v2/users/human"),
            &token,
            json!({"username": format!("crash{i}"), "profile": {"givenName": "Crash", "familyName": format!("{i}")},
                   "email": {"email": email, "isVerified": true}}),
        )
        .await;
        assert_eq!(s, 201, "{r}");
        let user = r["userId"].as_str().unwrap().to_string();
        let body = if i % 2 == 0 {
            json!({"sendLink": {"urlTemplate": "https://app.example.com/enroll?u={{.UserID}}&c={{.CodeID}}&k={{.Code}}"}})
        } else {
            json!({})
        };
        let (s, r) =
            post(&c, format!("{base}/v2beta/users/{user}/passkeys/registration_link"), &token, body).await;
        assert_eq!(s, 200, "{r}");
        users.insert(email, user);
    }
    // Wait until a send is in flight (the worker connected to the silent server), then crash.
    let start = Instant::now();
    while hole.accepted.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "the worker never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    drop(hole);

    // The mail server is back (on the same port); passlink restarts on the same data.
    let sink = SmtpSink::start_when_free(smtp_port, &dir.join("mail"));
    let mut second = spawn(&data, port, smtp_port, &dir.join("run2.log"));
    passlink_testkit::wait_healthy(&base).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let msgs = loop {
        let m = sink.messages();
        let rcpts: HashSet<String> = m.iter().flat_map(|m| m.rcpt_tos.clone()).collect();
        if rcpts.len() == users.len() {
            break m;
        }
        assert!(Instant::now() < deadline, "delivered to {} of {} users", rcpts.len(), users.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // At least once, recognisably: one Message-ID per code, the same id on any duplicate.
    let mut id_of: HashMap<String, String> = HashMap::new();
    let mut codes = Vec::new();
    for m in &msgs {
        let link = m.text.lines().find(|l| l.starts_with("http")).unwrap().to_string();
        let u = url::Url::parse(&link).unwrap();
        let q: HashMap<String, String> =
            u.query_pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let code_id = q.get("c").or_else(|| q.get("codeID")).unwrap().clone();
        let code = q.get("k").or_else(|| q.get("code")).unwrap().clone();
        assert_eq!(m.message_id, format!("<passkey-link-{code_id}@id.example.com>"));
        let prev = id_of.insert(m.rcpt_tos[0].clone(), m.message_id.clone());
        assert!(prev.is_none() || prev.as_ref() == Some(&m.message_id), "a duplicate carries the same id");
        codes.push(code);
        codes.push(link);
    }
    assert_eq!(id_of.len(), 6);
    // The delivery state is visible in the user's events (read next to the running server).
    let user = users.get("crash0@example.com").unwrap();
    let start = Instant::now();
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_passlink"))
            .args(["events", "--user", user, "--data-dir", data.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["type"], "user.human.added");
        let sent = lines.iter().any(|l| l["type"] == "user.human.passwordless.initialization.code.sent");
        if sent {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no code.sent event: {lines:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    terminate_and_wait(&mut second);

    // No code, link or token in any log line, at trace level, in either run.
    for log in ["run1.log", "run2.log"] {
        let mut text = String::new();
        std::fs::File::open(dir.join(log)).unwrap().read_to_string(&mut text).unwrap();
        assert!(
            text.contains("registration link delivered") || log == "run1.log",
            "{log} shows the deliveries"
        );
        for secret in codes.iter().chain([&token]) {
            assert!(!text.contains(secret.as_str()), "{log} contains a secret");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn terminate_and_wait(child: &mut Child) {
    let ok = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success();
    assert!(ok);
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
}
