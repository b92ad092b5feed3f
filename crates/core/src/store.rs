//! The storage port. Adapters (SQLite, PostgreSQL) implement [`Store`]; the contract is:
//!
//! - [`Store::commit`] is atomic and durable when it returns `Ok`: every event, unique claim,
//!   read-model change and outbox job of the [`Commit`] is written, or none is.
//! - An event whose (aggregate, sequence) already exists fails the whole commit with
//!   [`Kind::Aborted`](crate::error::Kind) (optimistic concurrency; the caller reloads and retries).
//! - A unique claim that is already taken fails the whole commit with the claim's own error.
//! - Reads see every commit that returned before the read started (read-your-writes).
//! - A store that cannot be reached answers [`Kind::Unavailable`](crate::error::Kind).

use async_trait::async_trait;

use crate::code::CodeView;
use crate::error::{Error, Result};
use crate::event::{AggregateKind, OutboxJob, Recorded};
use crate::notify::{Notification, NotificationStatus, NotificationUpdate};
use crate::query::UserNarrowing;
use crate::session::{SessionFilter, SessionView};
use crate::time::Timestamp;
use crate::view::{Change, InstanceView, Membership, OrgView, PatView, UserView};

/// A value that must be unique within its kind (a username, an org name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueClaim {
    pub kind: &'static str,
    pub value: String,
    /// The error to answer when the value is taken.
    pub taken: Error,
}

/// Everything one command writes, in one transaction.
#[derive(Debug, Default, Clone)]
pub struct Commit {
    pub events: Vec<Recorded>,
    pub claims: Vec<UniqueClaim>,
    pub changes: Vec<Change>,
    pub outbox: Vec<OutboxJob>,
    /// Unique values given back (kind, value), e.g. the username of a removed user.
    pub released: Vec<(&'static str, String)>,
    /// Outcomes of delivery attempts: written with the events they cause (`code.sent`).
    pub outbox_updates: Vec<OutboxUpdate>,
    /// Notification jobs of the events webhook ([`crate::notify`]), new.
    pub notifications: Vec<Notification>,
    /// Outcomes of notification attempts (and finished expiry checks).
    pub notification_updates: Vec<NotificationUpdate>,
}

/// Where an outbox job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for (another) attempt.
    Pending,
    /// Delivered; the sealed code is erased.
    Delivered,
    /// Given up (expired, too many attempts, permanent failure); the sealed code is erased.
    Abandoned,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Delivered => "delivered",
            JobState::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> JobState {
        match s {
            "delivered" => JobState::Delivered,
            "abandoned" => JobState::Abandoned,
            _ => JobState::Pending,
        }
    }
}

/// The outcome of one delivery attempt. `job` is the job as it is to be stored: its attempt
/// count, and for the final states no sealed code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxUpdate {
    pub job: OutboxJob,
    pub state: JobState,
    /// For [`JobState::Pending`]: not before this instant.
    pub next_attempt_at: Timestamp,
    /// Why the last attempt failed (no secrets in it).
    pub last_error: Option<String>,
}

