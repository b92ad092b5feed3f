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
use crate::passkey::{Asserted, AssertionRefused, PasskeyState, PasskeyView, assertion_ids, fold};
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

/// A user that can sign in: an active human (a deleted one is gone, a machine has no passkeys).
fn sign_in_user(user: &UserView) -> Result<()> {
    match user.state {
        UserState::Deleted => Err(user_gone()),
        UserState::Inactive => Err(user_not_active()),
        UserState::Active if !user.is_human() => Err(super::not_human()),
        UserState::Active => Ok(()),
    }
}

/// The session as a write finds it: not terminated, not expired.
fn writable(session: &SessionView, now: Timestamp) -> Result<()> {
    if session.terminated {
        return Err(terminated());
    }
    if session.is_expired(now) {
        return Err(expired());
    }
    Ok(())
}

/// The pending challenge of a session, if it can still be answered.
fn usable_challenge(
    session: &SessionView,
    now: Timestamp,
) -> std::result::Result<(String, ChallengeState), String> {
    let c = session.challenge.as_ref().ok_or("no pending challenge (never issued, or used)")?;
    if now.since(c.issued_at) > CHALLENGE_LIFETIME {
        return Err("the challenge expired".into());
    }
    Ok((c.rp_id.clone(), c.state.clone()))
}

/// The READY passkey with this credential id.
fn passkey_by_credential<'a>(passkeys: &'a [PasskeyView], cred_id: &str) -> Option<&'a PasskeyView> {
    passkeys.iter().find(|p| p.state == PasskeyState::Ready && p.cred_id.as_deref() == Some(cred_id))
}

/// The WebAuthN check's outcome, as the App established it before deciding.
#[derive(Debug, Clone)]
pub(super) enum CheckOutcome {
    /// The assertion verified for this passkey of `user`.
    Passed { passkey_id: String, asserted: Asserted },
    /// Refused: the client's error, the reason to record, and for a counter that went back the
    /// (stored, presented) counters; `passkey_id` when the passkey is known.
    Refused { error: Error, reason: String, passkey_id: Option<String>, cloned: Option<(u32, u32)> },
}

/// What one CreateSession / SetSession writes, once everything is loaded and verified.
#[derive(Debug)]
pub(super) struct Plan<'a> {
    /// The user of `checks.user`, or the user found from a username-less assertion.
    pub user: Option<&'a UserView>,
    /// The WebAuthN check and the user whose passkey answered it.
    pub check: Option<(&'a UserView, CheckOutcome)>,
    pub challenge: Option<(String, ChallengeState)>,
    /// Metadata, base64 (standard) encoded.
    pub metadata: BTreeMap<String, String>,
    pub lifetime: Option<i64>,
    /// (token id, SHA-256 hex of the token).
    pub token: (String, String),
}

/// A refused write: the error, and what to record about it first.
#[derive(Debug)]
pub(super) struct Refused {
    pub error: Error,
    pub record: Option<Tx>,
}

