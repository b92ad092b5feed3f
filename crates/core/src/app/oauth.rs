//! OAuth2 for machine callers: AddSecret, AddKey, the token endpoint (client credentials and
//! JWT bearer), introspection (RFC 7662), revocation (RFC 7009), and access-token authentication.
//!
//! Errors of the token, introspection and revocation endpoints are RFC 6749's (`OAuthError`);
//! repeated client failures are rate limited per client; assertion ids are remembered until the
//! assertion expires, so a replay is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{App, Caller, Principal, UserTx, token_invalid, user_not_found};
use crate::error::{Error, Kind, Result};
use crate::event::Event;
use crate::oauth::{self as o, AccessClaims};
use crate::permission::{self as perm, require_in, require_somewhere};
use crate::secret::{self, Secret};
use crate::time::Timestamp;
use crate::validate;
use crate::view::{Change, UserKind, UserState, UserView};

/// How a client authenticates at the OAuth2 endpoints.
#[derive(Debug, Clone)]
pub enum ClientCredentials {
    /// client_secret_basic / client_secret_post: the machine user's username and secret.
    Secret { client_id: String, secret: Secret },
    /// private_key_jwt, or the JWT-bearer grant's assertion.
    Assertion(Secret),
}

/// A token request, already parsed from the form.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub grant_type: String,
    pub client: Option<ClientCredentials>,
    pub scope: String,
}

#[derive(Debug)]
pub struct TokenGranted {
    pub access_token: Secret,
    pub expires_in: u64,
    pub scope: String,
}

/// An RFC 6749 error: HTTP status, `error` code, `error_description`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError { status, error, description: description.into() }
    }
    fn invalid_client() -> OAuthError {
        OAuthError::new(401, "invalid_client", "client authentication failed")
    }
    fn server(e: Error) -> OAuthError {
        let status = if e.kind == Kind::Unavailable { 503 } else { 500 };
        OAuthError::new(status, "server_error", e.text())
    }
}

#[derive(Debug)]
pub struct KeyAdded {
    pub key_id: String,
    /// ZITADEL's key file (JSON) when passlink generated the key; empty for a given public key.
    pub key_content: Vec<u8>,
    pub creation_date: Timestamp,
}

/// In-memory OAuth2 state of this process.
#[derive(Default)]
pub(super) struct OAuthState {
    failures: Mutex<HashMap<String, (u32, Timestamp)>>,
    seen_assertions: Mutex<HashMap<String, Timestamp>>,
}

const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn machine(user: &UserView) -> Option<&crate::event::MachineProfile> {
    match &user.kind {
        UserKind::Machine(m) => Some(m),
        UserKind::Human(_) => None,
    }
}

impl App {
    // ------------------------------------------------------------------ credentials of machines

    async fn machine_for_write(&self, caller: &Caller, user_id: &str, msg: &str) -> Result<UserView> {
        let ms = &caller.principal.memberships;
        require_somewhere(ms, perm::USER_WRITE)?;
        validate::runes_between(msg, "UserId", user_id, 1, 200)?;
        let user = self.visible_user(user_id).await?;
        require_in(ms, perm::USER_WRITE, &user.org_id, user_not_found)?;
        if user.is_human() {
            return Err(Error::new(Kind::FailedPrecondition, "COMMAND-Sdj4f", "Errors.User.NotMachine"));
        }
        Ok(user)
    }

    async fn append_user_event(&self, caller: &Caller, user: &UserView, event: Event) -> Result<Timestamp> {
        let now = self.now();
        let mut tx = UserTx::new(now, &caller.principal.user_id, user);
        tx.record(event);
        self.deps.store.commit(tx.into_commit()).await?;
        Ok(now)
    }

    /// AddSecret: a new client secret for a machine user (returned once, stored as argon2id).
    pub async fn add_secret(&self, caller: &Caller, user_id: &str) -> Result<(Secret, Timestamp)> {
        let _lock = self.lock_aggregate(user_id).await;
        let (secret, hash) = o::new_client_secret(&*self.deps.entropy)?;
        let at = retry!(self, async {
            let user = self.machine_for_write(caller, user_id, "AddSecretRequest").await?;
            self.append_user_event(caller, &user, Event::MachineSecretSet { hash: hash.clone() }).await
        })?;
        self.tokens.clear();
        Ok((secret, at))
    }

