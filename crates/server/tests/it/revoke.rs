//! RevokeRegistrationCodes on every protocol: revoked links stop working at once (the hosted
//! page's look-up, RegisterPasskey and a started VerifyPasskeyRegistration all answer "Code is
//! invalid"), pending deliveries are cancelled with their sealed codes erased; the setting that
//! revokes a user's other codes when a passkey is registered; and, with a real SMTP server, a
//! revoked pending delivery is never sent.

use std::path::PathBuf;
use std::time::Duration;

use passlink_core::code::CodeState;
use passlink_core::event::Event;
use passlink_core::store::JobState;
use passlink_server::Server;
use passlink_testkit::{SmtpSink, free_port};
use serde_json::{Value, json};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::clients::{self, Api, Rest};
use crate::delivery;
use crate::harness::{self, TestServer};
use crate::passkey::{REGISTER, VERIFY, create_credential, origin, returned_code, start, verify};
use crate::setup::{human, ok, world};

const REVOKE: &str = "passlink.enrollment.v1.EnrollmentService/RevokeRegistrationCodes";

async fn revoke(api: &dyn Api, token: Option<&str>, body: Value) -> clients::Outcome {
    api.call(REVOKE, body, token, None).await
}

fn ids(r: &Value) -> Vec<String> {
    r["revokedCodeIds"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn failure(r: clients::Outcome, code: u32, id: &str, what: &str) {
    let f = r.err().unwrap_or_else(|| panic!("{what}: expected an error {code}"));
    assert_eq!(f.code, code, "{what}: {f:?}");
    assert!(f.message.ends_with(&format!("({id})")), "{what}: {f:?}");
}

/// The hosted page's look-up of a link: its HTTP status and error id.
async fn page_info(s: &TestServer, user: &str, code_id: &str, code: &str) -> (u16, Value) {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("userID", user), ("codeID", code_id), ("code", code)])
        .finish();
    let r =
        reqwest::Client::new().get(format!("{}/ui/passkey/register/info?{q}", s.base)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn code_state(s: &TestServer, id: &str) -> CodeState {
    s.server.app.store().code(id).await.unwrap().unwrap().state
}

#[tokio::test]
async fn revoked_codes_stop_working_at_once_on_every_protocol() {
    let s = harness::start("revoke").await;
    let w = world(&s, "rv").await;
    for api in clients::all(&s.base) {
        let api = &*api;
        let user = human(api, &w.admin, &w.org_a, &format!("rv-{}", api.name())).await;
        let (c1, v1) = returned_code(api, &w.admin, &user).await;
        let (c2, v2) = returned_code(api, &w.admin, &user).await;
        ok(api
            .call(
                "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink",
                json!({"userId": user, "sendLink": {}}),
                Some(&w.admin),
                None,
            )
            .await);
        let c3 = delivery::last_code_id(&s, &user).await;
        let job = delivery::job_of(&s, &c3).await.job.id;
        assert_eq!(page_info(&s, &user, &c1, &v1).await.0, 200, "[{}] usable before", api.name());

        // One by id (the org owner of the user's organization may, as for links).
        let r = ok(revoke(api, Some(&w.org_owner_a), json!({"userId": user, "codeId": c1})).await);
        assert_eq!(ids(&r), [c1.as_str()], "[{}] {r}", api.name());
        assert_eq!(r["details"]["resourceOwner"], w.org_a.as_str());
        assert!(r.get("cancelledDeliveries").is_none(), "[{}] zero is omitted: {r}", api.name());
        assert_eq!(code_state(&s, &c1).await, CodeState::Revoked);
        // The link is dead at once: the page's look-up and RegisterPasskey say "Code is invalid".
        let (status, body) = page_info(&s, &user, &c1, &v1).await;
        assert_eq!(status, 400, "[{}] {body}", api.name());
        assert_eq!(body["details"][0]["id"], "COMMAND-Eeb2a");
        failure(start(api, REGISTER, &user, (&c1, &v1), None).await, 3, "COMMAND-Eeb2a", "revoked code");
        // The other codes still work.
        assert_eq!(page_info(&s, &user, &c2, &v2).await.0, 200);

        // All outstanding: the returned one and the sent one, whose delivery is cancelled.
        let r = ok(revoke(api, Some(&w.admin), json!({"userId": user})).await);
        assert_eq!(ids(&r), [c2.clone(), c3.clone()], "[{}] oldest first: {r}", api.name());
        assert_eq!(r["cancelledDeliveries"], 1, "[{}] {r}", api.name());
        let st = s.server.app.store().job(&job).await.unwrap().unwrap();
        assert_eq!(st.state, JobState::Abandoned, "[{}]", api.name());
        assert!(st.job.sealed_code.is_none(), "[{}] the sealed code is erased", api.name());
        assert_eq!(st.last_error.as_deref(), Some("the code was revoked"));
        failure(start(api, REGISTER, &user, (&c2, &v2), None).await, 3, "COMMAND-Eeb2a", "revoked code");

        // Nothing outstanding: success, nothing revoked, nothing written.
        let seq = r["details"]["sequence"].clone();
        let again = ok(revoke(api, Some(&w.admin), json!({"userId": user})).await);
        assert!(ids(&again).is_empty() && again["details"]["sequence"] == seq, "[{}] {again}", api.name());
        let again = ok(revoke(api, Some(&w.admin), json!({"userId": user, "codeId": c1})).await);
        assert!(ids(&again).is_empty(), "[{}] revoked twice: {again}", api.name());

        // Errors: unknown code, another user's code, permissions, validation.
        failure(
            revoke(api, Some(&w.admin), json!({"userId": user, "codeId": "404"})).await,
            5,
            "CODE-rv404",
            "unknown code",
        );
        let (theirs, _) = returned_code(api, &w.admin, &w.human_a).await;
        failure(
            revoke(api, Some(&w.admin), json!({"userId": user, "codeId": theirs})).await,
            5,
            "CODE-rv404",
            "other user's",
        );
        assert_eq!(code_state(&s, &theirs).await, CodeState::Active, "[{}] untouched", api.name());
        failure(
            revoke(api, Some(&w.user_manager_a), json!({"userId": user})).await,
            7,
            "AUTH-5mWD2",
            "no permission",
        );
        failure(
            revoke(api, Some(&w.org_owner_a), json!({"userId": w.human_b})).await,
            5,
            "COMMAND-M9dsd",
            "other org",
        );
        failure(
            revoke(api, Some(&w.admin), json!({"userId": "nobody"})).await,
            5,
            "COMMAND-M9dsd",
            "no user",
        );
        let f = revoke(api, None, json!({"userId": user})).await.err().unwrap();
        assert_eq!(f.code, 16, "[{}] no token: {f:?}", api.name());
        let f = revoke(api, Some(&w.admin), json!({"userId": ""})).await.err().unwrap();
        assert_eq!(f.code, 3, "[{}] empty user id: {f:?}", api.name());
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_registration_started_with_a_revoked_code_cannot_be_verified() {
    let s = harness::start("revoke-started").await;
    let w = world(&s, "rvs").await;
    let api = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let user = human(&api, &w.admin, &w.org_a, "rvs-user").await;
    let (cid, code) = returned_code(&api, &w.admin, &user).await;
    let started = ok(start(&api, REGISTER, &user, (&cid, &code), None).await);
    let mut auth = SoftPasskey::new(true);
    let cred = create_credential(&mut auth, &origin(&s), &started["publicKeyCredentialCreationOptions"]);
    ok(revoke(&api, Some(&w.admin), json!({"userId": user})).await);
    let passkey = started["passkeyId"].as_str().unwrap();
    failure(
        verify(&api, VERIFY, &user, passkey, cred, None).await,
        3,
        "COMMAND-Eeb2a",
        "verify after revoke",
    );
    let listed = ok(api
        .call("zitadel.user.v2.UserService/ListPasskeys", json!({"userId": user}), Some(&w.admin), None)
        .await);
    assert!(listed["result"].as_array().is_none_or(Vec::is_empty), "no passkey: {listed}");
    s.server.shutdown().await.unwrap();
}

/// The protocol tests' server, with `--revoke-codes-on-registration` as given.
async fn start_revoking(dir: PathBuf, revoke_on_registration: bool) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = harness::config(addr, &dir);
    cfg.revoke_codes_on_registration = revoke_on_registration;
    let server = Server::start(cfg, listener).await.unwrap();
    let admin_token = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    TestServer { base: format!("http://{addr}"), server, admin_token, dir }
}

#[tokio::test]
async fn registering_a_passkey_revokes_the_other_codes_when_configured() {
    for setting in [true, false] {
        let s = start_revoking(harness::temp_dir("revoke-on-reg"), setting).await;
        let w = world(&s, "rvr").await;
        let api = Rest { base: s.base.clone(), http: reqwest::Client::new() };
        let user = human(&api, &w.admin, &w.org_a, "rvr-user").await;
        let (used, used_value) = returned_code(&api, &w.admin, &user).await;
        let (other, _) = returned_code(&api, &w.admin, &user).await;
        ok(api
            .call(
                "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink",
                json!({"userId": user, "sendLink": {}}),
                Some(&w.admin),
                None,
            )
            .await);
        let sent = delivery::last_code_id(&s, &user).await;
        let job = delivery::job_of(&s, &sent).await.job.id;
        // Another user's code is never touched.
        let (bystander, _) = returned_code(&api, &w.admin, &w.human_a).await;

        let started = ok(start(&api, REGISTER, &user, (&used, &used_value), None).await);
        let mut auth = SoftPasskey::new(true);
        let cred = create_credential(&mut auth, &origin(&s), &started["publicKeyCredentialCreationOptions"]);
        ok(verify(&api, VERIFY, &user, started["passkeyId"].as_str().unwrap(), cred, None).await);

        assert_eq!(code_state(&s, &used).await, CodeState::Consumed, "setting {setting}");
        assert_eq!(code_state(&s, &bystander).await, CodeState::Active);
        let job = s.server.app.store().job(&job).await.unwrap().unwrap();
        if setting {
            assert_eq!(code_state(&s, &other).await, CodeState::Revoked);
            assert_eq!(code_state(&s, &sent).await, CodeState::Revoked);
            assert_eq!(job.state, JobState::Abandoned);
            assert!(job.job.sealed_code.is_none());
            let reasons: Vec<String> = delivery::events(&s, &user)
                .await
                .into_iter()
                .filter_map(|e| match e {
                    Event::PasskeyCodeRevoked { reason, .. } => Some(reason),
                    _ => None,
                })
                .collect();
            assert_eq!(reasons, ["a passkey was registered"; 2]);
        } else {
            assert_eq!(code_state(&s, &other).await, CodeState::Active);
            assert_eq!(code_state(&s, &sent).await, CodeState::Requested);
            assert_eq!(job.state, JobState::Pending);
            assert!(job.job.sealed_code.is_some());
        }
        s.server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_revoked_pending_delivery_is_never_sent() {
    let dir = harness::temp_dir("revoke-smtp");
    let port = free_port(); // no SMTP server yet: the deliveries wait, pending, with retries
    let s = delivery::start_with(&dir.join("data"), delivery::smtp(port), true, None).await;
    let kept = delivery::human(&s, "kept", "Kept User", "en", "kept@example.com").await;
    let gone = delivery::human(&s, "gone", "Gone User", "en", "gone@example.com").await;
    for u in [&kept, &gone] {
        let (status, r) = delivery::link(&s, u, json!({"sendLink": {}})).await;
        assert_eq!(status, 200, "{r}");
    }
    let kept_job = delivery::job_of(&s, &delivery::last_code_id(&s, &kept).await).await.job.id;
    let gone_code = delivery::last_code_id(&s, &gone).await;
    let gone_job = delivery::job_of(&s, &gone_code).await.job.id;

    let api = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let r = ok(revoke(&api, Some(&s.admin_token), json!({"userId": gone})).await);
    assert_eq!((ids(&r), r["cancelledDeliveries"].as_u64()), (vec![gone_code.clone()], Some(1)));
    let st = s.server.app.store().job(&gone_job).await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Abandoned);
    assert!(st.job.sealed_code.is_none(), "erased at revocation");

    // The SMTP server comes up: the kept link is delivered, the revoked one never.
    let sink = SmtpSink::start(port, &dir.join("mail"));
    sink.wait_for(1, Duration::from_secs(15)).await;
    delivery::wait_job(&s, &kept_job, JobState::Delivered, Duration::from_secs(10)).await;
    // Give the worker a few more polls to (wrongly) pick the revoked job up.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rcpts: Vec<String> = sink.messages().iter().flat_map(|m| m.rcpt_tos.clone()).collect();
    assert!(rcpts.iter().all(|r| r == "kept@example.com"), "{rcpts:?}");
    assert!(!rcpts.is_empty());
    let st = s.server.app.store().job(&gone_job).await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Abandoned, "still cancelled: {st:?}");
    let events = delivery::events(&s, &gone).await;
    assert!(!events.iter().any(|e| matches!(e, Event::PasskeyCodeSent { .. })), "{events:?}");
    s.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
