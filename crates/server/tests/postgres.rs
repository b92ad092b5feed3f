//! Two in-process replicas on one PostgreSQL schema (`PASSLINK_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`; a schema of its own per run, dropped at the end).
//! A PostgreSQL that cannot be reached fails the test with that message.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use passlink_server::{Config, Server};
use serde_json::{Value, json};

const LINK: &str = "zitadel.user.v2beta.UserService/CreatePasskeyRegistrationLink";

/// A schema and data directories of this run (dropped and removed at the end, also on panic).
struct Run(passlink_testkit::PgRun);

impl std::ops::Deref for Run {
    type Target = passlink_testkit::PgRun;
    fn deref(&self) -> &passlink_testkit::PgRun {
        &self.0
    }
}

impl Run {
    fn new(tag: &str) -> Run {
        Run(passlink_testkit::PgRun::new(tag))
    }

    async fn start(&self, replica: &str, keys: &str, machine_id: u16) -> Result<Server, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut cfg = Config::new(listener.local_addr().unwrap(), self.dir.join(replica));
        cfg.database = Some(self.database());
        cfg.keys_file = Some(self.dir.join(keys));
        cfg.machine_id = Some(machine_id);
        Server::start(cfg, listener).await
    }
}

/// A Connect JSON call; `Err((http status, body))` on failure.
async fn call(server: &Server, rpc: &str, token: &str, body: Value) -> Result<Value, (u16, Value)> {
    let r = reqwest::Client::new()
        .post(format!("http://{}/{rpc}", server.addr))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if status == 200 { Ok(v) } else { Err((status, v)) }
}

fn sequence(v: &Value) -> u64 {
    v["details"]["sequence"].as_str().expect("details.sequence").parse().expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_database() {
    let run = Run::new("replicas");
    let a = match run.start("a", "keys.json", 1).await {
        Ok(a) => a,
        Err(e) => panic!(
            "cannot start passlink on PostgreSQL {} (set PASSLINK_TEST_POSTGRES to a reachable \
             PostgreSQL URL): {e}",
            run.url
        ),
    };
    let b = run.start("b", "keys.json", 2).await.expect("replica b");
    // Bootstrap happened once: on A, which wrote the token; B found the instance and wrote none.
    let token = std::fs::read_to_string(&a.admin_token_file).expect("admin.pat on a").trim().to_string();
    assert!(!b.admin_token_file.exists(), "the second replica bootstrapped again");
    let org = a.app.store().instance().await.unwrap().expect("instance").default_org_id;

    // A user created on A is visible on B at once, with A's admin token.
    let user = call(
        &a,
        "zitadel.user.v2.UserService/AddHumanUser",
        &token,
        json!({"organization": {"orgId": org}, "profile": {"givenName": "Ada", "familyName": "L"},
               "email": {"email": "ada@example.com", "isVerified": true}}),
    )
    .await
    .expect("AddHumanUser on a");
    let user_id = user["userId"].as_str().unwrap().to_string();
    let got = call(&b, "zitadel.user.v2beta.UserService/GetUserByID", &token, json!({"userId": user_id}))
        .await
        .expect("GetUserByID on b");
    assert_eq!(got["user"]["userId"], json!(user_id), "{got}");

    // A link on A, then one on B: B continues A's sequence.
    let l1 = call(&a, LINK, &token, json!({"userId": user_id, "returnCode": {}})).await.expect("link on a");
    let l2 = call(&b, LINK, &token, json!({"userId": user_id, "returnCode": {}})).await.expect("link on b");
    assert_eq!(sequence(&l2), sequence(&l1) + 1, "{l1} then {l2}");
    let code_id = l1["code"]["id"].as_str().unwrap();
    let code = b.app.store().code(code_id).await.unwrap().expect("A's code is readable on B");
    assert_eq!(code.user_id, user_id);

    // Both replicas at once on one user: every request succeeds or fails cleanly as retryable
    // (409 aborted); the successes have distinct sequences and the log is gap-free.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (server, token, user_id) =
            (if i % 2 == 0 { a.addr } else { b.addr }, token.clone(), user_id.clone());
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(format!("http://{server}/{LINK}"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(json!({"userId": user_id, "returnCode": {}}).to_string())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (200, v) => seqs.push(sequence(&v)),
            (409, v) => assert_eq!(v["code"], json!("aborted"), "{v}"),
            (status, v) => panic!("concurrent link on two replicas: {status} {v}"),
        }
    }
    assert!(!seqs.is_empty(), "no concurrent link succeeded");
    seqs.sort_unstable();
    let successes = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), successes, "two successes with one sequence");
    let log = a.app.store().events_of(passlink_core::event::AggregateKind::User, &user_id).await.unwrap();
    let log_seqs: Vec<u64> = log.iter().map(|e| e.sequence).collect();
    assert_eq!(log_seqs, (1..=log.len() as u64).collect::<Vec<_>>(), "gap-free log");
    assert_eq!(log.len() as u64, sequence(&l2) + seqs.len() as u64, "one event per success, none lost");

    // A replica with other server keys refuses to start on this database.
    let err = run.start("c", "other-keys.json", 3).await.err().expect("mismatched keys must not start");
    assert!(err.contains("same --keys-file"), "{err}");

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
