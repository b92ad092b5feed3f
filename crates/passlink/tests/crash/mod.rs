//! What the crash tests on the embedded SQLite store share: the binary on a temporary data
//! directory ([`Run`]), acknowledged links ([`Ack`]) and the check of a database against them
//! ([`inspect`]). Each test uses a part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const CODE_REQUESTED: &str = "user.human.passwordless.initialization.code.requested";

/// The temporary directory and the running binary: killed and removed at the end, also on panic
/// (then the server logs are printed first).
pub struct Run {
    pub dir: PathBuf,
    pub child: Option<Child>,
    /// A file system mounted (on `dir/data`) for the run: unmounted at the end.
    pub mount: Option<PathBuf>,
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for log in ["first.log", "second.log", "server.log"] {
                if let Ok(text) = std::fs::read_to_string(self.dir.join(log)) {
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    eprintln!("--- {log} (last lines) ---");
                    for line in tail.into_iter().rev() {
                        eprintln!("{line}");
                    }
                }
            }
        }
        if let Some(m) = self.mount.take() {
            let _ = Command::new("umount").arg(&m).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Run {
    /// A fresh temporary directory named after the test (and this process), nothing running.
    pub fn in_temp(name: &str) -> Run {
        let dir = std::env::temp_dir().join(format!("passlink-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Run { dir, child: None, mount: None }
    }

    /// The admin token the first start wrote.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data().join("admin.pat")).unwrap().trim().to_string()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Start the binary on this run's data directory (SQLite by default) and wait until it is
    /// ready; returns its base URL.
    pub async fn start(&mut self, log: &str) -> String {
        self.start_with(log, &[]).await
    }

    /// [`Run::start`] with more flags for `passlink serve`.
    pub async fn start_with(&mut self, log: &str, flags: &[&str]) -> String {
        assert!(self.child.is_none(), "one server at a time");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log_path = self.dir.join(log);
        let child = Command::new(env!("CARGO_BIN_EXE_passlink"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(self.data())
            .args(["--log", "info"])
            .args(flags)
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
    pub fn kill_9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed: {status:?}");
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn terminate(&mut self) {
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

/// A new organization `name` with `n` human users (emails `<prefix><i>@example.com`, verified);
/// returns the organization id and the user ids.
pub async fn org_with_users(
    base: &str,
    token: &str,
    name: &str,
    prefix: &str,
    n: usize,
) -> (String, Vec<String>) {
    let c = reqwest::Client::new();
    let (s, org) =
        post(&c, format!("{base}/v2/organizations"), token, serde_json::json!({"name": name})).await;
    assert_eq!(s, 201, "{org}");
    let org = org["organizationId"].as_str().unwrap().to_string();
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let (s, u) = post(
            &c,
            format!("{base}/v2/users/human"),
            token,
            serde_json::json!({"organization": {"orgId": org}, "profile": {"givenName": prefix.to_uppercase(), "familyName": format!("{i}")},
                   "email": {"email": format!("{prefix}{i}@example.com"), "isVerified": true}}),
        )
        .await;
        assert_eq!(s, 201, "{u}");
        users.push(u["userId"].as_str().unwrap().to_string());
    }
    (org, users)
}

/// One more returned link for each user (after a restart): each must answer 200 at the user's
/// next sequence after `max_sequence`; returns the acknowledgements.
pub async fn one_more_link_each(
    base: &str,
    token: &str,
    users: &[String],
    max_sequence: &HashMap<String, i64>,
) -> Vec<Ack> {
    let c = reqwest::Client::new();
    let mut acked = Vec::with_capacity(users.len());
    for user in users {
        let (s, body) = post(
            &c,
            format!("{base}/v2beta/users/{user}/passkeys/registration_link"),
            token,
            serde_json::json!({"returnCode": {}}),
        )
        .await;
        assert_eq!(s, 200, "after the restart: {body}");
        let a = ack_of(user, &body);
        assert_eq!(a.sequence, max_sequence[user] + 1, "sequences go on where the store left off");
        acked.push(a);
    }
    acked
}

pub async fn post(c: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let r = c.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A link acknowledged with 200.
#[derive(Debug, Clone)]
pub struct Ack {
    pub user: String,
    pub code_id: String,
    pub sequence: i64,
}

pub fn ack_of(user: &str, body: &Value) -> Ack {
    let code_id = body["code"]["id"].as_str().unwrap_or_else(|| panic!("code.id in {body}")).to_string();
    let sequence = body["details"]["sequence"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("details.sequence in {body}"));
    Ack { user: user.to_string(), code_id, sequence }
}

/// What a database holds for the test's users.
pub struct Stored {
    /// Per user, the highest event sequence.
    pub max_sequence: HashMap<String, i64>,
    /// Code events (= code rows) of the test's users.
    pub codes: usize,
}

/// Check a database against the acknowledged links: integrity, every user's events 1..=max
/// without a gap, every acknowledgement at its (user, sequence) as a code event with its code id,
/// a code row for each code event and none without one.
pub fn inspect(db: &Path, users: &[String], acked: &[Ack]) -> Stored {
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
