//! CreatePasskeyRegistrationLink: every success and error case, on every protocol.

use std::time::{SystemTime, UNIX_EPOCH};

use passlink_core::event::AggregateKind;
use serde_json::{Value, json};

use crate::clients::{self, Api, Failure};
use crate::harness;
use crate::setup::{LINK_V2, LINK_V2BETA, TEMPLATE, human, ok, world};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// `details` as ZITADEL renders it for a write: sequence (string), changeDate (≈ now), owner.
fn check_details(d: &Value, owner: &str) -> u64 {
    assert_eq!(keys(d), ["changeDate", "resourceOwner", "sequence"], "{d}");
    assert_eq!(d["resourceOwner"], owner);
    let seq: u64 = d["sequence"].as_str().expect("sequence is a JSON string").parse().unwrap();
    assert!(seq > 0);
    let change = d["changeDate"].as_str().unwrap();
    assert!(change.ends_with('Z') && change.contains('T'), "{change}");
    let secs = change[..19].to_string() + "Z";
    #[allow(clippy::disallowed_methods)] // the test compares the server's clock with the real one
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let t = parse_rfc3339_secs(&secs);
    assert!((now - t).abs() < 60, "changeDate {change} is not now");
    seq
}

/// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SSZ" (UTC), enough for a ±60 s check.
fn parse_rfc3339_secs(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}

fn expect_err(r: clients::Outcome, code: u32, id: Option<&str>, api: &dyn Api, case: &str) -> Failure {
    let f = match r {
        Ok(v) => panic!("[{}] {case}: expected error {code}, got {v}", api.name()),
        Err(f) => f,
    };
    assert_eq!(f.code, code, "[{}] {case}: {f:?}", api.name());
    match id {
        Some(id) => {
            assert_eq!(f.details.len(), 1, "[{}] {case}: {f:?}", api.name());
            assert_eq!(f.details[0].0, id, "[{}] {case}", api.name());
            assert_eq!(f.message, format!("{} ({id})", f.details[0].1), "[{}] {case}", api.name());
        }
        None => assert!(f.details.is_empty(), "[{}] {case}: validation errors carry no details", api.name()),
    }
    let want_http = match code {
        3 | 9 => 400,
        5 => 404,
        7 => 403,
        16 => 401,
        _ => 0,
    };
    if let (Some(h), true) = (f.http, want_http != 0) {
        assert_eq!(h, want_http, "[{}] {case}: HTTP status", api.name());
    }
    f
}

async fn link(api: &dyn Api, rpc: &str, token: &str, body: Value) -> clients::Outcome {
    api.call(rpc, body, Some(token), None).await
}

