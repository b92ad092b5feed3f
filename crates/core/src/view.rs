//! Read models: the current state of each aggregate, folded from its events.
//!
//! Folding is pure ([`UserView::apply`] and friends). The application layer folds the events it
//! is about to append onto the view it loaded and hands both to the store, which writes them in
//! one transaction: read-your-writes without a projection worker.

use serde::{Deserialize, Serialize};

use crate::code::CodeView;
use crate::event::{Event, HumanProfile, MachineProfile, Recorded};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub id: String,
    pub name: String,
    pub default_org_id: String,
    pub sequence: u64,
    pub created_at: Timestamp,
    pub changed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub sequence: u64,
    pub created_at: Timestamp,
    pub changed_at: Timestamp,
}

/// ZITADEL's UserState numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserState {
    Active = 1,
    Inactive = 2,
    Deleted = 3,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserKind {
    Human(HumanProfile),
    Machine(MachineProfile),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub org_id: String,
    pub username: String,
    pub state: UserState,
    pub kind: UserKind,
    pub sequence: u64,
    pub created_at: Timestamp,
    pub changed_at: Timestamp,
    /// Access tokens (jti) revoked before they expire; pruned once expired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_tokens: Vec<(String, Timestamp)>,
}

impl UserView {
    /// The view after a user's first event; `None` if the event does not create a user.
    pub fn created(r: &Recorded) -> Option<UserView> {
        let (username, kind) = match &r.event {
            Event::HumanAdded { username, profile } => (username.clone(), UserKind::Human(profile.clone())),
            Event::MachineAdded { username, profile } => {
                (username.clone(), UserKind::Machine(profile.clone()))
            }
            _ => return None,
        };
        Some(UserView {
            id: r.aggregate_id.clone(),
            org_id: r.resource_owner.clone(),
            username,
            state: UserState::Active,
            kind,
            sequence: r.sequence,
            created_at: r.created_at,
            changed_at: r.created_at,
            revoked_tokens: Vec::new(),
        })
    }

    pub fn apply(&mut self, r: &Recorded) {
        match &r.event {
            Event::UserDeactivated {} => self.state = UserState::Inactive,
            Event::UserRemoved {} => self.state = UserState::Deleted,
            Event::MachineSecretSet { hash } => {
                if let UserKind::Machine(m) = &mut self.kind {
                    m.secret_hash = hash.clone();
                }
            }
            Event::MachineKeyAdded { key_id, public_key, expiration } => {
                if let UserKind::Machine(m) = &mut self.kind {
                    m.keys.push(crate::event::MachineKey {
                        id: key_id.clone(),
                        public_key: public_key.clone(),
                        expiration: *expiration,
                    });
                }
            }
            Event::TokenRevoked { token_id, expiration } => {
                self.revoked_tokens.retain(|(_, exp)| *exp > r.created_at);
                self.revoked_tokens.push((token_id.clone(), *expiration));
            }
            _ => {}
        }
        self.sequence = r.sequence;
        self.changed_at = r.created_at;
    }

    pub fn is_human(&self) -> bool {
        matches!(self.kind, UserKind::Human(_))
    }

    pub fn human(&self) -> Option<&HumanProfile> {
        match &self.kind {
            UserKind::Human(h) => Some(h),
            UserKind::Machine(_) => None,
        }
    }
}

impl OrgView {
    /// The view after `org.added`; `None` for any other event.
    pub fn created(r: &Recorded) -> Option<OrgView> {
        let Event::OrgAdded { name } = &r.event else { return None };
        Some(OrgView {
            id: r.aggregate_id.clone(),
            name: name.clone(),
            sequence: r.sequence,
            created_at: r.created_at,
            changed_at: r.created_at,
        })
    }

    pub fn apply(&mut self, r: &Recorded) {
        self.sequence = r.sequence;
        self.changed_at = r.created_at;
    }
}

impl InstanceView {
    /// The view after `instance.added`; `None` for any other event.
    pub fn created(r: &Recorded) -> Option<InstanceView> {
        let Event::InstanceAdded { name } = &r.event else { return None };
        Some(InstanceView {
            id: r.aggregate_id.clone(),
            name: name.clone(),
            default_org_id: String::new(),
            sequence: r.sequence,
            created_at: r.created_at,
            changed_at: r.created_at,
        })
    }

    pub fn apply(&mut self, r: &Recorded) {
        if let Event::InstanceDefaultOrgSet { org_id } = &r.event {
            self.default_org_id = org_id.clone();
        }
        self.sequence = r.sequence;
        self.changed_at = r.created_at;
    }
}

/// Where a membership applies: the whole instance or one organization.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    Instance,
    Org(String),
}

impl Scope {
    /// The key a store uses for the scope ("" for the instance).
    pub fn key(&self) -> &str {
        match self {
            Scope::Instance => "",
            Scope::Org(id) => id,
        }
    }
    pub fn from_key(k: &str) -> Scope {
        if k.is_empty() { Scope::Instance } else { Scope::Org(k.to_string()) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub user_id: String,
    pub scope: Scope,
    pub roles: Vec<String>,
    pub created_at: Timestamp,
}

impl Membership {
    /// The membership an `instance.member.added` or `org.member.added` grants.
    pub fn added(r: &Recorded) -> Option<Membership> {
        let (user_id, roles, scope) = match &r.event {
            Event::InstanceMemberAdded { user_id, roles } => (user_id, roles, Scope::Instance),
            Event::OrgMemberAdded { user_id, roles } => (user_id, roles, Scope::Org(r.aggregate_id.clone())),
            _ => return None,
        };
        Some(Membership { user_id: user_id.clone(), scope, roles: roles.clone(), created_at: r.created_at })
    }
}

/// A personal access token as stored: only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatView {
    pub id: String,
    pub user_id: String,
    pub token_hash: [u8; 32],
    pub expiration: Timestamp,
    pub created_at: Timestamp,
    /// Revoked (RFC 7009) before its expiration.
    #[serde(default)]
    pub revoked: bool,
}

impl PatView {
    /// The token a `user.personal.access.token.added` creates; `None` for any other event.
    pub fn added(r: &Recorded) -> Option<PatView> {
        let Event::PatAdded { token_id, token_hash, expiration } = &r.event else { return None };
        Some(PatView {
            id: token_id.clone(),
            user_id: r.aggregate_id.clone(),
            token_hash: crate::hex::decode(token_hash).try_into().ok()?,
            expiration: *expiration,
            created_at: r.created_at,
            revoked: false,
        })
    }

    /// Fold one event of the owning user: `user.personal.access.token.removed` revokes it.
    pub fn apply(&mut self, r: &Recorded) {
        if let Event::PatRemoved { token_id } = &r.event
            && *token_id == self.id
        {
            self.revoked = true;
        }
    }
}

/// One read-model write, applied by the store in the same transaction as the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Instance(InstanceView),
    Org(OrgView),
    User(UserView),
    /// A user whose events changed nothing but its sequence and change date (a registration
    /// code requested, checked, sent …). Those two equal the user's last event's sequence and
    /// creation time, so an adapter that reads them from its events may skip writing the row;
    /// others write it as [`Change::User`].
    UserSequence(UserView),
    Membership(Membership),
    Pat(PatView),
    Code(CodeView),
    /// A sign-in session (insert or replace).
    Session(crate::session::SessionView),
    /// A passkey credential id and its user (insert or replace).
    Credential(crate::session::CredentialOwner),
    /// A passkey of a user (insert or replace).
    Passkey(crate::passkey::PasskeyView),
}
