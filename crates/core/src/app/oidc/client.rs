//! Client authentication at the token and introspection endpoints: the client's registered
//! method (none, a secret by Basic or form, or private_key_jwt) decided by the pure
//! [`check_client`]; [`App::checked_client`] loads the application and remembers an assertion
//! against replay.

use subtle::ConstantTimeEq;

use super::super::App;
use super::super::client_auth::{OAuthError, OAuthErrorKind};
use crate::oidc::{AppView, ObjectState, auth_method};
use crate::secret::{self, Secret};
use crate::time::Timestamp;

/// A client at the token endpoint: its id (form or Basic) and secret, if any.
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub client_id: String,
    pub secret: Option<Secret>,
    /// A `client_assertion` was sent (private_key_jwt).
    pub assertion: Option<Secret>,
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

impl App {
    pub(super) async fn checked_client(
        &self,
        client: &OidcClient,
    ) -> std::result::Result<AppView, OAuthError> {
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
}