/// An outbox job with its bookkeeping, as [`Store::job`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub job: OutboxJob,
    pub state: JobState,
    pub next_attempt_at: Timestamp,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// How many outbox jobs stand where, as [`Store::outbox_counts`] counts them at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting for an attempt (first or retry), no live lease.
    pub pending: u64,
    /// Pending and leased to a worker whose lease has not run out (being sent now).
    pub in_flight: u64,
    /// Given up ([`JobState::Abandoned`]).
    pub failed: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn commit(&self, commit: Commit) -> Result<()>;

    async fn instance(&self) -> Result<Option<InstanceView>>;
    async fn org(&self, id: &str) -> Result<Option<OrgView>>;
    async fn user(&self, id: &str) -> Result<Option<UserView>>;
    /// The user with this username (case-insensitive), if any.
    async fn user_by_username(&self, username: &str) -> Result<Option<UserView>>;
    async fn memberships_of(&self, user_id: &str) -> Result<Vec<Membership>>;
    /// Every user (in any state) the narrowing admits ([`UserNarrowing::admits`]), in no
    /// particular order. The list RPCs filter, sort and page these in the core.
    async fn users_matching(&self, narrowing: &UserNarrowing) -> Result<Vec<UserView>>;
    /// Up to `limit` users (in any state) of organization `org_id` whose id sorts after `after`
    /// (byte order; `""` for the first page), in id order: paging through an organization
    /// (CreateRegistrationLinks). The default filters [`Store::users_matching`]; the database
    /// adapters read the page through their index.
    async fn org_users_after(&self, org_id: &str, after: &str, limit: usize) -> Result<Vec<UserView>> {
        let narrowing = UserNarrowing { org_ids: Some(vec![org_id.to_string()]), ..Default::default() };
        let mut users: Vec<UserView> = self
            .users_matching(&narrowing)
            .await?
            .into_iter()
            .filter(|u| u.org_id == org_id && u.id.as_str() > after)
            .collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users.truncate(limit);
        Ok(users)
    }
    /// Every organization, in no particular order.
    async fn orgs(&self) -> Result<Vec<OrgView>>;
    async fn pat_by_hash(&self, hash: &[u8; 32]) -> Result<Option<PatView>>;
    async fn code(&self, id: &str) -> Result<Option<CodeView>>;
    /// A sign-in session by id (terminated ones too).
    async fn session(&self, id: &str) -> Result<Option<SessionView>>;
    /// Sessions matching `filter` (terminated ones too), oldest first (creation time, then id).
    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionView>>;
    /// The user a passkey credential id (base64url) was last verified for, if any.
    async fn credential_owner(&self, cred_id: &str) -> Result<Option<String>>;
    /// Every passkey of a user (pending, READY and removed), in creation order (creation
    /// time, then id).
    async fn passkeys_of(&self, user_id: &str) -> Result<Vec<crate::passkey::PasskeyView>>;

    /// The events of one aggregate, in sequence order.
    async fn events_of(&self, kind: AggregateKind, id: &str) -> Result<Vec<Recorded>>;
    /// The events of every aggregate of one kind, by aggregate id, then sequence (for the
    /// few, small aggregates listed whole: projects and applications).
    async fn events_of_kind(&self, kind: AggregateKind) -> Result<Vec<Recorded>>;
    /// Outbox jobs not yet finished, oldest first.
    async fn pending_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>>;
    /// How many outbox jobs are not yet finished (the outbox depth, for metrics). The default
    /// counts [`Store::pending_jobs`]; the database adapters count in SQL.
    async fn outbox_depth(&self) -> Result<u64> {
        Ok(self.pending_jobs(usize::MAX).await?.len() as u64)
    }
    /// Lease up to `limit` due jobs to `owner` until `lease_until`: pending jobs whose
    /// `next_attempt_at` has come and that no live lease holds (a lease held by a worker that
    /// died expires). Two workers never lease the same job at the same time.
    async fn claim_jobs(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxJob>>;
    /// One job with its bookkeeping, in any state.
    async fn job(&self, id: &str) -> Result<Option<JobStatus>>;
    /// The outbox by state at `now` (for `passlink status`): pending jobs split by whether a
    /// live lease (`lease_until > now`) holds them, and the abandoned ones. Counted in the
    /// database, not loaded.
    async fn outbox_counts(&self, now: Timestamp) -> Result<OutboxCounts>;

    /// Lease up to `limit` due notifications ([`crate::notify`]) to `owner` until
    /// `lease_until`: pending, `next_attempt_at <= now`, no live lease, and, for
    /// [`crate::notify::KIND_EVENT`], no pending event notification of the same user with a
    /// smaller `seq` (a user's events go out in order, one at a time). Oldest due first. Two
    /// workers never lease the same notification at the same time.
    async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Notification>>;
    /// One notification with its bookkeeping, in any state.
    async fn notification(&self, id: &str) -> Result<Option<NotificationStatus>>;
    /// How many event notifications ([`crate::notify::KIND_EVENT`]) are not yet finished: the
    /// events webhook's backlog (for metrics). Scheduled expiry checks are not counted.
    async fn events_depth(&self) -> Result<u64>;

    /// Is the store reachable? (readiness)
    async fn ping(&self) -> Result<()>;
}
