//! The delivery use cases, driven by the outbox worker (`passlink-delivery`): lease due jobs,
//! turn a job into a message (unseal the code, render the link), and record the outcome.
//!
//! Rules (DESIGN 2.3, 2.6): a code becomes usable when its delivery succeeded (`code.sent`,
//! written in the same transaction that marks the job delivered and erases its sealed code); an
//! expired code is not sent; a delivery given up records `code.send.failed` with the reason and
//! erases the sealed code too. Retries back off exponentially with jitter ([`backoff`]), bounded
//! by [`DeliveryPolicy::max_attempts`] and [`DeliveryPolicy::max_age`].

use std::time::Duration;

use super::App;
use super::config::{DeliveryPolicy, backoff};
use super::links::default_link_template;
use super::tx::Tx;
use crate::code::{CodeState, CodeView};
use crate::error::{Error, Result};
use crate::event::{Event, HumanProfile, OutboxJob};
use crate::secret::Secret;
use crate::store::{Commit, JobState, OutboxUpdate};
use crate::template::{self, LinkData};
use crate::time::Timestamp;
use crate::view::{UserState, UserView};

/// A message ready to send: who gets it, and the link (a secret: it carries the code).
#[derive(Debug, Clone)]
pub struct LinkMessage {
    pub job_id: String,
    pub code_id: String,
    pub user_id: String,
    pub org_id: String,
    /// A stable id derived from the code id: a redelivered message carries the same id.
    pub message_id: String,
    pub to: String,
    pub given_name: String,
    pub family_name: String,
    pub display_name: String,
    pub preferred_language: String,
    pub link: Secret,
    pub expires_at: Timestamp,
}

/// What to do with a leased job.
#[derive(Debug)]
pub enum Prepared {
    Send(Box<LinkMessage>),
    /// Nothing to send; the job was finished (why, for the log).
    Finished(&'static str),
}

/// The outcome of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Retried at the given time.
    RetryAt(Timestamp),
    /// Given up.
    Abandoned,
}

/// What a leased job calls for, decided on the job, its code and its user.
#[derive(Debug, PartialEq)]
enum Next<'a> {
    /// Send it to this human, whose code expires at the given time.
    Send(&'a HumanProfile, Timestamp),
    /// Sent already (the worker died between sending and recording, or another worker finished
    /// it): mark the job delivered.
    AlreadySent,
    /// Give it up: (reason recorded, why for the log).
    Abandon(&'static str, &'static str),
}

fn decide_prepare<'a>(
    job: &OutboxJob,
    code: Option<&CodeView>,
    user: Option<&'a UserView>,
    now: Timestamp,
) -> Next<'a> {
    let (Some(code), Some(user)) = (code, user) else {
        return Next::Abandon("the user or the code no longer exists", "user or code gone");
    };
    match code.state {
        CodeState::Requested => {}
        CodeState::Active | CodeState::Consumed | CodeState::Locked => return Next::AlreadySent,
        CodeState::Revoked => return Next::Abandon("the code was revoked", "code revoked"),
    }
    if now >= job.not_after || now >= code.expires_at {
        return Next::Abandon("the code expired before it could be delivered", "code expired");
    }
    match (&user.kind, user.state) {
        (crate::view::UserKind::Human(h), UserState::Active) if !h.email.is_empty() => {
            if job.sealed_code.is_none() {
                return Next::Abandon("the job holds no code", "no code");
            }
            Next::Send(h, code.expires_at)
        }
        _ => Next::Abandon(
            "the user is not an active human with an email address",
            "user cannot receive email",
        ),
    }
}

/// The provider accepted the message: `code.sent` (folded: the code becomes usable) unless the
/// code moved on, and the job delivered with its sealed code erased.
fn decide_succeeded(
    job: &OutboxJob,
    code: Option<CodeView>,
    user: Option<UserView>,
    now: Timestamp,
) -> Commit {
    let mut commit = match (code, user) {
        (Some(code), Some(user)) if code.state == CodeState::Requested => {
            let mut tx = Tx::on_user(now, "", &user);
            tx.load_code(code);
            tx.record_user(&user.id, Event::PasskeyCodeSent { id: job.code_id.clone() });
            tx.into_commit()
        }
        _ => Commit::default(),
    };
    commit.outbox_updates.push(final_update(job, JobState::Delivered, now, None));
    commit
}