/// CreateSession (`new` = (id, instance id, user agent)) or SetSession (`current`): the events.
pub(super) fn decide_write(
    current: Option<&SessionView>,
    new: Option<(&str, &str, Option<UserAgent>)>,
    plan: Plan<'_>,
    creator: &str,
    now: Timestamp,
) -> std::result::Result<Tx, Box<Refused>> {
    let fail = |error: Error| Box::new(Refused { error, record: None });
    let mut tx = Tx::new(now, creator);
    let (session_id, current_user) = match (current, new) {
        (Some(s), _) => {
            writable(s, now).map_err(fail)?;
            tx.load_session(s.clone());
            (s.id.clone(), s.user_id().map(str::to_string))
        }
        (None, Some((id, instance, user_agent))) => {
            let added = Event::SessionAdded(SessionAdded { user_agent });
            tx.record(AggregateKind::Session, id, instance, added);
            (id.to_string(), None)
        }
        (None, None) => return Err(fail(session_not_existing())),
    };
    if plan.lifetime.is_some_and(|l| l < 0) {
        return Err(fail(positive_lifetime()));
    }
    let mut changed = current.is_none();
    if let Some(user) = plan.user {
        sign_in_user(user).map_err(fail)?;
        match current_user.as_deref() {
            Some(existing) if existing != user.id => return Err(fail(user_change())),
            Some(_) => {}
            None => {
                let checked = Event::SessionUserChecked {
                    user_id: user.id.clone(),
                    org_id: user.org_id.clone(),
                    login_name: user.username.clone(),
                    display_name: user.human().map(|h| h.effective_display_name()).unwrap_or_default(),
                };
                tx.record_session(&session_id, checked);
                changed = true;
            }
        }
    }
    if let Some((owner, outcome)) = plan.check {
        match outcome {
            CheckOutcome::Passed { passkey_id, asserted } => {
                if let Err(e) = sign_in_user(owner) {
                    return Err(refusal(
                        current,
                        &session_id,
                        Some(owner),
                        None,
                        e,
                        "the user is not active",
                        None,
                        creator,
                        now,
                    ));
                }
                tx.record_session(
                    &session_id,
                    Event::SessionWebAuthNChecked {
                        passkey_id: passkey_id.clone(),
                        user_verified: asserted.user_verified,
                    },
                );
                tx.load_user(owner.clone());
                tx.record_user(
                    &owner.id,
                    Event::PasskeySignCountChanged {
                        id: passkey_id.clone(),
                        sign_count: asserted.sign_count,
                        backup_eligible: asserted.backup_eligible,
                        backup_state: asserted.backup_state,
                    },
                );
                let succeeded = Event::PasskeyCheckSucceeded {
                    id: passkey_id,
                    session_id: session_id.clone(),
                    user_verified: asserted.user_verified,
                };
                tx.record_user(&owner.id, succeeded);
                changed = true;
            }
            CheckOutcome::Refused { error, reason, passkey_id, cloned } => {
                return Err(refusal(
                    current,
                    &session_id,
                    Some(owner),
                    passkey_id,
                    error,
                    &reason,
                    cloned,
                    creator,
                    now,
                ));
            }
        }
    }
    if let Some((rp_id, state)) = plan.challenge {
        tx.record_session(&session_id, Event::SessionWebAuthNChallenged { rp_id, state });
        changed = true;
    }
    if !plan.metadata.is_empty() {
        tx.record_session(&session_id, Event::SessionMetadataSet { metadata: plan.metadata });
        changed = true;
    }
    if let Some(l) = plan.lifetime {
        tx.record_session(&session_id, Event::SessionLifetimeSet { lifetime_secs: l.unsigned_abs() });
        changed = true;
    }
    if changed {
        let (token_id, token_hash) = plan.token;
        tx.record_session(&session_id, Event::SessionTokenSet { token_id, token_hash });
    }
    Ok(tx)
}

/// A refused WebAuthN check: recorded on the session (the challenge is used up) and, when the
/// passkey's user is known, on the user (`…check.failed`, or `…clone.detected`).
#[allow(clippy::too_many_arguments)]
pub(super) fn refusal(
    current: Option<&SessionView>,
    session_id: &str,
    owner: Option<&UserView>,
    passkey_id: Option<String>,
    error: Error,
    reason: &str,
    cloned: Option<(u32, u32)>,
    creator: &str,
    now: Timestamp,
) -> Box<Refused> {
    let Some(session) = current else { return Box::new(Refused { error, record: None }) };
    let mut tx = Tx::new(now, creator);
    tx.load_session(session.clone());
    let failed = Event::SessionWebAuthNCheckFailed { reason: reason.to_string() };
    tx.record_session(session_id, failed);
    if let Some(user) = owner.filter(|u| u.state != UserState::Deleted) {
        tx.load_user(user.clone());
        let session_id = session_id.to_string();
        let event = match (cloned, passkey_id) {
            (Some((stored, presented)), Some(id)) => {
                Event::PasskeyCloneDetected { id, session_id, stored, presented }
            }
            (_, id) => Event::PasskeyCheckFailed {
                id: id.unwrap_or_default(),
                session_id,
                reason: reason.to_string(),
            },
        };
        tx.record_user(&user.id, event);
    }
    Box::new(Refused { error, record: Some(tx) })
}

