//! Sign-in sessions (SessionService v2): the session read model folded from a session's events,
//! and the filter the store answers `ListSessions` with.
//!
//! A session is its own aggregate (`AggregateKind::Session`, resource owner = the instance).
//! Its token is never stored: `session.token.set` records the SHA-256 of the current token, and
//! each new one replaces it, so earlier tokens stop working. The pending WebAuthN challenge
//! (webauthn-rs's authentication state, a [`ChallengeState`]) lives in the session until a check
//! uses it up, succeeded or failed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Event, Recorded};
use crate::time::Timestamp;

pub use crate::event::{ChallengeState, SessionAdded, UserAgent};

/// The checked user of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFactor {
    pub user_id: String,
    pub org_id: String,
    pub login_name: String,
    pub display_name: String,
    pub checked_at: Timestamp,
}

/// The passkey check of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAuthNFactor {
    pub passkey_id: String,
    pub user_verified: bool,
    pub checked_at: Timestamp,
}

/// A pending WebAuthN challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub rp_id: String,
    pub state: ChallengeState,
    pub issued_at: Timestamp,
}

/// A session as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub id: String,
    /// The instance (resource owner of every session).
    pub instance_id: String,
    /// The user id of the caller that created the session.
    pub creator: String,
    pub created_at: Timestamp,
    pub changed_at: Timestamp,
    pub sequence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<UserAgent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserFactor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<WebAuthNFactor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<Challenge>,
    /// Hex of SHA-256 of the current session token.
    pub token_hash: String,
    /// Metadata values, base64 (standard) as protojson renders bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Timestamp>,
    #[serde(default)]
    pub terminated: bool,
}

impl SessionView {
    /// The view after `session.added`; `None` for any other event.
    pub fn created(r: &Recorded) -> Option<SessionView> {
        let Event::SessionAdded(added) = &r.event else { return None };
        Some(SessionView {
            id: r.aggregate_id.clone(),
            instance_id: r.resource_owner.clone(),
            creator: r.creator.clone(),
            created_at: r.created_at,
            changed_at: r.created_at,
            sequence: r.sequence,
            user_agent: added.user_agent.clone(),
            user: None,
            webauthn: None,
            challenge: None,
            token_hash: String::new(),
            metadata: BTreeMap::new(),
            expiration: None,
            terminated: false,
        })
    }

    /// Fold one of the session's events.
    pub fn apply(&mut self, r: &Recorded) {
        match &r.event {
            Event::SessionUserChecked { user_id, org_id, login_name, display_name } => {
                self.user = Some(UserFactor {
                    user_id: user_id.clone(),
                    org_id: org_id.clone(),
                    login_name: login_name.clone(),
                    display_name: display_name.clone(),
                    checked_at: r.created_at,
                });
            }
            Event::SessionWebAuthNChallenged { rp_id, state } => {
                self.challenge =
                    Some(Challenge { rp_id: rp_id.clone(), state: state.clone(), issued_at: r.created_at });
            }
            Event::SessionWebAuthNChecked { passkey_id, user_verified } => {
                self.challenge = None;
                self.webauthn = Some(WebAuthNFactor {
                    passkey_id: passkey_id.clone(),
                    user_verified: *user_verified,
                    checked_at: r.created_at,
                });
            }
            Event::SessionWebAuthNCheckFailed { .. } => self.challenge = None,
            Event::SessionTokenSet { token_hash, .. } => self.token_hash = token_hash.clone(),
            Event::SessionMetadataSet { metadata } => {
                for (k, v) in metadata {
                    if v.is_empty() {
                        self.metadata.remove(k);
                    } else {
                        self.metadata.insert(k.clone(), v.clone());
                    }
                }
            }
            Event::SessionLifetimeSet { lifetime_secs } => {
                self.expiration = (*lifetime_secs > 0)
                    .then(|| r.created_at.plus(std::time::Duration::from_secs(*lifetime_secs)));
            }
            Event::SessionTerminated {} => self.terminated = true,
            _ => {}
        }
        self.sequence = r.sequence;
        self.changed_at = r.created_at;
    }

    /// The checked user's id, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.user_id.as_str())
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expiration.is_some_and(|e| e <= now)
    }
}

/// What the store pre-filters `ListSessions` by (all given conditions hold); the core applies
/// the remaining queries and the permission filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// `None`: any id.
    pub ids: Option<Vec<String>>,
    pub user_id: Option<String>,
    pub creator: Option<String>,
}

impl SessionFilter {
    /// Does `s` satisfy the filter? (Adapters may use it to filter rows they read.)
    pub fn matches(&self, s: &SessionView) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&s.id))
            && self.user_id.as_deref().is_none_or(|u| s.user_id() == Some(u))
            && self.creator.as_deref().is_none_or(|c| s.creator == c)
    }
}

/// A passkey credential id (base64url) → the user whose passkey it is (written when a passkey
/// is verified; the core checks the user's passkeys before trusting it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialOwner {
    pub cred_id: String,
    pub user_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AggregateKind;

    fn rec(seq: u64, event: Event) -> Recorded {
        Recorded {
            aggregate_kind: AggregateKind::Session,
            aggregate_id: "s".into(),
            sequence: seq,
            created_at: Timestamp::from_unix_secs(seq as i64),
            resource_owner: "inst".into(),
            creator: "c".into(),
            event,
        }
    }

    #[test]
    fn fold_tracks_user_challenge_factor_token_metadata_and_lifetime() {
        let mut v = SessionView::created(&rec(1, Event::SessionAdded(SessionAdded::default()))).unwrap();
        let checked = Event::SessionUserChecked {
            user_id: "u".into(),
            org_id: "o".into(),
            login_name: "ada".into(),
            display_name: "Ada".into(),
        };
        v.apply(&rec(2, checked));
        v.apply(&rec(
            3,
            Event::SessionWebAuthNChallenged {
                rp_id: "localhost".into(),
                state: ChallengeState("{}".into()),
            },
        ));
        assert!(v.challenge.is_some());
        v.apply(&rec(4, Event::SessionWebAuthNChecked { passkey_id: "p".into(), user_verified: true }));
        assert!(v.challenge.is_none());
        assert_eq!(v.webauthn.as_ref().map(|w| w.checked_at), Some(Timestamp::from_unix_secs(4)));
        v.apply(&rec(5, Event::SessionTokenSet { token_id: "t".into(), token_hash: "ab".into() }));
        let md = BTreeMap::from([("a".to_string(), "eA==".to_string())]);
        v.apply(&rec(6, Event::SessionMetadataSet { metadata: md }));
        let md = BTreeMap::from([("a".to_string(), String::new())]);
        v.apply(&rec(7, Event::SessionMetadataSet { metadata: md }));
        v.apply(&rec(8, Event::SessionLifetimeSet { lifetime_secs: 10 }));
        assert_eq!((v.sequence, v.token_hash.as_str(), v.metadata.len()), (8, "ab", 0));
        assert_eq!(v.expiration, Some(Timestamp::from_unix_secs(18)));
        assert!(v.is_expired(Timestamp::from_unix_secs(18)) && !v.is_expired(Timestamp::from_unix_secs(17)));
        v.apply(&rec(9, Event::SessionTerminated {}));
        assert!(v.terminated);
        let f = SessionFilter { user_id: Some("u".into()), ..Default::default() };
        assert!(f.matches(&v));
        assert!(!SessionFilter { ids: Some(vec!["x".into()]), ..Default::default() }.matches(&v));
        assert!(format!("{:?}", ChallengeState("secret".into())).contains("redacted"));
    }
}
