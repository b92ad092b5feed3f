//! An in-memory [`Store`]: the whole storage contract (`passlink-store-contract`) with no file,
//! no socket and no runtime, for fast tests of the use cases.
//!
//! Layout: one [`State`] (every table as a map) behind one `std` mutex, held only while a call
//! runs (never across an `.await`). [`Store::commit`] checks the whole [`Commit`] first (claims,
//! then event sequences, then new outbox ids, in the order the SQLite adapter meets them) and
//! only then applies it, so a commit is written whole or not at all. [`MemoryStore::reopen`]
//! gives another handle on the same data (a reopened store, or a second replica).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use passlink_core::code::CodeView;
use passlink_core::error::{Error, Result};
use passlink_core::event::{AggregateKind, OutboxJob, Recorded};
use passlink_core::notify::{Notification, NotificationStatus};
use passlink_core::passkey::PasskeyView;
use passlink_core::query::UserNarrowing;
use passlink_core::session::{SessionFilter, SessionView};
use passlink_core::store::{Commit, JobState, JobStatus, OutboxCounts, Store};
use passlink_core::time::Timestamp;
use passlink_core::view::{Change, InstanceView, Membership, OrgView, PatView, UserView};

mod notifications;

/// The in-memory store. Cloning (or [`MemoryStore::reopen`]) shares the data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

/// An outbox row: the job and its bookkeeping.
#[derive(Debug, Clone)]
struct JobRow {
    job: OutboxJob,
    state: JobState,
    /// When the job was written (its order in the pending list); outcomes do not change it.
    created_at: Timestamp,
    next_attempt_at: Timestamp,
    lease_owner: Option<String>,
    lease_until: Option<Timestamp>,
    last_error: Option<String>,
}