/// The WebAuthN check of a session, once the passkeys of the user it names are loaded:
/// challenge → credential → assertion. `verify` runs the ceremony (not pure).
pub(super) fn check_assertion(
    session: &SessionView,
    user: &UserView,
    passkeys: &[PasskeyView],
    cred_id: &str,
    user_handle_ok: bool,
    now: Timestamp,
    verify: impl FnOnce(
        &str,
        &ChallengeState,
        &PasskeyView,
    ) -> Result<std::result::Result<Asserted, AssertionRefused>>,
) -> Result<CheckOutcome> {
    let refused = |error: Error, reason: String, passkey_id: Option<String>| CheckOutcome::Refused {
        error,
        reason,
        passkey_id,
        cloned: None,
    };
    let (rp_id, state) = match usable_challenge(session, now) {
        Ok(c) => c,
        Err(reason) => return Ok(refused(no_challenge(), reason, None)),
    };
    if let Err(e) = sign_in_user(user) {
        return Ok(refused(e, "the user is not active".into(), None));
    }
    let Some(passkey) = passkey_by_credential(passkeys, cred_id).filter(|_| user_handle_ok) else {
        return Ok(refused(
            credential_not_found(),
            format!("credential {cred_id} is not a passkey of the user"),
            None,
        ));
    };
    Ok(match verify(&rp_id, &state, passkey)? {
        Ok(asserted) if asserted.user_verified => {
            CheckOutcome::Passed { passkey_id: passkey.id.clone(), asserted }
        }
        Ok(_) => refused(uv_required(), "the user was not verified".into(), Some(passkey.id.clone())),
        Err(AssertionRefused::Cloned { stored, presented }) => CheckOutcome::Refused {
            error: clone_detected(),
            reason: format!(
                "signature counter did not grow (stored {stored}, presented {presented}): possible cloned authenticator"
            ),
            passkey_id: Some(passkey.id.clone()),
            cloned: Some((stored, presented)),
        },
        Err(AssertionRefused::Invalid(reason)) => {
            refused(assertion_invalid(), reason, Some(passkey.id.clone()))
        }
    })
}

/// May `caller` read (or delete, with `permission`) `session` without its token? The session's
/// user or creator may; else `permission` in the user's organization (instance before a user).
fn may_access(caller: &Caller, session: &SessionView, permission: &str) -> bool {
    let me = caller.user_id();
    if session.creator == me || session.user_id() == Some(me) {
        return true;
    }
    match &session.user {
        Some(u) => perm::holds_in(caller.memberships(), permission, &u.org_id),
        None => perm::holds_instance_wide(caller.memberships(), permission),
    }
}

fn token_matches(session: &SessionView, token: &str) -> bool {
    let presented = crate::hex::encode(&token_hash(token));
    bool::from(presented.as_bytes().ct_eq(session.token_hash.as_bytes()))
}

fn date_matches(created: Timestamp, at: Timestamp, method: DateMethod) -> bool {
    match method {
        DateMethod::Equals => created == at,
        DateMethod::Greater => created > at,
        DateMethod::GreaterOrEquals => created >= at,
        DateMethod::Less => created < at,
        DateMethod::LessOrEquals => created <= at,
    }
}

/// The store's pre-filter and the remaining per-row queries of a ListSessions request.
fn list_filter(
    caller: &Caller,
    queries: &[SessionQuery],
) -> Result<(SessionFilter, Vec<(Timestamp, DateMethod)>)> {
    let mut filter = SessionFilter::default();
    let mut dates = Vec::new();
    for q in queries {
        match q {
            SessionQuery::Ids(ids) => {
                let keep: Vec<String> = match filter.ids.take() {
                    Some(prev) => prev.into_iter().filter(|i| ids.contains(i)).collect(),
                    None => ids.clone(),
                };
                filter.ids = Some(keep);
            }
            SessionQuery::UserId(id) => filter.user_id = Some(id.clone()),
            SessionQuery::Creator(id) => {
                filter.creator = Some(id.clone().unwrap_or_else(|| caller.user_id().to_string()))
            }
            SessionQuery::UserAgent(None) => return Err(user_agent_unknown()),
            SessionQuery::UserAgent(Some(_)) | SessionQuery::CreationDate(..) => {}
        }
        if let SessionQuery::CreationDate(at, m) = q {
            dates.push((*at, *m));
        }
    }
    Ok((filter, dates))
}

impl App {
    async fn passkeys_of_user(&self, user_id: &str) -> Result<Vec<PasskeyView>> {
        Ok(fold(&self.deps.store.events_of(AggregateKind::User, user_id).await?))
    }

    /// `checks.user`: the user by id or login name (not found → 404).
    async fn checked_user(&self, check: &UserCheck) -> Result<UserView> {
        let found = match check {
            UserCheck::Id(id) => self.deps.store.user(id).await?,
            UserCheck::LoginName(name) => self.deps.store.user_by_username(name).await?,
        };
        found.filter(|u| u.state != UserState::Deleted).ok_or_else(user_not_found)
    }

