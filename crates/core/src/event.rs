//! Events: the facts passlink records, with ZITADEL's event type names.
//!
//! Each event belongs to one aggregate (instance, org or user) and gets the next sequence number
//! of that aggregate. The store enforces that a sequence is written once (optimistic concurrency).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::oidc::{
    AppSettings, AuthRequestAdded, GrantAdded, GrantTokens, ProjectSettings, SessionLinked,
};
use crate::secret::Sealed;
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggregateKind {
    Instance,
    Org,
    User,
    /// A sign-in session (SessionService v2).
    Session,
    /// A project (ProjectService v2).
    Project,
    /// An application: an OIDC client (ApplicationService v2).
    Application,
    /// An OIDC authorization request.
    AuthRequest,
    /// What an authorization code was exchanged for (ZITADEL's OIDC session).
    Grant,
}

impl AggregateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateKind::Instance => "instance",
            AggregateKind::Org => "org",
            AggregateKind::User => "user",
            AggregateKind::Session => "session",
            AggregateKind::Project => "project",
            AggregateKind::Application => "application",
            AggregateKind::AuthRequest => "auth_request",
            AggregateKind::Grant => "oidc_session",
        }
    }
}

/// A human user's profile and contact data as recorded in `user.human.added`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HumanProfile {
    pub given_name: String,
    pub family_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nick_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preferred_language: String,
    #[serde(default)]
    pub gender: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phone: String,
    #[serde(default)]
    pub phone_verified: bool,
}

