//! The hosted sign-in pages: `<external-url>/ui/login?authRequest=V2_…` finishes an OpenID
//! Connect authorization request (the login UI `/oauth/v2/authorize` sends the browser to), and
//! `<external-url>/ui/passkey/login` is the demo page next to the registration page.
//!
//! Both are one page (`ui/login.html`, `ui/login.js`) rendered in English or German (the
//! request's `ui_locales`, else `Accept-Language`). It shows the sign-in loop in a real browser: passkey autofill (conditional mediation) where
//! the browser offers it, a "Sign in with a passkey" button, username-less, ending on a screen
//! that names the signed-in user. The page needs no account: its two endpoints call the core's
//! session use cases in-process as the instance's own login client — a fixed principal
//! ([`LOGIN_UI_USER`], the sessions' creator) holding `IAM_LOGIN_CLIENT` instance-wide that
//! exists only inside this module (no user, no token, nothing to sign in with over the API).
//!
//! - `POST /ui/passkey/login/start` creates a session with a WebAuthN challenge for the default
//!   relying party (no user check: the credential names the user) and answers its id, its token
//!   and the request options.
//! - `POST /ui/passkey/login/finish` takes that session id + token and the assertion; it first
//!   proves the token (GetSession with it), then sets the check, and answers the new token and
//!   who signed in.
//!
//! With `authRequest`, `start` checks the request first and, with a `login_hint` naming a user,
//! asks for that user's passkeys only; `finish` then links the session to the request
//! (CreateCallback as the same login client) and answers the `callbackUrl` with the code.
//!
//! The page only ever holds the id and token of the session it created; nothing here reads or
//! changes any other session. Sessions of these pages live [`DEMO_SESSION_LIFETIME`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use passlink_core::app::{App, Callback, Caller, ChallengeRequest, Principal, SessionChange, UserCheck};
use passlink_core::error::{Error, Kind};
use passlink_core::secret::Secret;
use passlink_core::session::UserAgent;
use passlink_core::time::Timestamp;
use passlink_core::view::{Membership, Scope};
use serde::Deserialize;

use crate::ui_text::{Lang, Texts};

use crate::error::to_rest;
use crate::ui::asset;

const TEMPLATE: &str = include_str!("../ui/login.html");
const JS: &str = include_str!("../ui/login.js");

/// The user id the demo page acts as (the `creator` of its sessions).
pub const LOGIN_UI_USER: &str = "passlink-login-ui";

/// Seconds a demo session lives.
pub const DEMO_SESSION_LIFETIME: i64 = 3600;