/// A failed attempt: retry after `delay`, or give up (with the reason to record).
fn decide_failed(
    job: &OutboxJob,
    policy: &DeliveryPolicy,
    reason: &str,
    permanent: bool,
    now: Timestamp,
    delay: Duration,
) -> std::result::Result<OutboxUpdate, Box<(OutboxJob, String)>> {
    let attempts = job.attempts.saturating_add(1);
    let next = now.plus(delay);
    let too_old = next >= job.created_at.plus(policy.max_age);
    let mut j = job.clone();
    j.attempts = attempts;
    if permanent || attempts >= policy.max_attempts || too_old || next >= job.not_after {
        let why = if permanent {
            format!("permanent failure: {reason}")
        } else if attempts >= policy.max_attempts {
            format!("gave up after {attempts} attempts: {reason}")
        } else {
            format!("gave up, the link would be too old to send: {reason}")
        };
        return Err(Box::new((j, why)));
    }
    Ok(OutboxUpdate {
        job: j,
        state: JobState::Pending,
        next_attempt_at: next,
        last_error: Some(reason.to_string()),
    })
}

/// Give a job up: `code.send.failed` with the reason (unless the user is gone), the job
/// abandoned, its sealed code erased.
fn decide_abandon(job: &OutboxJob, user: Option<UserView>, reason: &str, now: Timestamp) -> Commit {
    let mut commit = match user {
        Some(user) if user.state != UserState::Deleted => {
            let mut tx = Tx::on_user(now, "", &user);
            let ev = Event::PasskeyCodeSendFailed { id: job.code_id.clone(), reason: reason.to_string() };
            tx.record_user(&user.id, ev);
            tx.into_commit()
        }
        _ => Commit::default(),
    };
    commit.outbox_updates.push(final_update(job, JobState::Abandoned, now, Some(reason)));
    commit
}

impl App {
    /// Is a delivery provider configured? Without one, `sendLink` is refused at request time.
    pub fn delivery_enabled(&self) -> bool {
        self.cfg.delivery_enabled
    }

    pub fn delivery_policy(&self) -> &DeliveryPolicy {
        &self.cfg.delivery
    }

    /// Lease due jobs to `owner` for [`DeliveryPolicy::lease`].
    pub async fn claim_deliveries(&self, owner: &str, limit: usize) -> Result<Vec<OutboxJob>> {
        let now = self.now();
        self.deps.store.claim_jobs(owner, now, now.plus(self.cfg.delivery.lease), limit).await
    }

    /// Turn a leased job into a message, or finish it without sending: the code expired, was
    /// already sent (a redelivery after a crash), or its user is gone.
    pub async fn prepare_delivery(&self, job: &OutboxJob) -> Result<Prepared> {
        let now = self.now();
        let code = self.deps.store.code(&job.code_id).await?;
        let user = self.deps.store.user(&job.user_id).await?;
        let (human, expires_at) = match decide_prepare(job, code.as_ref(), user.as_ref(), now) {
            Next::Send(human, expires_at) => (human, expires_at),
            Next::AlreadySent => {
                let commit = Commit {
                    outbox_updates: vec![final_update(job, JobState::Delivered, self.now(), None)],
                    ..Default::default()
                };
                self.deps.store.commit(commit).await?;
                return Ok(Prepared::Finished("already sent"));
            }
            Next::Abandon(reason, why) => {
                self.abandon(job, reason).await?;
                return Ok(Prepared::Finished(why));
            }
        };
        let Some(sealed) = &job.sealed_code else {
            return Err(Error::internal("the job holds no code"));
        };
        let plain = self.deps.keys.open(sealed, job.id.as_bytes())?;
        let code_value = Secret::new(String::from_utf8(plain).map_err(Error::internal)?);
        let tpl = match &job.url_template {
            Some(t) => t.clone(),
            None => default_link_template(&self.cfg.issuer),
        };
        let link = template::render(
            &tpl,
            &LinkData {
                user_id: &job.user_id,
                org_id: &job.org_id,
                code_id: &job.code_id,
                code: code_value.expose(),
            },
        )?;
        Ok(Prepared::Send(Box::new(LinkMessage {
            job_id: job.id.clone(),
            code_id: job.code_id.clone(),
            user_id: job.user_id.clone(),
            org_id: job.org_id.clone(),
            message_id: format!("passkey-link-{}", job.code_id),
            to: human.email.clone(),
            given_name: human.given_name.clone(),
            family_name: human.family_name.clone(),
            display_name: human.effective_display_name(),
            preferred_language: human.preferred_language.clone(),
            link: Secret::new(link),
            expires_at,
        })))
    }

