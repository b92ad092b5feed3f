//! The delivery use cases, driven by the outbox worker (`passlink-delivery`): lease due jobs,
//! turn a job into a message (unseal the code, render the link), and record the outcome.
//!
//! Rules (DESIGN 2.3, 2.6): a code becomes usable when its delivery succeeded (`code.sent`,
//! written in the same transaction that marks the job delivered and erases its sealed code); an
//! expired code is not sent; a delivery given up records `code.send.failed` with the reason and
//! erases the sealed code too. Retries back off exponentially with jitter ([`backoff`]), bounded
//! by [`DeliveryPolicy::max_attempts`] and [`DeliveryPolicy::max_age`].

use std::time::Duration;

use super::{App, UserTx};
use crate::code::CodeState;
use crate::error::{Error, Kind, Result};
use crate::event::{Event, OutboxJob};
use crate::ports::Entropy;
use crate::secret::Secret;
use crate::store::{JobState, OutboxUpdate};
use crate::template::{self, LinkData};
use crate::time::Timestamp;
use crate::view::{Change, UserState};

/// How the worker retries. ZITADEL's notification worker has the same knobs.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// How long a leased job belongs to its worker; a job of a worker that died is taken over
    /// after this.
    pub lease: Duration,
    /// Attempts before a job is given up.
    pub max_attempts: u32,
    /// Age (from the link request) after which a job is given up.
    pub max_age: Duration,
    /// Delay after the first failure; doubles per failure up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            lease: Duration::from_secs(60),
            max_attempts: 20,
            max_age: Duration::from_secs(3600),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// The delay before attempt `failures + 1`: `min · 2^(failures-1)`, capped at `max`, times a
/// random factor in [0.5, 1.0) ("equal jitter"), so workers that failed together do not retry in
/// lockstep.
pub fn backoff(policy: &DeliveryPolicy, failures: u32, entropy: &dyn Entropy) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let base = policy.min_backoff.saturating_mul(1u32 << exp).min(policy.max_backoff);
    let mut b = [0u8; 2];
    entropy.fill(&mut b);
    let r = f64::from(u16::from_le_bytes(b)) / 65536.0; // [0, 1)
    base.mul_f64(0.5 + r / 2.0)
}

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

/// The hosted registration page, the default link (DESIGN section 4).
pub fn default_link_template(external_url: &str) -> String {
    format!(
        "{}/ui/passkey/register?userID={{{{.UserID}}}}&orgID={{{{.OrgID}}}}&codeID={{{{.CodeID}}}}&code={{{{.Code}}}}",
        external_url.trim_end_matches('/')
    )
}

impl App {
    /// Is a delivery provider configured? Without one, `sendLink` is refused at request time.
    pub fn delivery_enabled(&self) -> bool {
        self.cfg.delivery_enabled
    }

    pub fn delivery_policy(&self) -> &DeliveryPolicy {
        &self.cfg.delivery
    }

