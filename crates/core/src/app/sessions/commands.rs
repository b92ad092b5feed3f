//! The session use cases on [`App`]: load → verify (the ceremony) → decide ([`super::rules`]) →
//! append, and the reads.

use super::rules::*;
use super::*;

impl App {
    async fn passkeys_of_user(&self, user_id: &str) -> Result<Vec<PasskeyView>> {
        self.deps.store.passkeys_of(user_id).await
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
        let written = self.write_session(caller, None, Some((id, instance.id)), change).await?;
        self.observer.session_created();
        Ok(written)
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
        let sign_in = change.assertion.is_some();
        let written = retry!(self, async {
            let session = self.deps.store.session(session_id).await?.ok_or_else(session_not_existing)?;
            self.write_session(caller, Some(session), None, change.clone()).await
        });
        if sign_in {
            self.observer.passkey_sign_in(written.is_ok());
        }
        written
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
