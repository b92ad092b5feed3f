//! Enrollment events for the application (the events webhook, issue 16): which recorded events
//! the application hears of, and the notification jobs that carry them.
//!
//! A notification is written in the SAME commit as the event that causes it
//! ([`NotifyingStore`] adds them to every commit when the events webhook is configured), so a
//! crash loses none. Its id is stable (`evt-<userId>-<sequence>`: the user aggregate and the
//! sequence of the causing event), so a redelivery repeats it. Notifications of one user are
//! ordered by that sequence: a store leases a user's notification only when no older one of the
//! same user is still pending ([`crate::store::Store::claim_notifications`]).
//!
//! Types (`type` of the JSON body; `data` fields):
//! - `passkey.registered` (`user.human.passwordless.token.verified`): passkeyId, name, aaguid;
//! - `passkey.removed` (`…token.removed`): passkeyId;
//! - `registration_code.expired` (`…initialization.code.expired`): codeId;
//! - `link.delivery_failed` (`…initialization.code.send.failed`): codeId, reason;
//! - `session.passkey_checked` (`…token.check.succeeded`): sessionId, passkeyId.
//!
//! `registration_code.expired`: a code request also schedules a [`KIND_CODE_EXPIRY`] job due at
//! the code's expiry. It is not ordered with the user's events (it only looks); when it runs and
//! finds the code neither redeemed nor revoked, it records `…code.expired` on the user (and so,
//! here, the ordered `registration_code.expired` notification) and finishes itself, all in one
//! commit (`App::check_code_expiry`).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::code::CodeView;
use crate::error::Result;
use crate::event::{AggregateKind, Event, OutboxJob, Recorded};
use crate::query::UserNarrowing;
use crate::session::{SessionFilter, SessionView};
use crate::store::{Commit, JobState, JobStatus, OutboxCounts, Store};
use crate::time::Timestamp;
use crate::view::{InstanceView, Membership, OrgView, PatView, UserView};

/// A notification sent to the events webhook (ordered per user).
pub const KIND_EVENT: &str = "event";
/// A check at a code's expiry (not sent; not ordered).
pub const KIND_CODE_EXPIRY: &str = "code.expiry";

/// One job of the notification outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The stable event id (for [`KIND_CODE_EXPIRY`]: `code-expiry-<codeId>`).
    pub id: String,
    /// [`KIND_EVENT`] or [`KIND_CODE_EXPIRY`].
    pub kind: String,
    pub user_id: String,
    pub org_id: String,
    /// The order within the user: the user aggregate's sequence of the causing event (0 for a
    /// check, which is not ordered).
    pub seq: u64,
    pub created_at: Timestamp,
    /// Not before this instant (the first attempt; a check: the code's expiry).
    pub due_at: Timestamp,
    /// [`KIND_EVENT`]: the JSON body, exactly as sent (every redelivery sends the same bytes);
    /// [`KIND_CODE_EXPIRY`]: the code id.
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// The outcome of one attempt, written in a [`Commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationUpdate {
    pub id: String,
    pub state: JobState,
    pub attempts: u32,
    /// For [`JobState::Pending`]: not before this instant.
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
}

/// A notification with its bookkeeping, as [`Store::notification`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationStatus {
    pub notification: Notification,
    pub state: JobState,
    pub next_attempt_at: Timestamp,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// The stable id of the notification of a user's event.
pub fn event_id(user_id: &str, sequence: u64) -> String {
    format!("evt-{user_id}-{sequence}")
}

/// The application's name of an event and its `data`, for the events it hears of.
fn describe(event: &Event) -> Option<(&'static str, serde_json::Value)> {
    use serde_json::json;
    Some(match event {
        Event::PasskeyVerified { id, name, aaguid, .. } => {
            ("passkey.registered", json!({"passkeyId": id, "name": name, "aaguid": aaguid}))
        }
        Event::PasskeyRemoved { id } => ("passkey.removed", json!({"passkeyId": id})),
        Event::PasskeyCodeExpired { id } => ("registration_code.expired", json!({"codeId": id})),
        Event::PasskeyCodeSendFailed { id, reason } => {
            ("link.delivery_failed", json!({"codeId": id, "reason": reason}))
        }
        Event::PasskeyCheckSucceeded { id, session_id, .. } => {
            ("session.passkey_checked", json!({"sessionId": session_id, "passkeyId": id}))
        }
        _ => return None,
    })
}

