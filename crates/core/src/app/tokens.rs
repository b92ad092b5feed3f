//! Tokens: authentication of API calls (a Bearer header → a cached [`Principal`], from a
//! personal access token, a passlink access token or a trusted issuer's JWT), and
//! AddPersonalAccessToken.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::tx::Tx;
use super::{
    App, Caller, NEVER_EXPIRES, Principal, expiration_in_past, not_machine, token_invalid, user_not_found,
};
use crate::error::{Error, Kind, Result};
use crate::event::Event;
use crate::jwt;
use crate::permission::{self as perm, require_in, require_somewhere};
use crate::secret::{self, Secret};
use crate::time::Timestamp;
use crate::validate;
use crate::view::{UserState, UserView};

#[derive(Debug)]
pub struct PatCreated {
    pub token_id: String,
    pub token: Secret,
    pub creation_date: Timestamp,
}

/// Token hash → (principal, when it was loaded).
type TokenMap = HashMap<[u8; 32], (Arc<Principal>, Timestamp)>;

/// The in-memory cache of verified tokens: one hash lookup per request instead of store reads.
/// Entries live for `token_cache_ttl`; local writes that change who may do what clear it.
#[derive(Default)]
pub(crate) struct TokenCache {
    entries: RwLock<TokenMap>,
}

impl TokenCache {
    fn get(&self, hash: &[u8; 32], now: Timestamp, ttl: Duration) -> Option<Arc<Principal>> {
        let map = self.entries.read().ok()?;
        let (p, fetched) = map.get(hash)?;
        (now < fetched.plus(ttl) && now < p.token_expires).then(|| p.clone())
    }

    fn put(&self, hash: [u8; 32], p: Arc<Principal>, now: Timestamp) {
        if let Ok(mut map) = self.entries.write() {
            if map.len() >= 100_000 {
                map.clear();
            }
            map.insert(hash, (p, now));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.write() {
            map.clear();
        }
    }
}

/// The token of an `Authorization` header value: `Bearer <token>`. Missing or another scheme → 401.
fn bearer(authorization: Option<&str>) -> Result<&str> {
    let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
        return Err(Error::new(Kind::Unauthenticated, "AUTH-7fs1e", "Errors.Token.Missing"));
    };
    match header.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => Ok(t.trim()),
        _ => Err(token_invalid()),
    }
}

/// AddPersonalAccessToken, request checks (before anything is loaded).
fn check_add_pat(caller: &Caller, user_id: &str, expiration: Timestamp, now: Timestamp) -> Result<()> {
    require_somewhere(caller.memberships(), perm::USER_WRITE)?;
    validate::runes_between("AddPersonalAccessTokenRequest", "UserId", user_id, 1, 200)?;
    if expiration <= now {
        return Err(expiration_in_past());
    }
    Ok(())
}

/// AddPersonalAccessToken, decided on the loaded user: `user.personal.access.token.added`.
fn decide_add_pat(
    caller: &Caller,
    user: &UserView,
    token_id: &str,
    token_hash: &[u8; 32],
    expiration: Timestamp,
    now: Timestamp,
) -> Result<Tx> {
    require_in(caller.memberships(), perm::USER_WRITE, &user.org_id, user_not_found)?;
    if user.is_human() {
        return Err(not_machine());
    }
    let mut tx = Tx::on_user(now, caller.user_id(), user);
    let ev = Event::PatAdded {
        token_id: token_id.to_string(),
        token_hash: crate::hex::encode(token_hash),
        expiration,
    };
    tx.record_user(&user.id, ev);
    Ok(tx)
}