    /// The hosted page's link for these values (what the default email carries), for the QR
    /// code of the page. Values must be plain ids and codes (letters, digits, `-`, `_`).
    pub fn hosted_link(&self, user_id: &str, org_id: &str, code_id: &str, code: &Secret) -> Result<String> {
        for (field, v) in
            [("userID", user_id), ("orgID", org_id), ("codeID", code_id), ("code", code.expose())]
        {
            let plain = v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if v.is_empty() || v.len() > 200 || !plain {
                return Err(Error::new(Kind::InvalidArgument, "UI-qr1nv", "Errors.Invalid.Argument")
                    .with_cause(format!("{field} is not a plain id")));
            }
        }
        template::render(
            &default_link_template(&self.cfg.issuer),
            &LinkData { user_id, org_id, code_id, code: code.expose() },
        )
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
        let (Some(code), Some(user)) = (code, user) else {
            self.abandon(job, "the user or the code no longer exists").await?;
            return Ok(Prepared::Finished("user or code gone"));
        };
        match code.state {
            CodeState::Requested => {}
            CodeState::Active | CodeState::Consumed | CodeState::Locked => {
                // Sent already (the worker died between sending and recording, or another
                // worker finished it): nothing more to do.
                self.finish(job, JobState::Delivered, None).await?;
                return Ok(Prepared::Finished("already sent"));
            }
            CodeState::Revoked => {
                self.abandon(job, "the code was revoked").await?;
                return Ok(Prepared::Finished("code revoked"));
            }
        }
        if now >= job.not_after || now >= code.expires_at {
            self.abandon(job, "the code expired before it could be delivered").await?;
            return Ok(Prepared::Finished("code expired"));
        }
        let human = match (&user.kind, user.state) {
            (crate::view::UserKind::Human(h), UserState::Active) if !h.email.is_empty() => h,
            _ => {
                self.abandon(job, "the user is not an active human with an email address").await?;
                return Ok(Prepared::Finished("user cannot receive email"));
            }
        };
        let Some(sealed) = &job.sealed_code else {
            self.abandon(job, "the job holds no code").await?;
            return Ok(Prepared::Finished("no code"));
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
            expires_at: code.expires_at,
        })))
    }

    /// The message was accepted by the provider: `code.sent` (the code becomes usable), the job
    /// delivered and its sealed code erased, in one transaction.
    pub async fn delivery_succeeded(&self, job: &OutboxJob) -> Result<()> {
        let _lock = self.lock_aggregate(&job.user_id).await;
        retry!(self, async {
            let now = self.now();
            let code = self.deps.store.code(&job.code_id).await?;
            let user = self.deps.store.user(&job.user_id).await?;
            let mut commit = match (code, user) {
                (Some(mut code), Some(user)) if code.state == CodeState::Requested => {
                    let mut tx = UserTx::new(now, "", &user);
                    let ev = Event::PasskeyCodeSent { id: job.code_id.clone() };
                    tx.record(ev.clone());
                    code.apply(&ev);
                    tx.tx.commit.changes.push(Change::Code(code));
                    tx.into_commit()
                }
                _ => crate::store::Commit::default(),
            };
            commit.outbox_updates.push(final_update(job, JobState::Delivered, now, None));
            self.deps.store.commit(commit).await
        })
    }

    /// An attempt failed: retry later with backoff, or give up (`permanent`, too many attempts,
    /// too old, or the code expires before the next attempt).
    pub async fn delivery_failed(&self, job: &OutboxJob, reason: &str, permanent: bool) -> Result<Failed> {
        let now = self.now();
        let policy = &self.cfg.delivery;
        let attempts = job.attempts.saturating_add(1);
        let next = now.plus(backoff(policy, attempts, &*self.deps.entropy));
        let too_old = next >= job.created_at.plus(policy.max_age);
        if permanent || attempts >= policy.max_attempts || too_old || next >= job.not_after {
            let why = if permanent {
                format!("permanent failure: {reason}")
            } else if attempts >= policy.max_attempts {
                format!("gave up after {attempts} attempts: {reason}")
            } else {
                format!("gave up, the link would be too old to send: {reason}")
            };
            let mut j = job.clone();
            j.attempts = attempts;
            self.abandon(&j, &why).await?;
            return Ok(Failed::Abandoned);
        }
        let mut j = job.clone();
        j.attempts = attempts;
        let update = OutboxUpdate {
            job: j,
            state: JobState::Pending,
            next_attempt_at: next,
            last_error: Some(reason.to_string()),
        };
        let commit = crate::store::Commit { outbox_updates: vec![update], ..Default::default() };
        self.deps.store.commit(commit).await?;
        Ok(Failed::RetryAt(next))
    }

    /// Give a job up: `code.send.failed` with the reason, job abandoned, sealed code erased.
    async fn abandon(&self, job: &OutboxJob, reason: &str) -> Result<()> {
        let _lock = self.lock_aggregate(&job.user_id).await;
        retry!(self, async {
            let now = self.now();
            let user = self.deps.store.user(&job.user_id).await?;
            let mut commit = match user {
                Some(user) if user.state != UserState::Deleted => {
                    let mut tx = UserTx::new(now, "", &user);
                    tx.record(Event::PasskeyCodeSendFailed {
                        id: job.code_id.clone(),
                        reason: reason.to_string(),
                    });
                    tx.into_commit()
                }
                _ => crate::store::Commit::default(),
            };
            commit.outbox_updates.push(final_update(job, JobState::Abandoned, now, Some(reason)));
            self.deps.store.commit(commit).await
        })
    }

    async fn finish(&self, job: &OutboxJob, state: JobState, reason: Option<&str>) -> Result<()> {
        let commit = crate::store::Commit {
            outbox_updates: vec![final_update(job, state, self.now(), reason)],
            ..Default::default()
        };
        self.deps.store.commit(commit).await
    }
}

/// A final state: the sealed code is erased.
fn final_update(job: &OutboxJob, state: JobState, now: Timestamp, reason: Option<&str>) -> OutboxUpdate {
    let mut j = job.clone();
    j.sealed_code = None;
    OutboxUpdate { job: j, state, next_attempt_at: now, last_error: reason.map(str::to_string) }
}

/// The error a link request gets when no delivery provider is configured (ZITADEL's id).
pub fn no_provider() -> Error {
    Error::new(Kind::FailedPrecondition, "MAIL-83nof", "Errors.Notification.Channels.NotPresent")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SeededEntropy;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = DeliveryPolicy {
            min_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            ..DeliveryPolicy::default()
        };
        let e = SeededEntropy::new(7);
        for failures in 1..40u32 {
            let full = Duration::from_secs(2)
                .saturating_mul(1u32 << (failures - 1).min(30))
                .min(Duration::from_secs(60));
            let d = backoff(&p, failures, &e);
            assert!(
                d >= full / 2 && d < full,
                "failures {failures}: {d:?} not in [{:?}, {full:?})",
                full / 2
            );
        }
        // Jitter: the same failure count gives different delays.
        let ds: std::collections::HashSet<_> = (0..20).map(|_| backoff(&p, 3, &e)).collect();
        assert!(ds.len() > 10);
    }

    #[test]
    fn default_link_is_the_hosted_page() {
        let t = default_link_template("https://id.example.com/");
        let out = template::render(&t, &LinkData { user_id: "u", org_id: "o", code_id: "c", code: "X" });
        assert_eq!(
            out.ok().as_deref(),
            Some("https://id.example.com/ui/passkey/register?userID=u&orgID=o&codeID=c&code=X")
        );
    }
}
