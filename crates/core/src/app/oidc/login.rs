//! The login half of the authorization code flow: `/oauth/v2/authorize` (decide_authorize) → a
//! login UI → OIDCService GetAuthRequest / CreateCallback (decide_link: the session becomes the
//! request's code). The token half is in `tokens.rs`.
//!
//! Every step is `load → decide → append`; the decide functions are pure and unit tested
//! (tests.rs). passlink issues a code only for a session whose passkey check verified the user
//! (user verification) and, with `max_age`, happened recently enough — stricter than ZITADEL,
//! which links any session with a valid token.

use subtle::ConstantTimeEq;

use super::super::client_auth::{OAuthError, OAuthErrorKind};
use super::super::tx::Tx;
use super::super::{App, Caller, Details};
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, Event};
use crate::oidc::{
    AppView, AuthRequestAdded, AuthRequestOutcome, AuthRequestView, ObjectState, Prompt, SessionLinked,
    auth_method, granted_scopes, response_type, response_url,
};
use crate::permission as perm;
use crate::secret::{self, Secret};
use crate::session::SessionView;
use crate::time::Timestamp;
use crate::view::{UserState, UserView};

/// The parameters of an authorization request, as sent (query or form).
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_type: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    pub max_age: Option<String>,
    pub ui_locales: Option<String>,
    pub response_mode: Option<String>,
    /// `request` / `request_uri` / `registration` were sent (not supported).
    pub unsupported: Option<&'static str>,
}

/// Where `/authorize` sends the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorized {
    /// To the login UI, with the new request's id.
    Login { url: String, auth_request_id: String },
    /// Back to the client with an error (the redirect URI is valid).
    Refused { url: String },
}

/// An authorization request passlink cannot redirect back from (unknown client, redirect URI
/// not registered): shown on a page.
pub(super) fn page_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorKind::InvalidRequest, description)
}

/// `/authorize`'s refusals that go back to the client (OIDC Core §3.1.2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redirected {
    pub error: &'static str,
    pub description: String,
}

fn refused(error: &'static str, description: impl Into<String>) -> Redirected {
    Redirected { error, description: description.into() }
}