/// The notifications a commit's events call for (pure).
pub fn notifications_for(events: &[Recorded]) -> Vec<Notification> {
    let mut out = Vec::new();
    for r in events.iter().filter(|r| r.aggregate_kind == AggregateKind::User) {
        if let Event::PasskeyCodeRequested(c) = &r.event {
            out.push(Notification {
                id: format!("code-expiry-{}", c.id),
                kind: KIND_CODE_EXPIRY.to_string(),
                user_id: r.aggregate_id.clone(),
                org_id: r.resource_owner.clone(),
                seq: 0,
                created_at: r.created_at,
                due_at: r.created_at.plus(std::time::Duration::from_secs(c.expiry_secs)),
                payload: c.id.clone(),
                attempts: 0,
            });
            continue;
        }
        let Some((kind, data)) = describe(&r.event) else { continue };
        let id = event_id(&r.aggregate_id, r.sequence);
        let body = serde_json::json!({
            "id": id,
            "type": kind,
            "createdAt": r.created_at.to_rfc3339(),
            "userId": r.aggregate_id,
            "orgId": r.resource_owner,
            "data": data,
        });
        out.push(Notification {
            id,
            kind: KIND_EVENT.to_string(),
            user_id: r.aggregate_id.clone(),
            org_id: r.resource_owner.clone(),
            seq: r.sequence,
            created_at: r.created_at,
            due_at: r.created_at,
            payload: body.to_string(),
            attempts: 0,
        });
    }
    out
}

/// A store that adds the notifications of every commit's events to the commit itself (the
/// events webhook is configured); everything else goes straight to the inner store.
pub struct NotifyingStore {
    inner: Arc<dyn Store>,
}

impl NotifyingStore {
    pub fn new(inner: Arc<dyn Store>) -> NotifyingStore {
        NotifyingStore { inner }
    }
}

