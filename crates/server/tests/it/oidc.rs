//! OpenID Connect over real sockets: an application registered over Connect/gRPC
//! (ProjectService / ApplicationService have no REST, as in ZITADEL), `/oauth/v2/authorize`,
//! GetAuthRequest and CreateCallback on every protocol (a custom login UI's calls), the code
//! exchanged with PKCE at `/oauth/v2/token`, userinfo, and the endpoints' refusals as HTTP
//! answers (page vs redirect, statuses, headers).

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clients::{self, Api, ConnectJson};
use crate::harness::{self, TestServer};
use crate::session::{assertion, enroll};
use crate::setup::{caller, ok, world};

const CREATE_SESSION: &str = "zitadel.session.v2.SessionService/CreateSession";
const SET_SESSION: &str = "zitadel.session.v2.SessionService/SetSession";
const GET_AUTH_REQUEST: &str = "zitadel.oidc.v2.OIDCService/GetAuthRequest";
const CREATE_CALLBACK: &str = "zitadel.oidc.v2.OIDCService/CreateCallback";
pub(crate) const REDIRECT: &str = "https://app.example/cb";
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A project and an OIDC application created with `api` (a Connect or gRPC client): client id.
pub(crate) async fn register(api: &dyn Api, admin: &str, org: &str, auth: &str) -> (String, Value) {
    let p = ok(api
        .call(
            "zitadel.project.v2.ProjectService/CreateProject",
            json!({"organizationId": org, "name": "shop"}),
            Some(admin),
            None,
        )
        .await);
    let created = ok(api
        .call(
            "zitadel.application.v2.ApplicationService/CreateApplication",
            json!({"projectId": p["projectId"], "name": "Shop", "oidcConfiguration": {
                "redirectUris": [REDIRECT], "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE", "OIDC_GRANT_TYPE_REFRESH_TOKEN"],
                "applicationType": "OIDC_APP_TYPE_USER_AGENT", "authMethodType": auth}}),
            Some(admin),
            None,
        )
        .await);
    (created["oidcConfiguration"]["clientId"].as_str().unwrap().to_string(), created)
}

pub(crate) fn authorize_url(s: &TestServer, client_id: &str, extra: &[(&str, &str)]) -> String {
    let challenge = challenge_of(VERIFIER);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.extend_pairs([
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid profile email"),
        ("state", "st-9"),
        ("nonce", "n-9"),
        ("code_challenge", challenge.as_str()),
    ]);
    if !extra.iter().any(|(k, _)| *k == "code_challenge_method") {
        q.append_pair("code_challenge_method", "S256");
    }
    q.extend_pairs(extra.iter().copied());
    format!("{}/oauth/v2/authorize?{}", s.base, q.finish())
}

/// `/authorize` → the Location it redirects to.
pub(crate) async fn location(url: &str) -> (u16, String) {
    let r = no_redirects().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default())
}

pub(crate) fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