impl HumanProfile {
    /// The display name ZITADEL derives when none is given: "Given Family".
    pub fn effective_display_name(&self) -> String {
        if self.display_name.is_empty() {
            format!("{} {}", self.given_name, self.family_name).trim().to_string()
        } else {
            self.display_name.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MachineProfile {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub access_token_type: i32,
    /// argon2id hash of the client secret (AddSecret), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_hash: String,
    /// Public keys for JWT-bearer assertions (AddKey).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<MachineKey>,
}

/// A machine user's public key (the private half is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineKey {
    pub id: String,
    pub public_key: String,
    pub expiration: Timestamp,
}

/// Payload of `user.human.passwordless.initialization.code.requested`. Only the keyed hash of
/// the code is recorded, never the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRequested {
    pub id: String,
    /// Hex of HMAC-SHA-256(server key, id || 0 || code).
    pub code_hash: String,
    /// Validity in seconds from the event's creation.
    pub expiry_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_template: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub code_returned: bool,
    /// For a sent code: the outbox job that delivers it (so a revocation can cancel it). Codes
    /// requested before passlink recorded it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// passlink's own: the idempotency key of the bulk request (CreateRegistrationLinks) that
    /// asked for this code; a retry with the same key answers this code again instead of
    /// creating another. Codes requested without a key (and older events) have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum Event {
    #[serde(rename = "instance.added")]
    InstanceAdded { name: String },
    #[serde(rename = "instance.default.org.set")]
    InstanceDefaultOrgSet { org_id: String },
    #[serde(rename = "instance.member.added")]
    InstanceMemberAdded { user_id: String, roles: Vec<String> },
    #[serde(rename = "org.added")]
    OrgAdded { name: String },
    #[serde(rename = "org.member.added")]
    OrgMemberAdded { user_id: String, roles: Vec<String> },
    #[serde(rename = "user.human.added")]
    HumanAdded { username: String, profile: HumanProfile },
    #[serde(rename = "user.machine.added")]
    MachineAdded { username: String, profile: MachineProfile },
    #[serde(rename = "user.personal.access.token.added")]
    PatAdded { token_id: String, token_hash: String, expiration: Timestamp },
    #[serde(rename = "user.personal.access.token.removed")]
    PatRemoved { token_id: String },
    #[serde(rename = "user.machine.secret.set")]
    MachineSecretSet { hash: String },
    #[serde(rename = "user.machine.key.added")]
    MachineKeyAdded { key_id: String, public_key: String, expiration: Timestamp },
    /// An access token (JWT) revoked before its expiry.
    #[serde(rename = "user.token.removed")]
    TokenRevoked { token_id: String, expiration: Timestamp },
    #[serde(rename = "user.deactivated")]
    UserDeactivated {},
    #[serde(rename = "user.removed")]
    UserRemoved {},
    #[serde(rename = "user.human.passwordless.initialization.code.requested")]
    PasskeyCodeRequested(CodeRequested),
    #[serde(rename = "user.human.passwordless.initialization.code.sent")]
    PasskeyCodeSent { id: String },
    /// passlink's own: the delivery of the code was given up (`reason` says why; no secrets).
    #[serde(rename = "user.human.passwordless.initialization.code.send.failed")]
    PasskeyCodeSendFailed { id: String, reason: String },
    #[serde(rename = "user.human.passwordless.initialization.code.check.failed")]
    PasskeyCodeCheckFailed { id: String },
    #[serde(rename = "user.human.passwordless.initialization.code.check.succeeded")]
    PasskeyCodeCheckSucceeded { id: String },
    /// passlink's own: an outstanding code was revoked before it was redeemed (`reason`: by a
    /// RevokeRegistrationCodes request, or because a passkey was registered).
    #[serde(rename = "user.human.passwordless.initialization.code.revoked")]
    PasskeyCodeRevoked { id: String, reason: String },
    /// passlink's own: an outstanding code reached its expiry unredeemed, recorded (with the
    /// events webhook on) by the check scheduled at its expiry, so the application hears of it.
    #[serde(rename = "user.human.passwordless.initialization.code.expired")]
    PasskeyCodeExpired { id: String },
    /// A registration started: the pending passkey and its server-side ceremony state.
    #[serde(rename = "user.human.passwordless.token.added")]
    PasskeyAdded { id: String, rp_id: String, code_id: Option<String>, registration_state: String },
    #[serde(rename = "user.human.passwordless.token.verified")]
    PasskeyVerified {
        id: String,
        name: String,
        cred_id: String,
        credential: String,
        /// The authenticator's backup flags at registration.
        #[serde(default)]
        backup_eligible: bool,
        #[serde(default)]
        backup_state: bool,
        /// The authenticator's AAGUID (lower-case UUID) from the attested credential data; none
        /// when it sent zeros, and for passkeys registered before passlink recorded it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aaguid: Option<String>,
    },
    #[serde(rename = "user.human.passwordless.token.removed")]
    PasskeyRemoved { id: String },
    /// A sign-in with the passkey succeeded (SetSession's WebAuthN check).
    #[serde(rename = "user.human.passwordless.token.check.succeeded")]
    PasskeyCheckSucceeded { id: String, session_id: String, user_verified: bool },
    /// A sign-in with a passkey of this user was refused; `reason` says why (no secrets).
    #[serde(rename = "user.human.passwordless.token.check.failed")]
    PasskeyCheckFailed {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        id: String,
        session_id: String,
        reason: String,
    },
    /// The authenticator's signature counter and backup flags after a sign-in.
    #[serde(rename = "user.human.passwordless.token.signcount.changed")]
    PasskeySignCountChanged { id: String, sign_count: u32, backup_eligible: bool, backup_state: bool },
    /// passlink's own: a sign-in refused because the signature counter did not grow (the
    /// authenticator may have been cloned).
    #[serde(rename = "user.human.passwordless.token.clone.detected")]
    PasskeyCloneDetected { id: String, session_id: String, stored: u32, presented: u32 },
    #[serde(rename = "session.added")]
    SessionAdded(SessionAdded),
    #[serde(rename = "session.user.checked")]
    SessionUserChecked { user_id: String, org_id: String, login_name: String, display_name: String },
    /// A WebAuthN challenge was issued; `state` is webauthn-rs's authentication state (server
    /// side only), `rp_id` the relying party it was issued for.
    #[serde(rename = "session.webAuthN.challenged")]
    SessionWebAuthNChallenged { rp_id: String, state: ChallengeState },
    #[serde(rename = "session.webAuthN.checked")]
    SessionWebAuthNChecked { passkey_id: String, user_verified: bool },
    /// passlink's own: a WebAuthN check was refused; the challenge is used up.
    #[serde(rename = "session.webAuthN.check.failed")]
    SessionWebAuthNCheckFailed { reason: String },
    /// A new session token: only its SHA-256 (hex) is recorded.
    #[serde(rename = "session.token.set")]
    SessionTokenSet { token_id: String, token_hash: String },
    #[serde(rename = "session.metadata.set")]
    SessionMetadataSet { metadata: std::collections::BTreeMap<String, String> },
    #[serde(rename = "session.lifetime.set")]
    SessionLifetimeSet { lifetime_secs: u64 },
    #[serde(rename = "session.terminated")]
    SessionTerminated {},
    #[serde(rename = "project.added")]
    ProjectAdded(ProjectSettings),
    #[serde(rename = "project.changed")]
    ProjectChanged(ProjectSettings),
    #[serde(rename = "project.deactivated")]
    ProjectDeactivated {},
    #[serde(rename = "project.reactivated")]
    ProjectReactivated {},
    #[serde(rename = "project.removed")]
    ProjectRemoved {},
    #[serde(rename = "project.application.added")]
    ApplicationAdded(AppSettings),
    #[serde(rename = "project.application.changed")]
    ApplicationChanged(AppSettings),
    /// A new client secret: only its SHA-256 (hex) is recorded.
    #[serde(rename = "project.application.config.oidc.secret.changed")]
    ApplicationSecretSet { hash: String },
    /// A key for private_key_jwt: only its public half is recorded.
    #[serde(rename = "project.application.key.added")]
    ApplicationKeyAdded { key_id: String, public_key: String, expiration: Timestamp },
    #[serde(rename = "project.application.key.removed")]
    ApplicationKeyRemoved { key_id: String },
    #[serde(rename = "project.application.deactivated")]
    ApplicationDeactivated {},
    #[serde(rename = "project.application.reactivated")]
    ApplicationReactivated {},
    #[serde(rename = "project.application.removed")]
    ApplicationRemoved {},
    #[serde(rename = "auth_request.added")]
    AuthRequestAdded(AuthRequestAdded),
    #[serde(rename = "auth_request.session.linked")]
    AuthRequestSessionLinked(SessionLinked),
    #[serde(rename = "auth_request.failed")]
    AuthRequestFailed { error: String, description: Option<String> },
    #[serde(rename = "auth_request.code.exchanged")]
    AuthRequestCodeExchanged { grant_id: String },
    #[serde(rename = "oidc_session.added")]
    GrantAdded(GrantAdded),
    #[serde(rename = "oidc_session.access_token.added")]
    GrantRefreshed(GrantTokens),
    #[serde(rename = "oidc_session.revoked")]
    GrantRevoked { reason: String },
}

impl Event {
    /// ZITADEL's event type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::InstanceAdded { .. } => "instance.added",
            Event::InstanceDefaultOrgSet { .. } => "instance.default.org.set",
            Event::InstanceMemberAdded { .. } => "instance.member.added",
            Event::OrgAdded { .. } => "org.added",
            Event::OrgMemberAdded { .. } => "org.member.added",
            Event::HumanAdded { .. } => "user.human.added",
            Event::MachineAdded { .. } => "user.machine.added",
            Event::PatAdded { .. } => "user.personal.access.token.added",
            Event::PatRemoved { .. } => "user.personal.access.token.removed",
            Event::MachineSecretSet { .. } => "user.machine.secret.set",
            Event::MachineKeyAdded { .. } => "user.machine.key.added",
            Event::TokenRevoked { .. } => "user.token.removed",
            Event::UserDeactivated {} => "user.deactivated",
            Event::UserRemoved {} => "user.removed",
            Event::PasskeyCodeRequested(_) => "user.human.passwordless.initialization.code.requested",
            Event::PasskeyCodeSent { .. } => "user.human.passwordless.initialization.code.sent",
            Event::PasskeyCodeSendFailed { .. } => "user.human.passwordless.initialization.code.send.failed",
            Event::PasskeyCodeCheckFailed { .. } => {
                "user.human.passwordless.initialization.code.check.failed"
            }
            Event::PasskeyCodeCheckSucceeded { .. } => {
                "user.human.passwordless.initialization.code.check.succeeded"
            }
            Event::PasskeyCodeRevoked { .. } => "user.human.passwordless.initialization.code.revoked",
            Event::PasskeyCodeExpired { .. } => "user.human.passwordless.initialization.code.expired",
            Event::PasskeyAdded { .. } => "user.human.passwordless.token.added",
            Event::PasskeyVerified { .. } => "user.human.passwordless.token.verified",
            Event::PasskeyRemoved { .. } => "user.human.passwordless.token.removed",
            Event::PasskeyCheckSucceeded { .. } => "user.human.passwordless.token.check.succeeded",
            Event::PasskeyCheckFailed { .. } => "user.human.passwordless.token.check.failed",
            Event::PasskeySignCountChanged { .. } => "user.human.passwordless.token.signcount.changed",
            Event::PasskeyCloneDetected { .. } => "user.human.passwordless.token.clone.detected",
            Event::SessionAdded(_) => "session.added",
            Event::SessionUserChecked { .. } => "session.user.checked",
            Event::SessionWebAuthNChallenged { .. } => "session.webAuthN.challenged",
            Event::SessionWebAuthNChecked { .. } => "session.webAuthN.checked",
            Event::SessionWebAuthNCheckFailed { .. } => "session.webAuthN.check.failed",
            Event::SessionTokenSet { .. } => "session.token.set",
            Event::SessionMetadataSet { .. } => "session.metadata.set",
            Event::SessionLifetimeSet { .. } => "session.lifetime.set",
            Event::SessionTerminated {} => "session.terminated",
            Event::ProjectAdded(_) => "project.added",
            Event::ProjectChanged(_) => "project.changed",
            Event::ProjectDeactivated {} => "project.deactivated",
            Event::ProjectReactivated {} => "project.reactivated",
            Event::ProjectRemoved {} => "project.removed",
            Event::ApplicationAdded(_) => "project.application.added",
            Event::ApplicationChanged(_) => "project.application.changed",
            Event::ApplicationSecretSet { .. } => "project.application.config.oidc.secret.changed",
            Event::ApplicationKeyAdded { .. } => "project.application.key.added",
            Event::ApplicationKeyRemoved { .. } => "project.application.key.removed",
            Event::ApplicationDeactivated {} => "project.application.deactivated",
            Event::ApplicationReactivated {} => "project.application.reactivated",
            Event::ApplicationRemoved {} => "project.application.removed",
            Event::AuthRequestAdded(_) => "auth_request.added",
            Event::AuthRequestSessionLinked(_) => "auth_request.session.linked",
            Event::AuthRequestFailed { .. } => "auth_request.failed",
            Event::AuthRequestCodeExchanged { .. } => "auth_request.code.exchanged",
            Event::GrantAdded(_) => "oidc_session.added",
            Event::GrantRefreshed(_) => "oidc_session.access_token.added",
            Event::GrantRevoked { .. } => "oidc_session.revoked",
        }
    }
}