/// The instance's own login client, in-process only.
fn login_client() -> Caller {
    let principal = Principal {
        user_id: LOGIN_UI_USER.into(),
        org_id: String::new(),
        memberships: vec![Membership {
            user_id: LOGIN_UI_USER.into(),
            scope: Scope::Instance,
            roles: vec!["IAM_LOGIN_CLIENT".into()],
            created_at: Timestamp::default(),
        }],
        token_expires: Timestamp::default(),
    };
    Caller { principal: Arc::new(principal), context_org: String::new() }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(e: &Error) -> Response {
    let (status, body) = to_rest(e);
    json(status, body)
}

fn bad_request(what: &str) -> Response {
    error(&Error::new(Kind::InvalidArgument, "LOGINUI-bad1", "Errors.InvalidArgument").with_cause(what))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Start {
    #[serde(default)]
    auth_request: Option<String>,
}

async fn start(State(app): State<Arc<App>>, headers: HeaderMap, body: Option<Json<Start>>) -> Response {
    let description = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let change = SessionChange {
        challenge: Some(ChallengeRequest { domain: String::new(), user_verification: 1 }),
        lifetime: Some(DEMO_SESSION_LIFETIME),
        user_agent: description.map(|d| UserAgent { description: Some(d), ..UserAgent::default() }),
        ..SessionChange::default()
    };
    let caller = login_client();
    if let Some(id) = body.and_then(|Json(b)| b.auth_request) {
        let req = match app.get_auth_request(&caller, &id).await {
            Ok(r) => r,
            Err(e) => return error(&e),
        };
        if req.outcome != passlink_core::oidc::AuthRequestOutcome::Pending {
            return error(&Error::new(
                Kind::FailedPrecondition,
                "COMMAND-Sx208nt",
                "Errors.AuthRequest.AlreadyHandled",
            ));
        }
        if req.expired(app.now()) {
            return error(&Error::new(Kind::FailedPrecondition, "OIDC-aRx3p", "Errors.AuthRequest.Expired"));
        }
        // `login_hint` names the user: ask for their passkeys only. An unknown hint reveals
        // nothing: the sign-in stays username-less.
        if let Some(hint) = req.request.login_hint.clone() {
            let hinted = SessionChange { user: Some(UserCheck::LoginName(hint)), ..change.clone() };
            if let Ok(w) = app.create_session(&caller, hinted).await {
                return started(w);
            }
        }
    }
    match app.create_session(&caller, change).await {
        Ok(w) => started(w),
        Err(e) => error(&e),
    }
}

/// The new session's id, token and WebAuthN request options.
fn started(w: passlink_core::app::SessionWritten) -> Response {
    match (w.token, w.challenge) {
        (Some(token), Some(challenge)) => json(
            StatusCode::OK,
            serde_json::json!({
                "sessionId": w.session_id,
                "sessionToken": token.expose(),
                "challenge": challenge,
            }),
        ),
        _ => error(&Error::internal("session without token or challenge")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Finish {
    #[serde(default)]
    auth_request: Option<String>,
    session_id: String,
    session_token: String,
    credential_assertion_data: serde_json::Value,
}

async fn finish(State(app): State<Arc<App>>, body: Result<Json<Finish>, JsonRejection>) -> Response {
    let Ok(Json(req)) = body else { return bad_request("not a sign-in request") };
    if !req.credential_assertion_data.is_object() {
        return bad_request("credentialAssertionData is not an object");
    }
    let caller = login_client();
    let token = Secret::new(req.session_token);
    // Only the session the page created: its token must match before the login client acts.
    if let Err(e) = app.get_session(&caller, &req.session_id, Some(&token)).await {
        return error(&e);
    }
    let change = SessionChange { assertion: Some(req.credential_assertion_data), ..SessionChange::default() };
    let written = match app.set_session(&caller, &req.session_id, change).await {
        Ok(w) => w,
        Err(e) => return error(&e),
    };
    let Some(new_token) = written.token else {
        return error(&Error::internal("a passed check wrote no token"));
    };
    if let Some(id) = req.auth_request.filter(|a| !a.is_empty()) {
        // Back to the application: the code for this session.
        let callback = Callback::Session { session_id: req.session_id.clone(), token: new_token };
        return match app.create_callback(&caller, &id, callback).await {
            Ok((_, url)) => json(StatusCode::OK, serde_json::json!({"callbackUrl": url})),
            Err(e) => error(&e),
        };
    }
    let session = match app.get_session(&caller, &req.session_id, Some(&new_token)).await {
        Ok(s) => s,
        Err(e) => return error(&e),
    };
    let Some(user) = session.user.filter(|_| session.webauthn.is_some()) else {
        return error(&Error::internal("a passed check named no user"));
    };
    json(
        StatusCode::OK,
        serde_json::json!({
            "sessionId": session.id,
            "sessionToken": new_token.expose(),
            "user": {
                "id": user.user_id,
                "organizationId": user.org_id,
                "loginName": user.login_name,
                "displayName": user.display_name,
            },
        }),
    )
}

/// The page's HTML for `lang`; `assets` is the relative path to the scripts and styles.
fn page(lang: Lang, assets: &str, lead: &str, login_hint: &str, initial_error: &str) -> Response {
    let t = Texts::of(lang);
    let html = crate::ui_text::render(
        TEMPLATE,
        &t,
        &[
            ("assets", assets),
            ("signin_lead", lead),
            ("login_hint", login_hint),
            ("initial_error", initial_error),
        ],
    );
    let mut r = asset("", "text/html; charset=utf-8");
    *r.body_mut() = axum::body::Body::from(html);
    r.headers_mut().insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    r
}

fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())
}

/// `/ui/passkey/login`: the demo page.
async fn demo_page(headers: HeaderMap) -> Response {
    let lang = Lang::choose(&[], accept_language(&headers));
    page(lang, "", Texts::of(lang).demo_lead, "", "")
}

/// `/ui/login?authRequest=…`: the login UI of an authorization request. A request that is
/// unknown, finished or expired shows that at once (404 / 410).
async fn oidc_page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let id = q.get("authRequest").map(String::as_str).unwrap_or_default();
    let req = if id.is_empty() { None } else { app.get_auth_request(&login_client(), id).await.ok() };
    let locales: Vec<String> = req.as_ref().map(|r| r.request.ui_locales.clone()).unwrap_or_default();
    let lang = Lang::choose(&locales, accept_language(&headers));
    let t = Texts::of(lang);
    let Some(req) = req else {
        let mut r = page(lang, "passkey/", t.oidc_lead_generic, "", "expired");
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    if req.outcome != passlink_core::oidc::AuthRequestOutcome::Pending || req.expired(app.now()) {
        let mut r = page(lang, "passkey/", t.oidc_lead_generic, "", "expired");
        *r.status_mut() = StatusCode::GONE;
        return r;
    }
    let app_name = app.client_name(&req.request.client_id).await;
    let lead = match app_name {
        Some(name) => t.oidc_lead.replace("{app}", &name),
        None => t.oidc_lead_generic.to_string(),
    };
    page(lang, "passkey/", &lead, req.request.login_hint.as_deref().unwrap_or_default(), "")
}

pub fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/ui/login", get(oidc_page))
        .route("/ui/login/start", post(start))
        .route("/ui/login/finish", post(finish))
        .route("/ui/passkey/login", get(demo_page))
        .route("/ui/passkey/login.js", get(|| async { asset(JS, "text/javascript; charset=utf-8") }))
        .route("/ui/passkey/login/start", post(start))
        .route("/ui/passkey/login/finish", post(finish))
        .with_state(app)
}
