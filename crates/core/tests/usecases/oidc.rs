//! OpenID Connect: projects and applications, then the authorization code flow end to end on
//! the core (authorize → session with a passkey → CreateCallback → code + PKCE → tokens →
//! userinfo → refresh → end session), and each refusal of the flow as its own test.

use std::time::Duration;

use passlink_core::app::{
    AuthorizeParams, Authorized, Callback, NewApp, OidcClient, SessionChange, UserCheck,
};
use passlink_core::error::Kind;
use passlink_core::oidc::{OidcConfig, ProjectSettings, app_type, auth_method, grant_type, response_type};
use passlink_core::secret::Secret;
use passlink_core::store::Store;
use passlink_core::view::Scope;
use serde_json::Value;

use crate::sessions::{Enrolled, assert_with, check, enroll, login_client, start};
use crate::world::{EXTERNAL, Options, World, assert_err};

const REDIRECT: &str = "https://app.example/cb";
const LOGOUT: &str = "https://app.example/bye";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn world() -> World {
    World::with(Options { signing: true, ..Options::default() }).await
}

fn config(auth: i32) -> OidcConfig {
    OidcConfig {
        redirect_uris: vec![REDIRECT.into()],
        response_types: vec![response_type::CODE],
        grant_types: vec![grant_type::AUTHORIZATION_CODE, grant_type::REFRESH_TOKEN],
        app_type: if auth == auth_method::NONE { app_type::USER_AGENT } else { app_type::WEB },
        auth_method: auth,
        post_logout_redirect_uris: vec![LOGOUT.into()],
        ..OidcConfig::default()
    }
}

/// A project and an application in the default org; answers (client id, secret).
async fn client(w: &World, auth: i32) -> (String, Option<Secret>) {
    let settings = ProjectSettings { name: "shop".into(), ..ProjectSettings::default() };
    let (project, _) = w.app.create_project(&w.admin, &w.default_org, None, settings).await.unwrap();
    let new = NewApp {
        project_id: project,
        app_id: String::new(),
        name: "Shop".into(),
        oidc: Some(config(auth)),
        api_auth_method: 0,
    };
    let created = w.app.create_app(&w.admin, new).await.unwrap();
    (created.app.id.clone(), created.secret)
}

fn params(client_id: &str) -> AuthorizeParams {
    AuthorizeParams {
        client_id: client_id.into(),
        redirect_uri: REDIRECT.into(),
        response_type: "code".into(),
        scope: "openid profile email offline_access".into(),
        state: Some("st-1".into()),
        nonce: Some("n-1".into()),
        code_challenge: Some(CHALLENGE.into()),
        code_challenge_method: Some("S256".into()),
        ..AuthorizeParams::default()
    }
}

async fn authorize(w: &World, p: &AuthorizeParams) -> String {
    match w.app.authorize(p, None).await.unwrap() {
        Authorized::Login { url, auth_request_id } => {
            assert_eq!(url, format!("{EXTERNAL}/ui/login?authRequest={auth_request_id}"));
            auth_request_id
        }
        other => panic!("expected the login UI, got {other:?}"),
    }
}