    /// AddKey: generate a key pair (the private key is returned once, in ZITADEL's key file) or
    /// register a given public key.
    pub async fn add_key(
        &self,
        caller: &Caller,
        user_id: &str,
        expiration: Option<Timestamp>,
        public_key: &[u8],
    ) -> Result<KeyAdded> {
        let now = self.now();
        let expiration = expiration.unwrap_or(super::NEVER_EXPIRES);
        if expiration <= now {
            return Err(Error::new(Kind::InvalidArgument, "COMMAND-dv3t5", "Errors.PAT.ExpirationInPast"));
        }
        let (public_pem, private) = if public_key.is_empty() {
            let (public, private) = o::generate_machine_key(&*self.deps.entropy)?;
            (public, Some(private))
        } else {
            (o::normalize_public_key(public_key)?, None)
        };
        let key_id = self.deps.ids.next_id();
        let _lock = self.lock_aggregate(user_id).await;
        let at = retry!(self, async {
            let user = self.machine_for_write(caller, user_id, "AddKeyRequest").await?;
            let ev =
                Event::MachineKeyAdded { key_id: key_id.clone(), public_key: public_pem.clone(), expiration };
            self.append_user_event(caller, &user, ev).await
        })?;
        let key_content =
            private.map(|p| o::key_file(&key_id, user_id, &p, &expiration.to_rfc3339())).unwrap_or_default();
        Ok(KeyAdded { key_id, key_content, creation_date: at })
    }

    // ------------------------------------------------------------------ client authentication

    fn too_many_failures(&self, client: &str, now: Timestamp) -> bool {
        let map = lock(&self.oauth.failures);
        map.get(client).is_some_and(|(n, since)| *n >= MAX_FAILURES && now < since.plus(FAILURE_WINDOW))
    }

    fn record_failure(&self, client: &str, now: Timestamp) {
        let mut map = lock(&self.oauth.failures);
        if map.len() > 100_000 {
            map.clear();
        }
        let e = map.entry(client.to_string()).or_insert((0, now));
        if now >= e.1.plus(FAILURE_WINDOW) {
            *e = (0, now);
        }
        e.0 += 1;
    }

    /// Authenticate a client; failures count towards the per-client rate limit.
    async fn authenticate_client(&self, creds: &ClientCredentials) -> Result<UserView, OAuthError> {
        let now = self.now();
        let client_key = match creds {
            ClientCredentials::Secret { client_id, .. } => client_id.to_lowercase(),
            ClientCredentials::Assertion(a) => {
                o::peek_assertion(a.expose()).map(|(_, c)| c.sub).unwrap_or_default()
            }
        };
        if self.too_many_failures(&client_key, now) {
            return Err(OAuthError::new(
                429,
                "temporarily_unavailable",
                "too many failed attempts, retry later",
            ));
        }
        match self.check_client(creds, now).await {
            Ok(user) => Ok(user),
            Err(e) => {
                if e.error == "invalid_client" || e.error == "invalid_grant" {
                    self.record_failure(&client_key, now);
                }
                Err(e)
            }
        }
    }

    async fn check_client(&self, creds: &ClientCredentials, now: Timestamp) -> Result<UserView, OAuthError> {
        match creds {
            ClientCredentials::Secret { client_id, secret } => {
                let user = self.deps.store.user_by_username(client_id).await.map_err(OAuthError::server)?;
                let user =
                    user.filter(|u| u.state == UserState::Active).ok_or_else(OAuthError::invalid_client)?;
                let hash = machine(&user).map(|m| m.secret_hash.as_str()).unwrap_or_default();
                let ok = !hash.is_empty() && o::verify_client_secret(hash, secret.expose());
                if ok { Ok(user) } else { Err(OAuthError::invalid_client()) }
            }
            ClientCredentials::Assertion(assertion) => {
                let assertion = assertion.expose();
                let grant = |d: &str| OAuthError::new(400, "invalid_grant", d.to_string());
                let (kid, claims) =
                    o::peek_assertion(assertion).ok_or_else(|| grant("the assertion is not a JWT"))?;
                let user = self.deps.store.user(&claims.sub).await.map_err(OAuthError::server)?;
                let user =
                    user.filter(|u| u.state == UserState::Active).ok_or_else(|| grant("unknown subject"))?;
                let keys = machine(&user).map(|m| m.keys.clone()).unwrap_or_default();
                let key = keys
                    .iter()
                    .find(|k| kid.as_deref().is_none_or(|kid| kid == k.id) && now < k.expiration)
                    .ok_or_else(|| grant("no valid key for the assertion"))?;
                let claims = o::verify_assertion(&key.public_key, assertion, &self.cfg.issuer, now)
                    .map_err(|e| grant(&format!("assertion rejected: {e}")))?;
                // Replay: an assertion id is accepted once within its lifetime. (Assertions without
                // a jti are not tracked: two identical ones minted in the same second are legitimate.)
                if let Some(jti) = &claims.jti {
                    let mut seen = lock(&self.oauth.seen_assertions);
                    seen.retain(|_, exp| *exp > now);
                    let key = format!("{}:{jti}", user.id);
                    if seen.contains_key(&key) {
                        return Err(grant("assertion replayed"));
                    }
                    seen.insert(key, Timestamp::from_unix_secs(claims.exp + 60));
                }
                Ok(user)
            }
        }
    }

