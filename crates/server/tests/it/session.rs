//! Sign-in with the passkey over zitadel.session.v2.SessionService on all five clients: enroll
//! through a registration code, CreateSession with the user and a WebAuthN challenge, SetSession
//! with the software authenticator's assertion, GetSession with the token (the earlier token
//! refused), ListSessions, DeleteSession with the token; username-less; the main errors.

use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::clients::{self, Api, Failure, Rest};
use crate::harness::{self, TestServer};
use crate::setup::{caller, human, ok, world};

const CREATE: &str = "zitadel.session.v2.SessionService/CreateSession";
const SET: &str = "zitadel.session.v2.SessionService/SetSession";
const GET: &str = "zitadel.session.v2.SessionService/GetSession";
const LIST: &str = "zitadel.session.v2.SessionService/ListSessions";
const DELETE: &str = "zitadel.session.v2.SessionService/DeleteSession";
const LIST_PASSKEYS: &str = "zitadel.user.v2.UserService/ListPasskeys";
const OUR_PASSKEYS: &str = "passlink.enrollment.v1.EnrollmentService/ListPasskeys";

/// Struct numbers come back as doubles (`300000.0`); typed readers want integers.
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

pub(crate) struct Enrolled {
    pub(crate) user: String,
    pub(crate) key: SoftPasskey,
    pub(crate) cred_id: String,
    pub(crate) user_handle: String,
}

/// Enroll a passkey for a new human of `org` through a returned code (over REST).
pub(crate) async fn enroll(s: &TestServer, admin: &str, org: &str, name: &str) -> Enrolled {
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let user = human(&rest, admin, org, name).await;
    let link = ok(rest
        .call(
            "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink",
            json!({"userId": user, "returnCode": {}}),
            Some(admin),
            None,
        )
        .await);
    let code = json!({"id": link["code"]["id"], "code": link["code"]["code"]});
    let started = ok(rest
        .call(
            "zitadel.user.v2.UserService/RegisterPasskey",
            json!({"userId": user, "code": code}),
            None,
            None,
        )
        .await);
    let mut options = integral(&started["publicKeyCredentialCreationOptions"]);
    let user_handle = options["publicKey"]["user"]["id"].as_str().unwrap().to_string();
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
    options["publicKey"]["authenticatorSelection"]["residentKey"] = json!("discouraged");
    let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let mut key = SoftPasskey::new(true);
    let cred =
        serde_json::to_value(key.do_registration(Url::parse(&s.server.external_url).unwrap(), ccr).unwrap())
            .unwrap();
    let cred_id = cred["id"].as_str().unwrap().to_string();
    ok(rest
        .call(
            "zitadel.user.v2.UserService/VerifyPasskeyRegistration",
            json!({"userId": user, "passkeyId": started["passkeyId"], "publicKeyCredential": cred, "passkeyName": "key"}),
            None,
            None,
        )
        .await);
    Enrolled { user, key, cred_id, user_handle }
}

pub(crate) fn assertion(key: &mut SoftPasskey, origin: &str, options: &Value) -> Value {
    let rcr: RequestChallengeResponse = serde_json::from_value(integral(options)).unwrap();
    serde_json::to_value(key.do_authentication(Url::parse(origin).unwrap(), rcr).unwrap()).unwrap()
}

fn challenge_request(domain: &str) -> Value {
    json!({"webAuthN": {"domain": domain, "userVerificationRequirement": "USER_VERIFICATION_REQUIREMENT_REQUIRED"}})
}

#[track_caller]
fn failure(r: clients::Outcome, code: u32, id: &str, what: &str) -> Failure {
    let f = r.err().unwrap_or_else(|| panic!("{what}: expected a failure"));
    assert_eq!(f.code, code, "{what}: {f:?}");
    assert_eq!(f.details.first().map(|d| d.0.as_str()), Some(id), "{what}: {f:?}");
    if let Some(http) = f.http {
        assert!((400..500).contains(&http), "{what}: a 4xx, got {http}");
    }
    f
}

