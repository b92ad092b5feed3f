//! The events webhook on two replicas sharing one PostgreSQL schema (`PASSLINK_TEST_POSTGRES`,
//! default `postgres://postgres@127.0.0.1:5432/test`): both run the events worker, the receiver
//! refuses the first attempts (503), and still every user's events arrive in the user's order,
//! each id accepted once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use passlink_core::secret::Secret;
use passlink_server::config::{Delivery, EventsWebhook};
use passlink_server::{Config, Server};
use passlink_testkit::{PgRun, WebhookReceiver};
use serde_json::{Value, json};

const LINK: &str = "zitadel.user.v2beta.UserService/CreatePasskeyRegistrationLink";

async fn start(run: &PgRun, replica: &str, machine_id: u16, events: &str, links: &str) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = Config::new(listener.local_addr().unwrap(), run.dir.join(replica));
    cfg.database = Some(run.database());
    cfg.keys_file = Some(run.dir.join("keys.json"));
    cfg.machine_id = Some(machine_id);
    cfg.code_lifetime = Duration::from_secs(2);
    cfg.delivery = Delivery::Webhook { url: links.to_string(), secret: Secret::new("links") };
    cfg.events_webhook = Some(EventsWebhook::new(events, Secret::new("events")));
    cfg.delivery_poll_interval = Duration::from_millis(100);
    cfg.delivery_policy.min_backoff = Duration::from_millis(100);
    cfg.delivery_policy.max_backoff = Duration::from_millis(400);
    Server::start(cfg, listener).await.unwrap_or_else(|e| panic!("passlink on PostgreSQL {}: {e}", run.url))
}

async fn call(server: &Server, rpc: &str, token: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("http://{}/{rpc}", server.addr))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{rpc}");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deliver_each_users_events_in_order() {
    let run = PgRun::new("events");
    let events = WebhookReceiver::start(vec![503; 12]).await;
    let links = WebhookReceiver::start(vec![410; 100]).await;
    let a = start(&run, "a", 1, &events.url, &links.url).await;
    let b = start(&run, "b", 2, &events.url, &links.url).await;
    let token = std::fs::read_to_string(&a.admin_token_file).unwrap().trim().to_string();
    let org = a.app.store().instance().await.unwrap().unwrap().default_org_id;
    // Per user: two links whose delivery fails for good (link.delivery_failed), both codes then
    // expire unredeemed (registration_code.expired): four events, requested on both replicas.
    let mut users = Vec::new();
    for i in 0..4 {
        let user = call(
            &a,
            "zitadel.user.v2.UserService/AddHumanUser",
            &token,
            json!({"organization": {"orgId": org}, "profile": {"givenName": "Ada", "familyName": format!("E{i}")},
                   "email": {"email": format!("ev{i}@example.com"), "isVerified": true}}),
        )
        .await["userId"]
            .as_str()
            .unwrap()
            .to_string();
        for server in [&a, &b] {
            call(server, LINK, &token, json!({"userId": user, "sendLink": {}})).await;
        }
        users.push(user);
    }
    let accepted = |hooks: &[passlink_testkit::Hook]| -> Vec<Value> {
        hooks.iter().filter(|h| h.status == 200).map(|h| serde_json::from_slice(&h.body).unwrap()).collect()
    };
    let start_wait = std::time::Instant::now();
    loop {
        let got = accepted(&events.hooks());
        let ids: HashSet<&str> = got.iter().map(|v| v["id"].as_str().unwrap()).collect();
        if ids.len() >= 16 {
            break;
        }
        assert!(start_wait.elapsed() < Duration::from_secs(60), "{} of 16 events: {got:?}", ids.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hooks = events.hooks();
    assert!(hooks.iter().any(|h| h.status == 503), "the outage was met");
    let mut count: HashMap<String, usize> = HashMap::new();
    let mut by_user: HashMap<String, Vec<u64>> = HashMap::new();
    for v in accepted(&hooks) {
        let id = v["id"].as_str().unwrap().to_string();
        *count.entry(id.clone()).or_default() += 1;
        let user = v["userId"].as_str().unwrap().to_string();
        let seq: u64 = id.rsplit('-').next().unwrap().parse().unwrap();
        let seqs = by_user.entry(user).or_default();
        if !seqs.contains(&seq) {
            seqs.push(seq);
        }
    }
    assert!(count.values().all(|n| *n == 1), "each id accepted once: {count:?}");
    for u in &users {
        let seqs = &by_user[u];
        assert_eq!(seqs.len(), 4, "{u}: {seqs:?}");
        assert!(seqs.windows(2).all(|p| p[0] < p[1]), "{u}: out of order {seqs:?}");
        let types: Vec<String> = accepted(&hooks)
            .iter()
            .filter(|v| v["userId"] == u.as_str())
            .map(|v| v["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types.iter().filter(|t| *t == "link.delivery_failed").count(), 2, "{u}: {types:?}");
        assert_eq!(types.iter().filter(|t| *t == "registration_code.expired").count(), 2, "{u}: {types:?}");
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