fn refused(r: Authorized) -> Vec<(String, String)> {
    match r {
        Authorized::Refused { url } => url::Url::parse(&url).unwrap().query_pairs().into_owned().collect(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A session of `who` whose passkey check verified the user: (session id, token).
async fn signed_in(w: &World, who: &mut Enrolled) -> (String, Secret) {
    let lc = login_client(w).await;
    let s = start(w, &lc, Some(&who.user)).await;
    let assertion = assert_with(&mut who.key, s.challenge.as_ref().unwrap(), EXTERNAL);
    let done = w.app.set_session(&lc, &s.session_id, check(assertion)).await.unwrap();
    (s.session_id, done.token.unwrap())
}

fn query(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// authorize → sign in → CreateCallback: the code.
async fn code_for(w: &World, client_id: &str, who: &mut Enrolled) -> String {
    let id = authorize(w, &params(client_id)).await;
    let (session, token) = signed_in(w, who).await;
    let (_, url) = w
        .app
        .create_callback(&login_client(w).await, &id, Callback::Session { session_id: session, token })
        .await
        .unwrap();
    let q = query(&url);
    assert_eq!(param(&q, "state"), Some("st-1"), "state comes back unchanged");
    param(&q, "code").unwrap().to_string()
}

fn public(client_id: &str) -> OidcClient {
    OidcClient { client_id: client_id.into(), secret: None, assertion: None }
}

fn claims(w: &World, jwt: &str) -> Value {
    w.app.keys().signing.verified_claims(jwt).unwrap()
}

#[tokio::test]
async fn a_passkey_signs_in_through_the_code_flow_with_pkce() {
    let w = world().await;
    let (client_id, secret) = client(&w, auth_method::NONE).await;
    assert!(secret.is_none(), "a public client has no secret");
    let mut ada = enroll(&w).await;
    let code = code_for(&w, &client_id, &mut ada).await;
    let t = w.app.exchange_code(&public(&client_id), &code, REDIRECT, Some(VERIFIER)).await.unwrap();
    let c = claims(&w, &t.id_token);
    assert_eq!(c["iss"], EXTERNAL);
    assert_eq!(c["sub"], ada.user.as_str());
    assert_eq!(c["aud"], serde_json::json!([client_id]));
    assert_eq!(c["azp"], client_id.as_str());
    assert_eq!(c["nonce"], "n-1", "the nonce comes back in the ID token");
    assert_eq!(c["amr"], serde_json::json!(["user", "mfa"]));
    assert_eq!(c["at_hash"], passlink_core::oidc::at_hash(t.access_token.expose()).as_str());
    assert_eq!(c["auth_time"], w.app.now().secs_nanos().0);
    assert_eq!(t.scope, "openid profile email offline_access");
    let info = w.app.userinfo(t.access_token.expose()).await.unwrap().unwrap();
    assert_eq!(info["sub"], ada.user.as_str());
    assert!(info["email"].is_string() && info["given_name"].is_string(), "{info}");
    // Refresh rotates both tokens; the old access token stops working.
    let refresh = t.refresh_token.unwrap();
    let t2 = w.app.refresh(&public(&client_id), refresh.expose()).await.unwrap();
    assert!(w.app.userinfo(t.access_token.expose()).await.unwrap().is_none());
    assert!(w.app.userinfo(t2.access_token.expose()).await.unwrap().is_some());
    assert_eq!(claims(&w, &t2.id_token)["sub"], ada.user.as_str());
    // The rotated-away refresh token presented again revokes the grant.
    let e = w.app.refresh(&public(&client_id), refresh.expose()).await.unwrap_err();
    assert_eq!(e.error(), "invalid_grant");
    assert!(w.app.userinfo(t2.access_token.expose()).await.unwrap().is_none(), "reuse revoked the grant");
    let next = t2.refresh_token.unwrap();
    assert_eq!(w.app.refresh(&public(&client_id), next.expose()).await.unwrap_err().error(), "invalid_grant");
}

#[tokio::test]
async fn a_code_used_twice_revokes_what_it_issued() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let mut ada = enroll(&w).await;
    let code = code_for(&w, &client_id, &mut ada).await;
    let t = w.app.exchange_code(&public(&client_id), &code, REDIRECT, Some(VERIFIER)).await.unwrap();
    let again = w.app.exchange_code(&public(&client_id), &code, REDIRECT, Some(VERIFIER)).await.unwrap_err();
    assert_eq!(again.error(), "invalid_grant");
    assert!(w.app.userinfo(t.access_token.expose()).await.unwrap().is_none(), "the access token is revoked");
    let r = w.app.refresh(&public(&client_id), t.refresh_token.unwrap().expose()).await.unwrap_err();
    assert_eq!(r.error(), "invalid_grant", "the refresh token is revoked");
}

#[tokio::test]
async fn a_missing_or_wrong_code_verifier_is_refused() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let mut ada = enroll(&w).await;
    let code = code_for(&w, &client_id, &mut ada).await;
    let missing = w.app.exchange_code(&public(&client_id), &code, REDIRECT, None).await.unwrap_err();
    assert_eq!(
        (missing.error(), missing.description.as_str()),
        ("invalid_grant", "code_verifier is missing")
    );
    let wrong = "x".repeat(43);
    let e = w.app.exchange_code(&public(&client_id), &code, REDIRECT, Some(&wrong)).await.unwrap_err();
    assert_eq!(e.error(), "invalid_grant");
    let e = w
        .app
        .exchange_code(&public(&client_id), &code, "https://app.example/other", Some(VERIFIER))
        .await
        .unwrap_err();
    assert_eq!(e.error(), "invalid_grant", "another redirect_uri");
    // The refusals did not use the code up.
    assert!(w.app.exchange_code(&public(&client_id), &code, REDIRECT, Some(VERIFIER)).await.is_ok());
}

#[tokio::test]
async fn plain_pkce_is_refused_and_a_public_client_needs_pkce() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let plain = AuthorizeParams { code_challenge_method: Some("plain".into()), ..params(&client_id) };
    let q = refused(w.app.authorize(&plain, None).await.unwrap());
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    assert_eq!(param(&q, "state"), Some("st-1"));
    let none = AuthorizeParams { code_challenge: None, code_challenge_method: None, ..params(&client_id) };
    assert_eq!(
        param(&refused(w.app.authorize(&none, None).await.unwrap()), "error"),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_unknown_client_is_not_redirected_to() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let p = AuthorizeParams { redirect_uri: "https://evil.example/cb".into(), ..params(&client_id) };
    let e = w.app.authorize(&p, None).await.unwrap_err();
    assert!(e.description.contains("redirect_uri"), "{e:?}");
    let unknown = AuthorizeParams { client_id: "nope".into(), ..params(&client_id) };
    assert!(w.app.authorize(&unknown, None).await.is_err());
}

#[tokio::test]
async fn prompt_none_answers_login_required_and_other_response_types_are_refused() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let p = AuthorizeParams { prompt: Some("none".into()), ..params(&client_id) };
    assert_eq!(param(&refused(w.app.authorize(&p, None).await.unwrap()), "error"), Some("login_required"));
    let p = AuthorizeParams { response_type: "token".into(), ..params(&client_id) };
    assert_eq!(
        param(&refused(w.app.authorize(&p, None).await.unwrap()), "error"),
        Some("unsupported_response_type")
    );
    let p = AuthorizeParams { scope: "profile".into(), ..params(&client_id) };
    assert_eq!(param(&refused(w.app.authorize(&p, None).await.unwrap()), "error"), Some("invalid_scope"));
}

#[tokio::test]
async fn an_expired_auth_request_or_code_is_refused() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let mut ada = enroll(&w).await;
    let id = authorize(&w, &params(&client_id)).await;
    w.advance(Duration::from_secs(31 * 60));
    let (session, token) = signed_in(&w, &mut ada).await;
    let r = w
        .app
        .create_callback(&login_client(&w).await, &id, Callback::Session { session_id: session, token })
        .await;
    assert_err(r, Kind::FailedPrecondition, "OIDC-aRx3p");
    let code = code_for(&w, &client_id, &mut ada).await;
    w.advance(Duration::from_secs(121));
    let e = w.app.exchange_code(&public(&client_id), &code, REDIRECT, Some(VERIFIER)).await.unwrap_err();
    assert_eq!((e.error(), e.description.as_str()), ("invalid_grant", "the code has expired"));
}

