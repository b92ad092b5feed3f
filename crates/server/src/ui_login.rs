//! The demo sign-in page next to the registration page: `<external-url>/ui/passkey/login`.
//!
//! It shows the sign-in loop in a real browser: passkey autofill (conditional mediation) where
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
//! The page only ever holds the id and token of the session it created; nothing here reads or
//! changes any other session. Demo sessions live [`DEMO_SESSION_LIFETIME`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use passlink_core::app::{App, Caller, ChallengeRequest, Principal, SessionChange};
use passlink_core::error::{Error, Kind};
use passlink_core::secret::Secret;
use passlink_core::session::UserAgent;
use passlink_core::time::Timestamp;
use passlink_core::view::{Membership, Scope};
use serde::Deserialize;

use crate::error::to_rest;
use crate::ui::asset;

const HTML: &str = include_str!("../ui/login.html");
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

async fn start(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let description = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let change = SessionChange {
        challenge: Some(ChallengeRequest { domain: String::new(), user_verification: 1 }),
        lifetime: Some(DEMO_SESSION_LIFETIME),
        user_agent: description.map(|d| UserAgent { description: Some(d), ..UserAgent::default() }),
        ..SessionChange::default()
    };
    match app.create_session(&login_client(), change).await {
        Ok(w) => match (w.token, w.challenge) {
            (Some(token), Some(challenge)) => json(
                StatusCode::OK,
                serde_json::json!({
                    "sessionId": w.session_id,
                    "sessionToken": token.expose(),
                    "challenge": challenge,
                }),
            ),
            _ => error(&Error::internal("session without token or challenge")),
        },
        Err(e) => error(&e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Finish {
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

pub fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/ui/passkey/login", get(|| async { asset(HTML, "text/html; charset=utf-8") }))
        .route("/ui/passkey/login.js", get(|| async { asset(JS, "text/javascript; charset=utf-8") }))
        .route("/ui/passkey/login/start", post(start))
        .route("/ui/passkey/login/finish", post(finish))
        .with_state(app)
}
