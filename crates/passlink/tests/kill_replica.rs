//! Two real `passlink` processes on one PostgreSQL schema under load; one is killed with SIGKILL
//! in the middle: the other keeps serving (every request it gets succeeds), and every link either
//! replica acknowledged with 200 is in the database afterwards.
//!
//! PostgreSQL from `PASSLINK_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`);
//! a schema of its own per run, dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Users per replica (one load worker per user, so workers never race on one aggregate).
const WORKERS_PER_REPLICA: usize = 6;

/// The schema, data directories and processes of this run; killed, dropped and removed at the
/// end, also on panic.
struct Run {
    pg: passlink_testkit::PgRun,
    children: Vec<Child>,
}

impl std::ops::Deref for Run {
    type Target = passlink_testkit::PgRun;
    fn deref(&self) -> &passlink_testkit::PgRun {
        &self.pg
    }
}

impl Run {
    /// Start a replica; returns its base URL and its index in `children`.
    async fn replica(&mut self, name: &str, keys: &Path, machine_id: u16) -> (String, usize) {
        self.replica_with(name, keys, machine_id, &[]).await
    }

    /// [`Run::replica`] with more flags.
    async fn replica_with(
        &mut self,
        name: &str,
        keys: &Path,
        machine_id: u16,
        extra: &[String],
    ) -> (String, usize) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = self.dir.join(name);
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_passlink"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data)
            .arg("--database")
            .arg(self.database())
            .arg("--keys-file")
            .arg(keys)
            .args(["--machine-id", &machine_id.to_string(), "--log", "info"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push(child);
        let base = format!("http://127.0.0.1:{port}");
        let c = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = c.get(format!("{base}/readyz")).send().await
                && r.status() == 200
            {
                break;
            }
            if let Ok(Some(status)) = self.children.last_mut().unwrap().try_wait() {
                let log = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
                panic!(
                    "replica {name} exited ({status}); is PostgreSQL reachable at {} (set \
                     PASSLINK_TEST_POSTGRES)?\n{log}",
                    self.url
                );
            }
            assert!(Instant::now() < deadline, "replica {name} not ready within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (base, self.children.len() - 1)
    }

    /// How many of `ids` are rows of `passkey_codes` in this run's schema.
    async fn codes_present(&self, ids: &[String]) -> i64 {
        let mut cfg: tokio_postgres::Config = self.url.parse().unwrap();
        cfg.options(format!("-c search_path={}", self.schema));
        let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
        let task = tokio::spawn(conn);
        let n: i64 = client
            .query_one("SELECT count(*) FROM passkey_codes WHERE id = ANY($1)", &[&ids])
            .await
            .unwrap()
            .get(0);
        drop(client);
        let _ = task.await;
        n
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // Processes first; the schema and directory go with `pg` afterwards.
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn post(c: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let r = c.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// One load worker: links for `user` on `base` until `stop`; the code ids acknowledged with 200.
/// On the killed replica the loop ends at the first transport error; any other failure panics.
async fn worker(
    base: String,
    token: String,
    user: String,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    may_die: bool,
) -> Vec<String> {
    let c = reqwest::Client::new();
    let link = format!("{base}/v2beta/users/{user}/passkeys/registration_link");
    let mut acked = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let r = match c.post(&link).bearer_auth(&token).json(&json!({"returnCode": {}})).send().await {
            Ok(r) => r,
            Err(e) if may_die => {
                eprintln!("{base}: {e} (killed)");
                break;
            }
            Err(e) => panic!("the surviving replica {base} failed a request: {e}"),
        };
        let status = r.status().as_u16();
        // A response cut off by the kill is not an acknowledgement.
        let body = match r.json::<Value>().await {
            Ok(b) => b,
            Err(e) if may_die => {
                eprintln!("{base}: {e} (killed while answering)");
                break;
            }
            Err(e) => panic!("the surviving replica {base}: unreadable response: {e}"),
        };
        assert_eq!(status, 200, "{base}: link for {user}: {body}");
        acked.push(body["code"]["id"].as_str().expect("code.id").to_string());
        done.fetch_add(1, Ordering::SeqCst);
    }
    acked
}

impl Run {
    fn new(tag: &str) -> Run {
        Run { pg: passlink_testkit::PgRun::new(tag), children: Vec::new() }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_one_replica_under_load_loses_no_acknowledged_link() {
    let mut run = Run::new("kill9");

    // A first: it generates the keys and bootstraps; B shares A's keys file.
    let keys = run.dir.join("a").join("keys.json");
    let (a, a_index) = run.replica("a", &keys, 1).await;
    let token = std::fs::read_to_string(run.dir.join("a").join("admin.pat")).unwrap().trim().to_string();
    let (b, _) = run.replica("b", &keys, 2).await;

    // Users, half created on each replica.
    let c = reqwest::Client::new();
    let (s, org) = post(&c, format!("{a}/v2/organizations"), &token, json!({"name": "kill9"})).await;
    assert_eq!(s, 201, "{org}");
    let org = org["organizationId"].as_str().unwrap().to_string();
    let mut users = Vec::new();
    for i in 0..2 * WORKERS_PER_REPLICA {
        let base = if i % 2 == 0 { &a } else { &b };
        let (s, u) = post(
            &c,
            format!("{base}/v2beta/users/human"),
            &token,
            json!({"organization": {"orgId": org}, "profile": {"givenName": "K", "familyName": format!("{i}")},
                   "email": {"email": format!("k{i}@example.com"), "isVerified": true}}),
        )
        .await;
        assert_eq!(s, 201, "{u}");
        users.push(u["userId"].as_str().unwrap().to_string());
    }

    // Load on both; kill -9 A in the middle; B keeps being loaded for a while after.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let (mut on_a, mut on_b) = (Vec::new(), Vec::new());
    for (i, user) in users.iter().enumerate() {
        let (to_a, base) = if i % 2 == 0 { (true, a.clone()) } else { (false, b.clone()) };
        let w = tokio::spawn(worker(base, token.clone(), user.clone(), stop.clone(), done.clone(), to_a));
        if to_a { on_a.push(w) } else { on_b.push(w) }
    }
    let t = Instant::now();
    while done.load(Ordering::SeqCst) < 300 {
        assert!(t.elapsed() < Duration::from_secs(20), "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut replica_a = run.children.swap_remove(a_index);
    replica_a.kill().unwrap(); // SIGKILL
    let status = replica_a.wait().unwrap();
    assert!(!status.success(), "A was killed: {status:?}");
    let before_kill = done.load(Ordering::SeqCst);
    let mut acked: Vec<String> = Vec::new();
    for w in on_a {
        acked.extend(
            tokio::time::timeout(Duration::from_secs(10), w).await.expect("A's workers end").unwrap(),
        );
    }
    let from_a = acked.len();

    // B goes on, also for the users that were loaded on A.
    let mut after = Vec::new();
    for user in users.iter().step_by(2) {
        after.push(tokio::spawn(worker(
            b.clone(),
            token.clone(),
            user.clone(),
            stop.clone(),
            done.clone(),
            false,
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let mut from_b = 0;
    for w in on_b.into_iter().chain(after) {
        let codes = tokio::time::timeout(Duration::from_secs(10), w).await.expect("B's workers end").unwrap();
        from_b += codes.len();
        acked.extend(codes);
    }
    let after_kill = done.load(Ordering::SeqCst) - before_kill;
    eprintln!("acknowledged: {from_a} by A (killed), {from_b} by B, {after_kill} after the kill");
    assert!(from_a > 0, "A acknowledged nothing before the kill");
    assert!(after_kill > 50, "B served only {after_kill} links after the kill");
    assert_eq!(c.get(format!("{b}/readyz")).send().await.unwrap().status(), 200);

    // No acknowledged link is lost: every acknowledged code id is a row.
    let mut unique = acked.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), acked.len(), "a code id was acknowledged twice");
    assert_eq!(run.codes_present(&acked).await, acked.len() as i64, "an acknowledged link is missing");
    // Every user, also those created on A, reads fine on B.
    for user in &users {
        let (s, v) = post(
            &c,
            format!("{b}/zitadel.user.v2beta.UserService/GetUserByID"),
            &token,
            json!({"userId": user}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
}

/// Flags that send to an SMTP server on `port`, with a short lease.
fn smtp_flags(port: u16) -> Vec<String> {
    ["--smtp-host", "127.0.0.1", "--smtp-port", &port.to_string(), "--smtp-tls", "none"]
        .into_iter()
        .chain(["--smtp-from", "passlink@id.example.com", "--delivery-lease-secs", "3"])
        .chain(["--delivery-retry-min-ms", "200", "--delivery-retry-max-secs", "1"])
        .map(str::to_string)
        .collect()
}

/// Until the SMTP server has `n` messages (panics after `within`); returns their Message-IDs.
async fn wait_messages(sink: &passlink_testkit::SmtpSink, n: usize, within: Duration) -> Vec<String> {
    let m = sink.wait_for(n, within).await;
    m.into_iter().map(|m| m.message_id).collect()
}

/// Outbox workers on two replicas: each link is delivered once (leases, `FOR UPDATE SKIP
/// LOCKED`); jobs leased by a replica that is then killed with SIGKILL, mid-send, are taken over
/// by another replica once their lease (3 s here) runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_workers_on_two_replicas_deliver_once_and_take_over_a_killed_replicas_jobs() {
    let mut run = Run::new("outbox");
    let sink = passlink_testkit::SmtpSink::start(passlink_testkit::free_port(), &run.dir.join("mail"));
    let keys = run.dir.join("a").join("keys.json");
    let (a, _) = run.replica_with("a", &keys, 11, &smtp_flags(sink.port)).await;
    let token = std::fs::read_to_string(run.dir.join("a").join("admin.pat")).unwrap().trim().to_string();
    let (b, _) = run.replica_with("b", &keys, 12, &smtp_flags(sink.port)).await;
    let c = reqwest::Client::new();
    let mut users = Vec::new();
    for i in 0..40 {
        let (s, u) = post(
            &c,
            format!("{a}/v2/users/human"),
            &token,
            json!({"username": format!("ob{i}"), "profile": {"givenName": "O", "familyName": format!("{i}")},
                   "email": {"email": format!("ob{i}@example.com"), "isVerified": true}}),
        )
        .await;
        assert_eq!(s, 201, "{u}");
        users.push(u["userId"].as_str().unwrap().to_string());
    }
    // Links requested on both replicas at once; both workers drain the one outbox.
    let mut tasks = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let base = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (c, token, user) = (c.clone(), token.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            let (s, r) =
                post(&c, format!("{base}/v2beta/users/{user}/passkeys/registration_link"), &token, json!({}))
                    .await;
            assert_eq!(s, 200, "{r}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ids = wait_messages(&sink, 40, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // room for a duplicate to show up
    let all = sink.messages();
    let mut unique: Vec<String> = all.iter().map(|m| m.message_id.clone()).collect();
    unique.sort();
    unique.dedup();
    assert_eq!((all.len(), unique.len()), (40, 40), "each link delivered exactly once ({ids:?})");
    let logs: Vec<usize> = ["a", "b"]
        .iter()
        .map(|r| {
            std::fs::read_to_string(run.dir.join(format!("{r}.log")))
                .unwrap()
                .matches("registration link delivered")
                .count()
        })
        .collect();
    eprintln!("delivered by replica a: {}, by replica b: {}", logs[0], logs[1]);
    assert_eq!(logs[0] + logs[1], 40);

    // Takeover: only replica C runs a worker, and its SMTP server never answers; C leases the
    // new jobs, starts sending, and is killed.
    for mut child in run.children.drain(..) {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    let (cbase, c_index) = run.replica_with("c", &keys, 13, &smtp_flags(hole_port)).await;
    for user in users.iter().take(5) {
        let (s, r) =
            post(&c, format!("{cbase}/v2beta/users/{user}/passkeys/registration_link"), &token, json!({}))
                .await;
        assert_eq!(s, 200, "{r}");
    }
    hole.set_nonblocking(false).unwrap();
    let (_held, _) = tokio::task::spawn_blocking(move || hole.accept().unwrap()).await.unwrap();
    let mut replica_c = run.children.swap_remove(c_index);
    replica_c.kill().unwrap(); // SIGKILL, mid-send
    replica_c.wait().unwrap();
    let killed = Instant::now();
    let (_d, _) = run.replica_with("d", &keys, 14, &smtp_flags(sink.port)).await;
    wait_messages(&sink, 45, Duration::from_secs(30)).await;
    let took = killed.elapsed();
    eprintln!("replica d delivered the killed replica's jobs {took:?} after the kill");
    assert!(took >= Duration::from_millis(1500), "taken over before the lease ran out: {took:?}");
    let all = sink.messages();
    let mut unique: Vec<String> = all.iter().map(|m| m.message_id.clone()).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 45, "every link delivered, the killed replica's too");
}