#[tokio::test]
async fn a_session_without_a_verified_passkey_gets_no_code() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let ada = enroll(&w).await;
    let id = authorize(&w, &params(&client_id)).await;
    let lc = login_client(&w).await;
    let only_user = SessionChange { user: Some(UserCheck::Id(ada.user.clone())), ..SessionChange::default() };
    let s = w.app.create_session(&lc, only_user).await.unwrap();
    let cb = Callback::Session { session_id: s.session_id.clone(), token: s.token.unwrap() };
    assert_err(w.app.create_callback(&lc, &id, cb).await, Kind::FailedPrecondition, "OIDC-pk3yR");
    let wrong_token = Callback::Session { session_id: s.session_id, token: Secret::new("nope") };
    assert_err(w.app.create_callback(&lc, &id, wrong_token).await, Kind::PermissionDenied, "COMMAND-sGr42");
}

#[tokio::test]
async fn max_age_needs_a_recent_passkey_check() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let mut ada = enroll(&w).await;
    let (session, token) = signed_in(&w, &mut ada).await;
    w.advance(Duration::from_secs(120));
    let id = authorize(&w, &AuthorizeParams { max_age: Some("60".into()), ..params(&client_id) }).await;
    let cb = Callback::Session { session_id: session, token };
    assert_err(
        w.app.create_callback(&login_client(&w).await, &id, cb).await,
        Kind::FailedPrecondition,
        "OIDC-m4xAg",
    );
}

