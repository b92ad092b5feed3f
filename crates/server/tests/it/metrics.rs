//! `GET /metrics` scraped from the running server after calls over every protocol, read by the
//! Prometheus project's own text-format parser (Python's `prometheus_client`, installed into
//! `tests/smtp/.venv`): the request counters and histograms moved with the right labels, the
//! store's batches, the outbox depth, build info; `--metrics-listen` moves it to its own port.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::clients::{self, Api, Rest};
use crate::harness;
use crate::setup::ok;

/// One sample as the parser read it.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// Parse an exposition with `prometheus_client.parser` (fails on anything malformed).
pub(crate) fn parse(text: &str) -> Vec<Sample> {
    let mut child = Command::new(passlink_testkit::smtp_python())
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    parsed
        .iter()
        .map(|s| Sample {
            name: s["name"].as_str().unwrap().to_string(),
            labels: s["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
            value: s["value"].as_f64().unwrap(),
        })
        .collect()
}

/// Scrape `url` and parse it.
pub(crate) async fn scrape(url: &str) -> Vec<Sample> {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    assert!(r.headers().contains_key("x-request-id"));
    parse(&r.text().await.unwrap())
}

/// The value of the sample `name` whose labels include `labels` (0 when there is none).
pub(crate) fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

const ADD: &str = "zitadel.user.v2beta.UserService/AddHumanUser";
const GET: &str = "zitadel.user.v2.UserService/GetUserByID";
const LINK: &str = "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink";

#[tokio::test]
async fn metrics_count_requests_by_rpc_protocol_and_status() {
    let s = harness::start("metrics").await;
    let token = s.admin_token.clone();
    let mut users = Vec::new();
    for api in clients::all(&s.base) {
        let name = api.name();
        let added = ok(api
            .call(
                ADD,
                json!({"profile": {"givenName": "M", "familyName": name}, "email": {"email": format!("{name}@example.com")}}),
                Some(&token),
                None,
            )
            .await);
        users.push(added["userId"].as_str().unwrap().to_string());
        let missing = api.call(GET, json!({"userId": "404404"}), Some(&token), None).await;
        assert_eq!(missing.unwrap_err().code, 5, "{name}");
    }
    // Two links queued for delivery (no worker in these tests): the outbox depth.
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    for user in &users[..2] {
        ok(rest.call(LINK, json!({"userId": user, "sendLink": {}}), Some(&token), None).await);
    }
    let page =
        reqwest::get(format!("{}/ui/passkey/register?userID=1&codeID=2&code=3", s.base)).await.unwrap();
    assert!(page.headers().contains_key("x-request-id"));

    let samples = scrape(&format!("{}/metrics", s.base)).await;
    let requests = |rpc: &str, protocol: &str, status: &str| {
        value(
            &samples,
            "passlink_requests_total",
            &[("rpc", rpc), ("protocol", protocol), ("status", status)],
        )
    };
    // rest, Connect JSON + Connect binary, gRPC, gRPC-web: one call each (two for Connect).
    for (protocol, n) in [("rest", 1.0), ("connect", 2.0), ("grpc", 1.0), ("grpc-web", 1.0)] {
        assert_eq!(requests(ADD, protocol, "OK"), n, "AddHumanUser over {protocol}");
        assert_eq!(requests(GET, protocol, "NOT_FOUND"), n, "GetUserByID over {protocol}");
        let count = value(
            &samples,
            "passlink_request_duration_seconds_count",
            &[("rpc", ADD), ("protocol", protocol), ("status", "OK")],
        );
        assert_eq!(count, n, "the latency histogram counts the same calls ({protocol})");
        let inf = value(
            &samples,
            "passlink_request_duration_seconds_bucket",
            &[("rpc", ADD), ("protocol", protocol), ("status", "OK"), ("le", "+Inf")],
        );
        assert_eq!(inf, n);
    }
    let smallest = samples
        .iter()
        .filter(|s| s.name == "passlink_request_duration_seconds_bucket")
        .filter_map(|s| s.labels.get("le").and_then(|l| l.parse::<f64>().ok()))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(smallest, 0.0005, "buckets start at 0.5 ms");
    assert_eq!(requests(LINK, "rest", "OK"), 2.0);
    assert_eq!(requests("/ui/passkey/register", "http", "2xx"), 1.0, "a hosted page is counted by its route");
    assert!(
        samples
            .iter()
            .filter(|s| s.name == "passlink_requests_total")
            .all(|s| !s.labels["rpc"].contains("404404")),
        "no raw path with ids in a label"
    );
    // The store: every write above went through the writer's batches.
    let commits = value(&samples, "passlink_store_batch_commits_sum", &[]);
    assert!(commits >= 7.0, "at least the 5 users and 2 links were committed: {commits}");
    assert!(value(&samples, "passlink_store_batch_commits_count", &[]) >= 1.0);
    assert!(value(&samples, "passlink_store_commit_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(value(&samples, "passlink_outbox_depth", &[]), 2.0);
    assert_eq!(
        value(&samples, "passlink_deliveries_total", &[("channel", "webhook"), ("outcome", "sent")]),
        0.0
    );
    assert!(samples.iter().any(|s| s.name == "passlink_deliveries_total"
        && s.labels.get("outcome").map(String::as_str) == Some("given_up")));
    assert_eq!(
        value(
            &samples,
            "passlink_build_info",
            &[("version", env!("CARGO_PKG_VERSION")), ("store", "sqlite")]
        ),
        1.0
    );
    // The scrape itself is counted on the next one.
    let again = scrape(&format!("{}/metrics", s.base)).await;
    assert_eq!(value(&again, "passlink_requests_total", &[("rpc", "/metrics"), ("protocol", "http")]), 1.0);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_listen_moves_metrics_to_their_own_port() {
    let dir = harness::temp_dir("metrics-listen");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = harness::config(addr, &dir);
    cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = passlink_server::Server::start(cfg, listener).await.unwrap();
    let metrics_addr = server.metrics_addr.expect("a metrics listener");
    assert_ne!(metrics_addr.port(), addr.port());
    assert_eq!(reqwest::get(format!("http://{addr}/healthz")).await.unwrap().status(), 200);
    let samples = scrape(&format!("http://{metrics_addr}/metrics")).await;
    assert_eq!(value(&samples, "passlink_requests_total", &[("rpc", "/healthz"), ("status", "2xx")]), 1.0);
    let main = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_ne!(main.status(), 200, "not on the main port");
    assert!(!main.text().await.unwrap().contains("passlink_build_info"));
    server.shutdown().await.unwrap();
}
