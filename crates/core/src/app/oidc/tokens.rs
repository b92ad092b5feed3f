//! The token half of the authorization code flow: the
//! code exchange with PKCE (decide_exchange), refresh with rotation (decide_refresh), the ID
//! token and userinfo claims, introspection, `/oidc/v1/end_session`. The login half (authorize,
//! CreateCallback) is in `login.rs`.
//!
//! Every step is `load → decide → append`; the decide functions are pure and unit tested
//! (tests.rs). A reused code or refresh token revokes the grant.

use subtle::ConstantTimeEq;

use super::super::App;
use super::super::client_auth::{OAuthError, OAuthErrorKind};
use super::super::tx::Tx;
use super::client::OidcClient;
use super::userinfo::user_claims;
use crate::error::{Error, Result};
use crate::event::{AggregateKind, Event};
use crate::oidc::{
    AppView, AuthRequestOutcome, AuthRequestView, CODE_LIFETIME_SECS, GrantAdded, GrantTokens, GrantView,
    REFRESH_IDLE_SECS, at_hash, pkce_s256_matches, token_aggregate,
};
use crate::secret::{self, Secret};
use crate::time::Timestamp;
use crate::view::{UserState, UserView};

/// The tokens of a code exchange or a refresh.
#[derive(Debug)]
pub struct OidcTokens {
    pub access_token: Secret,
    pub expires_in: u64,
    pub id_token: String,
    pub refresh_token: Option<Secret>,
    pub scope: String,
}

/// Whose tokens are issued: the client, the grant (as the ID token describes it) and its user.
struct Issued<'a> {
    app: &'a AppView,
    grant_id: &'a str,
    grant: &'a GrantAdded,
    user: &'a UserView,
    now: Timestamp,
}

fn grant_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorKind::InvalidGrant, description)
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

impl App {
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
                    let issued = Issued { app: &app, grant_id: &grant_id, grant: &grant, user: &user, now };
                    outcome = Some(Ok(self.issue(issued, access, refresh, tx).await?));
                }
            }
            Ok(())
        })
        .map_err(OAuthError::server)?;
        outcome.unwrap_or_else(|| Err(OAuthError::server(Error::internal("no outcome"))))
    }

    /// The tokens of a code exchange or a refresh: the ID token signed for `issued`, then `tx`
    /// committed (the grant records the new tokens' hashes) before anything is answered.
    async fn issue(
        &self,
        issued: Issued<'_>,
        access: Secret,
        refresh: Option<Secret>,
        tx: Tx,
    ) -> Result<OidcTokens> {
        let Issued { app, grant_id, grant, user, now } = issued;
        let id_token = self.id_token(app, grant_id, grant, user, &access, now)?;
        self.deps.store.commit(tx.into_commit()).await?;
        Ok(OidcTokens {
            access_token: access,
            expires_in: self.cfg.access_token_lifetime.as_secs(),
            id_token,
            refresh_token: refresh,
            scope: grant.scope.join(" "),
        })
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
                    let issued = Issued { app: &app, grant_id: &grant_id, grant: &g, user: &user, now };
                    outcome = Some(Ok(self.issue(issued, access, refresh, tx).await?));
                }
            }
            Ok(())
        })
        .map_err(OAuthError::server)?;
        outcome.unwrap_or_else(|| Err(OAuthError::server(Error::internal("no outcome"))))
    }
}