#[tokio::test]
async fn passkey_sign_in_on_every_protocol() {
    let s = harness::start("sess-flow").await;
    let w = world(&s, "sf").await;
    let origin = s.server.external_url.clone();
    let rp = Url::parse(&origin).unwrap().host_str().unwrap().to_string();
    let (_, ui) = caller(&grpc(&s), &w.admin, &w.org_a, "sf-login-ui", &["IAM_LOGIN_CLIENT"]).await;
    for api in clients::all(&s.base) {
        let api = &*api;
        let mut e = enroll(&s, &w.admin, &w.org_a, &format!("sf-{}", api.name())).await;
        // CreateSession: the user and a challenge
        let created = ok(api
            .call(
                CREATE,
                json!({"checks": {"user": {"userId": e.user}}, "challenges": challenge_request(&rp),
                       "lifetime": "600s", "userAgent": {"fingerprintId": "fp-1", "description": "test"}}),
                Some(&ui),
                None,
            )
            .await);
        let id = created["sessionId"].as_str().unwrap().to_string();
        let first = created["sessionToken"].as_str().unwrap().to_string();
        assert_eq!(created["details"]["sequence"], "5", "{}", api.name());
        let options = &created["challenges"]["webAuthN"]["publicKeyCredentialRequestOptions"];
        assert_eq!(options["publicKey"]["rpId"], rp.as_str());
        assert_eq!(options["publicKey"]["userVerification"], "required");
        assert_eq!(options["publicKey"]["allowCredentials"][0]["id"], e.cred_id.as_str());
        // SetSession: the assertion
        let data = assertion(&mut e.key, &origin, options);
        let set = ok(api
            .call(
                SET,
                json!({"sessionId": id, "checks": {"webAuthN": {"credentialAssertionData": data}}}),
                Some(&ui),
                None,
            )
            .await);
        let token = set["sessionToken"].as_str().unwrap().to_string();
        assert_ne!(token, first);
        assert!(set.get("challenges").is_none());
        // GetSession with the new token: the factors as ZITADEL renders them
        let got =
            ok(api.call(GET, json!({"sessionId": id, "sessionToken": token}), Some(&w.no_role), None).await);
        let session = &got["session"];
        assert_eq!(session["id"], id.as_str());
        assert_eq!(session["factors"]["user"]["id"], e.user.as_str());
        assert_eq!(session["factors"]["user"]["organizationId"], w.org_a.as_str());
        assert!(session["factors"]["user"]["loginName"].as_str().is_some_and(|l| l.starts_with("sf-")));
        assert!(session["factors"]["webAuthN"]["verifiedAt"].is_string());
        assert_eq!(session["factors"]["webAuthN"]["userVerified"], true);
        assert_eq!(session["userAgent"]["fingerprintId"], "fp-1");
        assert!(session["expirationDate"].is_string());
        // The first token no longer works
        failure(
            api.call(GET, json!({"sessionId": id, "sessionToken": first}), Some(&w.no_role), None).await,
            7,
            "QUERY-dsfr3",
            api.name(),
        );
        // ListSessions by user
        let listed =
            ok(api.call(LIST, json!({"queries": [{"userIdQuery": {"id": e.user}}]}), Some(&ui), None).await);
        assert_eq!(listed["details"]["totalResult"], "1", "{}", api.name());
        assert_eq!(listed["sessions"][0]["id"], id.as_str());
        let none = ok(api
            .call(LIST, json!({"queries": [{"userIdQuery": {"id": e.user}}]}), Some(&w.no_role), None)
            .await);
        assert!(none["sessions"].as_array().is_none_or(|a| a.is_empty()));
        // ZITADEL's ListPasskeys: id and name only; passlink's own shows the sign-in as the last use
        let keys = ok(api.call(LIST_PASSKEYS, json!({"userId": e.user}), Some(&w.admin), None).await);
        assert_eq!(keys["result"].as_array().map(Vec::len), Some(1));
        assert!(keys["result"][0].get("lastUsed").is_none());
        let ours = ok(api.call(OUR_PASSKEYS, json!({"userId": e.user}), Some(&w.admin), None).await);
        let key = &ours["result"][0];
        assert_eq!(key["id"], keys["result"][0]["id"], "{}", api.name());
        assert_eq!(key["lastUsed"], session["factors"]["webAuthN"]["verifiedAt"], "{}", api.name());
        assert!(key["creationDate"].as_str() < key["lastUsed"].as_str(), "{key}");
        assert_eq!(key["rpId"], rp.as_str());
        assert_eq!(key["signCount"], 1, "the soft authenticator counts its assertions");
        // DeleteSession with the token, no permission needed
        ok(api.call(DELETE, json!({"sessionId": id, "sessionToken": token}), Some(&w.no_role), None).await);
        failure(
            api.call(GET, json!({"sessionId": id, "sessionToken": token}), Some(&ui), None).await,
            5,
            "QUERY-SFeaa",
            api.name(),
        );
    }
    // The metrics: one session and one passkey sign-in per protocol.
    let samples = crate::metrics::parse(&s.server.metrics.render(None));
    assert_eq!(crate::metrics::value(&samples, "passlink_sessions_created_total", &[]), 5.0);
    let sign_ins =
        |result| crate::metrics::value(&samples, "passlink_passkey_sign_ins_total", &[("result", result)]);
    assert_eq!((sign_ins("succeeded"), sign_ins("failed")), (5.0, 0.0));
}