/// Validate an authorization request against its client. `Err(Ok(page))`: show a page;
/// `Err(Err(r))`: redirect the error to the client.
pub(crate) fn decide_authorize(
    app: Option<&AppView>,
    p: &AuthorizeParams,
) -> std::result::Result<AuthRequestAdded, std::result::Result<OAuthError, Redirected>> {
    if p.client_id.is_empty() {
        return Err(Ok(page_error("client_id is missing")));
    }
    let app = app
        .filter(|a| a.state == ObjectState::Active)
        .ok_or_else(|| Ok(page_error("unknown or inactive client")))?;
    let oidc =
        app.settings.oidc.as_ref().ok_or_else(|| Ok(page_error("the client is not an OIDC application")))?;
    if p.redirect_uri.is_empty() {
        return Err(Ok(page_error("redirect_uri is missing")));
    }
    if !oidc.redirect_allowed(&p.redirect_uri) {
        return Err(Ok(page_error("the redirect_uri is not registered for this client")));
    }
    if let Some(param) = p.unsupported {
        let error =
            if param == "request_uri" { "request_uri_not_supported" } else { "request_not_supported" };
        return Err(Err(refused(error, format!("{param} is not supported"))));
    }
    if p.response_type != "code" {
        return Err(Err(refused(
            "unsupported_response_type",
            "only the authorization code flow (response_type=code) is supported",
        )));
    }
    if !oidc.response_types.contains(&response_type::CODE) {
        return Err(Err(refused("unauthorized_client", "the client may not use response_type=code")));
    }
    let fragment = match p.response_mode.as_deref() {
        None | Some("query") => false,
        Some("fragment") => true,
        Some(other) => {
            return Err(Err(refused("invalid_request", format!("response_mode {other} is not supported"))));
        }
    };
    let scope = granted_scopes(&p.scope);
    if !scope.iter().any(|s| s == "openid") {
        return Err(Err(refused("invalid_scope", "the scope must contain openid")));
    }
    let code_challenge = match (p.code_challenge.as_deref(), p.code_challenge_method.as_deref()) {
        (None, _) => None,
        (Some(_), Some("plain")) => {
            return Err(Err(refused(
                "invalid_request",
                "code_challenge_method plain is not supported; use S256",
            )));
        }
        (Some(c), Some("S256")) => Some(c),
        (Some(_), None) => {
            return Err(Err(refused("invalid_request", "code_challenge_method is missing; use S256")));
        }
        (Some(_), Some(m)) => {
            return Err(Err(refused("invalid_request", format!("unknown code_challenge_method {m}"))));
        }
    };
    if let Some(c) = code_challenge {
        let ok = c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(Err(refused("invalid_request", "code_challenge is not a base64url SHA-256")));
        }
    }
    if code_challenge.is_none() && oidc.auth_method == auth_method::NONE {
        return Err(Err(refused(
            "invalid_request",
            "a public client must use PKCE (code_challenge with S256)",
        )));
    }
    let mut prompt = Vec::new();
    for v in p.prompt.as_deref().unwrap_or_default().split_ascii_whitespace() {
        let parsed =
            Prompt::parse(v).ok_or_else(|| Err(refused("invalid_request", format!("unknown prompt {v}"))))?;
        prompt.push(parsed);
    }
    if prompt.contains(&Prompt::None) {
        if prompt.len() > 1 {
            return Err(Err(refused("invalid_request", "prompt=none cannot be combined with other values")));
        }
        // passlink's login keeps no browser session to sign in silently with.
        return Err(Err(refused("login_required", "the user must sign in with a passkey")));
    }
    let max_age = match p.max_age.as_deref() {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| Err(refused("invalid_request", "max_age is not a number of seconds")))?,
        ),
    };
    let bounded = |v: &Option<String>, what: &str| match v {
        Some(s) if s.len() > 2048 => Err(Err(refused("invalid_request", format!("{what} is too long")))),
        _ => Ok(v.clone().filter(|s| !s.is_empty())),
    };
    Ok(AuthRequestAdded {
        client_id: app.id.clone(),
        redirect_uri: p.redirect_uri.clone(),
        scope,
        state: bounded(&p.state, "state")?,
        nonce: bounded(&p.nonce, "nonce")?,
        code_challenge: code_challenge.map(str::to_string),
        prompt,
        ui_locales: p
            .ui_locales
            .as_deref()
            .unwrap_or_default()
            .split_ascii_whitespace()
            .take(10)
            .map(str::to_string)
            .collect(),
        login_hint: bounded(&p.login_hint, "login_hint")?,
        max_age,
        fragment,
    })
}

fn auth_request_not_found() -> Error {
    Error::new(Kind::NotFound, "QUERY-Thee9", "Errors.AuthRequest.NotExisting")
}

fn already_handled() -> Error {
    Error::new(Kind::FailedPrecondition, "COMMAND-Sx208nt", "Errors.AuthRequest.AlreadyHandled")
}

fn auth_request_expired() -> Error {
    Error::new(Kind::FailedPrecondition, "OIDC-aRx3p", "Errors.AuthRequest.Expired")
}

fn passkey_required() -> Error {
    Error::new(Kind::FailedPrecondition, "OIDC-pk3yR", "Errors.AuthRequest.PasskeyRequired")
}

fn max_age_exceeded() -> Error {
    Error::new(Kind::FailedPrecondition, "OIDC-m4xAg", "Errors.AuthRequest.MaxAgeExceeded")
}

/// How a login UI finishes an authorization request.
#[derive(Debug, Clone)]
pub enum Callback {
    Session {
        session_id: String,
        token: Secret,
    },
    /// `error` is the OAuth error code (from ZITADEL's ErrorReason).
    Error {
        error: &'static str,
        description: Option<String>,
        uri: Option<String>,
    },
}

/// May `caller` act on this request: the login client that proxied `/authorize`, or
/// `permission` instance-wide (`session.read` to read, `session.link` to finish).
fn may_handle(caller: &Caller, req: &AuthRequestView, permission: &str) -> Result<()> {
    if !req.login_client.is_empty() && caller.user_id() == req.login_client {
        return Ok(());
    }
    if perm::holds_instance_wide(caller.memberships(), permission)
        || perm::holds_in(caller.memberships(), permission, &req.org_id)
    {
        return Ok(());
    }
    Err(Error::new(Kind::PermissionDenied, "AUTH-5mWD2", "Errors.PermissionDenied"))
}