impl App {
    /// Resolve an `Authorization` header value to a principal. Missing or invalid → 401.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Arc<Principal>> {
        let token = bearer(authorization)?;
        let hash = secret::token_hash(token);
        let now = self.now();
        if let Some(p) = self.tokens.get(&hash, now, self.cfg.token_cache_ttl) {
            return Ok(p);
        }
        if jwt::looks_like_jwt(token) {
            let p = Arc::new(self.principal_from_jwt(token, now).await?);
            self.tokens.put(hash, p.clone(), now);
            return Ok(p);
        }
        let pat = self.deps.store.pat_by_hash(&hash).await?.ok_or_else(token_invalid)?;
        if pat.revoked {
            return Err(token_invalid().with_cause("token revoked"));
        }
        if now >= pat.expiration {
            return Err(token_invalid().with_cause("token expired"));
        }
        let user = self.deps.store.user(&pat.user_id).await?.ok_or_else(token_invalid)?;
        let p = Arc::new(self.principal_of(user, pat.expiration).await?);
        self.tokens.put(hash, p.clone(), now);
        Ok(p)
    }

    /// The principal of an active token owner, with their memberships.
    async fn principal_of(&self, user: UserView, token_expires: Timestamp) -> Result<Principal> {
        if user.state != UserState::Active {
            return Err(token_invalid().with_cause("token owner is not active"));
        }
        let memberships = self.deps.store.memberships_of(&user.id).await?;
        Ok(Principal { user_id: user.id, org_id: user.org_id, memberships, token_expires })
    }

    /// Build the caller from a principal and an optional `x-zitadel-orgid` value.
    pub fn caller(&self, principal: Arc<Principal>, context_org: Option<&str>) -> Caller {
        let context_org = context_org
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map_or_else(|| principal.org_id.clone(), str::to_string);
        Caller { principal, context_org }
    }

    /// Forget every cached principal (after writes that change who may do what).
    pub(super) fn forget_principals(&self) {
        self.tokens.clear();
    }

    /// A principal from a passlink access token: valid signature, issuer, lifetime, the API
    /// audience, an active subject, not revoked.
    async fn principal_from_jwt(&self, token: &str, now: Timestamp) -> Result<Principal> {
        let iss = jwt::peek_issuer(token).ok_or_else(|| token_invalid().with_cause("not a JWT"))?;
        if iss != self.cfg.issuer {
            return self.principal_from_external(token, &iss, now).await;
        }
        let claims = self.deps.keys.signing.verify(token, &self.cfg.issuer, now)?;
        if !claims.aud.iter().any(|a| a == jwt::API_AUDIENCE) {
            return Err(token_invalid().with_cause("the token's audience is not this API"));
        }
        let user = self.deps.store.user(&claims.sub).await?.ok_or_else(token_invalid)?;
        if user.state == UserState::Active && user.revoked_tokens.iter().any(|(id, _)| *id == claims.jti) {
            return Err(token_invalid().with_cause("token revoked"));
        }
        self.principal_of(user, Timestamp::from_unix_secs(claims.exp)).await
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
        if !claims.aud.iter().any(|a| a == jwt::API_AUDIENCE || a.trim_end_matches('/') == self.cfg.issuer) {
            return Err(token_invalid().with_cause("the external token's audience is not this API"));
        }
        let user = self
            .deps
            .store
            .user(&claims.sub)
            .await?
            .ok_or_else(|| token_invalid().with_cause("no user for the subject"))?;
        self.principal_of(user, Timestamp::from_unix_secs(claims.exp)).await
    }

    /// AddPersonalAccessToken for a machine user.
    pub async fn add_pat(
        &self,
        caller: &Caller,
        user_id: &str,
        expiration: Option<Timestamp>,
    ) -> Result<PatCreated> {
        let now = self.now();
        let expiration = expiration.unwrap_or(NEVER_EXPIRES);
        check_add_pat(caller, user_id, expiration, now)?;
        let _lock = self.lock_aggregate(user_id).await;
        retry!(self, async {
            let user = self.visible_user(user_id).await?;
            let token_id = self.next_id();
            let token = secret::generate_token(&*self.deps.entropy);
            let hash = secret::token_hash(token.expose());
            let tx = decide_add_pat(caller, &user, &token_id, &hash, expiration, now)?;
            self.deps.store.commit(tx.into_commit()).await?;
            Ok(PatCreated { token_id, token, creation_date: now })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NOW, caller, human, machine, org};
    use super::*;
    use crate::view::{Change, Scope};

    #[test]
    fn bearer_header() {
        assert_eq!(bearer(Some(" Bearer abc ")).ok(), Some("abc"));
        assert_eq!(bearer(Some("bearer abc")).ok(), Some("abc"));
        assert_eq!(bearer(None).err().map(|e| e.id), Some("AUTH-7fs1e"));
        assert_eq!(bearer(Some("Basic abc")).err().map(|e| e.kind), Some(Kind::Unauthenticated));
    }

    #[test]
    fn a_pat_is_added_to_a_machine_and_folded_into_the_token_view() {
        let c = caller(Scope::Instance, "IAM_OWNER");
        let tx = decide_add_pat(&c, &machine("m", "A"), "t1", &[7; 32], NEVER_EXPIRES, NOW).unwrap();
        let commit = tx.into_commit();
        assert_eq!(commit.events.len(), 1);
        assert_eq!(commit.events[0].sequence, 2);
        let pat = commit.changes.iter().find_map(|ch| match ch {
            Change::Pat(p) => Some(p.clone()),
            _ => None,
        });
        let pat = pat.unwrap();
        assert_eq!(
            (pat.id.as_str(), pat.user_id.as_str(), pat.token_hash, pat.revoked),
            ("t1", "m", [7; 32], false)
        );
    }

    #[test]
    fn pat_permission_and_target_rules() {
        let owner_b = caller(org("B"), "ORG_OWNER");
        let e = decide_add_pat(&owner_b, &machine("m", "A"), "t", &[0; 32], NEVER_EXPIRES, NOW).err();
        assert_eq!(e.map(|e| e.id), Some("COMMAND-M9dsd"));
        let owner_a = caller(org("A"), "ORG_OWNER");
        let e = decide_add_pat(&owner_a, &human("h", "A"), "t", &[0; 32], NEVER_EXPIRES, NOW).err();
        assert_eq!(e.map(|e| e.id), Some("COMMAND-Sdj4f"));
        let nobody = caller(Scope::Instance, "");
        assert_eq!(
            check_add_pat(&nobody, "m", NEVER_EXPIRES, NOW).err().map(|e| e.kind),
            Some(Kind::PermissionDenied)
        );
        assert_eq!(check_add_pat(&owner_a, "m", NOW, NOW).err().map(|e| e.id), Some("COMMAND-dv3t5"));
    }
}