#[tokio::test]
async fn username_less_sign_in_on_every_protocol() {
    let s = harness::start("sess-ul").await;
    let w = world(&s, "ul").await;
    let origin = s.server.external_url.clone();
    let rp = Url::parse(&origin).unwrap().host_str().unwrap().to_string();
    let (_, ui) = caller(&grpc(&s), &w.admin, &w.org_a, "ul-login-ui", &["IAM_LOGIN_CLIENT"]).await;
    for api in clients::all(&s.base) {
        let api = &*api;
        let mut e = enroll(&s, &w.admin, &w.org_b, &format!("ul-{}", api.name())).await;
        let created =
            ok(api.call(CREATE, json!({"challenges": challenge_request(&rp)}), Some(&ui), None).await);
        let id = created["sessionId"].as_str().unwrap().to_string();
        let mut options = created["challenges"]["webAuthN"]["publicKeyCredentialRequestOptions"].clone();
        assert!(
            options["publicKey"]["allowCredentials"].as_array().is_none_or(|a| a.is_empty()),
            "{options}"
        );
        let before = ok(api.call(GET, json!({"sessionId": id}), Some(&ui), None).await);
        assert!(before["session"].get("factors").is_none(), "no factors before a user is known");
        // The authenticator finds its discoverable credential and returns the user handle
        options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": e.cred_id}]);
        let mut data = assertion(&mut e.key, &origin, &options);
        data["response"]["userHandle"] = json!(e.user_handle);
        let set = ok(api
            .call(
                SET,
                json!({"sessionId": id, "checks": {"webAuthN": {"credentialAssertionData": data}}}),
                Some(&ui),
                None,
            )
            .await);
        let got = ok(api
            .call(GET, json!({"sessionId": id, "sessionToken": set["sessionToken"]}), Some(&ui), None)
            .await);
        assert_eq!(got["session"]["factors"]["user"]["id"], e.user.as_str(), "{}", api.name());
        assert_eq!(got["session"]["factors"]["webAuthN"]["userVerified"], true);
    }
}

