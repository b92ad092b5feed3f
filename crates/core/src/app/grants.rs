//! The OAuth2 endpoints' use cases: the token endpoint (client credentials and JWT bearer),
//! introspection (RFC 7662) and revocation (RFC 7009). Clients authenticate as in
//! [`super::client_auth`].

use std::time::Duration;

use super::App;
use super::client_auth::{ClientCredentials, OAuthError, OAuthErrorKind};
use super::tx::Tx;
use crate::event::Event;
use crate::jwt::{self, AccessClaims};
use crate::secret::{self, Secret};
use crate::time::Timestamp;
use crate::view::{PatView, UserState, UserView};

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

pub(super) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The credentials that authenticate a token request, by grant type.
fn grant_credentials(req: &TokenRequest) -> Result<&ClientCredentials, OAuthError> {
    match req.grant_type.as_str() {
        // client_secret_basic, client_secret_post or private_key_jwt.
        "client_credentials" => req.client.as_ref().ok_or_else(OAuthError::invalid_client),
        JWT_BEARER => match &req.client {
            Some(c @ ClientCredentials::Assertion(_)) => Ok(c),
            _ => Err(OAuthError::new(OAuthErrorKind::InvalidRequest, "missing assertion")),
        },
        "" => Err(OAuthError::new(OAuthErrorKind::InvalidRequest, "missing grant_type")),
        _ => Err(OAuthError::new(
            OAuthErrorKind::UnsupportedGrantType,
            "supported: client_credentials, jwt-bearer",
        )),
    }
}

/// The claims of an access token for the authenticated `user`: known scopes only; the API
/// audience when its scope is asked for.
fn decide_token(
    user: &UserView,
    scope: &str,
    issuer: &str,
    lifetime: Duration,
    now: Timestamp,
    jti: String,
) -> Result<AccessClaims, OAuthError> {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if let Some(bad) = scopes.iter().find(|s| {
        !matches!(**s, "openid" | "profile" | "email" | "offline_access")
            && !s.starts_with("urn:zitadel:iam:")
    }) {
        return Err(OAuthError::new(OAuthErrorKind::InvalidScope, format!("unknown scope {bad}")));
    }
    let (iat, _) = now.secs_nanos();
    let mut aud = vec![user.username.clone()];
    if scopes.contains(&jwt::API_AUDIENCE_SCOPE) {
        aud.push(jwt::API_AUDIENCE.to_string());
    }
    Ok(AccessClaims {
        iss: issuer.to_string(),
        sub: user.id.clone(),
        aud,
        exp: iat + i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2),
        iat,
        nbf: iat,
        jti,
        client_id: user.username.clone(),
        scope: scopes.join(" "),
    })
}

/// Revoking a JWT of the client itself: `user.token.removed` until it expires.
fn decide_revoke_jwt(client: &UserView, user: &UserView, claims: &AccessClaims, now: Timestamp) -> Tx {
    let mut tx = Tx::on_user(now, &client.id, user);
    let ev = Event::TokenRevoked {
        token_id: claims.jti.clone(),
        expiration: Timestamp::from_unix_secs(claims.exp),
    };
    tx.record_user(&user.id, ev);
    tx
}

/// Revoking a personal access token of the client itself: `…token.removed`, folded into the token.
fn decide_revoke_pat(client: &UserView, user: &UserView, pat: PatView, now: Timestamp) -> Tx {
    let mut tx = Tx::on_user(now, &client.id, user);
    let token_id = pat.id.clone();
    tx.load_pat(pat);
    tx.record_user(&user.id, Event::PatRemoved { token_id });
    tx
}

