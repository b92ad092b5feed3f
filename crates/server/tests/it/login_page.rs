//! The demo sign-in page (`/ui/passkey/login`) over its own endpoints, as the page's script
//! calls them: the assets, start (a session with a username-less challenge), finish with a
//! software authenticator's assertion (the answer names the user; the new token works on the
//! Session API, the earlier one no longer), two users one after the other, and the refusals
//! (another token, an unknown passkey, a replay, a malformed request).

use serde_json::{Value, json};

use crate::clients::{Api, Rest};
use crate::harness;
use crate::session::{Enrolled, assertion, enroll};
use crate::setup::{ok, world};

const GET: &str = "zitadel.session.v2.SessionService/GetSession";

async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/ui/passkey/login/{path}"))
        .header("user-agent", "login-page-test")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap())
}

fn detail_id(body: &Value) -> &str {
    body["details"][0]["id"].as_str().unwrap_or_default()
}

/// The softpasskey only answers with an allow list: give it its own credential and add the user
/// handle a discoverable credential returns (as the browser's authenticator does).
fn sign(e: &mut Enrolled, origin: &str, challenge: &Value) -> Value {
    let mut options = challenge.clone();
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": e.cred_id}]);
    let mut data = assertion(&mut e.key, origin, &options);
    data["response"]["userHandle"] = json!(e.user_handle);
    data
}

#[tokio::test]
async fn the_page_and_its_assets_are_served() {
    let s = harness::start("login-assets").await;
    for (path, ty) in [
        ("/ui/passkey/login", "text/html; charset=utf-8"),
        ("/ui/passkey/login.js", "text/javascript; charset=utf-8"),
        ("/ui/passkey/register.css", "text/css; charset=utf-8"),
    ] {
        let r = reqwest::get(format!("{}{path}", s.base)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], ty, "{path}");
        assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
        let text = r.text().await.unwrap();
        if path == "/ui/passkey/login" {
            assert!(text.contains("autocomplete=\"username webauthn\""), "autofill field");
            assert!(text.contains("Sign in with a passkey"), "the button");
        }
    }
}

#[tokio::test]
async fn two_users_sign_in_username_less_and_the_answer_names_each() {
    let s = harness::start("login-flow").await;
    let w = world(&s, "lp").await;
    let origin = s.server.external_url.clone();
    let rp = reqwest::Url::parse(&origin).unwrap().host_str().unwrap().to_string();
    let api = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let mut ada = enroll(&s, &w.admin, &w.org_a, "lp-ada").await;
    let mut bob = enroll(&s, &w.admin, &w.org_b, "lp-bob").await;
    for (who, e, org) in [("lp-ada", &mut ada, &w.org_a), ("lp-bob", &mut bob, &w.org_b)] {
        let (status, started) = post(&s.base, "start", &json!({})).await;
        assert_eq!(status, 200, "{started}");
        let pk = &started["challenge"]["publicKey"];
        assert!(pk["challenge"].as_str().is_some_and(|c| !c.is_empty()), "{started}");
        assert_eq!(pk["rpId"], rp.as_str());
        assert_eq!(pk["userVerification"], "required");
        assert!(pk["allowCredentials"].as_array().is_none_or(|a| a.is_empty()), "username-less: {pk}");
        let id = started["sessionId"].as_str().unwrap().to_string();
        let first_token = started["sessionToken"].as_str().unwrap().to_string();

        let data = sign(e, &origin, &started["challenge"]);
        let (status, done) = post(
            &s.base,
            "finish",
            &json!({"sessionId": id, "sessionToken": first_token, "credentialAssertionData": data}),
        )
        .await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["sessionId"], id.as_str());
        assert_eq!(done["user"]["id"], e.user.as_str());
        assert_eq!(done["user"]["organizationId"], org.as_str());
        assert_eq!(done["user"]["displayName"], format!("{who} Test"));
        assert!(done["user"]["loginName"].as_str().is_some_and(|l| !l.is_empty()), "{done}");
        let token = done["sessionToken"].as_str().unwrap();
        assert_ne!(token, first_token);

        // The page's session is a real session: the new token reads it, the first one no more.
        let got =
            ok(api.call(GET, json!({"sessionId": id, "sessionToken": token}), Some(&w.admin), None).await);
        assert_eq!(got["session"]["factors"]["user"]["id"], e.user.as_str());
        assert_eq!(got["session"]["factors"]["webAuthN"]["userVerified"], true);
        assert_eq!(got["session"]["userAgent"]["description"], "login-page-test");
        assert!(got["session"]["expirationDate"].is_string(), "demo sessions expire: {got}");
        let old =
            api.call(GET, json!({"sessionId": id, "sessionToken": first_token}), Some(&w.admin), None).await;
        assert_eq!(old.err().map(|f| f.code), Some(7), "the first token is refused");
    }
}

#[tokio::test]
async fn refusals_answer_plain_errors_and_leave_the_session_unchecked() {
    let s = harness::start("login-errors").await;
    let w = world(&s, "le").await;
    let origin = s.server.external_url.clone();
    let api = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let mut ada = enroll(&s, &w.admin, &w.org_a, "le-ada").await;

    // A malformed request.
    let (status, body) = post(&s.base, "finish", &json!({"sessionId": "x"})).await;
    assert_eq!(status, 400, "{body}");

    let (_, started) = post(&s.base, "start", &json!({})).await;
    let id = started["sessionId"].as_str().unwrap().to_string();
    let token = started["sessionToken"].as_str().unwrap().to_string();

    // Another session's token (the page may only act on the session it created).
    let (_, other) = post(&s.base, "start", &json!({})).await;
    let data = sign(&mut ada, &origin, &started["challenge"]);
    let (status, body) = post(
        &s.base,
        "finish",
        &json!({"sessionId": id, "sessionToken": other["sessionToken"], "credentialAssertionData": data}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(
        &s.base,
        "finish",
        &json!({"sessionId": "no-such-session", "sessionToken": token, "credentialAssertionData": data}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let unchecked =
        ok(api.call(GET, json!({"sessionId": id, "sessionToken": token}), Some(&w.admin), None).await);
    assert!(unchecked["session"].get("factors").is_none(), "{unchecked}");

    // An unknown passkey: a credential id no user has.
    let mut unknown = data.clone();
    unknown["id"] = json!("AAAAAAAAAAAAAAAAAAAAAA");
    unknown["rawId"] = json!("AAAAAAAAAAAAAAAAAAAAAA");
    let (status, body) = post(
        &s.base,
        "finish",
        &json!({"sessionId": id, "sessionToken": token, "credentialAssertionData": unknown}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(detail_id(&body), "COMMAND-Aej7i", "the page's 'passkey not recognised': {body}");

    // Retry (what the page does): a fresh session and challenge, and the passkey signs in.
    let (_, again) = post(&s.base, "start", &json!({})).await;
    let data = sign(&mut ada, &origin, &again["challenge"]);
    let finish = json!({"sessionId": again["sessionId"], "sessionToken": again["sessionToken"], "credentialAssertionData": data});
    let (status, done) = post(&s.base, "finish", &finish).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["user"]["id"], ada.user.as_str());
    // A replay of the same request: the token it carries was replaced.
    let (status, body) = post(&s.base, "finish", &finish).await;
    assert_eq!(status, 403, "{body}");
}
