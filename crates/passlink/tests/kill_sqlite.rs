//! The embedded SQLite store survives `kill -9` under write load: 16 clients create registration
//! links (several of them on one user at once) until the binary is killed with SIGKILL. The
//! database as the crash left it (a copy, recovered by SQLite on open) and the database after a
//! restart of the binary hold every link acknowledged with 200, at the sequence it was
//! acknowledged with, and nothing half-written: each user's events run 1..=max without a gap, and
//! a code row exists exactly for each code event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const USERS: usize = 8;
const CLIENTS: usize = 16;
/// Clients on the first user: its requests always race each other.
const CLIENTS_ON_HOT_USER: usize = 6;
/// Load before the kill, at least.
const LOAD: Duration = Duration::from_millis(1500);
/// The load goes on until the server has started its WAL over (a RESTART checkpoint: the next
/// write rewrites the file from its beginning, the older frames stay behind it) within this.
const WAL_RESTART_WITHIN: Duration = Duration::from_secs(120);
const CODE_REQUESTED: &str = "user.human.passwordless.initialization.code.requested";

/// The temporary directory and the running binary: killed and removed at the end, also on panic
/// (then the server logs are printed first).
struct Run {
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for log in ["first.log", "second.log"] {
                if let Ok(text) = std::fs::read_to_string(self.dir.join(log)) {
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    eprintln!("--- {log} (last lines) ---");
                    for line in tail.into_iter().rev() {
                        eprintln!("{line}");
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Run {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Start the binary on this run's data directory (SQLite by default) and wait until it is
    /// ready; returns its base URL.
    async fn start(&mut self, log: &str) -> String {
        assert!(self.child.is_none(), "one server at a time");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log_path = self.dir.join(log);
        let child = Command::new(env!("CARGO_BIN_EXE_passlink"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(self.data())
            .args(["--log", "info"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let base = format!("http://127.0.0.1:{port}");
        let c = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = c.get(format!("{base}/readyz")).send().await
                && r.status() == 200
            {
                return base;
            }
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                self.child = None;
                panic!("passlink exited before it was ready ({status})");
            }
            assert!(Instant::now() < deadline, "passlink not ready within 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL.
    fn kill_9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed: {status:?}");
    }

    /// SIGTERM, then wait for a clean exit.
    async fn terminate(&mut self) {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success();
        if !ok {
            let _ = child.kill();
        }
        let (child, status) = tokio::task::spawn_blocking(move || {
            let status = child.wait();
            (child, status)
        })
        .await
        .unwrap();
        drop(child);
        let status = status.unwrap();
        assert!(ok && status.success(), "clean exit on SIGTERM: {status:?}");
    }
}

async fn post(c: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let r = c.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A link acknowledged with 200.
#[derive(Debug, Clone)]
struct Ack {
    user: String,
    code_id: String,
    sequence: i64,
}

fn ack_of(user: &str, body: &Value) -> Ack {
    let code_id = body["code"]["id"].as_str().unwrap_or_else(|| panic!("code.id in {body}")).to_string();
    let sequence = body["details"]["sequence"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("details.sequence in {body}"));
    Ack { user: user.to_string(), code_id, sequence }
}

/// One client: links for `user` until the server goes away (a transport error, or a response
/// cut off by the kill: not an acknowledgement) or `stop`. Returns the acknowledged links and
/// the answers that were not 200 (there must be none).
async fn client(
    base: String,
    token: String,
    user: String,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> (Vec<Ack>, Vec<String>) {
    let c = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let link = format!("{base}/v2beta/users/{user}/passkeys/registration_link");
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    while !stop.load(Ordering::SeqCst) {
        let Ok(r) = c.post(&link).bearer_auth(&token).json(&json!({"returnCode": {}})).send().await else {
            break;
        };
        let status = r.status().as_u16();
        let Ok(body) = r.json::<Value>().await else { break };
        if status == 200 {
            acked.push(ack_of(&user, &body));
            done.fetch_add(1, Ordering::SeqCst);
        } else {
            refused.push(format!("{status}: {body}"));
        }
    }
    (acked, refused)
}

/// What a database holds for the test's users.
struct Stored {
    /// Per user, the highest event sequence.
    max_sequence: HashMap<String, i64>,
    /// Code events (= code rows) of the test's users.
    codes: usize,
}

/// Check a database against the acknowledged links: integrity, every user's events 1..=max
/// without a gap, every acknowledgement at its (user, sequence) as a code event with its code id,
/// a code row for each code event and none without one.
fn inspect(db: &Path, users: &[String], acked: &[Ack]) -> Stored {
    let conn = rusqlite::Connection::open(db).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok", "{}", db.display());

    let mut events: HashMap<String, BTreeMap<i64, (String, Option<String>)>> = HashMap::new();
    let mut st = conn
        .prepare(
            "SELECT sequence, event_type, payload FROM events WHERE aggregate_type = 'user' AND \
             aggregate_id = ?1 ORDER BY sequence",
        )
        .unwrap();
    for user in users {
        let rows: Vec<(i64, String, String)> = st
            .query_map([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let sequences: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let expected: Vec<i64> = (1..=sequences.len() as i64).collect();
        assert_eq!(sequences, expected, "{}: user {user}'s events are not 1..=max", db.display());
        let by_seq = rows
            .into_iter()
            .map(|(seq, kind, payload)| {
                let v: Value = serde_json::from_str(&payload)
                    .unwrap_or_else(|e| panic!("event {user}/{seq}: payload is not JSON ({e})"));
                let code = (kind == CODE_REQUESTED).then(|| {
                    let id = v["payload"]["id"].as_str().or(v["id"].as_str());
                    id.unwrap_or_else(|| panic!("event {user}/{seq}: no code id in {v}")).to_string()
                });
                (seq, (kind, code))
            })
            .collect();
        events.insert(user.clone(), by_seq);
    }

    let mut code_rows: HashMap<String, String> = HashMap::new();
    let mut st = conn.prepare("SELECT id, user_id, data FROM passkey_codes WHERE user_id = ?1").unwrap();
    for user in users {
        let rows: Vec<(String, String, String)> = st
            .query_map([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (id, owner, data) in rows {
            let _: Value =
                serde_json::from_str(&data).unwrap_or_else(|e| panic!("code row {id}: data ({e})"));
            code_rows.insert(id, owner);
        }
    }

    // Nothing half-written: the code rows are exactly the code events, user by user.
    let mut codes = 0;
    for user in users {
        let from_events: HashSet<&str> =
            events[user].values().filter_map(|(_, code)| code.as_deref()).collect();
        let from_rows: HashSet<&str> =
            code_rows.iter().filter(|(_, owner)| *owner == user).map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            from_events.len(),
            events[user].values().filter(|(kind, _)| kind == CODE_REQUESTED).count(),
            "{}: user {user}: a code id appears in two events",
            db.display()
        );
        let only_events: Vec<_> = from_events.difference(&from_rows).collect();
        let only_rows: Vec<_> = from_rows.difference(&from_events).collect();
        assert!(
            only_events.is_empty() && only_rows.is_empty(),
            "{}: user {user}: code events without a row {only_events:?}, rows without an event {only_rows:?}",
            db.display()
        );
        codes += from_events.len();
    }

    // Nothing acknowledged is lost, and it is where it was acknowledged.
    for a in acked {
        let Some((kind, code)) = events[&a.user].get(&a.sequence) else {
            panic!("{}: acknowledged link {a:?} is missing (no event at its sequence)", db.display());
        };
        assert_eq!(kind, CODE_REQUESTED, "{}: {a:?}", db.display());
        assert_eq!(code.as_deref(), Some(a.code_id.as_str()), "{}: {a:?}", db.display());
        assert_eq!(code_rows.get(&a.code_id), Some(&a.user), "{}: code row of {a:?}", db.display());
    }

    let max_sequence = users.iter().map(|u| (u.clone(), events[u].len() as i64)).collect();
    Stored { max_sequence, codes }
}

/// The WAL header's checkpoint sequence number and salts (bytes 12..24): they change each time
/// SQLite starts the WAL over. None while there is no WAL.
fn wal_generation(wal: &Path) -> Option<[u8; 12]> {
    use std::io::Read as _;
    let mut header = [0u8; 24];
    std::fs::File::open(wal).ok()?.read_exact(&mut header).ok()?;
    Some(header[12..24].try_into().unwrap())
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_link_load_loses_no_acknowledged_link() {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("passlink-kill-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut run = Run { dir, child: None };
    let db = run.data().join("passlink.db");
    let wal = run.data().join("passlink.db-wal");

    // 1. A fresh SQLite data directory, an org and the users.
    let base = run.start("first.log").await;
    let token = std::fs::read_to_string(run.data().join("admin.pat")).unwrap().trim().to_string();
    let c = reqwest::Client::new();
    let (s, org) = post(&c, format!("{base}/v2/organizations"), &token, json!({"name": "kill-sqlite"})).await;
    assert_eq!(s, 201, "{org}");
    let org = org["organizationId"].as_str().unwrap().to_string();
    let mut users = Vec::new();
    for i in 0..USERS {
        let (s, u) = post(
            &c,
            format!("{base}/v2/users/human"),
            &token,
            json!({"organization": {"orgId": org}, "profile": {"givenName": "K", "familyName": format!("{i}")},
                   "email": {"email": format!("k{i}@example.com"), "isVerified": true}}),
        )
        .await;
        assert_eq!(s, 201, "{u}");
        users.push(u["userId"].as_str().unwrap().to_string());
    }
    let db_before = file_len(&db);

    // 2. Load: CLIENTS_ON_HOT_USER clients on the first user, the others spread over the rest.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let user = if i < CLIENTS_ON_HOT_USER {
                users[0].clone()
            } else {
                users[1 + (i - CLIENTS_ON_HOT_USER) % (USERS - 1)].clone()
            };
            tokio::spawn(client(base.clone(), token.clone(), user, stop.clone(), done.clone()))
        })
        .collect();
    let t = Instant::now();
    while done.load(Ordering::SeqCst) == 0 {
        assert!(t.elapsed() < Duration::from_secs(30), "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // At least LOAD, and until the WAL has started over: then the kill lands in a reused WAL,
    // with frames of its previous generation behind the live ones, which recovery must ignore.
    let wal_start = wal_generation(&wal);
    tokio::time::sleep(LOAD).await;
    while wal_generation(&wal) == wal_start {
        assert!(
            t.elapsed() < WAL_RESTART_WITHIN,
            "the WAL was not started over within {WAL_RESTART_WITHIN:?} ({} links, WAL {} bytes)",
            done.load(Ordering::SeqCst),
            file_len(&wal)
        );
        assert!(clients.iter().all(|c| !c.is_finished()), "a client stopped under load");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let restarted_after = t.elapsed();
    // Somewhere in the new generation's first few thousand frames (varies from run to run).
    let extra =
        Duration::from_millis(50 + u64::from(std::process::id() ^ started.elapsed().subsec_nanos()) % 700);
    tokio::time::sleep(extra).await;
    assert!(clients.iter().all(|c| !c.is_finished()), "every client is still sending at the kill");
    let (db_at_kill, wal_at_kill) = (file_len(&db), file_len(&wal));
    run.kill_9();
    let at_kill = done.load(Ordering::SeqCst);
    let load_time = t.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut acked: Vec<Ack> = Vec::new();
    let mut refused = Vec::new();
    for w in clients {
        let (a, r) = tokio::time::timeout(Duration::from_secs(30), w).await.expect("clients end").unwrap();
        acked.extend(a);
        refused.extend(r);
    }
    assert!(refused.is_empty(), "answers other than 200 under load: {:?}", &refused[..refused.len().min(5)]);
    let hot = acked.iter().filter(|a| a.user == users[0]).count();
    eprintln!(
        "acknowledged {} links in {load_time:?} ({at_kill} counted at the kill; {hot} on the hot user); \
         db file {db_before} -> {db_at_kill} bytes, WAL {wal_at_kill} bytes at the kill; the WAL \
         started over after {restarted_after:?}, killed {extra:?} later",
        acked.len()
    );
    // 4. The load was real.
    assert!(acked.len() >= 300, "only {} links acknowledged before the kill", acked.len());
    assert!(hot > 0, "the hot user got no link");
    let mut ids: Vec<&str> = acked.iter().map(|a| a.code_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), acked.len(), "a code id was acknowledged twice");
    let mut seqs: Vec<(&str, i64)> = acked.iter().map(|a| (a.user.as_str(), a.sequence)).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), acked.len(), "a (user, sequence) was acknowledged twice");

    // 3a. The database as the crash left it: a copy of the file and its WAL, opened (and so
    // recovered) by SQLite alone.
    let crashed = run.dir.join("crashed");
    std::fs::create_dir_all(&crashed).unwrap();
    std::fs::copy(&db, crashed.join("passlink.db")).unwrap();
    if wal.exists() {
        std::fs::copy(&wal, crashed.join("passlink.db-wal")).unwrap();
    }
    let (u, a) = (users.clone(), acked.clone());
    let at_crash =
        tokio::task::spawn_blocking(move || inspect(&crashed.join("passlink.db"), &u, &a)).await.unwrap();
    eprintln!(
        "after the crash: {} code events stored for {} acknowledged ({} committed, not acknowledged)",
        at_crash.codes,
        acked.len(),
        at_crash.codes - acked.len()
    );

    // 3b. The binary starts again on the crashed directory and goes on where the crash left off.
    let base = run.start("second.log").await;
    for user in &users {
        let (s, body) = post(
            &c,
            format!("{base}/v2beta/users/{user}/passkeys/registration_link"),
            &token,
            json!({"returnCode": {}}),
        )
        .await;
        assert_eq!(s, 200, "after the restart: {body}");
        let a = ack_of(user, &body);
        assert_eq!(a.sequence, at_crash.max_sequence[user] + 1, "sequences go on after the crash");
        acked.push(a);
    }
    run.terminate().await;

    // 3c. And after the restart and a clean stop, the database itself.
    let (u, a) = (users.clone(), acked.clone());
    let db2 = db.clone();
    let after = tokio::task::spawn_blocking(move || inspect(&db2, &u, &a)).await.unwrap();
    assert_eq!(after.codes, at_crash.codes + USERS, "the restart lost or added a code");
    eprintln!("kill_sqlite took {:?}", started.elapsed());
}
