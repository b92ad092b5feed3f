//! The authorization code flow: `/oauth/v2/authorize` → a login UI → OIDCService
//! GetAuthRequest / CreateCallback → `/oauth/v2/token` (code + PKCE, refresh with rotation) →
//! `/oidc/v1/userinfo`, introspection, `/oidc/v1/end_session`.
//!
//! Every step is `load → decide → append`; the decide functions below are pure and unit tested
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
    AppView, AuthRequestAdded, AuthRequestOutcome, AuthRequestView, CODE_LIFETIME_SECS, GrantAdded,
    GrantTokens, GrantView, ObjectState, Prompt, REFRESH_IDLE_SECS, SessionLinked, at_hash, auth_method,
    granted_scopes, pkce_s256_matches, response_type, response_url, token_aggregate,
};
use crate::permission as perm;
use crate::secret::{self, Secret};
use crate::session::SessionView;
use crate::time::Timestamp;
use crate::view::{UserKind, UserState, UserView};

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
fn page_error(description: impl Into<String>) -> OAuthError {
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

/// The tokens of a code exchange or a refresh.
#[derive(Debug)]
pub struct OidcTokens {
    pub access_token: Secret,
    pub expires_in: u64,
    pub id_token: String,
    pub refresh_token: Option<Secret>,
    pub scope: String,
}

/// A client at the token endpoint: its id (form or Basic) and secret, if any.
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub client_id: String,
    pub secret: Option<Secret>,
    /// A `client_assertion` was sent (private_key_jwt).
    pub assertion: Option<Secret>,
}

fn grant_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorKind::InvalidGrant, description)
}

/// Client authentication by the client's registered method. For private_key_jwt the assertion
/// (RFC 7523: iss = sub = client id, aud = the issuer, at most an hour) must verify with one of
/// the application's live keys; answers its claims (for replay protection).
pub(crate) fn check_client(
    app: Option<&AppView>,
    client: &OidcClient,
    issuer: &str,
    now: Timestamp,
) -> std::result::Result<Option<crate::jwt::AssertionClaims>, OAuthError> {
    let app = app.filter(|a| a.state == ObjectState::Active).ok_or_else(OAuthError::invalid_client)?;
    // An API application (introspection) authenticates with a secret or a key.
    let method = match &app.settings.oidc {
        Some(o) => o.auth_method,
        None if app.settings.api_auth_method == 1 => auth_method::PRIVATE_KEY_JWT,
        None => auth_method::BASIC,
    };
    match method {
        auth_method::NONE => Ok(None),
        auth_method::BASIC | auth_method::POST => {
            let (Some(secret), Some(hash)) = (&client.secret, &app.secret_hash) else {
                return Err(OAuthError::invalid_client());
            };
            let presented = crate::hex::encode(&secret::token_hash(secret.expose()));
            if bool::from(presented.as_bytes().ct_eq(hash.as_bytes())) {
                Ok(None)
            } else {
                Err(OAuthError::invalid_client())
            }
        }
        _ => {
            let assertion = client.assertion.as_ref().ok_or_else(OAuthError::invalid_client)?;
            let (kid, claims) =
                crate::jwt::peek_assertion(assertion.expose()).ok_or_else(OAuthError::invalid_client)?;
            if claims.sub != app.id {
                return Err(OAuthError::invalid_client());
            }
            let key = app
                .keys
                .iter()
                .find(|k| kid.as_deref().is_none_or(|kid| kid == k.id) && now < k.expiration)
                .ok_or_else(OAuthError::invalid_client)?;
            let claims = crate::jwt::verify_assertion(&key.public_key, assertion.expose(), issuer, now)
                .map_err(|e| {
                    OAuthError::new(OAuthErrorKind::InvalidClient, format!("client assertion rejected: {e}"))
                })?;
            Ok(Some(claims))
        }
    }
}

/// What exchanging a code decided.
#[derive(Debug)]
pub(crate) enum Exchange {
    /// A new grant: the tx records it and marks the code used.
    Granted { tx: Tx, grant: Box<GrantAdded> },
    /// The code was used before: the tx revokes what it issued; answer `invalid_grant`.
    Replayed(Tx),
}