    // ------------------------------------------------------------------ endpoints

    /// The token endpoint: `client_credentials` and `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    pub async fn token(&self, req: TokenRequest) -> Result<TokenGranted, OAuthError> {
        let user = match req.grant_type.as_str() {
            "client_credentials" => {
                // client_secret_basic, client_secret_post or private_key_jwt.
                let creds = req.client.as_ref().ok_or_else(OAuthError::invalid_client)?;
                self.authenticate_client(creds).await?
            }
            "urn:ietf:params:oauth:grant-type:jwt-bearer" => match &req.client {
                Some(c @ ClientCredentials::Assertion(_)) => self.authenticate_client(c).await?,
                _ => return Err(OAuthError::new(400, "invalid_request", "missing assertion")),
            },
            "" => return Err(OAuthError::new(400, "invalid_request", "missing grant_type")),
            _ => {
                return Err(OAuthError::new(
                    400,
                    "unsupported_grant_type",
                    "supported: client_credentials, jwt-bearer",
                ));
            }
        };
        let scopes: Vec<&str> = req.scope.split_whitespace().collect();
        if let Some(bad) = scopes.iter().find(|s| {
            !matches!(**s, "openid" | "profile" | "email" | "offline_access")
                && !s.starts_with("urn:zitadel:iam:")
        }) {
            return Err(OAuthError::new(400, "invalid_scope", format!("unknown scope {bad}")));
        }
        let now = self.now();
        let (iat, _) = now.secs_nanos();
        let lifetime = self.cfg.access_token_lifetime.as_secs();
        let mut aud = vec![user.username.clone()];
        if scopes.contains(&o::API_AUDIENCE_SCOPE) {
            aud.push(o::API_AUDIENCE.to_string());
        }
        let claims = AccessClaims {
            iss: self.cfg.issuer.clone(),
            sub: user.id.clone(),
            aud,
            exp: iat + i64::try_from(lifetime).unwrap_or(i64::MAX / 2),
            iat,
            nbf: iat,
            jti: self.deps.ids.next_id(),
            client_id: user.username.clone(),
            scope: scopes.join(" "),
        };
        let token = self.deps.keys.signing.sign(&claims).map_err(OAuthError::server)?;
        Ok(TokenGranted { access_token: Secret::new(token), expires_in: lifetime, scope: claims.scope })
    }

    /// RFC 7662 introspection, for any authenticated client.
    pub async fn introspect(
        &self,
        client: &ClientCredentials,
        token: &str,
    ) -> Result<serde_json::Value, OAuthError> {
        self.authenticate_client(client).await?;
        let inactive = serde_json::json!({"active": false});
        let now = self.now();
        if o::looks_like_jwt(token) {
            let Ok(claims) = self.deps.keys.signing.verify(token, &self.cfg.issuer, now) else {
                return Ok(inactive);
            };
            let user = self.deps.store.user(&claims.sub).await.map_err(OAuthError::server)?;
            let Some(user) = user.filter(|u| u.state == UserState::Active) else { return Ok(inactive) };
            if user.revoked_tokens.iter().any(|(id, _)| *id == claims.jti) {
                return Ok(inactive);
            }
            return Ok(serde_json::json!({
                "active": true, "scope": claims.scope, "client_id": claims.client_id, "username": user.username,
                "token_type": "Bearer", "exp": claims.exp, "iat": claims.iat, "nbf": claims.nbf,
                "sub": claims.sub, "aud": claims.aud, "iss": claims.iss, "jti": claims.jti,
            }));
        }
        let pat =
            self.deps.store.pat_by_hash(&secret::token_hash(token)).await.map_err(OAuthError::server)?;
        let Some(pat) = pat.filter(|p| !p.revoked && now < p.expiration) else { return Ok(inactive) };
        let user = self.deps.store.user(&pat.user_id).await.map_err(OAuthError::server)?;
        let Some(user) = user.filter(|u| u.state == UserState::Active) else { return Ok(inactive) };
        Ok(serde_json::json!({
            "active": true, "username": user.username, "sub": user.id, "token_type": "Bearer",
            "exp": pat.expiration.secs_nanos().0, "iat": pat.created_at.secs_nanos().0, "iss": self.cfg.issuer,
        }))
    }

    /// RFC 7009 revocation: a client revokes its own access tokens and personal access tokens.
    /// Unknown or foreign tokens are answered like success, as the RFC asks.
    pub async fn revoke(&self, client: &ClientCredentials, token: &str) -> Result<(), OAuthError> {
        let client_user = self.authenticate_client(client).await?;
        let now = self.now();
        let system = Caller {
            principal: std::sync::Arc::new(Principal {
                user_id: client_user.id.clone(),
                org_id: client_user.org_id.clone(),
                memberships: Vec::new(),
                token_expires: now,
            }),
            context_org: client_user.org_id.clone(),
        };
        if o::looks_like_jwt(token) {
            let Ok(claims) = self.deps.keys.signing.verify(token, &self.cfg.issuer, now) else {
                return Ok(());
            };
            if claims.sub != client_user.id {
                return Ok(());
            }
            let _lock = self.lock_aggregate(&claims.sub).await;
            retry!(self, async {
                let user = self.visible_user(&claims.sub).await?;
                let ev = Event::TokenRevoked {
                    token_id: claims.jti.clone(),
                    expiration: Timestamp::from_unix_secs(claims.exp),
                };
                self.append_user_event(&system, &user, ev).await
            })
            .map_err(OAuthError::server)?;
        } else {
            let hash = secret::token_hash(token);
            let Some(pat) = self.deps.store.pat_by_hash(&hash).await.map_err(OAuthError::server)? else {
                return Ok(());
            };
            if pat.user_id != client_user.id || pat.revoked {
                return Ok(());
            }
            let _lock = self.lock_aggregate(&pat.user_id).await;
            retry!(self, async {
                let user = self.visible_user(&pat.user_id).await?;
                let mut tx = UserTx::new(now, &client_user.id, &user);
                tx.record(Event::PatRemoved { token_id: pat.id.clone() });
                let mut revoked = pat.clone();
                revoked.revoked = true;
                tx.tx.commit.changes.push(Change::Pat(revoked));
                self.deps.store.commit(tx.into_commit()).await
            })
            .map_err(OAuthError::server)?;
        }
        self.tokens.clear();
        Ok(())
    }

    /// A principal from a passlink access token: valid signature, issuer, lifetime, the API
    /// audience, an active subject, not revoked.
    pub(super) async fn principal_from_jwt(&self, token: &str, now: Timestamp) -> Result<Principal> {
        let iss = o::peek_issuer(token).ok_or_else(|| token_invalid().with_cause("not a JWT"))?;
        if iss != self.cfg.issuer {
            return self.principal_from_external(token, &iss, now).await;
        }
        let claims = self.deps.keys.signing.verify(token, &self.cfg.issuer, now)?;
        if !claims.aud.iter().any(|a| a == o::API_AUDIENCE) {
            return Err(token_invalid().with_cause("the token's audience is not this API"));
        }
        let user = self.deps.store.user(&claims.sub).await?.ok_or_else(token_invalid)?;
        if user.state != UserState::Active {
            return Err(token_invalid().with_cause("token owner is not active"));
        }
        if user.revoked_tokens.iter().any(|(id, _)| *id == claims.jti) {
            return Err(token_invalid().with_cause("token revoked"));
        }
        let memberships = self.deps.store.memberships_of(&user.id).await?;
        Ok(Principal {
            user_id: user.id,
            org_id: user.org_id,
            memberships,
            token_expires: Timestamp::from_unix_secs(claims.exp),
        })
    }

    /// A token of a trusted external issuer authenticates the passlink user whose **user id**
    /// equals its `sub` (create that user with `userId` set to the external subject). It must
    /// name this API in `aud` (the ZITADEL project audience `zitadel` or passlink's issuer URL).
    async fn principal_from_external(&self, token: &str, iss: &str, now: Timestamp) -> Result<Principal> {
        let trusted = self
            .deps
            .trusted_issuers
            .iter()
            .find(|t| t.issuer().trim_end_matches('/') == iss.trim_end_matches('/'))
            .ok_or_else(|| token_invalid().with_cause("untrusted issuer"))?;
        let claims = trusted.verify(token).await?;
        let now_s = now.secs_nanos().0;
        if now_s >= claims.exp || claims.nbf.is_some_and(|nbf| now_s + 60 < nbf) {
            return Err(token_invalid().with_cause("external token expired or not yet valid"));
        }
        if !claims.aud.iter().any(|a| a == o::API_AUDIENCE || a.trim_end_matches('/') == self.cfg.issuer) {
            return Err(token_invalid().with_cause("the external token's audience is not this API"));
        }
        let user = self
            .deps
            .store
            .user(&claims.sub)
            .await?
            .ok_or_else(|| token_invalid().with_cause("no user for the subject"))?;
        if user.state != UserState::Active {
            return Err(token_invalid().with_cause("token owner is not active"));
        }
        let memberships = self.deps.store.memberships_of(&user.id).await?;
        Ok(Principal {
            user_id: user.id,
            org_id: user.org_id,
            memberships,
            token_expires: Timestamp::from_unix_secs(claims.exp),
        })
    }

    /// The JWKS document of the signing keys.
    pub fn jwks(&self) -> serde_json::Value {
        self.deps.keys.signing.jwks()
    }

    pub fn issuer(&self) -> &str {
        &self.cfg.issuer
    }
}
