//! CreateRegistrationLinks (bulk enrollment) on every protocol: a list of ids with a mix of
//! users (created, unknown, machine, another organization's), an organization paged across
//! several pages with onlyWithoutPasskey, an idempotent retry that creates nothing new, the
//! requests refused as a whole, and sendLink through a real SMTP server.

use std::collections::BTreeSet;
use std::time::Duration;

use passlink_core::event::Event;
use passlink_testkit::{SmtpSink, free_port};
use serde_json::{Value, json};

use crate::clients::{self, Api, Rest};
use crate::delivery;
use crate::harness::{self, TestServer};
use crate::setup::{human, ok, world};

const BULK: &str = "passlink.enrollment.v1.EnrollmentService/CreateRegistrationLinks";

async fn bulk(api: &dyn Api, token: &str, body: Value) -> clients::Outcome {
    api.call(BULK, body, Some(token), None).await
}

fn results(r: &Value) -> Vec<Value> {
    r["results"].as_array().cloned().unwrap_or_default()
}

fn count(r: &Value, field: &str) -> u64 {
    r["summary"][field].as_u64().unwrap_or(0)
}

/// How many codes were requested for the user (its `code.requested` events).
async fn codes_requested(s: &TestServer, user: &str) -> usize {
    delivery::events(s, user).await.iter().filter(|e| matches!(e, Event::PasskeyCodeRequested(_))).count()
}