/// The token endpoint's `authorization_code` grant, decided on the loaded request and user.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decide_exchange(
    req: &AuthRequestView,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    code_verifier: Option<&str>,
    user: Option<&UserView>,
    replayed_grant: Option<&GrantView>,
    grant_id: &str,
    tokens: GrantTokens,
    now: Timestamp,
) -> std::result::Result<Exchange, OAuthError> {
    let AuthRequestOutcome::Linked { linked, at } = &req.outcome else {
        return Err(grant_error("the code is invalid"));
    };
    let presented = crate::hex::encode(&secret::token_hash(code));
    if !bool::from(presented.as_bytes().ct_eq(linked.code_hash.as_bytes())) {
        return Err(grant_error("the code is invalid"));
    }
    if req.request.client_id != client_id {
        return Err(grant_error("the code was issued to another client"));
    }
    if req.exchanged.is_some() {
        let mut tx = Tx::new(now, client_id);
        if let Some(g) = replayed_grant.filter(|g| !g.revoked) {
            tx.load_aggregate(AggregateKind::Grant, &g.id, &g.org_id, g.sequence);
            tx.record(
                AggregateKind::Grant,
                &g.id,
                &g.org_id,
                Event::GrantRevoked { reason: "code reused".into() },
            );
        }
        return Ok(Exchange::Replayed(tx));
    }
    if now.secs_nanos().0 >= at.secs_nanos().0 + CODE_LIFETIME_SECS {
        return Err(grant_error("the code has expired"));
    }
    if req.request.redirect_uri != redirect_uri {
        return Err(grant_error("redirect_uri differs from the authorization request's"));
    }
    match (&req.request.code_challenge, code_verifier) {
        (Some(challenge), Some(v)) if pkce_s256_matches(v, challenge) => {}
        (Some(_), Some(_)) => return Err(grant_error("code_verifier does not match the code_challenge")),
        (Some(_), None) => return Err(grant_error("code_verifier is missing")),
        (None, Some(_)) => return Err(grant_error("code_verifier sent without a code_challenge")),
        (None, None) => {}
    }
    let user =
        user.filter(|u| u.id == linked.user_id).ok_or_else(|| grant_error("the user no longer exists"))?;
    if user.state != UserState::Active {
        return Err(grant_error("the user is not active"));
    }
    let grant = GrantAdded {
        client_id: client_id.to_string(),
        user_id: user.id.clone(),
        session_id: linked.session_id.clone(),
        auth_request_id: req.id.clone(),
        scope: req.request.scope.clone(),
        auth_time: linked.auth_time,
        user_verified: linked.user_verified,
        nonce: req.request.nonce.clone(),
        tokens,
    };
    let mut tx = Tx::new(now, client_id);
    tx.load_aggregate(AggregateKind::AuthRequest, &req.id, &req.org_id, req.sequence);
    tx.record(
        AggregateKind::AuthRequest,
        &req.id,
        &req.org_id,
        Event::AuthRequestCodeExchanged { grant_id: grant_id.to_string() },
    );
    tx.record(AggregateKind::Grant, grant_id, &user.org_id, Event::GrantAdded(grant.clone()));
    Ok(Exchange::Granted { tx, grant: Box::new(grant) })
}

/// The `refresh_token` grant: rotation; a refresh token presented again revokes the grant.
pub(crate) fn decide_refresh(
    grant: &GrantView,
    client_id: &str,
    refresh_token: &str,
    user: Option<&UserView>,
    tokens: GrantTokens,
    now: Timestamp,
) -> std::result::Result<Tx, Box<(OAuthError, Option<Tx>)>> {
    let bad = |d: &str| Box::new((grant_error(d), None));
    if grant.grant.client_id != client_id {
        return Err(bad("the refresh token was issued to another client"));
    }
    if grant.revoked {
        return Err(bad("the refresh token is revoked"));
    }
    let presented = crate::hex::encode(&secret::token_hash(refresh_token));
    let current = grant
        .tokens
        .refresh_hash
        .as_deref()
        .is_some_and(|h| bool::from(presented.as_bytes().ct_eq(h.as_bytes())));
    if !current {
        if grant.spent_refresh.iter().any(|h| bool::from(presented.as_bytes().ct_eq(h.as_bytes()))) {
            let mut tx = Tx::new(now, client_id);
            tx.load_aggregate(AggregateKind::Grant, &grant.id, &grant.org_id, grant.sequence);
            tx.record(
                AggregateKind::Grant,
                &grant.id,
                &grant.org_id,
                Event::GrantRevoked { reason: "refresh token reused".into() },
            );
            return Err(Box::new((grant_error("the refresh token was already used"), Some(tx))));
        }
        return Err(bad("the refresh token is invalid"));
    }
    if grant.tokens.refresh_expires.is_some_and(|e| now >= e) {
        return Err(bad("the refresh token has expired"));
    }
    let user =
        user.filter(|u| u.id == grant.grant.user_id).ok_or_else(|| bad("the user no longer exists"))?;
    if user.state != UserState::Active {
        return Err(bad("the user is not active"));
    }
    let mut tx = Tx::new(now, client_id);
    tx.load_aggregate(AggregateKind::Grant, &grant.id, &grant.org_id, grant.sequence);
    tx.record(AggregateKind::Grant, &grant.id, &grant.org_id, Event::GrantRefreshed(tokens));
    Ok(tx)
}

