//! The passkey ceremony behind a registration code, with a software authenticator: every case on
//! REST and on gRPC.

use std::sync::Arc;
use std::time::Duration;

use passlink_core::ports::{Clock, FixedClock};
use passlink_server::Server;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::clients::{self, Api, Failure, Generated, Rest};
use crate::harness::{self, TestServer};
use crate::setup::{World, human, ok, world};

pub(crate) const REGISTER: &str = "zitadel.user.v2.UserService/RegisterPasskey";
pub(crate) const VERIFY: &str = "zitadel.user.v2.UserService/VerifyPasskeyRegistration";
const REGISTER_BETA: &str = "zitadel.user.v2beta.UserService/RegisterPasskey";
const VERIFY_BETA: &str = "zitadel.user.v2beta.UserService/VerifyPasskeyRegistration";
const LIST: &str = "zitadel.user.v2.UserService/ListPasskeys";
const REMOVE: &str = "zitadel.user.v2.UserService/RemovePasskey";
const LINK: &str = "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink";

/// The browser origin matching the server's default external URL.
pub(crate) fn origin(s: &TestServer) -> String {
    s.server.external_url.clone()
}

fn two_apis(base: &str) -> Vec<Box<dyn Api>> {
    vec![
        Box::new(Rest { base: base.to_string(), http: reqwest::Client::new() }),
        Box::new(Generated::new("grpc", base, connectrpc::Protocol::Grpc)),
    ]
}

fn invalid_code(r: clients::Outcome, what: &str) -> Failure {
    let f = r.err().unwrap_or_else(|| panic!("{what}: expected Code is invalid"));
    assert_eq!(f.code, 3, "{what}: {f:?}");
    assert_eq!(f.message, "Code is invalid (COMMAND-Eeb2a)", "{what}");
    f
}

pub(crate) async fn returned_code(api: &dyn Api, admin: &str, user: &str) -> (String, String) {
    let r = ok(api.call(LINK, json!({"userId": user, "returnCode": {}}), Some(admin), None).await);
    (r["code"]["id"].as_str().unwrap().to_string(), r["code"]["code"].as_str().unwrap().to_string())
}

/// protobuf's Struct carries numbers as doubles (`-7.0`); JSON readers in browsers don't mind,
/// Rust's typed deserializers do: turn integral doubles back into integers.
fn integral(v: &Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && n.as_i64().is_none() && n.as_u64().is_none() => json!(f as i64),
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(integral).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), integral(v))).collect()),
        _ => v.clone(),
    }
}

/// The browser's side: the authenticator answers the options for `origin`. webauthn-rs's
/// software authenticator cannot store resident keys, so it is asked for a plain credential
/// (the server's policy is still discoverable: the Chromium end-to-end test covers that path).
pub(crate) fn create_credential(auth: &mut SoftPasskey, origin: &str, options: &Value) -> Value {
    let mut options = integral(options);
    let sel = &mut options["publicKey"]["authenticatorSelection"];
    sel["requireResidentKey"] = json!(false);
    sel["residentKey"] = json!("discouraged");
    let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let cred = auth.do_registration(Url::parse(origin).unwrap(), ccr).unwrap();
    serde_json::to_value(cred).unwrap()
}

pub(crate) async fn start(
    api: &dyn Api,
    rpc: &str,
    user: &str,
    code: (&str, &str),
    token: Option<&str>,
) -> clients::Outcome {
    api.call(rpc, json!({"userId": user, "code": {"id": code.0, "code": code.1}}), token, None).await
}

pub(crate) async fn verify(
    api: &dyn Api,
    rpc: &str,
    user: &str,
    passkey: &str,
    cred: Value,
    token: Option<&str>,
) -> clients::Outcome {
    api.call(
        rpc,
        json!({"userId": user, "passkeyId": passkey, "publicKeyCredential": cred, "passkeyName": "my key"}),
        token,
        None,
    )
    .await
}