impl App {
    /// The token endpoint: `client_credentials` and `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    pub async fn token(&self, req: TokenRequest) -> Result<TokenGranted, OAuthError> {
        let user = self.authenticate_client(grant_credentials(&req)?).await?;
        let lifetime = self.cfg.access_token_lifetime;
        let claims = decide_token(&user, &req.scope, &self.cfg.issuer, lifetime, self.now(), self.next_id())?;
        let token = self.deps.keys.signing.sign(&claims).map_err(OAuthError::server)?;
        Ok(TokenGranted {
            access_token: Secret::new(token),
            expires_in: lifetime.as_secs(),
            scope: claims.scope,
        })
    }

    /// RFC 7662 introspection, for any authenticated client (a machine user or an
    /// application with a secret): passlink's JWTs, personal access tokens and OIDC access
    /// tokens.
    pub async fn introspect(
        &self,
        client: &ClientCredentials,
        token: &str,
    ) -> Result<serde_json::Value, OAuthError> {
        self.authenticate_introspector(client).await?;
        let inactive = serde_json::json!({"active": false});
        if crate::oidc::token_aggregate(token).is_some() {
            let active = self.introspect_grant_token(token).await.map_err(OAuthError::server)?;
            return Ok(active.unwrap_or(inactive));
        }
        let now = self.now();
        if jwt::looks_like_jwt(token) {
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
        if jwt::looks_like_jwt(token) {
            let Ok(claims) = self.deps.keys.signing.verify(token, &self.cfg.issuer, now) else {
                return Ok(());
            };
            if claims.sub != client_user.id {
                return Ok(());
            }
            let _lock = self.lock_aggregate(&claims.sub).await;
            retry!(self, async {
                let user = self.visible_user(&claims.sub).await?;
                let tx = decide_revoke_jwt(&client_user, &user, &claims, self.now());
                self.deps.store.commit(tx.into_commit()).await
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
                let tx = decide_revoke_pat(&client_user, &user, pat.clone(), now);
                self.deps.store.commit(tx.into_commit()).await
            })
            .map_err(OAuthError::server)?;
        }
        self.forget_principals();
        Ok(())
    }

    /// The JWKS document of the signing keys.
    pub fn jwks(&self) -> serde_json::Value {
        self.deps.keys.signing.jwks()
    }

    pub fn issuer(&self) -> &str {
        &self.cfg.issuer
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NOW, machine};
    use super::*;
    use crate::view::Change;

    fn req(grant_type: &str, client: Option<ClientCredentials>) -> TokenRequest {
        TokenRequest { grant_type: grant_type.into(), client, scope: String::new() }
    }

    #[test]
    fn grant_types() {
        let secret = ClientCredentials::Secret { client_id: "svc".into(), secret: Secret::new("s") };
        let assertion = ClientCredentials::Assertion(Secret::new("a.b.c"));
        let kind = |r: &TokenRequest| grant_credentials(r).err().map(|e| e.kind);
        assert_eq!(kind(&req("client_credentials", Some(secret.clone()))), None);
        assert_eq!(kind(&req("client_credentials", None)), Some(OAuthErrorKind::InvalidClient));
        assert_eq!(kind(&req(JWT_BEARER, Some(assertion))), None);
        assert_eq!(kind(&req(JWT_BEARER, Some(secret))), Some(OAuthErrorKind::InvalidRequest));
        assert_eq!(kind(&req("", None)), Some(OAuthErrorKind::InvalidRequest));
        assert_eq!(kind(&req("password", None)), Some(OAuthErrorKind::UnsupportedGrantType));
    }

    #[test]
    fn access_token_claims() {
        let u = machine("m", "A");
        let scope = format!("openid  {}", jwt::API_AUDIENCE_SCOPE);
        let c = decide_token(&u, &scope, "http://iss", Duration::from_secs(60), NOW, "j".into()).unwrap();
        assert_eq!(c.aud, vec!["m".to_string(), jwt::API_AUDIENCE.to_string()]);
        assert_eq!((c.sub.as_str(), c.exp - c.iat, c.jti.as_str()), ("m", 60, "j"));
        assert_eq!(c.scope, format!("openid {}", jwt::API_AUDIENCE_SCOPE));
        let bad = decide_token(&u, "openid admin", "http://iss", Duration::from_secs(60), NOW, "j".into());
        assert_eq!(
            bad.err().map(|e| (e.kind, e.description)),
            Some((OAuthErrorKind::InvalidScope, "unknown scope admin".into()))
        );
    }

    #[test]
    fn revoked_tokens_are_folded() {
        let u = machine("m", "A");
        let pat = PatView {
            id: "t".into(),
            user_id: "m".into(),
            token_hash: [1; 32],
            expiration: NOW,
            created_at: NOW,
            revoked: false,
        };
        let c = decide_revoke_pat(&u, &u, pat, NOW).into_commit();
        assert!(c.changes.iter().any(|ch| matches!(ch, Change::Pat(p) if p.revoked && p.id == "t")));
        let claims = decide_token(&u, "", "i", Duration::from_secs(60), NOW, "j".into()).unwrap();
        let c = decide_revoke_jwt(&u, &u, &claims, NOW).into_commit();
        assert!(c.changes.iter().any(|ch| matches!(ch, Change::User(v) if v.revoked_tokens.len() == 1)));
    }
}