/// The claims of `user` for the granted scopes (userinfo; the ID token with
/// `idTokenUserinfoAssertion`). `email_verified` is left out when false, as ZITADEL does.
pub fn user_claims(user: &UserView, scopes: &[String]) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut c = serde_json::Map::new();
    c.insert("sub".into(), Value::from(user.id.clone()));
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            c.insert(k.into(), Value::from(v));
        }
    };
    match &user.kind {
        UserKind::Human(h) => {
            if has("profile") {
                put("name", &h.effective_display_name());
                put("given_name", &h.given_name);
                put("family_name", &h.family_name);
                put("nickname", &h.nick_name);
                put("locale", &h.preferred_language);
                put("preferred_username", &user.username);
                put(
                    "gender",
                    match h.gender {
                        1 => "female",
                        2 => "male",
                        3 => "diverse",
                        _ => "",
                    },
                );
            }
            if has("email") {
                put("email", &h.email);
            }
            if has("phone") {
                put("phone_number", &h.phone);
            }
            if has("email") && h.email_verified && !h.email.is_empty() {
                c.insert("email_verified".into(), Value::Bool(true));
            }
            if has("phone") && h.phone_verified && !h.phone.is_empty() {
                c.insert("phone_number_verified".into(), Value::Bool(true));
            }
        }
        UserKind::Machine(m) => {
            if has("profile") {
                put("name", &m.name);
                put("preferred_username", &user.username);
            }
        }
    }
    if has("profile") {
        c.insert("updated_at".into(), Value::from(user.changed_at.secs_nanos().0));
    }
    c
}

impl App {
    async fn load_auth_request(&self, id: &str) -> Result<Option<AuthRequestView>> {
        if !id.starts_with("V2_") || id.len() > 200 {
            return Ok(None);
        }
        Ok(AuthRequestView::fold(&self.deps.store.events_of(AggregateKind::AuthRequest, id).await?))
    }

    async fn load_grant(&self, id: &str) -> Result<Option<GrantView>> {
        Ok(GrantView::fold(&self.deps.store.events_of(AggregateKind::Grant, id).await?))
    }

    /// An application whose project is active (a deactivated or removed project's applications
    /// sign nobody in), as loaded; `None` otherwise.
    async fn active_client(&self, client_id: &str) -> Result<Option<AppView>> {
        let Some(app) = self.load_app(client_id).await? else { return Ok(None) };
        let project = self.load_project(&app.settings.project_id).await?;
        Ok(project.filter(|p| p.state == ObjectState::Active).map(|_| app))
    }

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

    /// New access and refresh tokens of a grant (`<grant id>.<random>`), and their hashes.
    fn new_tokens(
        &self,
        grant_id: &str,
        refresh: bool,
        now: Timestamp,
    ) -> (Secret, Option<Secret>, GrantTokens) {
        let access =
            Secret::new(format!("{grant_id}.{}", secret::generate_token(&*self.deps.entropy).expose()));
        let refresh_token = refresh.then(|| {
            Secret::new(format!("{grant_id}.{}", secret::generate_token(&*self.deps.entropy).expose()))
        });
        let tokens = GrantTokens {
            access_hash: crate::hex::encode(&secret::token_hash(access.expose())),
            access_expires: now.plus(self.cfg.access_token_lifetime),
            refresh_hash: refresh_token.as_ref().map(|r| crate::hex::encode(&secret::token_hash(r.expose()))),
            refresh_expires: refresh
                .then(|| Timestamp::from_unix_secs(now.secs_nanos().0 + REFRESH_IDLE_SECS)),
        };
        (access, refresh_token, tokens)
    }