#[tokio::test]
async fn a_deactivated_user_gets_no_code_and_loses_the_tokens() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let mut ada = enroll(&w).await;
    let code = code_for(&w, &client_id, &mut ada).await;
    let t = w.app.exchange_code(&public(&client_id), &code, REDIRECT, Some(VERIFIER)).await.unwrap();
    let id = authorize(&w, &params(&client_id)).await;
    let (session, token) = signed_in(&w, &mut ada).await;
    w.app.deactivate_user(&w.admin, &ada.user).await.unwrap();
    let cb = Callback::Session { session_id: session, token };
    assert_err(
        w.app.create_callback(&login_client(&w).await, &id, cb).await,
        Kind::FailedPrecondition,
        "SESSION-Gj4ko",
    );
    assert!(w.app.userinfo(t.access_token.expose()).await.unwrap().is_none());
    let e = w.app.refresh(&public(&client_id), t.refresh_token.unwrap().expose()).await.unwrap_err();
    assert_eq!(e.error(), "invalid_grant");
}

#[tokio::test]
async fn a_confidential_client_needs_its_secret() {
    let w = world().await;
    let (client_id, secret) = client(&w, auth_method::BASIC).await;
    let secret = secret.expect("a secret is returned once");
    let mut ada = enroll(&w).await;
    let code = code_for(&w, &client_id, &mut ada).await;
    let wrong =
        OidcClient { client_id: client_id.clone(), secret: Some(Secret::new("wrong")), assertion: None };
    assert_eq!(
        w.app.exchange_code(&wrong, &code, REDIRECT, Some(VERIFIER)).await.unwrap_err().error(),
        "invalid_client"
    );
    assert_eq!(
        w.app.exchange_code(&public(&client_id), &code, REDIRECT, Some(VERIFIER)).await.unwrap_err().error(),
        "invalid_client"
    );
    let right = OidcClient { client_id: client_id.clone(), secret: Some(secret), assertion: None };
    assert!(w.app.exchange_code(&right, &code, REDIRECT, Some(VERIFIER)).await.is_ok());
}

#[tokio::test]
async fn an_error_callback_goes_back_to_the_client_once() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let id = authorize(&w, &params(&client_id)).await;
    let lc = login_client(&w).await;
    let cb = Callback::Error { error: "access_denied", description: Some("no".into()), uri: None };
    let (_, url) = w.app.create_callback(&lc, &id, cb.clone()).await.unwrap();
    let q = query(&url);
    assert_eq!(
        (param(&q, "error"), param(&q, "error_description"), param(&q, "state")),
        (Some("access_denied"), Some("no"), Some("st-1"))
    );
    assert_err(w.app.create_callback(&lc, &id, cb).await, Kind::FailedPrecondition, "COMMAND-Sx208nt");
}