#[derive(Default)]
struct State {
    events: HashMap<(AggregateKind, String), BTreeMap<u64, Recorded>>,
    claims: HashSet<(&'static str, String)>,
    /// In the order written; `instance()` answers the first.
    instances: Vec<InstanceView>,
    orgs: HashMap<String, OrgView>,
    users: HashMap<String, UserView>,
    /// Lower-cased username → user ids, in the order written.
    usernames: HashMap<String, Vec<String>>,
    /// (user id, scope key) → membership; ordered so a user's memberships come by scope.
    memberships: BTreeMap<(String, String), Membership>,
    pats: HashMap<[u8; 32], PatView>,
    codes: HashMap<String, CodeView>,
    sessions: HashMap<String, SessionView>,
    /// Passkey credential id → user id.
    credentials: HashMap<String, String>,
    /// Passkeys by user, in creation order.
    passkeys: HashMap<String, Vec<PasskeyView>>,
    outbox: HashMap<String, JobRow>,
    notifications: notifications::Notifications,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    /// A new, empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Another handle on the same data, as if the store were opened again.
    pub fn reopen(&self) -> MemoryStore {
        self.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl State {
    /// Everything that can fail a commit, checked before anything is written.
    fn check(&self, commit: &Commit) -> Result<()> {
        let mut claimed = HashSet::new();
        for c in &commit.claims {
            let key = (c.kind, c.value.clone());
            if self.claims.contains(&key) || !claimed.insert(key) {
                return Err(c.taken.clone());
            }
        }
        let mut appended = HashSet::new();
        for e in &commit.events {
            let key = (e.aggregate_kind, e.aggregate_id.clone());
            let exists = self.events.get(&key).is_some_and(|log| log.contains_key(&e.sequence));
            if exists || !appended.insert((key, e.sequence)) {
                return Err(Error::conflict());
            }
        }
        let mut added = HashSet::new();
        for j in &commit.outbox {
            if self.outbox.contains_key(&j.id) || !added.insert(j.id.as_str()) {
                return Err(Error::internal(format!("outbox job {} exists", j.id)));
            }
        }
        Ok(())
    }

    fn apply(&mut self, commit: Commit) {
        for c in commit.claims {
            self.claims.insert((c.kind, c.value));
        }
        for (kind, value) in commit.released {
            self.claims.remove(&(kind, value));
        }
        for e in commit.events {
            self.events.entry((e.aggregate_kind, e.aggregate_id.clone())).or_default().insert(e.sequence, e);
        }
        for ch in commit.changes {
            self.change(ch);
        }
        for job in commit.outbox {
            let row = JobRow {
                created_at: job.created_at,
                next_attempt_at: job.created_at,
                state: JobState::Pending,
                lease_owner: None,
                lease_until: None,
                last_error: None,
                job,
            };
            self.outbox.insert(row.job.id.clone(), row);
        }
        for n in commit.notifications {
            self.notifications.add(n);
        }
        for u in commit.notification_updates {
            self.notifications.update(u);
        }
        for u in commit.outbox_updates {
            // A job in a final state stays there (a late outcome of a taken-over lease is ignored).
            if let Some(row) = self.outbox.get_mut(&u.job.id).filter(|r| r.state == JobState::Pending) {
                row.state = u.state;
                row.next_attempt_at = u.next_attempt_at;
                row.job = u.job;
                row.last_error = u.last_error;
                row.lease_owner = None;
                row.lease_until = None;
            }
        }
    }

    fn change(&mut self, ch: Change) {
        match ch {
            Change::Instance(v) => match self.instances.iter_mut().find(|i| i.id == v.id) {
                Some(i) => *i = v,
                None => self.instances.push(v),
            },
            Change::Org(v) => {
                self.orgs.insert(v.id.clone(), v);
            }
            Change::User(v) | Change::UserSequence(v) => {
                if !self.users.contains_key(&v.id) {
                    self.usernames.entry(v.username.to_lowercase()).or_default().push(v.id.clone());
                }
                self.users.insert(v.id.clone(), v);
            }
            Change::Membership(m) => {
                let key = (m.user_id.clone(), m.scope.key().to_string());
                match self.memberships.get_mut(&key) {
                    // As the SQL adapters: an existing membership gets the new roles only.
                    Some(existing) => existing.roles = m.roles,
                    None => {
                        self.memberships.insert(key, m);
                    }
                }
            }
            Change::Pat(p) => {
                self.pats.insert(p.token_hash, p);
            }
            Change::Code(c) => {
                self.codes.insert(c.id.clone(), c);
            }
            Change::Session(v) => {
                self.sessions.insert(v.id.clone(), v);
            }
            Change::Credential(c) => {
                self.credentials.insert(c.cred_id, c.user_id);
            }
            Change::Passkey(p) => {
                let list = self.passkeys.entry(p.user_id.clone()).or_default();
                match list.iter_mut().find(|q| q.id == p.id) {
                    Some(q) => *q = p,
                    None => {
                        list.push(p);
                        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                    }
                }
            }
        }
    }

    /// Pending jobs in the order `order` gives, filtered by `due`.
    fn pending_sorted<K: Ord>(
        &self,
        due: impl Fn(&JobRow) -> bool,
        order: impl Fn(&JobRow) -> K,
    ) -> Vec<&JobRow> {
        let mut rows: Vec<&JobRow> =
            self.outbox.values().filter(|r| r.state == JobState::Pending && due(r)).collect();
        rows.sort_by_key(|r| order(r));
        rows
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn commit(&self, commit: Commit) -> Result<()> {
        let mut state = self.lock();
        state.check(&commit)?;
        state.apply(commit);
        Ok(())
    }

    async fn instance(&self) -> Result<Option<InstanceView>> {
        Ok(self.lock().instances.first().cloned())
    }

    async fn org(&self, id: &str) -> Result<Option<OrgView>> {
        Ok(self.lock().orgs.get(id).cloned())
    }

    async fn user(&self, id: &str) -> Result<Option<UserView>> {
        Ok(self.lock().users.get(id).cloned())
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserView>> {
        let state = self.lock();
        let first = state.usernames.get(&username.to_lowercase()).and_then(|ids| ids.first());
        Ok(first.and_then(|id| state.users.get(id)).cloned())
    }

    async fn memberships_of(&self, user_id: &str) -> Result<Vec<Membership>> {
        let state = self.lock();
        let from = (user_id.to_string(), String::new());
        Ok(state
            .memberships
            .range(from..)
            .take_while(|((u, _), _)| u == user_id)
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn users_matching(&self, narrowing: &UserNarrowing) -> Result<Vec<UserView>> {
        Ok(self.lock().users.values().filter(|u| narrowing.admits(u)).cloned().collect())
    }

    async fn orgs(&self) -> Result<Vec<OrgView>> {
        Ok(self.lock().orgs.values().cloned().collect())
    }

    async fn pat_by_hash(&self, hash: &[u8; 32]) -> Result<Option<PatView>> {
        Ok(self.lock().pats.get(hash).cloned())
    }

    async fn code(&self, id: &str) -> Result<Option<CodeView>> {
        Ok(self.lock().codes.get(id).cloned())
    }

    async fn session(&self, id: &str) -> Result<Option<SessionView>> {
        Ok(self.lock().sessions.get(id).cloned())
    }

    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionView>> {
        let state = self.lock();
        let mut rows: Vec<SessionView> =
            state.sessions.values().filter(|s| filter.matches(s)).cloned().collect();
        rows.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(rows)
    }

    async fn credential_owner(&self, cred_id: &str) -> Result<Option<String>> {
        Ok(self.lock().credentials.get(cred_id).cloned())
    }

    async fn passkeys_of(&self, user_id: &str) -> Result<Vec<PasskeyView>> {
        Ok(self.lock().passkeys.get(user_id).cloned().unwrap_or_default())
    }

    async fn events_of(&self, kind: AggregateKind, id: &str) -> Result<Vec<Recorded>> {
        let state = self.lock();
        Ok(state
            .events
            .get(&(kind, id.to_string()))
            .map(|log| log.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn events_of_kind(&self, kind: AggregateKind) -> Result<Vec<Recorded>> {
        let state = self.lock();
        let mut logs: Vec<_> = state.events.iter().filter(|((k, _), _)| *k == kind).collect();
        logs.sort_by(|a, b| a.0.1.cmp(&b.0.1));
        Ok(logs.into_iter().flat_map(|(_, log)| log.values().cloned()).collect())
    }

    async fn pending_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>> {
        let state = self.lock();
        let rows = state.pending_sorted(|_| true, |r| (r.created_at, r.job.id.clone()));
        Ok(rows.into_iter().take(limit).map(|r| r.job.clone()).collect())
    }

    async fn claim_jobs(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxJob>> {
        let mut state = self.lock();
        let due = |r: &JobRow| r.next_attempt_at <= now && r.lease_until.is_none_or(|until| until <= now);
        let ids: Vec<String> = state
            .pending_sorted(due, |r| (r.next_attempt_at, r.created_at, r.job.id.clone()))
            .into_iter()
            .take(limit)
            .map(|r| r.job.id.clone())
            .collect();
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = state.outbox.get_mut(&id) {
                row.lease_owner = Some(owner.to_string());
                row.lease_until = Some(lease_until);
                jobs.push(row.job.clone());
            }
        }
        Ok(jobs)
    }

    async fn outbox_counts(&self, now: Timestamp) -> Result<OutboxCounts> {
        let state = self.lock();
        let mut counts = OutboxCounts::default();
        for r in state.outbox.values() {
            match r.state {
                JobState::Pending if r.lease_until.is_some_and(|until| until > now) => counts.in_flight += 1,
                JobState::Pending => counts.pending += 1,
                JobState::Abandoned => counts.failed += 1,
                JobState::Delivered => {}
            }
        }
        Ok(counts)
    }

    async fn job(&self, id: &str) -> Result<Option<JobStatus>> {
        Ok(self.lock().outbox.get(id).map(|r| JobStatus {
            job: r.job.clone(),
            state: r.state,
            next_attempt_at: r.next_attempt_at,
            lease_owner: r.lease_owner.clone(),
            lease_until: r.lease_until,
            last_error: r.last_error.clone(),
        }))
    }

    async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Notification>> {
        Ok(self.lock().notifications.claim(owner, now, lease_until, limit))
    }

    async fn notification(&self, id: &str) -> Result<Option<NotificationStatus>> {
        Ok(self.lock().notifications.get(id))
    }

    async fn events_depth(&self) -> Result<u64> {
        Ok(self.lock().notifications.events_pending())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