    fn authorize_write(caller: &Caller, user: Option<&UserView>) -> Result<()> {
        perm::require_somewhere(caller.memberships(), perm::SESSION_WRITE)?;
        match user {
            Some(u) => perm::require_in(caller.memberships(), perm::SESSION_WRITE, &u.org_id, user_not_found),
            None if perm::holds_instance_wide(caller.memberships(), perm::SESSION_WRITE) => Ok(()),
            None => Err(perm::denied()),
        }
    }

    /// CreateSession.
    pub async fn create_session(&self, caller: &Caller, change: SessionChange) -> Result<SessionWritten> {
        if change.assertion.is_some() {
            // A check answers a challenge of this session: a new session has none.
            return Err(no_challenge().with_cause("a WebAuthN check on a new session"));
        }
        let instance = self.deps.store.instance().await?.ok_or_else(|| Error::internal("no instance"))?;
        let id = self.next_id();
        self.write_session(caller, None, Some((id, instance.id)), change).await
    }

    /// SetSession.
    pub async fn set_session(
        &self,
        caller: &Caller,
        session_id: &str,
        change: SessionChange,
    ) -> Result<SessionWritten> {
        crate::validate::runes_between("SetSessionRequest", "SessionId", session_id, 1, 200)?;
        let _lock = self.lock_aggregate(session_id).await;
        retry!(self, async {
            let session = self.deps.store.session(session_id).await?.ok_or_else(session_not_existing)?;
            self.write_session(caller, Some(session), None, change.clone()).await
        })
    }