pub(crate) async fn token(s: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let r =
        reqwest::Client::new().post(format!("{}/oauth/v2/token", s.base)).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn a_login_ui_finishes_the_code_flow_on_every_protocol() {
    let s = harness::start("oidc-flow").await;
    let w = world(&s, "of").await;
    let origin = s.server.external_url.clone();
    let rp = url::Url::parse(&origin).unwrap().host_str().unwrap().to_string();
    let connect = ConnectJson { base: s.base.clone(), http: reqwest::Client::new() };
    let (_, ui) = caller(&connect, &w.admin, &w.org_a, "of-login-ui", &["IAM_LOGIN_CLIENT"]).await;
    for api in clients::all(&s.base) {
        let api = &*api;
        // Registration has no REST binding: the REST client's turn registers over Connect.
        let registrar: &dyn Api = if api.name() == "rest" { &connect } else { api };
        let (client_id, created) =
            register(registrar, &w.admin, &w.org_a, "OIDC_AUTH_METHOD_TYPE_NONE").await;
        assert!(
            created["oidcConfiguration"].get("clientSecret").is_none(),
            "{}: a public client has no secret",
            api.name()
        );
        let app = ok(registrar
            .call(
                "zitadel.application.v2.ApplicationService/GetApplication",
                json!({"applicationId": created["applicationId"]}),
                Some(&w.admin),
                None,
            )
            .await);
        assert_eq!(
            app["application"]["oidcConfiguration"]["redirectUris"],
            json!([REDIRECT]),
            "{}",
            api.name()
        );
        let mut e = enroll(&s, &w.admin, &w.org_a, &format!("of-{}", api.name())).await;
        let (status, to) =
            location(&authorize_url(&s, &client_id, &[("login_hint", "ada"), ("ui_locales", "de")])).await;
        assert_eq!(status, 302);
        let id = query_of(&to)["authRequest"].clone();
        assert_eq!(to, format!("{origin}/ui/login?authRequest={id}"));
        let got = api.call(GET_AUTH_REQUEST, json!({"authRequestId": id}), Some(&ui), None).await;
        let got = got.unwrap_or_else(|f| panic!("{}: GetAuthRequest {id}: {f:?}", api.name()));
        let r = &got["authRequest"];
        assert_eq!(
            (r["id"].as_str(), r["clientId"].as_str(), r["redirectUri"].as_str()),
            (Some(id.as_str()), Some(client_id.as_str()), Some(REDIRECT)),
            "{}",
            api.name()
        );
        assert_eq!(
            (r["loginHint"].as_str(), &r["uiLocales"], &r["scope"]),
            (Some("ada"), &json!(["de"]), &json!(["openid", "profile", "email"]))
        );
        // The login UI signs the user in with the passkey, then finishes the request.
        let created = ok(api
            .call(CREATE_SESSION, json!({"checks": {"user": {"userId": e.user}}, "challenges": {"webAuthN": {"domain": rp, "userVerificationRequirement": "USER_VERIFICATION_REQUIREMENT_REQUIRED"}}}), Some(&ui), None)
            .await);
        let session_id = created["sessionId"].as_str().unwrap().to_string();
        let data = assertion(
            &mut e.key,
            &origin,
            &created["challenges"]["webAuthN"]["publicKeyCredentialRequestOptions"],
        );
        let set = ok(api
            .call(
                SET_SESSION,
                json!({"sessionId": session_id, "checks": {"webAuthN": {"credentialAssertionData": data}}}),
                Some(&ui),
                None,
            )
            .await);
        let session = json!({"sessionId": session_id, "sessionToken": set["sessionToken"]});
        let cb = ok(api
            .call(CREATE_CALLBACK, json!({"authRequestId": id, "session": session}), Some(&ui), None)
            .await);
        let callback = cb["callbackUrl"].as_str().unwrap();
        assert!(callback.starts_with(&format!("{REDIRECT}?code=")), "{}: {callback}", api.name());
        let q = query_of(callback);
        assert_eq!(q["state"], "st-9");
        let again = api
            .call(CREATE_CALLBACK, json!({"authRequestId": id, "session": session}), Some(&ui), None)
            .await;
        let f = again.err().unwrap();
        assert_eq!((f.code, f.details[0].0.as_str()), (9, "COMMAND-Sx208nt"), "{}", api.name());
        // The application exchanges the code.
        let (status, t) = token(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("redirect_uri", REDIRECT),
                ("client_id", &client_id),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        assert_eq!(status, 200, "{}: {t}", api.name());
        assert_eq!(t["token_type"], "Bearer");
        let info = reqwest::Client::new()
            .get(format!("{}/oidc/v1/userinfo", s.base))
            .bearer_auth(t["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(info.status(), 200);
        assert_eq!(info.json::<Value>().await.unwrap()["sub"], e.user.as_str());
    }
}

#[tokio::test]
async fn the_endpoints_answer_refusals_as_pages_redirects_and_oauth_errors() {
    let s = harness::start("oidc-errors").await;
    let w = world(&s, "oe").await;
    let connect = ConnectJson { base: s.base.clone(), http: reqwest::Client::new() };
    let (client_id, _) = register(&connect, &w.admin, &w.org_a, "OIDC_AUTH_METHOD_TYPE_NONE").await;
    // An unregistered redirect URI: a page, never a redirect.
    let r = no_redirects()
        .get(authorize_url(&s, &client_id, &[]).replace("app.example%2Fcb", "evil.example%2Fcb"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("redirect_uri"));
    // Refusals with a valid redirect URI go back to the client with the state.
    for (extra, error) in [
        (vec![("prompt", "none")], "login_required"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("request_uri", "urn:x")], "request_uri_not_supported"),
    ] {
        let url = authorize_url(&s, &client_id, &extra);
        let (status, to) = location(&url).await;
        assert_eq!(status, 302, "{extra:?}");
        let q = query_of(&to);
        assert!(to.starts_with(REDIRECT), "{to}");
        assert_eq!((q["error"].as_str(), q["state"].as_str()), (error, "st-9"), "{extra:?}");
    }
    // The hosted login page speaks the request's language; an unknown request says so.
    let (_, to) = location(&authorize_url(&s, &client_id, &[("ui_locales", "de")])).await;
    let page = reqwest::get(&to).await.unwrap();
    assert_eq!((page.status().as_u16(), page.headers()["content-language"].to_str().unwrap()), (200, "de"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Mit Passkey anmelden") && html.contains("Shop"),
        "the button and the application's name"
    );
    let gone = reqwest::get(format!("{}/ui/login?authRequest=V2_1", s.base)).await.unwrap();
    assert_eq!(gone.status(), 404);
    assert!(gone.text().await.unwrap().contains("data-initial-error=\"expired\""));
    // The token endpoint: OAuth errors as JSON.
    let (status, e) = token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", "V2_1.nope"),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    let (status, e) =
        token(&s, &[("grant_type", "authorization_code"), ("code", "V2_1.nope"), ("client_id", "unknown")])
            .await;
    assert_eq!((status, e["error"].as_str()), (401, Some("invalid_client")));
    let (status, e) =
        token(&s, &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", &client_id)])
            .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    // Userinfo without a valid token: 401 with a Bearer challenge.
    let r = reqwest::Client::new()
        .get(format!("{}/oidc/v1/userinfo", s.base))
        .bearer_auth("V2_1.x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer error=\"invalid_token\""));
    // Without a hint, end_session shows that the user is signed out.
    let r = no_redirects().get(format!("{}/oidc/v1/end_session", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn discovery_describes_the_code_flow() {
    let s = harness::start("oidc-discovery").await;
    let d: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let iss = s.server.external_url.trim_end_matches('/');
    assert_eq!(d["issuer"], iss);
    assert_eq!(d["authorization_endpoint"], format!("{iss}/oauth/v2/authorize"));
    assert_eq!(d["userinfo_endpoint"], format!("{iss}/oidc/v1/userinfo"));
    assert_eq!(d["end_session_endpoint"], format!("{iss}/oidc/v1/end_session"));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["response_types_supported"], json!(["code"]));
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(d["scopes_supported"].as_array().unwrap().iter().any(|s| s == scope), "{scope}");
    }
    for claim in ["sub", "auth_time", "nonce", "amr", "email_verified", "preferred_username"] {
        assert!(d["claims_supported"].as_array().unwrap().iter().any(|c| c == claim), "{claim}");
    }
}