/// CreateCallback with a session: the session's token, its user and passkey check decide.
pub(crate) fn decide_link(
    caller: &Caller,
    req: &AuthRequestView,
    session: Option<&SessionView>,
    token: &Secret,
    user: Option<&UserView>,
    code_hash: &str,
    now: Timestamp,
) -> Result<Tx> {
    may_handle(caller, req, perm::SESSION_LINK)?;
    if req.outcome != AuthRequestOutcome::Pending {
        return Err(already_handled());
    }
    if req.expired(now) {
        return Err(auth_request_expired());
    }
    let session =
        session.ok_or_else(|| Error::new(Kind::NotFound, "QUERY-SFeaa", "Errors.Session.NotExisting"))?;
    let presented = crate::hex::encode(&secret::token_hash(token.expose()));
    if session.token_hash.is_empty() || !bool::from(presented.as_bytes().ct_eq(session.token_hash.as_bytes()))
    {
        return Err(Error::new(Kind::PermissionDenied, "COMMAND-sGr42", "Errors.Session.Token.Invalid"));
    }
    if session.terminated {
        return Err(Error::new(Kind::FailedPrecondition, "COMMAND-Hewfq", "Errors.Session.Terminated"));
    }
    if session.expiration.is_some_and(|e| now >= e) {
        return Err(Error::new(Kind::FailedPrecondition, "COMMAND-Hkl3d", "Errors.Session.Expired"));
    }
    let factor = session.user.as_ref().ok_or_else(passkey_required)?;
    let passkey = session.webauthn.as_ref().filter(|w| w.user_verified).ok_or_else(passkey_required)?;
    if let Some(max_age) = req.request.max_age {
        let age = now.secs_nanos().0 - passkey.checked_at.secs_nanos().0;
        if age > i64::try_from(max_age).unwrap_or(i64::MAX) {
            return Err(max_age_exceeded());
        }
    }
    let user = user
        .filter(|u| u.id == factor.user_id && u.state != UserState::Deleted)
        .ok_or_else(|| Error::new(Kind::FailedPrecondition, "COMMAND-Df4b3", "Errors.User.NotFound"))?;
    if user.state != UserState::Active {
        return Err(Error::new(Kind::FailedPrecondition, "SESSION-Gj4ko", "Errors.User.NotActive"));
    }
    let mut tx = Tx::new(now, caller.user_id());
    tx.load_aggregate(AggregateKind::AuthRequest, &req.id, &req.org_id, req.sequence);
    let linked = SessionLinked {
        session_id: session.id.clone(),
        user_id: user.id.clone(),
        org_id: user.org_id.clone(),
        auth_time: passkey.checked_at,
        user_verified: passkey.user_verified,
        code_hash: code_hash.to_string(),
    };
    tx.record(AggregateKind::AuthRequest, &req.id, &req.org_id, Event::AuthRequestSessionLinked(linked));
    Ok(tx)
}

impl App {
    /// Where the login UI for `app` lives: the client's login v2 base URI, else the configured
    /// external login UI, else the hosted page.
    fn login_url(&self, app: &AppView, id: &str) -> String {
        let base = app
            .settings
            .oidc
            .as_ref()
            .and_then(|o| o.login_base_uri.clone())
            .or_else(|| self.cfg.login_ui_url.clone())
            .unwrap_or_else(|| format!("{}/ui", self.cfg.issuer.trim_end_matches('/')));
        let q: String =
            url::form_urlencoded::Serializer::new(String::new()).append_pair("authRequest", id).finish();
        format!("{}/login?{q}", base.trim_end_matches('/'))
    }