    async fn write_session(
        &self,
        caller: &Caller,
        current: Option<SessionView>,
        new: Option<(String, String)>,
        change: SessionChange,
    ) -> Result<SessionWritten> {
        let now = self.now();
        // Load: the checked user, and for a WebAuthN check the user whose passkey answers.
        let checked = match &change.user {
            Some(check) => Some(self.checked_user(check).await?),
            None => None,
        };
        let known = checked.clone().or(match current.as_ref().and_then(|s| s.user.as_ref()) {
            Some(u) => self.deps.store.user(&u.user_id).await?,
            None => None,
        });
        let assertion = match &change.assertion {
            Some(a) => Some((a, assertion_ids(a)?)),
            None => None,
        };
        // Username-less: the credential names the user.
        let owner = match (&known, &assertion) {
            (Some(u), _) => Some(u.clone()),
            (None, Some((_, ids))) => match self.deps.store.credential_owner(&ids.cred_id).await? {
                Some(uid) => self.deps.store.user(&uid).await?,
                None => None,
            },
            (None, None) => None,
        };
        Self::authorize_write(caller, owner.as_ref().or(checked.as_ref()))?;
        let session_id =
            current.as_ref().map(|s| s.id.clone()).or(new.as_ref().map(|n| n.0.clone())).unwrap_or_default();
        // Verify the assertion (webauthn-rs) before deciding.
        let check = match (&assertion, &current) {
            (None, _) | (_, None) => None,
            (Some((data, ids)), Some(session)) => match &owner {
                None => {
                    let reason = format!("credential {} belongs to no user", ids.cred_id);
                    let refused = refusal(
                        Some(session),
                        &session.id,
                        None,
                        None,
                        credential_not_found(),
                        &reason,
                        None,
                        caller.user_id(),
                        now,
                    );
                    return Err(self.record_refusal(*refused).await);
                }
                Some(user) => {
                    let passkeys = self.passkeys_of_user(&user.id).await?;
                    let handle_ok = ids
                        .user_handle
                        .as_ref()
                        .is_none_or(|h| h[..] == self.deps.keys.user_handle(&user.id)[..]);
                    let outcome = check_assertion(
                        session,
                        user,
                        &passkeys,
                        &ids.cred_id,
                        handle_ok,
                        now,
                        |rp, state, pk| self.deps.webauthn.finish_sign_in(rp, data, state, pk),
                    )?;
                    Some((user, outcome))
                }
            },
        };
        // A username-less check that passed names the session's user.
        let user_for_plan = match (&checked, &check) {
            (Some(u), _) => Some(u),
            (None, Some((u, CheckOutcome::Passed { .. })))
                if current.as_ref().is_some_and(|s| s.user.is_none()) =>
            {
                Some(*u)
            }
            _ => None,
        };
        let challenge = match &change.challenge {
            None => None,
            Some(req) => {
                if req.user_verification != 1 {
                    return Err(uv_required());
                }
                let rp_id = self.deps.webauthn.rp_id(&req.domain)?;
                let for_user = user_for_plan.or(known.as_ref());
                let passkeys = match for_user {
                    Some(u) => {
                        sign_in_user(u)?;
                        self.passkeys_of_user(&u.id).await?
                    }
                    None => Vec::new(),
                };
                let allow: Vec<&str> = passkeys
                    .iter()
                    .filter(|p| p.state == PasskeyState::Ready && p.rp_id == rp_id)
                    .filter_map(|p| p.credential.as_deref())
                    .collect();
                Some((rp_id.clone(), self.deps.webauthn.start_sign_in(&rp_id, &allow)?))
            }
        };
        let token = generate_token(&*self.deps.entropy);
        let plan = Plan {
            user: user_for_plan,
            check,
            challenge: challenge.as_ref().map(|(rp, (_, state))| (rp.clone(), state.clone())),
            metadata: change
                .metadata
                .iter()
                .map(|(k, v)| {
                    (k.clone(), base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v))
                })
                .collect(),
            lifetime: change.lifetime,
            token: (self.next_id(), crate::hex::encode(&token_hash(token.expose()))),
        };
        let new_ref = new.as_ref().map(|(id, inst)| (id.as_str(), inst.as_str(), change.user_agent.clone()));
        match decide_write(current.as_ref(), new_ref, plan, caller.user_id(), now) {
            Ok(tx) => {
                let details = tx.details(AggregateKind::Session, &session_id, current.is_none());
                let wrote = tx.sequence(AggregateKind::Session, &session_id)
                    != current.as_ref().map_or(0, |s| s.sequence);
                let details = Details { resource_owner: self.instance_of(current.as_ref(), &new), ..details };
                if wrote {
                    self.deps.store.commit(tx.into_commit()).await?;
                }
                Ok(SessionWritten {
                    details,
                    session_id,
                    token: wrote.then_some(token),
                    challenge: challenge.map(|(_, (options, _))| options),
                })
            }
            Err(refused) => Err(self.record_refusal(*refused).await),
        }
    }

    fn instance_of(&self, current: Option<&SessionView>, new: &Option<(String, String)>) -> String {
        current.map(|s| s.instance_id.clone()).or(new.as_ref().map(|n| n.1.clone())).unwrap_or_default()
    }

    /// Record a refused check (if there is something to record) and answer its error.
    async fn record_refusal(&self, refused: Refused) -> Error {
        if let Some(tx) = refused.record
            && let Err(e) = self.deps.store.commit(tx.into_commit()).await
        {
            return e;
        }
        refused.error
    }

    /// GetSession: with its token, or as its user/creator, or with `session.read`.
    pub async fn get_session(
        &self,
        caller: &Caller,
        session_id: &str,
        token: Option<&Secret>,
    ) -> Result<SessionView> {
        crate::validate::runes_between("GetSessionRequest", "SessionId", session_id, 1, 200)?;
        let session = self
            .deps
            .store
            .session(session_id)
            .await?
            .filter(|s| !s.terminated)
            .ok_or_else(session_not_found)?;
        match token {
            Some(t) if token_matches(&session, t.expose()) => Ok(session),
            Some(_) => Err(Error::new(Kind::PermissionDenied, "QUERY-dsfr3", "Errors.PermissionDenied")),
            None if may_access(caller, &session, perm::SESSION_READ) => Ok(session),
            None => Err(Error::new(Kind::PermissionDenied, "QUERY-dsfr3", "Errors.PermissionDenied")),
        }
    }

    /// ListSessions: the sessions matching every query that the caller may read.
    pub async fn list_sessions(
        &self,
        caller: &Caller,
        list: &SessionList,
    ) -> Result<(Vec<SessionView>, u64)> {
        let (filter, dates) = list_filter(caller, &list.queries)?;
        let fingerprints: Vec<&String> = list
            .queries
            .iter()
            .filter_map(|q| if let SessionQuery::UserAgent(Some(f)) = q { Some(f) } else { None })
            .collect();
        let mut rows: Vec<SessionView> = self
            .deps
            .store
            .sessions(&filter)
            .await?
            .into_iter()
            .filter(|s| !s.terminated && filter.matches(s))
            .filter(|s| dates.iter().all(|(at, m)| date_matches(s.created_at, *at, *m)))
            .filter(|s| {
                fingerprints
                    .iter()
                    .all(|f| s.user_agent.as_ref().and_then(|a| a.fingerprint_id.as_ref()) == Some(*f))
            })
            .filter(|s| may_access(caller, s, perm::SESSION_READ))
            .collect();
        if list.sort_by_creation && !list.asc {
            rows.reverse();
        }
        let total = rows.len() as u64;
        let offset = usize::try_from(list.offset).unwrap_or(usize::MAX);
        let limit =
            if list.limit == 0 { usize::MAX } else { usize::try_from(list.limit).unwrap_or(usize::MAX) };
        Ok((rows.into_iter().skip(offset).take(limit).collect(), total))
    }

    /// DeleteSession: with its token, as its user, or with `session.delete`. An unknown or
    /// already terminated session answers success (as ZITADEL).
    pub async fn delete_session(
        &self,
        caller: &Caller,
        session_id: &str,
        token: Option<&Secret>,
    ) -> Result<Details> {
        crate::validate::runes_between("DeleteSessionRequest", "SessionId", session_id, 1, 200)?;
        let _lock = self.lock_aggregate(session_id).await;
        retry!(self, async {
            let now = self.now();
            let Some(session) = self.deps.store.session(session_id).await? else {
                perm::require_somewhere(caller.memberships(), perm::SESSION_DELETE)?;
                return Ok(Details {
                    sequence: 0,
                    change_date: now,
                    resource_owner: String::new(),
                    creation_date: None,
                });
            };
            let allowed = match token {
                Some(t) => token_matches(&session, t.expose()),
                None => session.user_id() == Some(caller.user_id()) || may_access_delete(caller, &session),
            };
            if !allowed {
                return Err(token.map_or_else(perm::denied, |_| token_invalid()));
            }
            let tx = decide_terminate(&session, caller.user_id(), now);
            let details = tx.details(AggregateKind::Session, &session.id, false);
            let details = Details { resource_owner: session.instance_id.clone(), ..details };
            self.deps.store.commit(tx.into_commit()).await?;
            Ok(details)
        })
    }
}

