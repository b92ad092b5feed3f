//! OAuth2 client authentication for the token, introspection and revocation endpoints: a
//! machine user's client secret or a JWT assertion signed with one of its keys; repeated
//! failures are rate limited per client, and assertion ids are remembered until the assertion
//! expires, so a replay is refused.
//!
//! Errors are RFC 6749's: an [`OAuthErrorKind`] (the `error` code) and a description. The
//! server maps the kind to an HTTP status.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::App;
use crate::error::{Error, Kind};
use crate::event::MachineProfile;
use crate::jwt;
use crate::secret::{self, Secret};
use crate::time::Timestamp;
use crate::view::{UserKind, UserState, UserView};

/// How a client authenticates at the OAuth2 endpoints.
#[derive(Debug, Clone)]
pub enum ClientCredentials {
    /// client_secret_basic / client_secret_post: the machine user's username and secret.
    Secret { client_id: String, secret: Secret },
    /// private_key_jwt, or the JWT-bearer grant's assertion.
    Assertion(Secret),
}

/// The kind of an OAuth2 error (RFC 6749 section 5.2, plus the server-side conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorKind {
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    /// The client may not use this grant type.
    UnauthorizedClient,
    InvalidScope,
    /// Too many failed attempts of this client; retry after [`CLIENT_FAILURE_WINDOW`].
    RateLimited,
    /// The store cannot be reached.
    Unavailable,
    /// Anything else that went wrong on our side.
    ServerError,
}

impl OAuthErrorKind {
    /// The `error` code of the response body.
    pub fn code(self) -> &'static str {
        match self {
            OAuthErrorKind::InvalidRequest => "invalid_request",
            OAuthErrorKind::InvalidClient => "invalid_client",
            OAuthErrorKind::InvalidGrant => "invalid_grant",
            OAuthErrorKind::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorKind::InvalidScope => "invalid_scope",
            OAuthErrorKind::UnauthorizedClient => "unauthorized_client",
            OAuthErrorKind::RateLimited => "temporarily_unavailable",
            OAuthErrorKind::Unavailable | OAuthErrorKind::ServerError => "server_error",
        }
    }
}

/// An RFC 6749 error: its kind (the `error` code) and `error_description`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub kind: OAuthErrorKind,
    pub description: String,
}

impl OAuthError {
    pub fn new(kind: OAuthErrorKind, description: impl Into<String>) -> OAuthError {
        OAuthError { kind, description: description.into() }
    }

    /// The `error` code of the response body.
    pub fn error(&self) -> &'static str {
        self.kind.code()
    }

    pub(super) fn invalid_client() -> OAuthError {
        OAuthError::new(OAuthErrorKind::InvalidClient, "client authentication failed")
    }

    pub(super) fn server(e: Error) -> OAuthError {
        let kind = if e.kind == Kind::Unavailable {
            OAuthErrorKind::Unavailable
        } else {
            OAuthErrorKind::ServerError
        };
        OAuthError::new(kind, e.text())
    }
}

/// Failures of one client within this window count towards the rate limit; a limited client
/// is refused for the rest of the window.
pub const CLIENT_FAILURE_WINDOW: Duration = Duration::from_secs(60);
const MAX_FAILURES: u32 = 5;

/// In-memory OAuth2 state of this process.
#[derive(Default)]
pub(super) struct OAuthState {
    failures: Mutex<HashMap<String, (u32, Timestamp)>>,
    seen_assertions: Mutex<HashMap<String, Timestamp>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn machine(user: &UserView) -> Option<&MachineProfile> {
    match &user.kind {
        UserKind::Machine(m) => Some(m),
        UserKind::Human(_) => None,
    }
}

fn grant_error(description: &str) -> OAuthError {
    OAuthError::new(OAuthErrorKind::InvalidGrant, description)
}

/// Client secret check on the user the client id names.
fn check_secret(user: Option<UserView>, secret: &Secret) -> Result<UserView, OAuthError> {
    let user = user.filter(|u| u.state == UserState::Active).ok_or_else(OAuthError::invalid_client)?;
    let hash = machine(&user).map(|m| m.secret_hash.as_str()).unwrap_or_default();
    if !hash.is_empty() && secret::verify_client_secret(hash, secret.expose()) {
        Ok(user)
    } else {
        Err(OAuthError::invalid_client())
    }
}

/// Assertion check on the user its subject names: a live key of the user (by `kid`) verifies
/// it for this issuer at `now`. Returns the user and the verified claims.
fn check_assertion(
    user: Option<UserView>,
    kid: Option<&str>,
    assertion: &str,
    issuer: &str,
    now: Timestamp,
) -> Result<(UserView, jwt::AssertionClaims), OAuthError> {
    let user = user.filter(|u| u.state == UserState::Active).ok_or_else(|| grant_error("unknown subject"))?;
    let keys = machine(&user).map(|m| m.keys.as_slice()).unwrap_or_default();
    let key = keys
        .iter()
        .find(|k| kid.is_none_or(|kid| kid == k.id) && now < k.expiration)
        .ok_or_else(|| grant_error("no valid key for the assertion"))?;
    let claims = jwt::verify_assertion(&key.public_key, assertion, issuer, now)
        .map_err(|e| grant_error(&format!("assertion rejected: {e}")))?;
    Ok((user, claims))
}

impl App {
    fn too_many_failures(&self, client: &str, now: Timestamp) -> bool {
        let map = lock(&self.oauth.failures);
        map.get(client)
            .is_some_and(|(n, since)| *n >= MAX_FAILURES && now < since.plus(CLIENT_FAILURE_WINDOW))
    }