    /// `/oauth/v2/authorize`. `login_client`: the caller that proxied the request
    /// (`x-zitadel-login-client`), if any. `Err`: show the error on a page.
    pub async fn authorize(
        &self,
        p: &AuthorizeParams,
        login_client: Option<&str>,
    ) -> std::result::Result<Authorized, OAuthError> {
        let app = if p.client_id.is_empty() || p.client_id.len() > 200 {
            None
        } else {
            self.active_client(&p.client_id).await.map_err(OAuthError::server)?
        };
        let decided = decide_authorize(app.as_ref(), p);
        let (app, added) = match (app, decided) {
            (Some(app), Ok(added)) => (app, added),
            (_, Err(Ok(page))) => return Err(page),
            (None, _) => return Err(page_error("unknown or inactive client")),
            (Some(_), Err(Err(r))) => {
                let fragment = p.response_mode.as_deref() == Some("fragment");
                let mut params = vec![("error", r.error), ("error_description", r.description.as_str())];
                if let Some(s) = p.state.as_deref() {
                    params.push(("state", s));
                }
                return Ok(Authorized::Refused { url: response_url(&p.redirect_uri, fragment, &params) });
            }
        };
        let id = format!("V2_{}", self.next_id());
        let mut tx = Tx::new(self.now(), login_client.unwrap_or_default());
        tx.record(AggregateKind::AuthRequest, &id, &app.org_id, Event::AuthRequestAdded(added));
        self.deps.store.commit(tx.into_commit()).await.map_err(OAuthError::server)?;
        Ok(Authorized::Login { url: self.login_url(&app, &id), auth_request_id: id })
    }

    /// The name of an application (shown on the login page), if it exists.
    pub async fn client_name(&self, client_id: &str) -> Option<String> {
        self.load_app(client_id).await.ok().flatten().map(|a| a.settings.name)
    }

    /// GetAuthRequest.
    pub async fn get_auth_request(&self, caller: &Caller, id: &str) -> Result<AuthRequestView> {
        crate::validate::runes_between("GetAuthRequestRequest", "AuthRequestId", id, 1, 200)?;
        let req = self.load_auth_request(id).await?.ok_or_else(auth_request_not_found)?;
        may_handle(caller, &req, perm::SESSION_READ)?;
        Ok(req)
    }

    /// CreateCallback: link a session (a code for the client) or an error; answers the details
    /// and the URL to send the browser to.
    pub async fn create_callback(
        &self,
        caller: &Caller,
        id: &str,
        callback: Callback,
    ) -> Result<(Details, String)> {
        crate::validate::runes_between("CreateCallbackRequest", "AuthRequestId", id, 1, 200)?;
        let _lock = self.lock_aggregate(id).await;
        retry!(self, async {
            let req = self.load_auth_request(id).await?.ok_or_else(auth_request_not_found)?;
            let now = self.now();
            let fragment = req.request.fragment;
            let state = req.request.state.clone();
            let (tx, params) = match &callback {
                Callback::Session { session_id, token } => {
                    crate::validate::runes_between("Session", "SessionId", session_id, 1, 200)?;
                    let session = self.deps.store.session(session_id).await?;
                    let user = match session.as_ref().and_then(|s| s.user.as_ref()) {
                        Some(f) => self.deps.store.user(&f.user_id).await?,
                        None => None,
                    };
                    let code = format!("{id}.{}", secret::generate_token(&*self.deps.entropy).expose());
                    let hash = crate::hex::encode(&secret::token_hash(&code));
                    let tx = decide_link(caller, &req, session.as_ref(), token, user.as_ref(), &hash, now)?;
                    (tx, vec![("code".to_string(), code)])
                }
                Callback::Error { error, description, uri } => {
                    may_handle(caller, &req, perm::SESSION_LINK)?;
                    if req.outcome != AuthRequestOutcome::Pending {
                        return Err(already_handled());
                    }
                    let mut tx = Tx::new(now, caller.user_id());
                    tx.load_aggregate(AggregateKind::AuthRequest, id, &req.org_id, req.sequence);
                    let ev = Event::AuthRequestFailed {
                        error: error.to_string(),
                        description: description.clone(),
                    };
                    tx.record(AggregateKind::AuthRequest, id, &req.org_id, ev);
                    let mut params = vec![("error".to_string(), error.to_string())];
                    params.extend(description.clone().map(|d| ("error_description".to_string(), d)));
                    params.extend(uri.clone().map(|u| ("error_uri".to_string(), u)));
                    (tx, params)
                }
            };
            let mut details = tx.details(AggregateKind::AuthRequest, id, false);
            self.deps.store.commit(tx.into_commit()).await?;
            // ZITADEL's auth requests belong to the instance.
            if let Some(instance) = self.deps.store.instance().await? {
                details.resource_owner = instance.id;
            }
            let mut pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            if let Some(s) = state.as_deref() {
                pairs.push(("state", s));
            }
            Ok((details, response_url(&req.request.redirect_uri, fragment, &pairs)))
        })
    }
}
