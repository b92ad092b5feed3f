//! The rules of a session write, pure: who may do what, which challenge is usable, what a
//! CreateSession / SetSession records ([`decide_write`]), what a refused check records, and the
//! ListSessions filter.

use super::*;

/// A user that can sign in: an active human (a deleted one is gone, a machine has no passkeys).
pub(super) fn sign_in_user(user: &UserView) -> Result<()> {
    match user.state {
        UserState::Deleted => Err(user_gone()),
        UserState::Inactive => Err(user_not_active()),
        UserState::Active if !user.is_human() => Err(super::super::not_human()),
        UserState::Active => Ok(()),
    }
}

/// The session as a write finds it: not terminated, not expired.
pub(super) fn writable(session: &SessionView, now: Timestamp) -> Result<()> {
    if session.terminated {
        return Err(terminated());
    }
    if session.is_expired(now) {
        return Err(expired());
    }
    Ok(())
}

/// The pending challenge of a session, if it can still be answered.
pub(super) fn usable_challenge(
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
pub(super) fn passkey_by_credential<'a>(
    passkeys: &'a [PasskeyView],
    cred_id: &str,
) -> Option<&'a PasskeyView> {
    passkeys.iter().find(|p| p.state == PasskeyState::Ready && p.cred_id.as_deref() == Some(cred_id))
}

/// The WebAuthN check's outcome, as the App established it before deciding.
#[derive(Debug, Clone)]
pub(super) enum CheckOutcome {
    /// The assertion verified for this passkey of `user`.
    Passed { passkey: Box<PasskeyView>, asserted: Asserted },
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
            CheckOutcome::Passed { passkey, asserted } => {
                let passkey_id = passkey.id.clone();
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
                tx.load_passkeys([*passkey]);
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
            CheckOutcome::Passed { passkey: Box::new(passkey.clone()), asserted }
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
pub(super) fn may_access(caller: &Caller, session: &SessionView, permission: &str) -> bool {
    let me = caller.user_id();
    if session.creator == me || session.user_id() == Some(me) {
        return true;
    }
    match &session.user {
        Some(u) => perm::holds_in(caller.memberships(), permission, &u.org_id),
        None => perm::holds_instance_wide(caller.memberships(), permission),
    }
}

pub(super) fn token_matches(session: &SessionView, token: &str) -> bool {
    let presented = crate::hex::encode(&token_hash(token));
    bool::from(presented.as_bytes().ct_eq(session.token_hash.as_bytes()))
}

pub(super) fn date_matches(created: Timestamp, at: Timestamp, method: DateMethod) -> bool {
    match method {
        DateMethod::Equals => created == at,
        DateMethod::Greater => created > at,
        DateMethod::GreaterOrEquals => created >= at,
        DateMethod::Less => created < at,
        DateMethod::LessOrEquals => created <= at,
    }
}

/// The store's pre-filter and the remaining per-row queries of a ListSessions request.
pub(super) fn list_filter(
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

/// DeleteSession: `session.terminated`, unless it already is.
pub(super) fn decide_terminate(session: &SessionView, creator: &str, now: Timestamp) -> Tx {
    let mut tx = Tx::new(now, creator);
    tx.load_session(session.clone());
    if !session.terminated {
        tx.record(AggregateKind::Session, &session.id, &session.instance_id, Event::SessionTerminated {});
    }
    tx
}