    fn record_failure(&self, client: &str, now: Timestamp) {
        let mut map = lock(&self.oauth.failures);
        if map.len() > 100_000 {
            map.clear();
        }
        let e = map.entry(client.to_string()).or_insert((0, now));
        if now >= e.1.plus(CLIENT_FAILURE_WINDOW) {
            *e = (0, now);
        }
        e.0 += 1;
    }

    /// Replay protection: an assertion id (`jti`) of `subject` is accepted once within the
    /// assertion's lifetime. (Assertions without a jti are not tracked: two identical ones minted
    /// in the same second are legitimate.)
    pub(super) fn remember_assertion(
        &self,
        subject: &str,
        claims: &jwt::AssertionClaims,
        now: Timestamp,
    ) -> Result<(), OAuthError> {
        let Some(jti) = &claims.jti else { return Ok(()) };
        let mut seen = lock(&self.oauth.seen_assertions);
        seen.retain(|_, exp| *exp > now);
        let key = format!("{subject}:{jti}");
        if seen.contains_key(&key) {
            return Err(OAuthError::new(OAuthErrorKind::InvalidClient, "client assertion replayed"));
        }
        seen.insert(key, Timestamp::from_unix_secs(claims.exp + 60));
        Ok(())
    }

    /// Authenticate a client; failures count towards the per-client rate limit.
    pub(super) async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
    ) -> Result<UserView, OAuthError> {
        let now = self.now();
        let client_key = match creds {
            ClientCredentials::Secret { client_id, .. } => client_id.to_lowercase(),
            ClientCredentials::Assertion(a) => {
                jwt::peek_assertion(a.expose()).map(|(_, c)| c.sub).unwrap_or_default()
            }
        };
        if self.too_many_failures(&client_key, now) {
            return Err(OAuthError::new(
                OAuthErrorKind::RateLimited,
                "too many failed attempts, retry later",
            ));
        }
        match self.check_client(creds, now).await {
            Ok(user) => Ok(user),
            Err(e) => {
                if matches!(e.kind, OAuthErrorKind::InvalidClient | OAuthErrorKind::InvalidGrant) {
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
                check_secret(user, secret)
            }
            ClientCredentials::Assertion(assertion) => {
                let assertion = assertion.expose();
                let (kid, claims) = jwt::peek_assertion(assertion)
                    .ok_or_else(|| grant_error("the assertion is not a JWT"))?;
                let user = self.deps.store.user(&claims.sub).await.map_err(OAuthError::server)?;
                let (user, claims) = check_assertion(user, kid.as_deref(), assertion, &self.cfg.issuer, now)?;
                // Replay: an assertion id is accepted once within its lifetime. (Assertions without
                // a jti are not tracked: two identical ones minted in the same second are legitimate.)
                self.remember_assertion(&user.id, &claims, now)
                    .map_err(|_| grant_error("assertion replayed"))?;
                Ok(user)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NOW, human, machine as machine_user};
    use super::*;
    use crate::ports::SeededEntropy;

    #[test]
    fn kinds_have_rfc_6749_codes() {
        assert_eq!(OAuthErrorKind::InvalidClient.code(), "invalid_client");
        assert_eq!(OAuthErrorKind::RateLimited.code(), "temporarily_unavailable");
        let unavailable = OAuthError::server(Error::new(Kind::Unavailable, "STORE-1", "Errors.Internal"));
        assert_eq!((unavailable.kind, unavailable.error()), (OAuthErrorKind::Unavailable, "server_error"));
    }

    #[test]
    fn client_secrets() {
        let e = SeededEntropy::new(1);
        let (secret, hash) = secret::new_client_secret(&e).unwrap();
        let mut m = machine_user("svc", "A");
        if let UserKind::Machine(p) = &mut m.kind {
            p.secret_hash = hash;
        }
        assert!(check_secret(Some(m.clone()), &secret).is_ok());
        let kind = |r: Result<UserView, OAuthError>| r.err().map(|e| e.kind);
        assert_eq!(
            kind(check_secret(Some(m.clone()), &Secret::new("nope"))),
            Some(OAuthErrorKind::InvalidClient)
        );
        assert_eq!(kind(check_secret(None, &secret)), Some(OAuthErrorKind::InvalidClient));
        assert_eq!(kind(check_secret(Some(human("h", "A")), &secret)), Some(OAuthErrorKind::InvalidClient));
        m.state = UserState::Inactive;
        assert_eq!(kind(check_secret(Some(m), &secret)), Some(OAuthErrorKind::InvalidClient));
    }

    #[test]
    fn assertions_need_a_live_key_of_the_subject() {
        let r = check_assertion(Some(machine_user("svc", "A")), None, "a.b.c", "http://x", NOW);
        assert_eq!(
            r.err().map(|e| (e.kind, e.description)),
            Some((OAuthErrorKind::InvalidGrant, "no valid key for the assertion".into()))
        );
        let r = check_assertion(None, None, "a.b.c", "http://x", NOW);
        assert_eq!(r.err().map(|e| e.description), Some("unknown subject".into()));
    }
}