async fn new_org(s: &TestServer, name: &str) -> String {
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let r = ok(rest
        .call(
            "zitadel.org.v2.OrganizationService/AddOrganization",
            json!({"name": name}),
            Some(&s.admin_token),
            None,
        )
        .await);
    r["organizationId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_list_of_users_answers_each_user_and_a_retry_creates_nothing_twice() {
    let s = harness::start("bulk-ids").await;
    let w = world(&s, "bk").await;
    for api in clients::all(&s.base) {
        let api = &*api;
        let name = api.name();
        let first = human(api, &w.admin, &w.org_a, &format!("bk1-{name}")).await;
        let second = human(api, &w.admin, &w.org_a, &format!("bk2-{name}")).await;
        let ids = json!([first, "4040404040", w.machine_a, w.human_b, second, first]);
        let body = json!({"userIds": ids, "returnCode": {}, "idempotencyKey": format!("k-{name}")});
        let r = ok(bulk(api, &w.org_owner_a, body.clone()).await);
        let res = results(&r);
        let users: Vec<&str> = res.iter().map(|x| x["userId"].as_str().unwrap()).collect();
        assert_eq!(users, [&first, "4040404040", &w.machine_a, &w.human_b, &second], "[{name}] {r}");
        for ok_result in [&res[0], &res[4]] {
            let code = &ok_result["code"];
            assert!(code["id"].as_str().is_some_and(|c| !c.is_empty()), "[{name}] {r}");
            assert!(code["code"].as_str().is_some_and(|c| c.len() >= 6), "[{name}] {r}");
            assert!(ok_result.get("replayed").is_none(), "[{name}] {r}");
        }
        // The errors the single-user RPC answers: unknown (404), machine (400), a user of an
        // organization the caller may not write (404, as unknown).
        let err = |x: &Value| (x["error"]["code"].as_i64(), x["error"]["id"].as_str().map(str::to_string));
        assert_eq!(err(&res[1]), (Some(5), Some("COMMAND-M9dsd".into())), "[{name}] {r}");
        assert_eq!(err(&res[2]), (Some(9), Some("COMMAND-xu3Ag".into())), "[{name}] {r}");
        assert_eq!(err(&res[3]), (Some(5), Some("COMMAND-M9dsd".into())), "[{name}] {r}");
        assert!(res[1]["error"]["message"].as_str().unwrap().ends_with("(COMMAND-M9dsd)"), "[{name}] {r}");
        assert_eq!(
            (count(&r, "created"), count(&r, "failed"), count(&r, "replayed")),
            (2, 3, 0),
            "[{name}] {r}"
        );
        assert!(r.get("nextPageToken").is_none_or(|t| t == ""), "[{name}] {r}");
        // The returned code is a real one: usable on the hosted page at once.
        let code_id = res[0]["code"]["id"].as_str().unwrap().to_string();
        let state = s.server.app.store().code(&code_id).await.unwrap().unwrap().state;
        assert_eq!(state, passlink_core::code::CodeState::Active, "[{name}]");

        // The same key again: the same code ids, marked replayed, without the codes; nothing new.
        let again = ok(bulk(api, &w.org_owner_a, body).await);
        let res2 = results(&again);
        for i in [0, 4] {
            assert_eq!(res2[i]["code"]["id"], res[i]["code"]["id"], "[{name}] {again}");
            assert!(res2[i]["code"].get("code").is_none_or(|c| c == ""), "[{name}] {again}");
            assert_eq!(res2[i]["replayed"], json!(true), "[{name}] {again}");
        }
        assert_eq!((count(&again, "created"), count(&again, "replayed")), (0, 2), "[{name}] {again}");
        assert_eq!(codes_requested(&s, &first).await, 1, "[{name}]");
        assert_eq!(codes_requested(&s, &second).await, 1, "[{name}]");
        // Another key creates new codes.
        let other = json!({"userIds": [first], "returnCode": {}, "idempotencyKey": format!("k2-{name}")});
        let r3 = ok(bulk(api, &w.org_owner_a, other).await);
        assert_eq!(count(&r3, "created"), 1, "[{name}] {r3}");
        assert_eq!(codes_requested(&s, &first).await, 2, "[{name}]");
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_organization_is_paged_in_id_order_and_only_without_passkey_skips_enrolled_users() {
    let s = harness::start("bulk-org").await;
    let w = world(&s, "bo").await;
    let org = new_org(&s, "bulk-org").await;
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let mut humans = BTreeSet::new();
    for i in 0..5 {
        humans.insert(human(&rest, &w.admin, &org, &format!("bo-{i}")).await);
    }
    let grpc = clients::Generated::new("grpc", &s.base, connectrpc::Protocol::Grpc);
    let (machine, _) = crate::setup::caller(&grpc, &w.admin, &org, "bo-machine", &[]).await;
    let enrolled = crate::session::enroll(&s, &w.admin, &org, "bo-enrolled").await.user;
    let before: Vec<usize> = {
        let mut v = Vec::new();
        for u in &humans {
            v.push(codes_requested(&s, u).await);
        }
        v
    };
    for api in clients::all(&s.base) {
        let api = &*api;
        let name = api.name();
        let key = format!("org-{name}");
        for round in 0..2 {
            let mut token = String::new();
            let mut seen = Vec::new();
            let (mut skipped, mut replayed, mut pages) = (0, 0, 0);
            loop {
                let body = json!({"organization": {"orgId": org, "onlyWithoutPasskey": true}, "returnCode": {},
                                  "idempotencyKey": key, "pageSize": 2, "pageToken": token});
                let r = ok(bulk(api, &w.admin, body).await);
                pages += 1;
                for x in results(&r) {
                    assert!(x["code"]["id"].is_string(), "[{name}] {r}");
                    seen.push(x["userId"].as_str().unwrap().to_string());
                }
                skipped += count(&r, "skipped");
                replayed += count(&r, "replayed");
                match r["nextPageToken"].as_str() {
                    Some(t) if !t.is_empty() => token = t.to_string(),
                    _ => break,
                }
                assert!(pages < 10, "[{name}] paging does not end");
            }
            // 7 users (5 humans, a machine, an enrolled human) in pages of 2.
            assert_eq!(pages, 4, "[{name}]");
            let mut sorted = seen.clone();
            sorted.sort();
            assert_eq!(seen, sorted, "[{name}] id order");
            assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), humans, "[{name}] round {round}");
            assert!(!seen.contains(&machine) && !seen.contains(&enrolled), "[{name}]");
            assert_eq!(skipped, 2, "[{name}]");
            assert_eq!(replayed, if round == 0 { 0 } else { 5 }, "[{name}] round {round}");
        }
    }
    // One code per protocol (its own key), none from the replayed rounds.
    for (u, b) in humans.iter().zip(before) {
        assert_eq!(codes_requested(&s, u).await, b + 5, "{u}");
    }

    // Requests refused as a whole.
    for api in clients::all(&s.base) {
        let api = &*api;
        let name = api.name();
        let refused = |body: Value| {
            let token = w.admin.clone();
            async move { bulk(api, &token, body).await.err().unwrap_or_else(|| panic!("[{name}] accepted")) }
        };
        let f = refused(json!({"returnCode": {}})).await;
        assert_eq!(f.code, 3, "[{name}] {f:?}");
        let f = refused(json!({"userIds": [w.human_a], "organization": {"orgId": org}})).await;
        assert_eq!(f.code, 3, "[{name}] {f:?}");
        let many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
        let f = refused(json!({"userIds": many, "returnCode": {}})).await;
        assert!(f.code == 3 && f.message.contains("at most 1000"), "[{name}] {f:?}");
        let f = refused(json!({"organization": {"orgId": org}, "pageToken": "nonsense"})).await;
        assert!(f.code == 3 && f.message.contains("page token"), "[{name}] {f:?}");
        let f = refused(json!({"userIds": [w.human_a], "sendLink": {"urlTemplate": "https://x/{{.Nope}}"}}))
            .await;
        assert_eq!(f.code, 3, "[{name}] {f:?}");
        // An organization the caller may not write: 404 (the org owner of A asks for another).
        let f = bulk(api, &w.org_owner_a, json!({"organization": {"orgId": org}})).await.err().unwrap();
        assert_eq!(f.code, 5, "[{name}] {f:?}");
        // user.passkey.write nowhere: 403.
        let f = bulk(api, &w.user_manager_a, json!({"userIds": [w.human_a]})).await.err().unwrap();
        assert_eq!(f.code, 7, "[{name}] {f:?}");
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sent_links_reach_a_real_smtp_server_once() {
    let dir = harness::temp_dir("bulk-smtp");
    let sink = SmtpSink::start(free_port(), &dir.join("mail"));
    let s = delivery::start_with(&dir.join("data"), delivery::smtp(sink.port), true, None).await;
    let ada = delivery::human(&s, "bada", "Ada Lovelace", "en", "ada@example.com").await;
    let emmy = delivery::human(&s, "bemmy", "Emmy Noether", "de", "emmy@example.de").await;
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let body = json!({"userIds": [ada, emmy], "sendLink": {"urlTemplate": "https://app.example.com/p?c={{.CodeID}}&k={{.Code}}"},
                      "idempotencyKey": "mail-1"});
    let r = ok(bulk(&rest, &s.admin_token, body.clone()).await);
    assert_eq!(count(&r, "delivered"), 2, "{r}");
    let code_ids: Vec<String> =
        results(&r).iter().map(|x| x["delivery"]["codeId"].as_str().unwrap().to_string()).collect();
    for (x, code_id) in results(&r).iter().zip(&code_ids) {
        let job = s.server.app.store().job(x["delivery"]["jobId"].as_str().unwrap()).await.unwrap().unwrap();
        assert_eq!(&job.job.code_id, code_id, "{r}");
    }
    let msgs = sink.wait_for(2, Duration::from_secs(15)).await;
    let mut rcpts: Vec<String> = msgs.iter().flat_map(|m| m.rcpt_tos.clone()).collect();
    rcpts.sort();
    assert_eq!(rcpts, ["ada@example.com", "emmy@example.de"]);
    // A retry: the same deliveries answered, nothing sent again.
    let again = ok(bulk(&rest, &s.admin_token, body).await);
    assert_eq!((count(&again, "replayed"), count(&again, "delivered")), (2, 0), "{again}");
    let again_ids: Vec<String> =
        results(&again).iter().map(|x| x["delivery"]["codeId"].as_str().unwrap().to_string()).collect();
    assert_eq!(again_ids, code_ids);
    assert_eq!(results(&again)[0]["delivery"]["jobId"], results(&r)[0]["delivery"]["jobId"]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sink.messages().len(), 2);
    s.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