/// An event with its place in the log: aggregate, sequence, time, owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub aggregate_kind: AggregateKind,
    pub aggregate_id: String,
    pub sequence: u64,
    pub created_at: Timestamp,
    /// The org (or instance) the aggregate belongs to.
    pub resource_owner: String,
    /// The user id that caused the event ("" for the system).
    pub creator: String,
    pub event: Event,
}

/// A job for the delivery worker, written in the same transaction as the event that asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxJob {
    pub id: String,
    pub kind: String,
    pub user_id: String,
    pub org_id: String,
    pub code_id: String,
    pub created_at: Timestamp,
    /// Deliveries after this instant are pointless (the code expired).
    pub not_after: Timestamp,
    /// `None` means the default link (the hosted registration page).
    pub url_template: Option<String>,
    /// The plaintext code, sealed with AES-256-GCM (aad = job id); erased after delivery.
    pub sealed_code: Option<Sealed>,
    pub attempts: u32,
}

// ---- payloads of the session events (the session's read model is `crate::session`)

/// A WebAuthN authentication state (it holds the challenge): server side only; `Debug` redacts.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChallengeState(pub String);

impl fmt::Debug for ChallengeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChallengeState(<redacted>)")
    }
}

/// ZITADEL's `UserAgent` of a session.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserAgent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
}

/// Payload of `session.added`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionAdded {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<UserAgent>,
}

#[cfg(test)]
mod tests;
