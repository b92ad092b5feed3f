//! The events webhook's use cases, driven by its worker (`passlink-delivery`'s `events`):
//! lease due notifications, record the outcome of a send, run the expiry check of a code.
//!
//! Rules ([`crate::notify`]): at least once; a failure is retried with exponential backoff and
//! jitter ([`backoff`]) until [`events_policy`]'s `max_age` from the event (default 3 days),
//! then given up (abandoned, with the reason); a user's next notification is leased only when
//! the previous one was delivered or given up (the store's claim).

use std::time::Duration;

use super::App;
use super::config::{DeliveryPolicy, backoff};
use super::tx::Tx;
use crate::code::{CodeState, CodeView};
use crate::error::Result;
use crate::event::Event;
use crate::notify::{Notification, NotificationUpdate};
use crate::store::{Commit, JobState};
use crate::time::Timestamp;
use crate::view::{UserState, UserView};

/// Age (from the event) after which a notification is given up, in seconds: 3 days.
pub const DEFAULT_EVENTS_MAX_AGE_SECS: u64 = 3 * 24 * 3600;
/// Lease of a notification, in seconds (a send is bounded by the worker's timeout, well under).
pub const DEFAULT_EVENTS_LEASE_SECS: u64 = 60;

/// The events webhook's retry policy (the delivery policy's knobs; `max_attempts` unbounded: the
/// bound is the age).
pub fn events_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        lease: Duration::from_secs(DEFAULT_EVENTS_LEASE_SECS),
        max_attempts: u32::MAX,
        max_age: Duration::from_secs(DEFAULT_EVENTS_MAX_AGE_SECS),
        ..DeliveryPolicy::default()
    }
}

fn update(
    n: &Notification,
    state: JobState,
    attempts: u32,
    at: Timestamp,
    err: Option<&str>,
) -> NotificationUpdate {
    NotificationUpdate {
        id: n.id.clone(),
        state,
        attempts,
        next_attempt_at: at,
        last_error: err.map(str::to_string),
    }
}

/// A failed send: retry after `delay`, or give up when the next attempt would be too late.
fn decide_failed(
    n: &Notification,
    policy: &DeliveryPolicy,
    reason: &str,
    now: Timestamp,
    delay: Duration,
) -> NotificationUpdate {
    let attempts = n.attempts.saturating_add(1);
    let next = now.plus(delay);
    if attempts >= policy.max_attempts || next >= n.created_at.plus(policy.max_age) {
        let why = format!("gave up after {attempts} attempts: {reason}");
        return update(n, JobState::Abandoned, attempts, now, Some(&why));
    }
    update(n, JobState::Pending, attempts, next, Some(reason))
}

/// The check at a code's expiry: `…code.expired` on the user when the code is still unredeemed
/// (requested, usable or locked) and its user still there; the check finished either way. Run
/// early (another replica's clock), it waits for the expiry.
fn decide_expiry(n: &Notification, code: Option<CodeView>, user: Option<UserView>, now: Timestamp) -> Commit {
    if let Some(code) = code.as_ref().filter(|c| now < c.expires_at) {
        let wait = update(n, JobState::Pending, n.attempts, code.expires_at, None);
        return Commit { notification_updates: vec![wait], ..Default::default() };
    }
    let mut commit = match (code, user) {
        (Some(code), Some(user))
            if user.state != UserState::Deleted
                && now >= code.expires_at
                && matches!(code.state, CodeState::Requested | CodeState::Active | CodeState::Locked) =>
        {
            let mut tx = Tx::on_user(now, "", &user);
            let id = code.id.clone();
            tx.load_code(code);
            tx.record_user(&user.id, Event::PasskeyCodeExpired { id });
            tx.into_commit()
        }
        _ => Commit::default(),
    };
    commit.notification_updates.push(update(n, JobState::Delivered, n.attempts, now, None));
    commit
}

