//! The embedded SQLite store on a full disk: the data directory is a small tmpfs; 12 clients
//! create registration links while a filler file takes the rest of the space. Writes then fail
//! with 503 / UNAVAILABLE (`STORE-Unav1`; the log names SQLite's "database or disk is full"),
//! reads go on, nothing else fails and the server stays up; when the filler is deleted, writes
//! succeed again. At the end the binary is killed with SIGKILL: the database (as the kill left
//! it, and after a restart) holds every link acknowledged with 200 — before, during and after the
//! full disk — and nothing half-written.
//!
//! Mounting a tmpfs needs root (CAP_SYS_ADMIN), as `scripts/setup` and CI run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod crash;
use crash::{Ack, Run, ack_of, inspect, one_more_link_each, org_with_users};

const USERS: usize = 6;
const CLIENTS: usize = 12;
/// The tmpfs the data directory lives on.
const DISK: &str = "size=16m";
/// 503 answers to see, and how long at least, while the disk is full before space is given back.
const REFUSALS: usize = 100;
const FULL_FOR: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Counters {
    acked: AtomicUsize,
    unavailable: AtomicUsize,
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    acked: Vec<(Instant, Ack)>,
    /// 503 answers (their bodies, checked at the end).
    unavailable: Vec<Value>,
    /// Anything else that was not a 200: there must be none.
    other: Vec<String>,
    transport_errors: usize,
}

