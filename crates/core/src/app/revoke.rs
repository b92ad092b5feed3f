//! RevokeRegistrationCodes: a user's outstanding registration codes (all, or one by id) stop
//! working at once, and deliveries of them not yet sent are cancelled with their sealed codes
//! erased, in one commit. With [`AppConfig::revoke_codes_on_registration`](super::AppConfig)
//! a verified passkey registration revokes the user's other outstanding codes the same way.
//!
//! Load: the user, its codes (the ids its `code.requested` events name, read from the codes'
//! read model) and the outbox jobs of those codes. Decide ([`decide_revoke`]): a `code.revoked`
//! for each outstanding code (folded: the code is revoked), and for each of their jobs still
//! pending its final update (abandoned, sealed code erased). A job whose worker is sending it
//! right now may still go out; its link then answers "Code is invalid" like any revoked code.

use super::tx::Tx;
use super::{App, Caller, Details, user_not_found};
use crate::code::CodeView;
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, Event};
use crate::permission::{self as perm, require_in, require_somewhere};
use crate::store::{JobState, JobStatus};
use crate::time::Timestamp;
use crate::validate;
use crate::view::UserView;

/// `reason` of a `code.revoked` asked for by RevokeRegistrationCodes.
pub const REVOKED_ON_REQUEST: &str = "revoked on request";
/// `reason` of a `code.revoked` caused by a passkey registration (the setting).
pub const REVOKED_ON_REGISTRATION: &str = "a passkey was registered";
/// `last_error` of an outbox job cancelled by a revocation.
const JOB_CANCELLED: &str = "the code was revoked";

/// What RevokeRegistrationCodes did.
#[derive(Debug, Clone)]
pub struct CodesRevoked {
    pub details: Details,
    /// The codes revoked, oldest first.
    pub code_ids: Vec<String>,
    /// How many of them had a delivery not yet sent (now cancelled).
    pub cancelled_deliveries: u32,
}

/// The error for a `code_id` that names no code of the user.
fn code_not_found() -> Error {
    Error::new(Kind::NotFound, "CODE-rv404", "Errors.User.Code.NotFound")
}

/// Which codes to revoke: all outstanding ones, or the one named (NotFound unless it is one of
/// the user's codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which<'a> {
    All,
    Only(&'a str),
}

/// Record `code.revoked` (with `reason`) for each outstanding code `which` selects and cancel
/// their pending deliveries (`jobs`: the outbox jobs of `codes`, in any state). Returns the
/// revoked ids and the number of deliveries cancelled. `tx` must hold the user (loaded).
pub(super) fn decide_revoke(
    tx: &mut Tx,
    user: &UserView,
    codes: Vec<CodeView>,
    jobs: &[JobStatus],
    which: Which<'_>,
    reason: &str,
    now: Timestamp,
) -> Result<(Vec<String>, u32)> {
    if let Which::Only(id) = which
        && !codes.iter().any(|c| c.id == id && c.user_id == user.id)
    {
        return Err(code_not_found());
    }
    let mut revoked = Vec::new();
    let mut cancelled = 0;
    for code in codes {
        let selected = match which {
            Which::All => true,
            Which::Only(id) => code.id == id,
        };
        if !selected || code.user_id != user.id || !code.outstanding(now) {
            continue;
        }
        let id = code.id.clone();
        tx.load_code(code);
        tx.record_user(&user.id, Event::PasskeyCodeRevoked { id: id.clone(), reason: reason.to_string() });
        for j in jobs.iter().filter(|j| j.job.code_id == id && j.state == JobState::Pending) {
            let mut job = j.job.clone();
            job.sealed_code = None;
            tx.commit.outbox_updates.push(crate::store::OutboxUpdate {
                job,
                state: JobState::Abandoned,
                next_attempt_at: now,
                last_error: Some(JOB_CANCELLED.to_string()),
            });
            cancelled += 1;
        }
        revoked.push(id);
    }
    Ok((revoked, cancelled))
}

impl App {
    /// The user's codes (any state), oldest first, and the outbox jobs of those outstanding at
    /// `now` (the only ones a revocation cancels).
    pub(super) async fn codes_and_jobs_of(
        &self,
        user: &UserView,
        now: Timestamp,
    ) -> Result<(Vec<CodeView>, Vec<JobStatus>)> {
        let events = self.deps.store.events_of(AggregateKind::User, &user.id).await?;
        let mut codes = Vec::new();
        let mut jobs = Vec::new();
        for r in events {
            let Event::PasskeyCodeRequested(c) = r.event else { continue };
            let Some(code) = self.deps.store.code(&c.id).await? else { continue };
            if let Some(job_id) = code.job_id.as_ref().filter(|_| code.outstanding(now))
                && let Some(job) = self.deps.store.job(job_id).await?
            {
                jobs.push(job);
            }
            codes.push(code);
        }
        Ok((codes, jobs))
    }