async fn list(api: &dyn Api, admin: &str, user: &str) -> Vec<Value> {
    let r = ok(api.call(LIST, json!({"userId": user}), Some(admin), None).await);
    r["result"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn full_flow_with_a_code_and_no_token() {
    let s = harness::start("pk-flow").await;
    let w = world(&s, "pkf").await;
    let origin = origin(&s);
    for api in two_apis(&s.base) {
        let api = &*api;
        for (reg, ver) in [(REGISTER_BETA, VERIFY_BETA), (REGISTER, VERIFY)] {
            let user = human(api, &w.admin, &w.org_a, &format!("pkf-{}-{}", api.name(), reg.len())).await;
            let (cid, code) = returned_code(api, &w.admin, &user).await;
            let started = ok(start(api, reg, &user, (&cid, &code), None).await);
            assert_eq!(started["details"]["resourceOwner"], w.org_a.as_str());
            let passkey_id = started["passkeyId"].as_str().unwrap().to_string();
            let pk = &started["publicKeyCredentialCreationOptions"]["publicKey"];
            assert_eq!(pk["rp"]["id"], "localhost");
            assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
            assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
            let handle = pk["user"]["id"].as_str().unwrap();
            assert!(!handle.is_empty() && !pk["user"]["name"].as_str().unwrap().contains(handle));
            let mut auth = SoftPasskey::new(true);
            let cred = create_credential(&mut auth, &origin, &started["publicKeyCredentialCreationOptions"]);
            let v = ok(verify(api, ver, &user, &passkey_id, cred.clone(), None).await);
            assert!(v["details"]["sequence"].as_str().is_some());
            let listed = list(api, &w.admin, &user).await;
            assert_eq!(
                listed,
                vec![json!({"id": passkey_id, "state": "AUTH_FACTOR_STATE_READY", "name": "my key"})]
            );
            // The code is consumed: it neither starts nor finishes another registration.
            invalid_code(start(api, reg, &user, (&cid, &code), None).await, "reused code");
            // A second passkey (with another code) excludes the first credential.
            let (cid2, code2) = returned_code(api, &w.admin, &user).await;
            let again = ok(start(api, reg, &user, (&cid2, &code2), None).await);
            let excluded = &again["publicKeyCredentialCreationOptions"]["publicKey"]["excludeCredentials"];
            assert_eq!(excluded.as_array().map(Vec::len), Some(1));
            assert_eq!(excluded[0]["id"], cred["rawId"]);
            // Removal with permission; the list is empty again.
            ok(api
                .call(REMOVE, json!({"userId": user, "passkeyId": passkey_id}), Some(&w.admin), None)
                .await);
            assert!(list(api, &w.admin, &user).await.is_empty());
            let gone = api
                .call(REMOVE, json!({"userId": user, "passkeyId": passkey_id}), Some(&w.admin), None)
                .await;
            assert_eq!(gone.unwrap_err().code, 5);
        }
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn code_failures_are_all_code_is_invalid() {
    let s = harness::start("pk-fail").await;
    let w = world(&s, "pkx").await;
    for api in two_apis(&s.base) {
        let api = &*api;
        let user = human(api, &w.admin, &w.org_a, &format!("pkx-{}", api.name())).await;
        let other = human(api, &w.admin, &w.org_a, &format!("pkx-o-{}", api.name())).await;
        let (cid, code) = returned_code(api, &w.admin, &user).await;
        // Unknown code id, another user's code, a code that was sent but not delivered yet.
        invalid_code(start(api, REGISTER, &user, ("1", &code), None).await, "unknown id");
        invalid_code(start(api, REGISTER, &other, (&cid, &code), None).await, "other user's code");
        ok(api.call(LINK, json!({"userId": user, "sendLink": {}}), Some(&w.admin), None).await);
        let pending = s.server.app.store().pending_jobs(100).await.unwrap();
        let job = pending.iter().rev().find(|j| j.user_id == user).unwrap();
        let plain = s.server.app.keys().open(job.sealed_code.as_ref().unwrap(), job.id.as_bytes()).unwrap();
        invalid_code(
            start(api, REGISTER, &user, (&job.code_id, std::str::from_utf8(&plain).unwrap()), None).await,
            "not delivered",
        );
        // Three wrong values lock the code: the right one fails afterwards.
        for i in 0..3 {
            invalid_code(
                start(api, REGISTER, &user, (&cid, "wrongwrong12"), None).await,
                &format!("wrong {i}"),
            );
        }
        invalid_code(start(api, REGISTER, &user, (&cid, &code), None).await, "locked");
        // Validation before anything: an empty code id is a 400 without details.
        let f = start(api, REGISTER, &user, ("", &code), None).await.unwrap_err();
        assert_eq!((f.code, f.details.len()), (3, 0));
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn restarting_replaces_the_pending_registration_and_bad_credentials_fail() {
    let s = harness::start("pk-again").await;
    let w = world(&s, "pka").await;
    for api in two_apis(&s.base) {
        let api = &*api;
        let user = human(api, &w.admin, &w.org_a, &format!("pka-{}", api.name())).await;
        let (cid, code) = returned_code(api, &w.admin, &user).await;
        let first = ok(start(api, REGISTER, &user, (&cid, &code), None).await);
        let second = ok(start(api, REGISTER, &user, (&cid, &code), None).await);
        let (p1, p2) = (first["passkeyId"].as_str().unwrap(), second["passkeyId"].as_str().unwrap());
        let mut auth = SoftPasskey::new(true);
        // The first attempt's options are dead: its passkey was replaced.
        let c1 = create_credential(&mut auth, &origin(&s), &first["publicKeyCredentialCreationOptions"]);
        assert_eq!(verify(api, VERIFY, &user, p1, c1, None).await.unwrap_err().code, 5);
        let c2 = create_credential(&mut auth, &origin(&s), &second["publicKeyCredentialCreationOptions"]);
        // A tampered attestation, a wrong origin and a foreign credential are refused.
        let mut tampered = c2.clone();
        tampered["response"]["clientDataJSON"] = json!("eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0");
        let f = verify(api, VERIFY, &user, p2, tampered, None).await.unwrap_err();
        assert_eq!(f.code, 3, "{f:?}");
        let wrong_origin = create_credential(
            &mut SoftPasskey::new(true),
            "http://localhost:9",
            &second["publicKeyCredentialCreationOptions"],
        );
        let f = verify(api, VERIFY, &user, p2, wrong_origin, None).await.unwrap_err();
        assert_eq!(f.code, 3, "{f:?}");
        assert_eq!(f.details[0].0, "WEBAUTHN-v3r1f");
        let f = verify(api, VERIFY, &user, p2, json!({"foo": "bar"}), None).await.unwrap_err();
        assert_eq!(f.code, 3);
        // Failed verifications do not consume the code: the genuine answer still works.
        ok(verify(api, VERIFY, &user, p2, c2, None).await);
        assert_eq!(list(api, &w.admin, &user).await.len(), 1);
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_a_code_the_caller_needs_the_permission() {
    let s = harness::start("pk-perm").await;
    let w: World = world(&s, "pkp").await;
    for api in two_apis(&s.base) {
        let api = &*api;
        let user = human(api, &w.admin, &w.org_a, &format!("pkp-{}", api.name())).await;
        let body = json!({"userId": user, "authenticator": "PASSKEY_AUTHENTICATOR_CROSS_PLATFORM"});
        assert_eq!(api.call(REGISTER, body.clone(), None, None).await.unwrap_err().code, 16);
        assert_eq!(api.call(REGISTER, body.clone(), Some(&w.no_role), None).await.unwrap_err().code, 7);
        assert_eq!(api.call(REGISTER, body.clone(), Some("bogus"), None).await.unwrap_err().code, 16);
        let r = ok(api.call(REGISTER, body.clone(), Some(&w.admin), None).await);
        let pk = &r["publicKeyCredentialCreationOptions"]["publicKey"];
        assert_eq!(pk["authenticatorSelection"]["authenticatorAttachment"], "cross-platform");
        let mut auth = SoftPasskey::new(true);
        let cred = create_credential(&mut auth, &origin(&s), &r["publicKeyCredentialCreationOptions"]);
        // Without a code, finishing needs the permission too.
        let pid = r["passkeyId"].as_str().unwrap();
        assert_eq!(verify(api, VERIFY, &user, pid, cred.clone(), None).await.unwrap_err().code, 16);
        ok(verify(api, VERIFY, &user, pid, cred, Some(&w.admin)).await);
        // Listing and removing need a token and the permission.
        assert_eq!(api.call(LIST, json!({"userId": user}), None, None).await.unwrap_err().code, 16);
        assert_eq!(
            api.call(LIST, json!({"userId": user}), Some(&w.no_role), None).await.unwrap_err().code,
            7
        );
        let rm =
            api.call(REMOVE, json!({"userId": user, "passkeyId": pid}), Some(&w.user_manager_a), None).await;
        assert_eq!(rm.unwrap_err().code, 7, "ORG_USER_MANAGER lacks user.credential.write");
        // A domain that is not an allowed RP id is refused.
        let bad =
            api.call(REGISTER, json!({"userId": user, "domain": "evil.example"}), Some(&w.admin), None).await;
        assert_eq!(bad.unwrap_err().code, 3);
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn expired_codes_are_invalid() {
    let dir = harness::temp_dir("pk-exp");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let real = passlink_server::platform::SystemClock.now();
    let clock = Arc::new(FixedClock::at(real));
    let server =
        Server::start_with_clock(harness::config(addr, &dir), listener, clock.clone()).await.unwrap();
    let admin = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    let s = TestServer { base: format!("http://{addr}"), server, admin_token: admin.clone(), dir };
    let w = world(&s, "pke").await;
    for api in two_apis(&s.base) {
        let api = &*api;
        let user = human(api, &admin, &w.org_a, &format!("pke-{}", api.name())).await;
        let (cid, code) = returned_code(api, &admin, &user).await;
        let started = ok(start(api, REGISTER, &user, (&cid, &code), None).await);
        clock.set(real.plus(Duration::from_secs(3601)));
        invalid_code(start(api, REGISTER, &user, (&cid, &code), None).await, "expired");
        // A registration started in time cannot be finished with an expired code either.
        let cred = create_credential(
            &mut SoftPasskey::new(true),
            &origin(&s),
            &started["publicKeyCredentialCreationOptions"],
        );
        invalid_code(
            verify(api, VERIFY, &user, started["passkeyId"].as_str().unwrap(), cred, None).await,
            "expired verify",
        );
        clock.set(real);
    }
    s.server.shutdown().await.unwrap();
}