/// One client: links for `user` until `stop`, through refusals (a short pause after each).
async fn client(base: String, token: String, user: String, stop: Arc<AtomicBool>, n: Arc<Counters>) -> Seen {
    let c = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let link = format!("{base}/v2beta/users/{user}/passkeys/registration_link");
    let mut seen = Seen::default();
    while !stop.load(Ordering::SeqCst) {
        let r = match c.post(&link).bearer_auth(&token).json(&json!({"returnCode": {}})).send().await {
            Ok(r) => r,
            Err(e) => {
                seen.transport_errors += 1;
                if seen.transport_errors < 3 {
                    eprintln!("transport error: {e}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let status = r.status().as_u16();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        match status {
            200 => {
                seen.acked.push((Instant::now(), ack_of(&user, &body)));
                n.acked.fetch_add(1, Ordering::SeqCst);
            }
            503 => {
                seen.unavailable.push(body);
                n.unavailable.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => seen.other.push(format!("{status}: {body}")),
        }
    }
    seen
}

/// Write to `path` until the file system is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let mut written = 0u64;
    for chunk in [1 << 20, 64 << 10, 4 << 10, 512] {
        let buf = vec![0xa5u8; chunk];
        loop {
            match f.write(&buf) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let _ = f.sync_all();
    written
}

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_503_loses_nothing_and_recovers() {
    let dir = std::env::temp_dir().join(format!("passlink-disk-full-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut run = Run { dir: dir.clone(), child: None, mount: None };
    std::fs::create_dir_all(run.data()).unwrap();
    let mounted =
        Command::new("mount").args(["-t", "tmpfs", "-o", DISK, "tmpfs"]).arg(run.data()).output().unwrap();
    assert!(
        mounted.status.success(),
        "mounting a {DISK} tmpfs for the data directory needs root (CAP_SYS_ADMIN): {}",
        String::from_utf8_lossy(&mounted.stderr)
    );
    run.mount = Some(run.data());
    let db = run.data().join("passlink.db");
    let filler = run.data().join("filler");

    // 1. The server on the small disk, an org and the users.
    let base = run.start("server.log").await;
    let token = run.admin_token();
    let c = reqwest::Client::new();
    let (_org, users) = org_with_users(&base, &token, "disk-full", "d", USERS).await;

    // 2. Load, then the disk fills up under it.
    let stop = Arc::new(AtomicBool::new(false));
    let n = Arc::new(Counters::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client(
                base.clone(),
                token.clone(),
                users[i % USERS].clone(),
                stop.clone(),
                n.clone(),
            ))
        })
        .collect();
    wait_for("the first 100 links", Duration::from_secs(60), || n.acked.load(Ordering::SeqCst) >= 100).await;
    let filled = tokio::task::spawn_blocking({
        let filler = filler.clone();
        move || fill(&filler)
    })
    .await
    .unwrap();
    let full_at = Instant::now();
    let acked_at_full = n.acked.load(Ordering::SeqCst);
    let until_refused = wait_for("503 answers on the full disk", Duration::from_secs(120), || {
        n.unavailable.load(Ordering::SeqCst) >= REFUSALS
    })
    .await;
    tokio::time::sleep(FULL_FOR.saturating_sub(full_at.elapsed())).await;
    // Reads go on while writes are refused.
    let r = c.get(format!("{base}/v2/users/{}", users[0])).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200, "a read on the full disk");
    let ready_when_full = c.get(format!("{base}/readyz")).send().await.unwrap().status().as_u16();

    // 3. Space comes back: writes succeed again.
    std::fs::remove_file(&filler).unwrap();
    let freed_at = Instant::now();
    let acked_at_free = n.acked.load(Ordering::SeqCst);
    let unavailable_at_free = n.unavailable.load(Ordering::SeqCst);
    let until_resumed = wait_for("writes after the space came back", Duration::from_secs(60), || {
        n.acked.load(Ordering::SeqCst) >= acked_at_free + 100
    })
    .await;

    // 4. Kill -9 under the load, then stop the clients.
    run.kill_9();
    stop.store(true, Ordering::SeqCst);
    let mut seen = Seen::default();
    for w in clients {
        let s = tokio::time::timeout(Duration::from_secs(60), w).await.expect("clients end").unwrap();
        seen.acked.extend(s.acked);
        seen.unavailable.extend(s.unavailable);
        seen.other.extend(s.other);
        seen.transport_errors += s.transport_errors;
    }
    // Answers cut off by the kill are transport errors: only those at the very end are allowed.
    assert!(
        seen.other.is_empty(),
        "answers neither 200 nor 503: {:?}",
        &seen.other[..seen.other.len().min(5)]
    );
    for body in &seen.unavailable {
        assert_eq!(body["code"], 14, "UNAVAILABLE: {body}");
        assert!(body["message"].as_str().unwrap_or("").contains("STORE-Unav1"), "{body}");
    }
    assert!(
        seen.transport_errors <= CLIENTS,
        "the server went away before the kill: {}",
        seen.transport_errors
    );
    let during_full = seen.acked.iter().filter(|(t, _)| *t >= full_at && *t < freed_at).count();
    let after_free = seen.acked.iter().filter(|(t, _)| *t >= freed_at).count();
    let acked: Vec<Ack> = seen.acked.into_iter().map(|(_, a)| a).collect();
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert!(log.contains("database or disk is full"), "the log names the cause");

    // 5. The database as the kill left it, then after a restart and one more link per user.
    let (u, a, db2) = (users.clone(), acked.clone(), db.clone());
    let at_kill = tokio::task::spawn_blocking(move || inspect(&db2, &u, &a)).await.unwrap();
    let base = run.start("second.log").await;
    let mut all = acked.clone();
    all.extend(one_more_link_each(&base, &token, &users, &at_kill.max_sequence).await);
    run.terminate().await;
    let (u, a, db2) = (users.clone(), all.clone(), db.clone());
    let after = tokio::task::spawn_blocking(move || inspect(&db2, &u, &a)).await.unwrap();
    assert_eq!(after.codes, at_kill.codes + USERS);
    eprintln!(
        "disk full ({DISK}, filler {filled} bytes): {acked_at_full} links acknowledged before it; \
         {REFUSALS} 503s within {until_refused:?} ({during_full} links acknowledged while full); {} 503s in all \
         ({unavailable_at_free} before the space came back), 0 other errors; /readyz said \
         {ready_when_full} while full; writes resumed, 100 more acknowledged within \
         {until_resumed:?}; {} acknowledged after, then SIGKILL. Acknowledged {} vs stored {} \
         code events (every acknowledged one present; {} committed unacknowledged at the kill)",
        seen.unavailable.len(),
        after_free,
        acked.len(),
        at_kill.codes,
        at_kill.codes - acked.len(),
    );
}