#[tokio::test]
async fn auth_requests_are_read_and_finished_only_by_login_clients() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let p = AuthorizeParams {
        login_hint: Some("ada".into()),
        ui_locales: Some("de en".into()),
        max_age: Some("300".into()),
        ..params(&client_id)
    };
    let id = authorize(&w, &p).await;
    let r = w.app.get_auth_request(&login_client(&w).await, &id).await.unwrap();
    assert_eq!(
        (r.request.client_id.as_str(), r.request.login_hint.as_deref(), r.request.max_age),
        (client_id.as_str(), Some("ada"), Some(300))
    );
    assert_eq!(r.request.ui_locales, ["de", "en"]);
    let nobody = w.nobody().await;
    assert_err(w.app.get_auth_request(&nobody, &id).await, Kind::PermissionDenied, "AUTH-5mWD2");
    let cb = Callback::Error { error: "access_denied", description: None, uri: None };
    assert_err(w.app.create_callback(&nobody, &id, cb).await, Kind::PermissionDenied, "AUTH-5mWD2");
    assert_err(w.app.get_auth_request(&login_client(&w).await, "V2_1").await, Kind::NotFound, "QUERY-Thee9");
}

#[tokio::test]
async fn end_session_revokes_the_grant_and_ends_the_login_session() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let mut ada = enroll(&w).await;
    let code = code_for(&w, &client_id, &mut ada).await;
    let t = w.app.exchange_code(&public(&client_id), &code, REDIRECT, Some(VERIFIER)).await.unwrap();
    let e =
        w.app.end_session(Some(&t.id_token), None, Some("https://evil.example/"), None).await.unwrap_err();
    assert!(e.description.contains("post_logout_redirect_uri"), "{e:?}");
    let to = w.app.end_session(Some(&t.id_token), None, Some(LOGOUT), Some("bye-1")).await.unwrap();
    assert_eq!(to.as_deref(), Some("https://app.example/bye?state=bye-1"));
    assert!(w.app.userinfo(t.access_token.expose()).await.unwrap().is_none());
    let sid = claims(&w, &t.id_token)["sid"].as_str().unwrap().to_string();
    let grant = w.store.events_of(passlink_core::event::AggregateKind::Grant, &sid).await.unwrap();
    let session_id = match &grant[0].event {
        passlink_core::event::Event::GrantAdded(g) => g.session_id.clone(),
        other => panic!("{other:?}"),
    };
    assert!(w.store.session(&session_id).await.unwrap().unwrap().terminated, "the login session ended");
}

#[tokio::test]
async fn projects_and_applications_follow_the_organization_permissions() {
    let w = world().await;
    let (client_id, _) = client(&w, auth_method::NONE).await;
    let other = w.given_org("other").await;
    let owner_other = w.caller(&other, Scope::Org(other.clone()), &["ORG_OWNER"]).await;
    assert_err(w.app.app(&owner_other, &client_id).await, Kind::NotFound, "APP-ii4ke");
    assert!(w.app.apps(&owner_other).await.unwrap().is_empty(), "another org's applications are not listed");
    assert_eq!(w.app.apps(&w.admin).await.unwrap().len(), 1);
    let settings = ProjectSettings { name: "p".into(), ..ProjectSettings::default() };
    assert!(w.app.create_project(&owner_other, &other, None, settings.clone()).await.is_ok());
    assert_err(
        w.app.create_project(&owner_other, &w.default_org, None, settings.clone()).await,
        Kind::NotFound,
        "ORG-o0Ng9",
    );
    assert_eq!(
        w.app.create_project(&w.nobody().await, &other, None, settings).await.unwrap_err().kind,
        Kind::PermissionDenied
    );
    let app = w.app.app(&w.admin, &client_id).await.unwrap();
    assert!(
        w.app.generate_client_secret(&w.admin, &app.settings.project_id, &client_id).await.is_err(),
        "a public client has no secret"
    );
    w.app.set_project_active(&w.admin, &app.settings.project_id, false).await.unwrap();
    assert!(
        w.app.authorize(&params(&client_id), None).await.is_err(),
        "a deactivated project's client cannot sign in"
    );
    w.app.set_project_active(&w.admin, &app.settings.project_id, true).await.unwrap();
    assert!(w.app.authorize(&params(&client_id), None).await.is_ok());
    w.app.set_app_active(&w.admin, &app.settings.project_id, &client_id, false).await.unwrap();
    assert!(w.app.authorize(&params(&client_id), None).await.is_err(), "an inactive client cannot sign in");
    w.app.delete_project(&w.admin, &app.settings.project_id).await.unwrap();
    assert_err(w.app.app(&w.admin, &client_id).await, Kind::NotFound, "APP-ii4ke");
}

