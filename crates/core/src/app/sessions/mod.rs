//! Sign-in sessions (zitadel.session.v2.SessionService): CreateSession, SetSession, GetSession,
//! ListSessions, DeleteSession, with the user check and the passkey (WebAuthN) challenge and
//! check, username-less included (beyond ZITADEL #8899).
//!
//! A write is `load → verify → decide → append`: the App loads the session, the checked user
//! and its passkeys (for a username-less check: the user the assertion's credential id belongs
//! to), asks the ceremony for a challenge or to verify the assertion (the one step that is not
//! pure: webauthn-rs), then [`decide_write`] turns views + outcome + time + token into events.
//! A refused check is recorded (`session.webAuthN.check.failed`, and on the user
//! `…token.check.failed` or `…token.clone.detected`), uses the challenge up, and answers a 4xx;
//! the session gets no factor and keeps its token.
//!
//! Every change draws a new opaque token from the injected entropy; only its SHA-256 is
//! recorded, so earlier tokens stop working. Permissions: `session.write` in the checked user's
//! organization (instance-wide before a user is known); reads and deletes with the session
//! token need nothing more, else the caller must be the session's user or creator, or hold
//! `session.read` / `session.delete` there.

use std::collections::BTreeMap;
use std::time::Duration;

use subtle::ConstantTimeEq;

use super::tx::Tx;
use super::{App, Caller, Details, user_not_found};
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, Event};
use crate::passkey::{Asserted, AssertionRefused, PasskeyState, PasskeyView, assertion_ids};
use crate::permission as perm;
use crate::secret::{Secret, generate_token, token_hash};
use crate::session::{ChallengeState, SessionAdded, SessionFilter, SessionView, UserAgent};
use crate::time::Timestamp;
use crate::view::{UserState, UserView};

/// How long a WebAuthN challenge may be answered.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(300);

/// `checks.user`: by id or by login name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCheck {
    Id(String),
    LoginName(String),
}

/// The WebAuthN challenge a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRequest {
    /// The RP id; "" = the default relying party.
    pub domain: String,
    /// `USER_VERIFICATION_REQUIREMENT_*` as its number (1 = REQUIRED, the only one passkeys use).
    pub user_verification: i32,
}

/// What CreateSession / SetSession ask for.
#[derive(Debug, Clone, Default)]
pub struct SessionChange {
    pub user: Option<UserCheck>,
    /// `checks.webAuthN.credentialAssertionData`.
    pub assertion: Option<serde_json::Value>,
    pub challenge: Option<ChallengeRequest>,
    /// Values (raw bytes); an empty value deletes the key.
    pub metadata: BTreeMap<String, Vec<u8>>,
    /// Seconds; negative is refused, 0 means no expiry.
    pub lifetime: Option<i64>,
    /// CreateSession only.
    pub user_agent: Option<UserAgent>,
}

/// The answer of CreateSession / SetSession.
#[derive(Debug, Clone)]
pub struct SessionWritten {
    pub details: Details,
    pub session_id: String,
    /// The new token; `None` when nothing changed (SetSession without changes).
    pub token: Option<Secret>,
    /// `{"publicKey": {...}}` when a WebAuthN challenge was requested.
    pub challenge: Option<serde_json::Value>,
}

/// How a creation date query compares (`zitadel.v1.TimestampQueryMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateMethod {
    Equals,
    Greater,
    GreaterOrEquals,
    Less,
    LessOrEquals,
}

/// One ListSessions query (all are ANDed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionQuery {
    Ids(Vec<String>),
    UserId(String),
    CreationDate(Timestamp, DateMethod),
    /// `None`: the caller.
    Creator(Option<String>),
    /// `None`: the caller's own user agent (passlink does not know it: refused).
    UserAgent(Option<String>),
}

/// ListSessions' input.
#[derive(Debug, Clone, Default)]
pub struct SessionList {
    pub queries: Vec<SessionQuery>,
    pub offset: u64,
    /// 0 = no limit.
    pub limit: u64,
    /// Ascending by creation date (ZITADEL's default is descending when sorted).
    pub asc: bool,
    pub sort_by_creation: bool,
}

pub(crate) fn session_not_found() -> Error {
    Error::new(Kind::NotFound, "QUERY-SFeaa", "Errors.Session.NotExisting")
}

fn session_not_existing() -> Error {
    Error::new(Kind::FailedPrecondition, "COMMAND-Flk38", "Errors.Session.NotExisting")
}

fn terminated() -> Error {
    Error::new(Kind::FailedPrecondition, "COMMAND-Hewfq", "Errors.Session.Terminated")
}

fn expired() -> Error {
    Error::new(Kind::FailedPrecondition, "COMMAND-Hkl3d", "Errors.Session.Expired")
}

fn token_invalid() -> Error {
    Error::new(Kind::PermissionDenied, "COMMAND-sGr42", "Errors.Session.Token.Invalid")
}

fn no_challenge() -> Error {
    Error::new(Kind::FailedPrecondition, "COMMAND-Ioqu5", "Errors.Session.WebAuthN.NoChallenge")
}

fn credential_not_found() -> Error {
    Error::new(Kind::FailedPrecondition, "COMMAND-Aej7i", "Errors.User.WebAuthN.NotFound")
}

fn assertion_invalid() -> Error {
    Error::new(Kind::InvalidArgument, "WEBAUTHN-l0g1n", "Errors.User.WebAuthN.ValidateLoginFailed")
}

fn clone_detected() -> Error {
    Error::new(Kind::FailedPrecondition, "WEBAUTHN-cl0n3", "Errors.User.WebAuthN.CloneDetected")
}

fn user_not_active() -> Error {
    Error::new(Kind::FailedPrecondition, "SESSION-Gj4ko", "Errors.User.NotActive")
}

fn user_gone() -> Error {
    Error::new(Kind::FailedPrecondition, "COMMAND-Df4b3", "Errors.User.NotFound")
}

fn user_change() -> Error {
    Error::new(Kind::InvalidArgument, "SESSION-uChg1", "Errors.Session.UserChange")
}

fn positive_lifetime() -> Error {
    Error::new(Kind::InvalidArgument, "COMMAND-asEG4", "Errors.Session.PositiveLifetime")
}

fn uv_required() -> Error {
    Error::new(Kind::InvalidArgument, "SESSION-uvR3q", "Errors.Session.WebAuthN.UserVerificationRequired")
}

/// An unknown ListSessions query.
pub fn query_invalid() -> Error {
    Error::new(Kind::InvalidArgument, "GRPC-Sfefs", "List.Query.Invalid")
}

fn user_agent_unknown() -> Error {
    Error::new(Kind::InvalidArgument, "GRPC-x8n23uh", "Errors.Session.UserAgentMissing")
}

mod commands;
mod rules;
#[cfg(test)]
mod tests;