#[tokio::test]
async fn create_link_success_cases_on_every_protocol() {
    let s = harness::start("link-ok").await;
    let w = world(&s, "ok").await;
    let mut last_seq = 0;
    for api in clients::all(&s.base) {
        let api = &*api;
        for rpc in [LINK_V2BETA, LINK_V2] {
            // returnCode: details and the code.
            let r = ok(link(api, rpc, &w.admin, json!({"userId": w.human_a, "returnCode": {}})).await);
            assert_eq!(keys(&r), ["code", "details"], "[{}] {r}", api.name());
            let seq = check_details(&r["details"], &w.org_a);
            assert!(seq > last_seq, "[{}] sequences grow: {seq} after {last_seq}", api.name());
            last_seq = seq;
            assert_eq!(keys(&r["code"]), ["code", "id"]);
            let id = r["code"]["id"].as_str().unwrap();
            assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()), "{id}");
            let code = r["code"]["code"].as_str().unwrap();
            assert!(code.len() == 12 && code.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
            // The code exists at once, usable (returned codes are active immediately).
            let cv = s.server.app.store().code(id).await.unwrap().unwrap();
            assert_eq!(cv.state, passlink_core::code::CodeState::Active);
            assert!(s.server.app.keys().code_matches(
                id,
                &passlink_core::secret::Secret::new(code),
                &hex(&cv.code_hash)
            ));

            // sendLink with the documented template, sendLink {}, and no medium: details only.
            for body in [
                json!({"userId": w.human_a, "sendLink": {"urlTemplate": TEMPLATE}}),
                json!({"userId": w.human_a, "sendLink": {}}),
                json!({"userId": w.human_a}),
            ] {
                let r = ok(link(api, rpc, &w.admin, body.clone()).await);
                assert_eq!(keys(&r), ["details"], "[{}] {body}: {r}", api.name());
                let seq = check_details(&r["details"], &w.org_a);
                assert_eq!(seq, last_seq + 1);
                last_seq = seq;
            }
        }
    }
    // Every send request left a complete delivery job in the outbox, with its template.
    let jobs = s.server.app.store().pending_jobs(1000).await.unwrap();
    assert_eq!(jobs.len(), 5 * 2 * 3);
    assert_eq!(jobs.iter().filter(|j| j.url_template.as_deref() == Some(TEMPLATE)).count(), 10);
    for j in &jobs {
        assert_eq!(j.user_id, w.human_a);
        assert_eq!(j.org_id, w.org_a);
        let sealed = j.sealed_code.as_ref().unwrap();
        let plain = s.server.app.keys().open(sealed, j.id.as_bytes()).unwrap();
        assert_eq!(plain.len(), 12);
        let cv = s.server.app.store().code(&j.code_id).await.unwrap().unwrap();
        assert_eq!(cv.state, passlink_core::code::CodeState::Requested, "sent codes wait for delivery");
    }
    // The events carry ZITADEL's type name and never the code.
    let events = s.server.app.store().events_of(AggregateKind::User, &w.human_a).await.unwrap();
    assert_eq!(events.len() as u64, last_seq);
    let json = serde_json::to_string(&events).unwrap();
    assert!(json.contains("user.human.passwordless.initialization.code.requested"));
    for j in &jobs {
        let plain = s.server.app.keys().open(j.sealed_code.as_ref().unwrap(), j.id.as_bytes()).unwrap();
        assert!(!json.contains(std::str::from_utf8(&plain).unwrap()));
    }
    s.server.shutdown().await.unwrap();
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[tokio::test]
async fn create_link_error_cases_on_every_protocol() {
    let s = harness::start("link-err").await;
    let w = world(&s, "err").await;
    // A deleted user.
    let rest = clients::Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let deleted = human(&rest, &w.admin, &w.org_a, "err-deleted").await;
    ok(rest
        .call("zitadel.user.v2.UserService/DeleteUser", json!({"userId": deleted}), Some(&w.admin), None)
        .await);
    let store = s.server.app.store().clone();
    let before = store.events_of(AggregateKind::User, &w.human_a).await.unwrap().len();
    let before_b = store.events_of(AggregateKind::User, &w.human_b).await.unwrap().len();

    for api in clients::all(&s.base) {
        let api = &*api;
        for rpc in [LINK_V2BETA, LINK_V2] {
            let rc = |u: &str| json!({"userId": u, "returnCode": {}});
            expect_err(
                api.call(rpc, rc(&w.human_a), None, None).await,
                16,
                Some("AUTH-7fs1e"),
                api,
                "no token",
            );
            expect_err(
                link(api, rpc, "not-a-token", rc(&w.human_a)).await,
                16,
                Some("AUTH-7fs1e"),
                api,
                "bad token",
            );
            expect_err(
                link(api, rpc, &w.no_role, rc(&w.human_a)).await,
                7,
                Some("AUTH-5mWD2"),
                api,
                "no role",
            );
            expect_err(
                link(api, rpc, &w.user_manager_a, rc(&w.human_a)).await,
                7,
                Some("AUTH-5mWD2"),
                api,
                "ORG_USER_MANAGER",
            );
            expect_err(
                link(api, rpc, &w.admin, rc("999999999999999999")).await,
                5,
                Some("COMMAND-M9dsd"),
                api,
                "unknown user",
            );
            expect_err(
                link(api, rpc, &w.admin, rc(&deleted)).await,
                5,
                Some("COMMAND-M9dsd"),
                api,
                "deleted user",
            );
            let f = expect_err(
                link(api, rpc, &w.org_owner_a, rc(&w.human_b)).await,
                5,
                Some("COMMAND-M9dsd"),
                api,
                "other org",
            );
            assert_eq!(f.message, "User could not be found (COMMAND-M9dsd)");
            expect_err(
                link(api, rpc, &w.admin, rc(&w.machine_a)).await,
                9,
                Some("COMMAND-xu3Ag"),
                api,
                "machine user",
            );
            let tpl = |t: &str| json!({"userId": w.human_a, "sendLink": {"urlTemplate": t}});
            let f = expect_err(
                link(api, rpc, &w.admin, tpl("{{")).await,
                3,
                Some("DOMAIN-oGh5e"),
                api,
                "template parse",
            );
            assert_eq!(f.message, "URL Template is invalid (DOMAIN-oGh5e)");
            expect_err(
                link(api, rpc, &w.admin, tpl("https://x/{{.LoginName}}")).await,
                3,
                Some("DOMAIN-ieYa7"),
                api,
                "template exec",
            );
            expect_err(link(api, rpc, &w.admin, tpl("")).await, 3, None, api, "empty template");
            expect_err(link(api, rpc, &w.admin, tpl(&"a".repeat(201))).await, 3, None, api, "long template");
            expect_err(link(api, rpc, &w.admin, rc(&"1".repeat(201))).await, 3, None, api, "long user id");
            if api.name() != "rest" {
                // REST cannot express an empty path segment.
                let f = expect_err(link(api, rpc, &w.admin, rc("")).await, 3, None, api, "empty user id");
                assert_eq!(
                    f.message,
                    "invalid CreatePasskeyRegistrationLinkRequest.UserId: value length must be between 1 and 200 runes, inclusive"
                );
            }
            if api.is_json() {
                let both = format!(r#"{{"userId":"{}","sendLink":{{}},"returnCode":{{}}}}"#, w.human_a);
                expect_err(api.raw(rpc, &both, &w.admin).await, 3, None, api, "both oneof members");
                let f = expect_err(
                    api.raw(rpc, r#"{"userId": "#, &w.admin).await,
                    3,
                    None,
                    api,
                    "malformed JSON",
                );
                assert!(!f.message.is_empty());
            }
            // The instance-wide user manager may act across organizations.
            ok(link(api, rpc, &w.iam_user_manager, rc(&w.human_b)).await);
        }
    }
    // Nothing was written for any rejected request (only the IAM_USER_MANAGER successes on B).
    assert_eq!(store.events_of(AggregateKind::User, &w.human_a).await.unwrap().len(), before);
    assert_eq!(store.events_of(AggregateKind::User, &w.human_b).await.unwrap().len(), before_b + 10);
    assert!(store.pending_jobs(10).await.unwrap().is_empty());
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn context_org_header_selects_the_org_of_new_users() {
    let s = harness::start("ctx-org").await;
    let w = world(&s, "ctx").await;
    for api in clients::all(&s.base) {
        let api = &*api;
        let r = ok(api
            .call(
                "zitadel.user.v2beta.UserService/AddHumanUser",
                json!({"profile": {"givenName": "C", "familyName": "O"}, "email": {"email": format!("ctx-{}@example.com", api.name())}}),
                Some(&w.admin),
                Some(&w.org_b),
            )
            .await);
        assert_eq!(r["details"]["resourceOwner"], w.org_b.as_str(), "[{}]", api.name());
        // An org owner of A cannot create users in B through the header.
        let e = api
            .call(
                "zitadel.user.v2beta.UserService/AddHumanUser",
                json!({"profile": {"givenName": "C", "familyName": "O"}, "email": {"email": format!("ctx2-{}@example.com", api.name())}}),
                Some(&w.org_owner_a),
                Some(&w.org_b),
            )
            .await;
        expect_err(e, 5, Some("ORG-o0Ng9"), api, "org owner into other org");
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_links_for_one_user_all_succeed_with_distinct_sequences() {
    let s = harness::start("link-conc").await;
    let w = world(&s, "conc").await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let base = s.base.clone();
        let (admin, user) = (w.admin.clone(), w.human_a.clone());
        tasks.push(tokio::spawn(async move {
            let apis = clients::all(&base);
            let api = &apis[i % apis.len()];
            ok(api.call(LINK_V2BETA, json!({"userId": user, "returnCode": {}}), Some(&admin), None).await)
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        seqs.push(r["details"]["sequence"].as_str().unwrap().parse::<u64>().unwrap());
    }
    seqs.sort_unstable();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + 60).collect::<Vec<_>>(), "gap-free, no duplicates");
    let events = s.server.app.store().events_of(AggregateKind::User, &w.human_a).await.unwrap();
    assert_eq!(events.last().unwrap().sequence, first + 59);
    s.server.shutdown().await.unwrap();
}
