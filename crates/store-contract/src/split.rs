//! Two stores on one location used as one: what a load balancer in front of two replicas does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use passlink_core::code::CodeView;
use passlink_core::error::Result;
use passlink_core::event::{AggregateKind, OutboxJob, Recorded};
use passlink_core::query::UserNarrowing;
use passlink_core::store::{Commit, JobStatus, OutboxCounts, Store};
use passlink_core::time::Timestamp;
use passlink_core::view::{InstanceView, Membership, OrgView, PatView, UserView};

/// A store whose calls alternate between two stores on the same data: commits land on one,
/// the next read comes from the other.
pub struct Split {
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
    flip: AtomicUsize,
}

impl Split {
    pub fn new(a: Arc<dyn Store>, b: Arc<dyn Store>) -> Split {
        Split { a, b, flip: AtomicUsize::new(0) }
    }

    fn pick(&self) -> &dyn Store {
        if self.flip.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
            self.a.as_ref()
        } else {
            self.b.as_ref()
        }
    }
}

#[async_trait::async_trait]
impl Store for Split {
    async fn commit(&self, commit: Commit) -> Result<()> {
        self.pick().commit(commit).await
    }
    async fn instance(&self) -> Result<Option<InstanceView>> {
        self.pick().instance().await
    }
    async fn org(&self, id: &str) -> Result<Option<OrgView>> {
        self.pick().org(id).await
    }
    async fn user(&self, id: &str) -> Result<Option<UserView>> {
        self.pick().user(id).await
    }
    async fn user_by_username(&self, username: &str) -> Result<Option<UserView>> {
        self.pick().user_by_username(username).await
    }
    async fn memberships_of(&self, user_id: &str) -> Result<Vec<Membership>> {
        self.pick().memberships_of(user_id).await
    }
    async fn users_matching(&self, narrowing: &UserNarrowing) -> Result<Vec<UserView>> {
        self.pick().users_matching(narrowing).await
    }
    async fn orgs(&self) -> Result<Vec<OrgView>> {
        self.pick().orgs().await
    }
    async fn pat_by_hash(&self, hash: &[u8; 32]) -> Result<Option<PatView>> {
        self.pick().pat_by_hash(hash).await
    }
    async fn code(&self, id: &str) -> Result<Option<CodeView>> {
        self.pick().code(id).await
    }
    async fn session(&self, id: &str) -> Result<Option<passlink_core::session::SessionView>> {
        self.pick().session(id).await
    }
    async fn sessions(
        &self,
        filter: &passlink_core::session::SessionFilter,
    ) -> Result<Vec<passlink_core::session::SessionView>> {
        self.pick().sessions(filter).await
    }
    async fn credential_owner(&self, cred_id: &str) -> Result<Option<String>> {
        self.pick().credential_owner(cred_id).await
    }
    async fn passkeys_of(&self, user_id: &str) -> Result<Vec<passlink_core::passkey::PasskeyView>> {
        self.pick().passkeys_of(user_id).await
    }
    async fn events_of(&self, kind: AggregateKind, id: &str) -> Result<Vec<Recorded>> {
        self.pick().events_of(kind, id).await
    }
    async fn events_of_kind(&self, kind: AggregateKind) -> Result<Vec<Recorded>> {
        self.pick().events_of_kind(kind).await
    }
    async fn pending_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>> {
        self.pick().pending_jobs(limit).await
    }
    async fn claim_jobs(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxJob>> {
        self.pick().claim_jobs(owner, now, lease_until, limit).await
    }
    async fn outbox_counts(&self, now: Timestamp) -> Result<OutboxCounts> {
        self.pick().outbox_counts(now).await
    }
    async fn job(&self, id: &str) -> Result<Option<JobStatus>> {
        self.pick().job(id).await
    }
    async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<passlink_core::notify::Notification>> {
        self.pick().claim_notifications(owner, now, lease_until, limit).await
    }
    async fn notification(&self, id: &str) -> Result<Option<passlink_core::notify::NotificationStatus>> {
        self.pick().notification(id).await
    }
    async fn events_depth(&self) -> Result<u64> {
        self.pick().events_depth().await
    }
    async fn ping(&self) -> Result<()> {
        self.pick().ping().await
    }
}
