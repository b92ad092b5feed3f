//! The flow's read models: authorization requests (what `/oauth/v2/authorize` accepted, finished
//! by a login UI) and grants (what a code was exchanged for).

use serde::{Deserialize, Serialize};

use super::{AUTH_REQUEST_LIFETIME_SECS, fold_events};
use crate::event::{Event, Recorded};
use crate::time::Timestamp;

/// `prompt` values (ZITADEL's `Prompt` enum numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    None = 1,
    Login = 2,
    Consent = 3,
    SelectAccount = 4,
    Create = 5,
}

impl Prompt {
    pub fn parse(s: &str) -> Option<Prompt> {
        Some(match s {
            "none" => Prompt::None,
            "login" => Prompt::Login,
            "consent" => Prompt::Consent,
            "select_account" => Prompt::SelectAccount,
            "create" => Prompt::Create,
            _ => return None,
        })
    }
}

/// Payload of `auth_request.added`: the validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequestAdded {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The S256 code challenge, if the client sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub prompt: Vec<Prompt>,
    #[serde(default)]
    pub ui_locales: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// `fragment` instead of the query (response_mode).
    #[serde(default)]
    pub fragment: bool,
}

/// Payload of `auth_request.session.linked`: the code a login UI obtained with a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLinked {
    pub session_id: String,
    pub user_id: String,
    pub org_id: String,
    /// When the passkey check that signed the user in happened.
    pub auth_time: Timestamp,
    pub user_verified: bool,
    /// Hex SHA-256 of the code.
    pub code_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthRequestOutcome {
    Pending,
    Linked { linked: SessionLinked, at: Timestamp },
    Failed { error: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequestView {
    pub id: String,
    /// The client's organization.
    pub org_id: String,
    /// Who proxied `/authorize` as a login client (`x-zitadel-login-client`); "" otherwise.
    pub login_client: String,
    pub request: AuthRequestAdded,
    pub created_at: Timestamp,
    pub sequence: u64,
    pub outcome: AuthRequestOutcome,
    /// The grant the code was exchanged for.
    pub exchanged: Option<String>,
}

impl AuthRequestView {
    pub fn fold(events: &[Recorded]) -> Option<AuthRequestView> {
        let created = |r: &Recorded| match &r.event {
            Event::AuthRequestAdded(a) => Some(AuthRequestView {
                id: r.aggregate_id.clone(),
                org_id: r.resource_owner.clone(),
                login_client: r.creator.clone(),
                request: a.clone(),
                created_at: r.created_at,
                sequence: r.sequence,
                outcome: AuthRequestOutcome::Pending,
                exchanged: None,
            }),
            _ => None,
        };
        fold_events(events, created, |v: &mut AuthRequestView, r| {
            match &r.event {
                Event::AuthRequestSessionLinked(l) => {
                    v.outcome = AuthRequestOutcome::Linked { linked: l.clone(), at: r.created_at }
                }
                Event::AuthRequestFailed { error, .. } => {
                    v.outcome = AuthRequestOutcome::Failed { error: error.clone() }
                }
                Event::AuthRequestCodeExchanged { grant_id } => v.exchanged = Some(grant_id.clone()),
                _ => {}
            }
            v.sequence = r.sequence;
        })
    }

    pub fn expired(&self, now: Timestamp) -> bool {
        now.secs_nanos().0 >= self.created_at.secs_nanos().0 + AUTH_REQUEST_LIFETIME_SECS
    }
}

/// Payload of `oidc_session.added`: what a code was exchanged for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantAdded {
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub auth_request_id: String,
    pub scope: Vec<String>,
    pub auth_time: Timestamp,
    pub user_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub tokens: GrantTokens,
}

/// The hashes of a grant's current tokens (hex SHA-256) and their expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantTokens {
    pub access_hash: String,
    pub access_expires: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    pub id: String,
    pub org_id: String,
    pub grant: GrantAdded,
    pub tokens: GrantTokens,
    /// Refresh token hashes already rotated away: presenting one again revokes the grant.
    pub spent_refresh: Vec<String>,
    pub revoked: bool,
    pub created_at: Timestamp,
    pub sequence: u64,
}

impl GrantView {
    pub fn fold(events: &[Recorded]) -> Option<GrantView> {
        let created = |r: &Recorded| match &r.event {
            Event::GrantAdded(g) => Some(GrantView {
                id: r.aggregate_id.clone(),
                org_id: r.resource_owner.clone(),
                grant: g.clone(),
                tokens: g.tokens.clone(),
                spent_refresh: Vec::new(),
                revoked: false,
                created_at: r.created_at,
                sequence: r.sequence,
            }),
            _ => None,
        };
        fold_events(events, created, |v: &mut GrantView, r| {
            match &r.event {
                Event::GrantRefreshed(t) => {
                    let old = std::mem::replace(&mut v.tokens, t.clone());
                    v.spent_refresh.extend(old.refresh_hash);
                }
                Event::GrantRevoked { .. } => v.revoked = true,
                _ => {}
            }
            v.sequence = r.sequence;
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.grant.scope.iter().any(|s| s == scope)
    }
}