    /// The message was accepted by the provider: `code.sent` (the code becomes usable), the job
    /// delivered and its sealed code erased, in one transaction.
    pub async fn delivery_succeeded(&self, job: &OutboxJob) -> Result<()> {
        let _lock = self.lock_aggregate(&job.user_id).await;
        retry!(self, async {
            let code = self.deps.store.code(&job.code_id).await?;
            let user = self.deps.store.user(&job.user_id).await?;
            self.deps.store.commit(decide_succeeded(job, code, user, self.now())).await
        })
    }

    /// An attempt failed: retry later with backoff, or give up (`permanent`, too many attempts,
    /// too old, or the code expires before the next attempt).
    pub async fn delivery_failed(&self, job: &OutboxJob, reason: &str, permanent: bool) -> Result<Failed> {
        let policy = &self.cfg.delivery;
        let delay = backoff(policy, job.attempts.saturating_add(1), &*self.deps.entropy);
        match decide_failed(job, policy, reason, permanent, self.now(), delay) {
            Ok(update) => {
                let next = update.next_attempt_at;
                self.deps.store.commit(Commit { outbox_updates: vec![update], ..Default::default() }).await?;
                Ok(Failed::RetryAt(next))
            }
            Err(give_up) => {
                let (job, why) = *give_up;
                self.abandon(&job, &why).await?;
                Ok(Failed::Abandoned)
            }
        }
    }

    /// Give leased jobs back unsent (the worker is stopping): pending again, due at once, without
    /// a lease and without an attempt counted, so another worker (or this server's next start)
    /// takes them now rather than when the lease runs out. A job that reached a final state in
    /// the meantime stays there (the store updates only pending jobs).
    pub async fn release_deliveries(&self, jobs: &[OutboxJob]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let outbox_updates = jobs.iter().map(|j| release_update(j, now)).collect();
        self.deps.store.commit(Commit { outbox_updates, ..Default::default() }).await
    }

    /// Give a job up: `code.send.failed` with the reason, job abandoned, sealed code erased.
    async fn abandon(&self, job: &OutboxJob, reason: &str) -> Result<()> {
        let _lock = self.lock_aggregate(&job.user_id).await;
        retry!(self, async {
            let user = self.deps.store.user(&job.user_id).await?;
            self.deps.store.commit(decide_abandon(job, user, reason, self.now())).await
        })
    }
}

/// A leased job given back unsent: pending, due now, its attempts and sealed code unchanged.
fn release_update(job: &OutboxJob, now: Timestamp) -> OutboxUpdate {
    OutboxUpdate {
        job: job.clone(),
        state: JobState::Pending,
        next_attempt_at: now,
        last_error: Some("released unsent at shutdown".to_string()),
    }
}

