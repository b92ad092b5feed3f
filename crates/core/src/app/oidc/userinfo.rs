//! What a token holder can do once the flow is done: the claims of userinfo (and of an ID token
//! with `idTokenUserinfoAssertion`), introspection of an access token, and
//! `/oidc/v1/end_session` (RP-initiated logout: the grant and its session end).

use subtle::ConstantTimeEq;

use super::super::App;
use super::super::client_auth::OAuthError;
use super::super::tx::Tx;
use super::client::{OidcClient, check_client};
use super::login::page_error;
use crate::error::Result;
use crate::event::{AggregateKind, Event};
use crate::oidc::{GrantView, auth_method, response_url, token_aggregate};
use crate::secret;
use crate::view::{UserKind, UserState, UserView};

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