    /// RevokeRegistrationCodes: the user's outstanding codes, or the one `code_id` names.
    pub async fn revoke_codes(
        &self,
        caller: &Caller,
        user_id: &str,
        code_id: Option<&str>,
    ) -> Result<CodesRevoked> {
        const MSG: &str = "RevokeRegistrationCodesRequest";
        require_somewhere(caller.memberships(), perm::USER_PASSKEY_WRITE)?;
        validate::runes_between(MSG, "UserId", user_id, 1, 200)?;
        if let Some(id) = code_id {
            validate::runes_between(MSG, "CodeId", id, 1, 200)?;
        }
        let which = code_id.map_or(Which::All, Which::Only);
        let _lock = self.lock_aggregate(user_id).await;
        retry!(self, async {
            let user = self.visible_user(user_id).await?;
            require_in(caller.memberships(), perm::USER_PASSKEY_WRITE, &user.org_id, user_not_found)?;
            let now = self.now();
            let (codes, jobs) = self.codes_and_jobs_of(&user, now).await?;
            let mut tx = Tx::on_user(now, caller.user_id(), &user);
            let (code_ids, cancelled_deliveries) =
                decide_revoke(&mut tx, &user, codes, &jobs, which, REVOKED_ON_REQUEST, now)?;
            let details = tx.user_details(user_id);
            if !code_ids.is_empty() {
                self.deps.store.commit(tx.into_commit()).await?;
            }
            Ok::<_, Error>(CodesRevoked { details, code_ids, cancelled_deliveries })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{self, NOW, human};
    use super::*;
    use crate::code::CodeState;
    use crate::event::OutboxJob;
    use crate::secret::Sealed;
    use crate::view::Change;

    fn code(id: &str, user: &str, state: CodeState, job: Option<&str>) -> CodeView {
        CodeView { state, ..testing::code(id, user, job) }
    }

    fn job(id: &str, code_id: &str, state: JobState) -> JobStatus {
        let sealed = Sealed { key_id: "1".into(), nonce: "n".into(), ciphertext: "c".into() };
        JobStatus {
            job: OutboxJob {
                id: id.into(),
                kind: "passkey_registration_link".into(),
                user_id: "u".into(),
                org_id: "A".into(),
                code_id: code_id.into(),
                created_at: NOW,
                not_after: NOW.plus(Duration::from_secs(3600)),
                url_template: None,
                sealed_code: Some(sealed),
                attempts: 1,
            },
            state,
            next_attempt_at: NOW,
            lease_owner: None,
            lease_until: None,
            last_error: None,
        }
    }

    fn decide(
        codes: Vec<CodeView>,
        jobs: &[JobStatus],
        which: Which<'_>,
        now: Timestamp,
    ) -> Result<(Vec<String>, u32, crate::store::Commit)> {
        let user = human("u", "A");
        let mut tx = Tx::on_user(now, "admin", &user);
        let (ids, n) = decide_revoke(&mut tx, &user, codes, jobs, which, REVOKED_ON_REQUEST, now)?;
        Ok((ids, n, tx.into_commit()))
    }

    #[test]
    fn every_outstanding_code_is_revoked_and_its_pending_delivery_cancelled() {
        let codes = vec![
            code("c1", "u", CodeState::Active, None),
            code("c2", "u", CodeState::Requested, Some("j2")),
            code("c3", "u", CodeState::Consumed, None),
            code("c4", "u", CodeState::Locked, None),
            code("c5", "u", CodeState::Active, Some("j5")),
        ];
        let jobs = [job("j2", "c2", JobState::Pending), job("j5", "c5", JobState::Delivered)];
        let (ids, cancelled, commit) = decide(codes, &jobs, Which::All, NOW).unwrap();
        assert_eq!(ids, ["c1", "c2", "c5"]);
        assert_eq!(cancelled, 1, "only the pending job is cancelled");
        let events: Vec<_> =
            commit.events.iter().map(|e| (e.sequence, e.creator.as_str(), &e.event)).collect();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[1],
            (3, "admin", &Event::PasskeyCodeRevoked { id: "c2".into(), reason: REVOKED_ON_REQUEST.into() })
        );
        let revoked: Vec<_> = commit
            .changes
            .iter()
            .filter_map(|ch| if let Change::Code(c) = ch { Some((c.id.as_str(), c.state)) } else { None })
            .collect();
        assert_eq!(
            revoked,
            [("c1", CodeState::Revoked), ("c2", CodeState::Revoked), ("c5", CodeState::Revoked)]
        );
        let [update] = commit.outbox_updates.as_slice() else { panic!("one job update") };
        assert_eq!((update.job.id.as_str(), update.state), ("j2", JobState::Abandoned));
        assert!(update.job.sealed_code.is_none(), "the sealed code is erased");
        assert_eq!(update.last_error.as_deref(), Some(JOB_CANCELLED));
    }

    #[test]
    fn one_code_by_id_and_unknown_ids() {
        let codes =
            || vec![code("c1", "u", CodeState::Active, None), code("c2", "u", CodeState::Active, None)];
        let (ids, _, commit) = decide(codes(), &[], Which::Only("c2"), NOW).unwrap();
        assert_eq!((ids, commit.events.len()), (vec!["c2".to_string()], 1));
        let e = decide(codes(), &[], Which::Only("c9"), NOW).err().map(|e| (e.kind, e.id));
        assert_eq!(e, Some((Kind::NotFound, "CODE-rv404")));
        // Another user's code is not this user's: not found.
        let theirs = vec![code("c1", "v", CodeState::Active, None)];
        assert!(decide(theirs.clone(), &[], Which::Only("c1"), NOW).is_err());
        assert!(decide(theirs, &[], Which::All, NOW).unwrap().0.is_empty());
    }

    #[test]
    fn nothing_outstanding_revokes_nothing() {
        let later = NOW.plus(Duration::from_secs(3600));
        let (ids, n, commit) =
            decide(vec![code("c1", "u", CodeState::Active, None)], &[], Which::All, later).unwrap();
        assert!(ids.is_empty() && n == 0 && commit.events.is_empty(), "an expired code is not outstanding");
        let consumed = vec![code("c1", "u", CodeState::Revoked, None)];
        let (ids, _, _) = decide(consumed, &[], Which::Only("c1"), NOW).unwrap();
        assert!(ids.is_empty(), "revoking a revoked code again succeeds and revokes nothing");
    }
}