fn may_access_delete(caller: &Caller, session: &SessionView) -> bool {
    match &session.user {
        Some(u) => perm::holds_in(caller.memberships(), perm::SESSION_DELETE, &u.org_id),
        None => perm::holds_instance_wide(caller.memberships(), perm::SESSION_DELETE),
    }
}

/// DeleteSession: `session.terminated`, unless it already is.
fn decide_terminate(session: &SessionView, creator: &str, now: Timestamp) -> Tx {
    let mut tx = Tx::new(now, creator);
    tx.load_session(session.clone());
    if !session.terminated {
        tx.record(AggregateKind::Session, &session.id, &session.instance_id, Event::SessionTerminated {});
    }
    tx
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NOW, caller, human, org};
    use super::*;
    use crate::event::Recorded;
    use crate::view::{Change, Scope};

    fn session(user: Option<&UserView>) -> SessionView {
        let r = Recorded {
            aggregate_kind: AggregateKind::Session,
            aggregate_id: "s".into(),
            sequence: 1,
            created_at: NOW,
            resource_owner: "inst".into(),
            creator: "creator".into(),
            event: Event::SessionAdded(SessionAdded::default()),
        };
        let mut s = SessionView::created(&r).unwrap_or_else(|| unreachable!());
        if let Some(u) = user {
            s.user = Some(crate::session::UserFactor {
                user_id: u.id.clone(),
                org_id: u.org_id.clone(),
                login_name: u.username.clone(),
                display_name: "Ada".into(),
                checked_at: NOW,
            });
        }
        s
    }

    fn plan(user: Option<&UserView>) -> Plan<'_> {
        Plan {
            user,
            check: None,
            challenge: None,
            metadata: BTreeMap::new(),
            lifetime: None,
            token: ("t1".into(), "hash1".into()),
        }
    }

    fn types(tx: Tx) -> Vec<&'static str> {
        tx.into_commit().events.iter().map(|r| r.event.type_name()).collect()
    }

    #[test]
    fn creating_records_the_session_the_user_and_a_token() {
        let u = human("u", "A");
        let tx = decide_write(None, Some(("s", "inst", None)), plan(Some(&u)), "c", NOW).unwrap();
        let commit = tx.into_commit();
        let t: Vec<_> = commit.events.iter().map(|r| r.event.type_name()).collect();
        assert_eq!(t, ["session.added", "session.user.checked", "session.token.set"]);
        let s = commit.changes.iter().find_map(|c| if let Change::Session(s) = c { Some(s) } else { None });
        let s = s.unwrap();
        assert_eq!((s.user_id(), s.token_hash.as_str(), s.sequence), (Some("u"), "hash1", 3));
    }

    #[test]
    fn a_change_without_effect_writes_nothing_and_the_user_cannot_change() {
        let u = human("u", "A");
        let s = session(Some(&u));
        let tx = decide_write(Some(&s), None, plan(Some(&u)), "c", NOW).unwrap();
        assert!(types(tx).is_empty());
        let other = human("v", "A");
        let e = decide_write(Some(&s), None, plan(Some(&other)), "c", NOW).unwrap_err();
        assert_eq!(e.error.id, "SESSION-uChg1");
        let mut p = plan(None);
        p.lifetime = Some(-1);
        assert_eq!(decide_write(Some(&s), None, p, "c", NOW).unwrap_err().error.id, "COMMAND-asEG4");
    }

    #[test]
    fn terminated_and_expired_sessions_refuse_changes() {
        let mut s = session(None);
        s.terminated = true;
        assert_eq!(decide_write(Some(&s), None, plan(None), "c", NOW).unwrap_err().error.id, "COMMAND-Hewfq");
        let mut s = session(None);
        s.expiration = Some(NOW);
        assert_eq!(decide_write(Some(&s), None, plan(None), "c", NOW).unwrap_err().error.id, "COMMAND-Hkl3d");
    }

    #[test]
    fn inactive_users_cannot_be_checked() {
        let mut u = human("u", "A");
        u.state = UserState::Inactive;
        let e = decide_write(None, Some(("s", "i", None)), plan(Some(&u)), "c", NOW).unwrap_err();
        assert_eq!(e.error.id, "SESSION-Gj4ko");
    }

    fn ready(id: &str, cred: &str) -> PasskeyView {
        PasskeyView {
            id: id.into(),
            state: PasskeyState::Ready,
            name: "k".into(),
            rp_id: "localhost".into(),
            code_id: None,
            registration_state: String::new(),
            credential: Some("{}".into()),
            cred_id: Some(cred.into()),
            created_at: NOW,
            sign_count: 3,
            backup_eligible: false,
            backup_state: false,
            last_used: None,
        }
    }

    fn challenged(mut s: SessionView, at: Timestamp) -> SessionView {
        s.challenge = Some(crate::session::Challenge {
            rp_id: "localhost".into(),
            state: ChallengeState("{}".into()),
            issued_at: at,
        });
        s
    }

    const OK: Asserted =
        Asserted { user_verified: true, sign_count: 4, backup_eligible: true, backup_state: true };

    fn refused_id(o: CheckOutcome) -> &'static str {
        match o {
            CheckOutcome::Refused { error, .. } => error.id,
            CheckOutcome::Passed { .. } => "passed",
        }
    }

    #[test]
    fn the_check_needs_a_live_challenge_a_known_credential_and_user_verification() {
        let u = human("u", "A");
        let keys = vec![ready("p1", "cred1")];
        let s = challenged(session(Some(&u)), NOW);
        let pass = |_: &str, _: &ChallengeState, _: &PasskeyView| Ok(Ok(OK));
        let o = check_assertion(&s, &u, &keys, "cred1", true, NOW, pass).unwrap();
        assert!(matches!(o, CheckOutcome::Passed { ref passkey_id, .. } if passkey_id == "p1"));
        let none = session(Some(&u));
        assert_eq!(
            refused_id(check_assertion(&none, &u, &keys, "cred1", true, NOW, pass).unwrap()),
            "COMMAND-Ioqu5"
        );
        let late = NOW.plus(CHALLENGE_LIFETIME).plus(Duration::from_secs(1));
        assert_eq!(
            refused_id(check_assertion(&s, &u, &keys, "cred1", true, late, pass).unwrap()),
            "COMMAND-Ioqu5"
        );
        assert_eq!(
            refused_id(check_assertion(&s, &u, &keys, "other", true, NOW, pass).unwrap()),
            "COMMAND-Aej7i"
        );
        assert_eq!(
            refused_id(check_assertion(&s, &u, &keys, "cred1", false, NOW, pass).unwrap()),
            "COMMAND-Aej7i"
        );
        let no_uv =
            |_: &str, _: &ChallengeState, _: &PasskeyView| Ok(Ok(Asserted { user_verified: false, ..OK }));
        assert_eq!(
            refused_id(check_assertion(&s, &u, &keys, "cred1", true, NOW, no_uv).unwrap()),
            "SESSION-uvR3q"
        );
        let cloned = |_: &str, _: &ChallengeState, _: &PasskeyView| {
            Ok(Err(AssertionRefused::Cloned { stored: 3, presented: 2 }))
        };
        assert_eq!(
            refused_id(check_assertion(&s, &u, &keys, "cred1", true, NOW, cloned).unwrap()),
            "WEBAUTHN-cl0n3"
        );
        let mut gone = u.clone();
        gone.state = UserState::Deleted;
        assert_eq!(
            refused_id(check_assertion(&s, &gone, &keys, "cred1", true, NOW, pass).unwrap()),
            "COMMAND-Df4b3"
        );
    }

    #[test]
    fn a_passed_check_sets_the_factor_and_the_sign_count_a_refusal_is_recorded() {
        let u = human("u", "A");
        let s = challenged(session(Some(&u)), NOW);
        let mut p = plan(None);
        p.check = Some((&u, CheckOutcome::Passed { passkey_id: "p1".into(), asserted: OK }));
        let c = decide_write(Some(&s), None, p, "c", NOW).unwrap().into_commit();
        let t: Vec<_> = c.events.iter().map(|r| r.event.type_name()).collect();
        assert_eq!(
            t,
            [
                "session.webAuthN.checked",
                "user.human.passwordless.token.signcount.changed",
                "user.human.passwordless.token.check.succeeded",
                "session.token.set"
            ]
        );
        let mut p = plan(None);
        let refused = CheckOutcome::Refused {
            error: clone_detected(),
            reason: "r".into(),
            passkey_id: Some("p1".into()),
            cloned: Some((3, 2)),
        };
        p.check = Some((&u, refused));
        let r = decide_write(Some(&s), None, p, "c", NOW).unwrap_err();
        assert_eq!(r.error.id, "WEBAUTHN-cl0n3");
        let c = r.record.unwrap().into_commit();
        let t: Vec<_> = c.events.iter().map(|r| r.event.type_name()).collect();
        assert_eq!(t, ["session.webAuthN.check.failed", "user.human.passwordless.token.clone.detected"]);
        let s = c.changes.iter().find_map(|c| if let Change::Session(s) = c { Some(s) } else { None });
        assert!(s.unwrap().challenge.is_none(), "the challenge is used up");
    }

    #[test]
    fn reading_without_the_token_needs_the_user_the_creator_or_session_read() {
        let u = human("u", "A");
        let s = session(Some(&u));
        assert!(may_access(&caller(Scope::Instance, "IAM_LOGIN_CLIENT"), &s, perm::SESSION_READ));
        assert!(may_access(&caller(org("A"), "IAM_OWNER"), &s, perm::SESSION_READ));
        assert!(!may_access(&caller(org("B"), "IAM_OWNER"), &s, perm::SESSION_READ));
        assert!(!may_access(&caller(Scope::Instance, "IAM_USER_MANAGER"), &s, perm::SESSION_READ));
        let anonymous = session(None);
        assert!(!may_access(&caller(org("A"), "IAM_OWNER"), &anonymous, perm::SESSION_READ));
        let mut mine = session(None);
        mine.creator = "caller".into();
        assert!(may_access(&caller(Scope::Instance, ""), &mine, perm::SESSION_READ));
        let mut t = session(None);
        t.token_hash = crate::hex::encode(&token_hash("tok"));
        assert!(token_matches(&t, "tok") && !token_matches(&t, "tok2"));
    }

    #[test]
    fn terminating_twice_records_once() {
        let mut s = session(None);
        assert_eq!(types(decide_terminate(&s, "c", NOW)), ["session.terminated"]);
        s.terminated = true;
        assert!(types(decide_terminate(&s, "c", NOW)).is_empty());
    }

    #[test]
    fn list_queries_become_a_store_filter() {
        let c = caller(Scope::Instance, "IAM_OWNER");
        let (f, dates) = list_filter(
            &c,
            &[
                SessionQuery::Ids(vec!["a".into(), "b".into()]),
                SessionQuery::Ids(vec!["b".into()]),
                SessionQuery::Creator(None),
                SessionQuery::CreationDate(NOW, DateMethod::Less),
            ],
        )
        .unwrap();
        assert_eq!(f.ids, Some(vec!["b".to_string()]));
        assert_eq!(f.creator.as_deref(), Some("caller"));
        assert_eq!(dates.len(), 1);
        assert!(date_matches(NOW, NOW.plus(Duration::from_secs(1)), DateMethod::Less));
        assert_eq!(list_filter(&c, &[SessionQuery::UserAgent(None)]).unwrap_err().id, "GRPC-x8n23uh");
        assert_eq!(query_invalid().kind, Kind::InvalidArgument);
    }
}