/// private_key_jwt: a key from CreateApplicationKey (ZITADEL's key file) signs the client
/// assertion; a replayed assertion, an unknown key or an expired one is refused.
#[tokio::test]
async fn a_private_key_jwt_client_authenticates_with_its_key() {
    let w = world().await;
    let (client_id, secret) = client(&w, auth_method::PRIVATE_KEY_JWT).await;
    assert!(secret.is_none(), "no secret for private_key_jwt");
    let project = w.app.app(&w.admin, &client_id).await.unwrap().settings.project_id;
    let (key_id, _, file) = w.app.add_app_key(&w.admin, &project, &client_id, None).await.unwrap();
    let file: Value = serde_json::from_str(file.expose()).unwrap();
    assert_eq!(
        (file["type"].as_str(), file["keyId"].as_str(), file["clientId"].as_str()),
        (Some("application"), Some(key_id.as_str()), Some(client_id.as_str()))
    );
    let now = w.app.now().secs_nanos().0;
    let sign = |jti: &str, kid: &str, exp: i64| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.into());
        let claims = serde_json::json!({"iss": client_id, "sub": client_id, "aud": EXTERNAL, "iat": now, "exp": exp, "jti": jti});
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(file["key"].as_str().unwrap().as_bytes()).unwrap();
        Secret::new(jsonwebtoken::encode(&header, &claims, &key).unwrap())
    };
    let with = |a: Secret| OidcClient { client_id: String::new(), secret: None, assertion: Some(a) };
    let mut ada = enroll(&w).await;
    let code = code_for(&w, &client_id, &mut ada).await;
    let e = w
        .app
        .exchange_code(&with(sign("j0", "other-key", now + 60)), &code, REDIRECT, Some(VERIFIER))
        .await
        .unwrap_err();
    assert_eq!(e.error(), "invalid_client", "an unknown key");
    let e = w
        .app
        .exchange_code(&with(sign("j1", &key_id, now - 120)), &code, REDIRECT, Some(VERIFIER))
        .await
        .unwrap_err();
    assert_eq!(e.error(), "invalid_client", "an expired assertion");
    let t = w
        .app
        .exchange_code(&with(sign("j2", &key_id, now + 60)), &code, REDIRECT, Some(VERIFIER))
        .await
        .unwrap();
    assert_eq!(claims(&w, &t.id_token)["azp"], client_id.as_str());
    let code = code_for(&w, &client_id, &mut ada).await;
    let e = w
        .app
        .exchange_code(&with(sign("j2", &key_id, now + 60)), &code, REDIRECT, Some(VERIFIER))
        .await
        .unwrap_err();
    assert_eq!(e.error(), "invalid_client", "a replayed assertion");
    // The key removed: assertions signed with it stop working.
    w.app.remove_app_key(&w.admin, &project, &client_id, &key_id).await.unwrap();
    let e = w
        .app
        .exchange_code(&with(sign("j3", &key_id, now + 60)), &code, REDIRECT, Some(VERIFIER))
        .await
        .unwrap_err();
    assert_eq!(e.error(), "invalid_client");
}