impl App {
    /// Lease due notifications to `owner` until `lease` from now.
    pub async fn claim_notifications(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Notification>> {
        let now = self.now();
        self.deps.store.claim_notifications(owner, now, now.plus(lease), limit).await
    }

    /// The receiver accepted the notification.
    pub async fn notification_delivered(&self, n: &Notification) -> Result<()> {
        let now = self.now();
        let commit = Commit {
            notification_updates: vec![update(n, JobState::Delivered, n.attempts, now, None)],
            ..Default::default()
        };
        self.deps.store.commit(commit).await
    }

    /// Leased notifications given back unsent (the worker is stopping): pending and due at once,
    /// their attempts unchanged, so another replica (or the next start) sends them without
    /// waiting for the lease to run out.
    pub async fn release_notifications(&self, ns: &[Notification]) -> Result<()> {
        if ns.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let notification_updates = ns
            .iter()
            .map(|n| update(n, JobState::Pending, n.attempts, now, Some("released unsent at shutdown")))
            .collect();
        self.deps.store.commit(Commit { notification_updates, ..Default::default() }).await
    }

    /// A send failed: retried later (`Some(at)`) or given up (`None`).
    pub async fn notification_failed(
        &self,
        n: &Notification,
        reason: &str,
        policy: &DeliveryPolicy,
    ) -> Result<Option<Timestamp>> {
        let now = self.now();
        let delay = backoff(policy, n.attempts.saturating_add(1), self.deps.entropy.as_ref());
        let u = decide_failed(n, policy, reason, now, delay);
        let retry = (u.state == JobState::Pending).then_some(u.next_attempt_at);
        self.deps.store.commit(Commit { notification_updates: vec![u], ..Default::default() }).await?;
        Ok(retry)
    }

    /// Run a code's expiry check ([`crate::notify::KIND_CODE_EXPIRY`]); true when the code
    /// expired unredeemed (recorded, and so announced).
    pub async fn check_code_expiry(&self, n: &Notification) -> Result<bool> {
        retry!(self, async {
            let code = self.deps.store.code(&n.payload).await?;
            let user = self.deps.store.user(&n.user_id).await?;
            let commit = decide_expiry(n, code, user, self.now());
            let expired = !commit.events.is_empty();
            self.deps.store.commit(commit).await?;
            Ok(expired)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testing::{NOW, human};
    use crate::notify::KIND_CODE_EXPIRY;

    fn note() -> Notification {
        Notification {
            id: "code-expiry-c1".into(),
            kind: KIND_CODE_EXPIRY.into(),
            user_id: "u".into(),
            org_id: "A".into(),
            seq: 0,
            created_at: NOW,
            due_at: NOW,
            payload: "c1".into(),
            attempts: 0,
        }
    }

    fn code(state: CodeState, expires_at: Timestamp) -> CodeView {
        CodeView {
            id: "c1".into(),
            user_id: "u".into(),
            org_id: "A".into(),
            code_hash: "ab".into(),
            state,
            failed_checks: 0,
            created_at: NOW,
            expires_at,
            url_template: None,
            returned: true,
            job_id: None,
        }
    }

    #[test]
    fn failures_back_off_until_the_age_bound() {
        let p = events_policy();
        let u = decide_failed(&note(), &p, "503", NOW, Duration::from_secs(2));
        assert_eq!(
            (u.state, u.attempts, u.next_attempt_at),
            (JobState::Pending, 1, NOW.plus(Duration::from_secs(2)))
        );
        let late = NOW.plus(p.max_age);
        let u = decide_failed(&note(), &p, "503", late, Duration::from_secs(2));
        assert_eq!(u.state, JobState::Abandoned);
        assert_eq!(u.last_error.as_deref(), Some("gave up after 1 attempts: 503"));
    }

    #[test]
    fn expiry_check_records_only_unredeemed_expired_codes() {
        let after = NOW.plus(Duration::from_secs(1));
        let c = decide_expiry(&note(), Some(code(CodeState::Active, NOW)), Some(human("u", "A")), after);
        assert_eq!(c.events.len(), 1);
        assert_eq!(c.events[0].event, Event::PasskeyCodeExpired { id: "c1".into() });
        assert_eq!(c.notification_updates[0].state, JobState::Delivered);
        for state in [CodeState::Consumed, CodeState::Revoked] {
            let c = decide_expiry(&note(), Some(code(state, NOW)), Some(human("u", "A")), after);
            assert!(c.events.is_empty(), "{state:?}");
            assert_eq!(c.notification_updates.len(), 1);
        }
        // Not expired yet (a clock behind the scheduler's): nothing recorded, checked again then.
        let early = decide_expiry(&note(), Some(code(CodeState::Active, after)), Some(human("u", "A")), NOW);
        assert!(early.events.is_empty());
        assert_eq!(
            (early.notification_updates[0].state, early.notification_updates[0].next_attempt_at),
            (JobState::Pending, after)
        );
        assert!(decide_expiry(&note(), None, None, after).events.is_empty());
    }
}