#[async_trait]
impl Store for NotifyingStore {
    async fn commit(&self, mut commit: Commit) -> Result<()> {
        let mut added = notifications_for(&commit.events);
        commit.notifications.append(&mut added);
        self.inner.commit(commit).await
    }
    async fn instance(&self) -> Result<Option<InstanceView>> {
        self.inner.instance().await
    }
    async fn org(&self, id: &str) -> Result<Option<OrgView>> {
        self.inner.org(id).await
    }
    async fn user(&self, id: &str) -> Result<Option<UserView>> {
        self.inner.user(id).await
    }
    async fn user_by_username(&self, username: &str) -> Result<Option<UserView>> {
        self.inner.user_by_username(username).await
    }
    async fn memberships_of(&self, user_id: &str) -> Result<Vec<Membership>> {
        self.inner.memberships_of(user_id).await
    }
    async fn users_matching(&self, narrowing: &UserNarrowing) -> Result<Vec<UserView>> {
        self.inner.users_matching(narrowing).await
    }
    async fn orgs(&self) -> Result<Vec<OrgView>> {
        self.inner.orgs().await
    }
    async fn pat_by_hash(&self, hash: &[u8; 32]) -> Result<Option<PatView>> {
        self.inner.pat_by_hash(hash).await
    }
    async fn code(&self, id: &str) -> Result<Option<CodeView>> {
        self.inner.code(id).await
    }
    async fn session(&self, id: &str) -> Result<Option<SessionView>> {
        self.inner.session(id).await
    }
    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionView>> {
        self.inner.sessions(filter).await
    }
    async fn credential_owner(&self, cred_id: &str) -> Result<Option<String>> {
        self.inner.credential_owner(cred_id).await
    }
    async fn passkeys_of(&self, user_id: &str) -> Result<Vec<crate::passkey::PasskeyView>> {
        self.inner.passkeys_of(user_id).await
    }
    async fn events_of(&self, kind: AggregateKind, id: &str) -> Result<Vec<Recorded>> {
        self.inner.events_of(kind, id).await
    }
    async fn events_of_kind(&self, kind: AggregateKind) -> Result<Vec<Recorded>> {
        self.inner.events_of_kind(kind).await
    }
    async fn pending_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>> {
        self.inner.pending_jobs(limit).await
    }
    async fn outbox_depth(&self) -> Result<u64> {
        self.inner.outbox_depth().await
    }
    async fn claim_jobs(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxJob>> {
        self.inner.claim_jobs(owner, now, lease_until, limit).await
    }
    async fn job(&self, id: &str) -> Result<Option<JobStatus>> {
        self.inner.job(id).await
    }
    async fn outbox_counts(&self, now: Timestamp) -> Result<OutboxCounts> {
        self.inner.outbox_counts(now).await
    }
    async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Notification>> {
        self.inner.claim_notifications(owner, now, lease_until, limit).await
    }
    async fn notification(&self, id: &str) -> Result<Option<NotificationStatus>> {
        self.inner.notification(id).await
    }
    async fn events_depth(&self) -> Result<u64> {
        self.inner.events_depth().await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::CodeRequested;

    fn rec(seq: u64, event: Event) -> Recorded {
        Recorded {
            aggregate_kind: AggregateKind::User,
            aggregate_id: "u1".into(),
            sequence: seq,
            created_at: Timestamp(1_700_000_000_000_000_000),
            resource_owner: "o1".into(),
            creator: "".into(),
            event,
        }
    }

    #[test]
    fn verified_passkey_becomes_passkey_registered_with_a_stable_id() {
        let ev = Event::PasskeyVerified {
            id: "p1".into(),
            name: "Key".into(),
            cred_id: "c".into(),
            credential: "{}".into(),
            backup_eligible: false,
            backup_state: false,
            aaguid: Some("aa".into()),
        };
        let n = notifications_for(&[rec(7, ev.clone())]);
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].id.as_str(), n[0].kind.as_str(), n[0].seq), ("evt-u1-7", KIND_EVENT, 7));
        let body: serde_json::Value = serde_json::from_str(&n[0].payload).unwrap();
        assert_eq!(body["type"], "passkey.registered");
        assert_eq!(body["id"], "evt-u1-7");
        assert_eq!((body["userId"].as_str(), body["orgId"].as_str()), (Some("u1"), Some("o1")));
        assert_eq!(body["data"], serde_json::json!({"passkeyId": "p1", "name": "Key", "aaguid": "aa"}));
        assert_eq!(body["createdAt"], "2023-11-14T22:13:20Z");
        // The same event gives the same notification (a redelivery is byte-identical).
        assert_eq!(notifications_for(&[rec(7, ev)]), n);
    }

    #[test]
    fn each_announced_event_has_its_type_and_others_none() {
        let types = |e: Event| -> Vec<String> {
            notifications_for(&[rec(1, e)])
                .iter()
                .map(|n| serde_json::from_str::<serde_json::Value>(&n.payload).unwrap()["type"].to_string())
                .collect()
        };
        assert_eq!(types(Event::PasskeyRemoved { id: "p".into() }), ["\"passkey.removed\""]);
        assert_eq!(types(Event::PasskeyCodeExpired { id: "c".into() }), ["\"registration_code.expired\""]);
        assert_eq!(
            types(Event::PasskeyCodeSendFailed { id: "c".into(), reason: "r".into() }),
            ["\"link.delivery_failed\""]
        );
        let checked =
            Event::PasskeyCheckSucceeded { id: "p".into(), session_id: "s".into(), user_verified: true };
        assert_eq!(types(checked), ["\"session.passkey_checked\""]);
        assert!(types(Event::PasskeyCodeSent { id: "c".into() }).is_empty());
        assert!(types(Event::UserDeactivated {}).is_empty());
    }

    #[test]
    fn a_code_request_schedules_an_unordered_check_at_its_expiry() {
        let req = Event::PasskeyCodeRequested(CodeRequested {
            id: "c9".into(),
            code_hash: "ab".into(),
            expiry_secs: 60,
            url_template: None,
            code_returned: true,
            job_id: None,
            idempotency_key: None,
        });
        let n = notifications_for(&[rec(3, req)]);
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].kind.as_str(), n[0].seq, n[0].payload.as_str()), (KIND_CODE_EXPIRY, 0, "c9"));
        assert_eq!(
            n[0].due_at,
            Timestamp(1_700_000_000_000_000_000).plus(std::time::Duration::from_secs(60))
        );
    }
}