    async fn checked_client(&self, client: &OidcClient) -> std::result::Result<AppView, OAuthError> {
        // private_key_jwt may name the client in the assertion only.
        let asserted = client
            .assertion
            .as_ref()
            .and_then(|a| crate::jwt::peek_assertion(a.expose()))
            .map(|(_, c)| c.sub);
        let client_id =
            if client.client_id.is_empty() { asserted.unwrap_or_default() } else { client.client_id.clone() };
        if client_id.is_empty() || client_id.len() > 200 {
            return Err(OAuthError::invalid_client());
        }
        let now = self.now();
        let app = self.active_client(&client_id).await.map_err(OAuthError::server)?;
        let client = OidcClient { client_id, ..client.clone() };
        if let Some(claims) = check_client(app.as_ref(), &client, &self.cfg.issuer, now)? {
            self.remember_assertion(&client.client_id, &claims, now)?;
        }
        app.ok_or_else(OAuthError::invalid_client)
    }

    /// The ID token of a grant (signed with the newest key).
    fn id_token(
        &self,
        app: &AppView,
        grant_id: &str,
        g: &GrantAdded,
        user: &UserView,
        access: &Secret,
        now: Timestamp,
    ) -> Result<String> {
        let now_s = now.secs_nanos().0;
        let mut claims = serde_json::Map::new();
        if app.settings.oidc.as_ref().is_some_and(|o| o.id_token_userinfo_assertion) {
            claims = user_claims(user, &g.scope);
        }
        let amr: &[&str] = if g.user_verified { &["user", "mfa"] } else { &["user"] };
        let lifetime = i64::try_from(self.cfg.access_token_lifetime.as_secs()).unwrap_or(i64::MAX);
        let protocol = serde_json::json!({
            "iss": self.cfg.issuer,
            "sub": user.id,
            "aud": [g.client_id],
            "azp": g.client_id,
            "client_id": g.client_id,
            "exp": now_s.saturating_add(lifetime),
            "iat": now_s,
            "auth_time": g.auth_time.secs_nanos().0,
            "amr": amr,
            "at_hash": at_hash(access.expose()),
            "sid": grant_id,
        });
        if let serde_json::Value::Object(m) = protocol {
            claims.extend(m);
        }
        if let Some(n) = &g.nonce {
            claims.insert("nonce".into(), serde_json::Value::from(n.clone()));
        }
        self.deps.keys.signing.sign_claims(&claims, "JWT")
    }