#[tokio::test]
async fn the_main_errors_on_every_protocol() {
    let s = harness::start("sess-err").await;
    let w = world(&s, "se").await;
    let origin = s.server.external_url.clone();
    let rp = Url::parse(&origin).unwrap().host_str().unwrap().to_string();
    let (_, ui) = caller(&grpc(&s), &w.admin, &w.org_a, "se-login-ui", &["IAM_LOGIN_CLIENT"]).await;
    for api in clients::all(&s.base) {
        let api = &*api;
        let name = api.name();
        let mut e = enroll(&s, &w.admin, &w.org_a, &format!("se-{name}")).await;
        // No token, no permission, unknown domain, no user verification
        let f = api.call(CREATE, json!({}), None, None).await.err().unwrap();
        assert_eq!(f.code, 16, "{name}");
        failure(api.call(CREATE, json!({}), Some(&w.no_role), None).await, 7, "AUTH-5mWD2", name);
        failure(
            api.call(CREATE, json!({"challenges": challenge_request("evil.example")}), Some(&ui), None).await,
            3,
            "WEBAUTHN-rp1d",
            name,
        );
        let discouraged = json!({"webAuthN": {"domain": rp, "userVerificationRequirement": "USER_VERIFICATION_REQUIREMENT_DISCOURAGED"}});
        failure(
            api.call(CREATE, json!({"challenges": discouraged}), Some(&ui), None).await,
            3,
            "SESSION-uvR3q",
            name,
        );
        failure(
            api.call(CREATE, json!({"checks": {"user": {"userId": "nope"}}}), Some(&ui), None).await,
            5,
            "COMMAND-M9dsd",
            name,
        );
        // A session without a challenge: the assertion of another session's challenge is refused
        let plain =
            ok(api.call(CREATE, json!({"checks": {"user": {"userId": e.user}}}), Some(&ui), None).await);
        let other = ok(api
            .call(
                CREATE,
                json!({"checks": {"user": {"userId": e.user}}, "challenges": challenge_request(&rp)}),
                Some(&ui),
                None,
            )
            .await);
        let data = assertion(
            &mut e.key,
            &origin,
            &other["challenges"]["webAuthN"]["publicKeyCredentialRequestOptions"],
        );
        let check = json!({"sessionId": plain["sessionId"], "checks": {"webAuthN": {"credentialAssertionData": data}}});
        failure(api.call(SET, check.clone(), Some(&ui), None).await, 9, "COMMAND-Ioqu5", name);
        // A tampered signature on the right session is refused with a 4xx, not a 500
        let mut bad = data.clone();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut sig = base64::Engine::decode(&b64, bad["response"]["signature"].as_str().unwrap()).unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        bad["response"]["signature"] = json!(base64::Engine::encode(&b64, sig));
        let tampered = json!({"sessionId": other["sessionId"], "checks": {"webAuthN": {"credentialAssertionData": bad}}});
        failure(api.call(SET, tampered, Some(&ui), None).await, 3, "WEBAUTHN-l0g1n", name);
        // ... and the challenge is used up: the genuine assertion is refused afterwards
        let genuine = json!({"sessionId": other["sessionId"], "checks": {"webAuthN": {"credentialAssertionData": data}}});
        failure(api.call(SET, genuine, Some(&ui), None).await, 9, "COMMAND-Ioqu5", name);
        // Unknown sessions, a wrong token
        failure(api.call(SET, json!({"sessionId": "nope"}), Some(&ui), None).await, 9, "COMMAND-Flk38", name);
        failure(api.call(GET, json!({"sessionId": "nope"}), Some(&ui), None).await, 5, "QUERY-SFeaa", name);
        failure(
            api.call(
                DELETE,
                json!({"sessionId": plain["sessionId"], "sessionToken": "wrong"}),
                Some(&w.no_role),
                None,
            )
            .await,
            7,
            "COMMAND-sGr42",
            name,
        );
    }
}

#[tokio::test]
async fn rest_get_session_takes_the_token_from_the_query_string() {
    let s = harness::start("sess-query").await;
    let w = world(&s, "sq").await;
    let (_, ui) = caller(&grpc(&s), &w.admin, &w.org_a, "sq-login-ui", &["IAM_LOGIN_CLIENT"]).await;
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let created =
        ok(rest.call(CREATE, json!({"checks": {"user": {"userId": w.human_a}}}), Some(&ui), None).await);
    let id = created["sessionId"].as_str().unwrap();
    let token = created["sessionToken"].as_str().unwrap();
    for key in ["sessionToken", "session_token"] {
        let resp = reqwest::Client::new()
            .get(format!("{}/v2/sessions/{id}?{key}={}", s.base, urlencode(token)))
            .bearer_auth(&w.no_role)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{key}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["session"]["factors"]["user"]["id"], w.human_a.as_str());
    }
    let resp = reqwest::Client::new()
        .get(format!("{}/v2/sessions/{id}?sessionToken=wrong", s.base))
        .bearer_auth(&w.no_role)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

/// CreateUser has no REST binding: callers are made over gRPC.
fn grpc(s: &TestServer) -> crate::clients::Generated {
    crate::clients::Generated::new("grpc", &s.base, connectrpc::Protocol::Grpc)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