/// A final state: the sealed code is erased.
fn final_update(job: &OutboxJob, state: JobState, now: Timestamp, reason: Option<&str>) -> OutboxUpdate {
    let mut j = job.clone();
    j.sealed_code = None;
    OutboxUpdate { job: j, state, next_attempt_at: now, last_error: reason.map(str::to_string) }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NOW, human, machine};
    use super::*;
    use crate::view::Change;

    fn job() -> OutboxJob {
        let sealed = crate::secret::Sealed { key_id: "1".into(), nonce: "n".into(), ciphertext: "c".into() };
        OutboxJob {
            id: "j".into(),
            kind: "passkey_registration_link".into(),
            user_id: "u".into(),
            org_id: "A".into(),
            code_id: "c1".into(),
            created_at: NOW,
            not_after: NOW.plus(Duration::from_secs(3600)),
            url_template: None,
            sealed_code: Some(sealed),
            attempts: 0,
        }
    }

    fn code(state: CodeState) -> CodeView {
        let c = crate::event::CodeRequested {
            id: "c1".into(),
            code_hash: "h".into(),
            expiry_secs: 3600,
            url_template: None,
            code_returned: false,
            job_id: None,
            idempotency_key: None,
        };
        let r = crate::event::Recorded {
            aggregate_kind: crate::event::AggregateKind::User,
            aggregate_id: "u".into(),
            sequence: 2,
            created_at: NOW,
            resource_owner: "A".into(),
            creator: String::new(),
            event: Event::PasskeyCodeRequested(c.clone()),
        };
        CodeView { state, ..CodeView::requested(&r, &c) }
    }

    #[test]
    fn what_a_leased_job_calls_for() {
        let u = human("u", "A");
        let requested = code(CodeState::Requested);
        assert!(
            matches!(decide_prepare(&job(), Some(&requested), Some(&u), NOW), Next::Send(h, _) if h.email == "ada@example.com")
        );
        assert_eq!(decide_prepare(&job(), Some(&code(CodeState::Active)), Some(&u), NOW), Next::AlreadySent);
        let later = NOW.plus(Duration::from_secs(3600));
        assert!(matches!(
            decide_prepare(&job(), Some(&requested), Some(&u), later),
            Next::Abandon(_, "code expired")
        ));
        assert!(matches!(decide_prepare(&job(), None, Some(&u), NOW), Next::Abandon(_, "user or code gone")));
        assert!(matches!(
            decide_prepare(&job(), Some(&code(CodeState::Revoked)), Some(&u), NOW),
            Next::Abandon(_, "code revoked")
        ));
        let m = machine("u", "A");
        assert!(matches!(
            decide_prepare(&job(), Some(&requested), Some(&m), NOW),
            Next::Abandon(_, "user cannot receive email")
        ));
    }

    #[test]
    fn success_activates_the_code_and_erases_the_sealed_code() {
        let c = decide_succeeded(&job(), Some(code(CodeState::Requested)), Some(human("u", "A")), NOW);
        assert_eq!(c.events[0].event, Event::PasskeyCodeSent { id: "c1".into() });
        assert!(c.changes.iter().any(|ch| matches!(ch, Change::Code(c) if c.state == CodeState::Active)));
        assert_eq!(c.outbox_updates[0].state, JobState::Delivered);
        assert!(c.outbox_updates[0].job.sealed_code.is_none());
        let again = decide_succeeded(&job(), Some(code(CodeState::Active)), Some(human("u", "A")), NOW);
        assert!(again.events.is_empty() && again.outbox_updates.len() == 1);
    }

    #[test]
    fn failures_retry_then_give_up() {
        let p = DeliveryPolicy::default();
        let d = Duration::from_secs(1);
        let retry = decide_failed(&job(), &p, "timeout", false, NOW, d).unwrap();
        assert_eq!(
            (retry.job.attempts, retry.next_attempt_at, retry.state),
            (1, NOW.plus(d), JobState::Pending)
        );
        let (_, why) = *decide_failed(&job(), &p, "550", true, NOW, d).unwrap_err();
        assert_eq!(why, "permanent failure: 550");
        let last = OutboxJob { attempts: p.max_attempts - 1, ..job() };
        assert_eq!(
            decide_failed(&last, &p, "x", false, NOW, d).unwrap_err().1,
            "gave up after 20 attempts: x"
        );
        let (_, why) = *decide_failed(&job(), &p, "x", false, NOW, Duration::from_secs(3600)).unwrap_err();
        assert!(why.starts_with("gave up, the link would be too old"));
        let c = decide_abandon(&job(), Some(human("u", "A")), "why", NOW);
        assert_eq!(c.events[0].event, Event::PasskeyCodeSendFailed { id: "c1".into(), reason: "why".into() });
        assert_eq!(
            (c.outbox_updates[0].state, c.outbox_updates[0].last_error.as_deref()),
            (JobState::Abandoned, Some("why"))
        );
        assert!(decide_abandon(&job(), None, "why", NOW).events.is_empty());
    }
}