    /// The token endpoint's `authorization_code` grant.
    pub async fn exchange_code(
        &self,
        client: &OidcClient,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> std::result::Result<OidcTokens, OAuthError> {
        let app = self.checked_client(client).await?;
        let req_id = token_aggregate(code).ok_or_else(|| grant_error("the code is invalid"))?.to_string();
        let _lock = self.lock_aggregate(&req_id).await;
        let mut outcome = None;
        retry!(self, async {
            let now = self.now();
            let Some(req) = self.load_auth_request(&req_id).await? else {
                outcome = Some(Err(grant_error("the code is invalid")));
                return Ok(());
            };
            let user = match &req.outcome {
                AuthRequestOutcome::Linked { linked, .. } => self.deps.store.user(&linked.user_id).await?,
                _ => None,
            };
            let replayed = match &req.exchanged {
                Some(g) => self.load_grant(g).await?,
                None => None,
            };
            let grant_id = format!("V2_{}", self.next_id());
            let offline = req.request.scope.iter().any(|s| s == "offline_access")
                && app.settings.oidc.as_ref().is_some_and(|o| o.allows_refresh());
            let (access, refresh, tokens) = self.new_tokens(&grant_id, offline, now);
            match decide_exchange(
                &req,
                &app.id,
                code,
                redirect_uri,
                code_verifier,
                user.as_ref(),
                replayed.as_ref(),
                &grant_id,
                tokens,
                now,
            ) {
                Err(e) => outcome = Some(Err(e)),
                Ok(Exchange::Replayed(tx)) => {
                    self.deps.store.commit(tx.into_commit()).await?;
                    outcome =
                        Some(Err(grant_error("the code was already used; the tokens it issued are revoked")));
                }
                Ok(Exchange::Granted { tx, grant }) => {
                    let user = user.ok_or_else(|| Error::internal("a granted code has a user"))?;
                    let id_token = self.id_token(&app, &grant_id, &grant, &user, &access, now)?;
                    self.deps.store.commit(tx.into_commit()).await?;
                    outcome = Some(Ok(OidcTokens {
                        access_token: access,
                        expires_in: self.cfg.access_token_lifetime.as_secs(),
                        id_token,
                        refresh_token: refresh,
                        scope: grant.scope.join(" "),
                    }));
                }
            }
            Ok(())
        })
        .map_err(OAuthError::server)?;
        outcome.unwrap_or_else(|| Err(OAuthError::server(Error::internal("no outcome"))))
    }

    /// The token endpoint's `refresh_token` grant (rotation).
    pub async fn refresh(
        &self,
        client: &OidcClient,
        refresh_token: &str,
    ) -> std::result::Result<OidcTokens, OAuthError> {
        let app = self.checked_client(client).await?;
        if !app.settings.oidc.as_ref().is_some_and(|o| o.allows_refresh()) {
            return Err(OAuthError::new(
                OAuthErrorKind::UnauthorizedClient,
                "the client may not use refresh_token",
            ));
        }
        let grant_id = token_aggregate(refresh_token)
            .ok_or_else(|| grant_error("the refresh token is invalid"))?
            .to_string();
        let _lock = self.lock_aggregate(&grant_id).await;
        let mut outcome = None;
        retry!(self, async {
            let now = self.now();
            let Some(grant) = self.load_grant(&grant_id).await? else {
                outcome = Some(Err(grant_error("the refresh token is invalid")));
                return Ok(());
            };
            let user = self.deps.store.user(&grant.grant.user_id).await?;
            let (access, refresh, tokens) = self.new_tokens(&grant_id, true, now);
            match decide_refresh(&grant, &app.id, refresh_token, user.as_ref(), tokens, now) {
                Err(refused) => {
                    let (e, tx) = *refused;
                    if let Some(tx) = tx {
                        self.deps.store.commit(tx.into_commit()).await?;
                    }
                    outcome = Some(Err(e));
                }
                Ok(tx) => {
                    let user = user.ok_or_else(|| Error::internal("a refreshed grant has a user"))?;
                    let mut g = grant.grant.clone();
                    g.nonce = None;
                    let id_token = self.id_token(&app, &grant_id, &g, &user, &access, now)?;
                    self.deps.store.commit(tx.into_commit()).await?;
                    outcome = Some(Ok(OidcTokens {
                        access_token: access,
                        expires_in: self.cfg.access_token_lifetime.as_secs(),
                        id_token,
                        refresh_token: refresh,
                        scope: g.scope.join(" "),
                    }));
                }
            }
            Ok(())
        })
        .map_err(OAuthError::server)?;
        outcome.unwrap_or_else(|| Err(OAuthError::server(Error::internal("no outcome"))))
    }

    /// The live grant and user of an OIDC access token, or `None` (unknown, expired, revoked,
    /// user inactive).
    pub async fn access_token_grant(&self, token: &str) -> Result<Option<(GrantView, UserView)>> {
        let Some(grant_id) = token_aggregate(token) else { return Ok(None) };
        let Some(grant) = self.load_grant(grant_id).await? else { return Ok(None) };
        let presented = crate::hex::encode(&secret::token_hash(token));
        let current = bool::from(presented.as_bytes().ct_eq(grant.tokens.access_hash.as_bytes()));
        if !current || grant.revoked || self.now() >= grant.tokens.access_expires {
            return Ok(None);
        }
        let user = self.deps.store.user(&grant.grant.user_id).await?.filter(|u| u.state == UserState::Active);
        Ok(user.map(|u| (grant, u)))
    }

    /// `/oidc/v1/userinfo`: the user's claims for the granted scopes; `None` = invalid token.
    pub async fn userinfo(&self, token: &str) -> Result<Option<serde_json::Value>> {
        Ok(self
            .access_token_grant(token)
            .await?
            .map(|(g, u)| serde_json::Value::Object(user_claims(&u, &g.grant.scope))))
    }

    /// `/oidc/v1/end_session`: with a valid `id_token_hint` the grant and its login session end;
    /// answers where to send the browser (`None`: show the signed-out page). A
    /// `post_logout_redirect_uri` must be registered for the hint's client.
    pub async fn end_session(
        &self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> std::result::Result<Option<String>, OAuthError> {
        let claims =
            match id_token_hint.filter(|h| !h.is_empty()) {
                Some(h) => {
                    let c =
                        self.deps.keys.signing.verified_claims(h).map_err(|_| {
                            page_error("id_token_hint is not a valid ID token of this issuer")
                        })?;
                    if c["iss"].as_str() != Some(self.cfg.issuer.as_str()) {
                        return Err(page_error("id_token_hint was issued by another issuer"));
                    }
                    Some(c)
                }
                None => None,
            };
        let hinted_client = claims.as_ref().and_then(|c| c["azp"].as_str().map(str::to_string));
        let client = match (client_id.filter(|c| !c.is_empty()), hinted_client) {
            (Some(a), Some(b)) if a != b => {
                return Err(page_error("client_id differs from the id_token_hint's client"));
            }
            (Some(a), _) => Some(a.to_string()),
            (None, b) => b,
        };
        let redirect = match post_logout_redirect_uri.filter(|u| !u.is_empty()) {
            None => None,
            Some(uri) => {
                let client = client
                    .as_deref()
                    .ok_or_else(|| page_error("post_logout_redirect_uri needs id_token_hint or client_id"))?;
                let app = self.load_app(client).await.map_err(OAuthError::server)?;
                let allowed = app
                    .as_ref()
                    .and_then(|a| a.settings.oidc.as_ref())
                    .is_some_and(|o| o.post_logout_allowed(uri));
                if !allowed {
                    return Err(page_error("post_logout_redirect_uri is not registered for this client"));
                }
                let params: Vec<(&str, &str)> = state.map(|s| ("state", s)).into_iter().collect();
                Some(if params.is_empty() { uri.to_string() } else { response_url(uri, false, &params) })
            }
        };
        if let Some(grant_id) = claims.as_ref().and_then(|c| c["sid"].as_str()) {
            self.end_grant(grant_id).await.map_err(OAuthError::server)?;
        }
        Ok(redirect)
    }

    /// Revoke a grant and terminate the session it was signed in with.
    async fn end_grant(&self, grant_id: &str) -> Result<()> {
        let _lock = self.lock_aggregate(grant_id).await;
        retry!(self, async {
            let Some(g) = self.load_grant(grant_id).await? else { return Ok(()) };
            let now = self.now();
            let mut tx = Tx::new(now, &g.grant.user_id);
            if !g.revoked {
                tx.load_aggregate(AggregateKind::Grant, &g.id, &g.org_id, g.sequence);
                tx.record(
                    AggregateKind::Grant,
                    &g.id,
                    &g.org_id,
                    Event::GrantRevoked { reason: "signed out".into() },
                );
            }
            if let Some(s) = self.deps.store.session(&g.grant.session_id).await?.filter(|s| !s.terminated) {
                tx.load_session(s);
                tx.record_session(&g.grant.session_id, Event::SessionTerminated {});
            }
            self.deps.store.commit(tx.into_commit()).await
        })
    }

    /// The client of an introspection: an application by its secret or key (private_key_jwt),
    /// else a machine user (as for passlink's other tokens).
    pub(crate) async fn authenticate_introspector(
        &self,
        client: &super::super::ClientCredentials,
    ) -> std::result::Result<(), OAuthError> {
        let c = match client {
            super::super::ClientCredentials::Secret { client_id, secret } => {
                OidcClient { client_id: client_id.clone(), secret: Some(secret.clone()), assertion: None }
            }
            super::super::ClientCredentials::Assertion(a) => OidcClient {
                client_id: crate::jwt::peek_assertion(a.expose()).map(|(_, c)| c.sub).unwrap_or_default(),
                secret: None,
                assertion: Some(a.clone()),
            },
        };
        if !c.client_id.is_empty()
            && c.client_id.len() <= 200
            && let Some(app) = self.load_app(&c.client_id).await.map_err(OAuthError::server)?
        {
            if app.settings.oidc.as_ref().is_some_and(|o| o.auth_method == auth_method::NONE) {
                return Err(OAuthError::invalid_client());
            }
            let now = self.now();
            if let Some(claims) = check_client(Some(&app), &c, &self.cfg.issuer, now)? {
                self.remember_assertion(&c.client_id, &claims, now)?;
            }
            return Ok(());
        }
        self.authenticate_client(client).await.map(|_| ())
    }

    /// Introspection of an OIDC access token (RFC 7662 fields); `None` when not live.
    pub async fn introspect_grant_token(&self, token: &str) -> Result<Option<serde_json::Value>> {
        let Some((g, user)) = self.access_token_grant(token).await? else { return Ok(None) };
        Ok(Some(serde_json::json!({
            "active": true,
            "scope": g.grant.scope.join(" "),
            "client_id": g.grant.client_id,
            "username": user.username,
            "token_type": "Bearer",
            "exp": g.tokens.access_expires.secs_nanos().0,
            "iat": g.created_at.secs_nanos().0,
            "sub": user.id,
            "aud": [g.grant.client_id],
            "iss": self.cfg.issuer,
            "sid": g.id,
        })))
    }
}
