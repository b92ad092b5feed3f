//! The notification outbox of the events webhook (see `passlink_core::notify`), in memory.

use std::collections::HashMap;

use passlink_core::notify::{KIND_EVENT, Notification, NotificationStatus, NotificationUpdate};
use passlink_core::store::JobState;
use passlink_core::time::Timestamp;

/// Every notification by id.
#[derive(Default)]
pub(crate) struct Notifications(HashMap<String, NotificationStatus>);

impl Notifications {
    /// A new notification (one whose id exists is left as it is).
    pub(crate) fn add(&mut self, n: Notification) {
        self.0.entry(n.id.clone()).or_insert(NotificationStatus {
            state: JobState::Pending,
            next_attempt_at: n.due_at,
            lease_owner: None,
            lease_until: None,
            last_error: None,
            notification: n,
        });
    }

    /// An outcome; a notification in a final state stays there.
    pub(crate) fn update(&mut self, u: NotificationUpdate) {
        if let Some(row) = self.0.get_mut(&u.id).filter(|r| r.state == JobState::Pending) {
            row.state = u.state;
            row.next_attempt_at = u.next_attempt_at;
            row.notification.attempts = u.attempts;
            row.last_error = u.last_error;
            row.lease_owner = None;
            row.lease_until = None;
        }
    }

    /// Event notifications not yet finished.
    pub(crate) fn events_pending(&self) -> u64 {
        self.0.values().filter(|r| r.state == JobState::Pending && r.notification.kind == KIND_EVENT).count()
            as u64
    }

    pub(crate) fn get(&self, id: &str) -> Option<NotificationStatus> {
        self.0.get(id).cloned()
    }

    /// Lease due notifications: for events, only the oldest pending one of each user.
    pub(crate) fn claim(
        &mut self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Vec<Notification> {
        let pending = |r: &&NotificationStatus| r.state == JobState::Pending;
        // The smallest pending event sequence of each user.
        let mut first: HashMap<&str, u64> = HashMap::new();
        for r in self.0.values().filter(pending).filter(|r| r.notification.kind == KIND_EVENT) {
            let seq = first.entry(r.notification.user_id.as_str()).or_insert(u64::MAX);
            *seq = (*seq).min(r.notification.seq);
        }
        let mut due: Vec<&NotificationStatus> = self
            .0
            .values()
            .filter(pending)
            .filter(|r| r.next_attempt_at <= now && r.lease_until.is_none_or(|until| until <= now))
            .filter(|r| {
                r.notification.kind != KIND_EVENT
                    || first.get(r.notification.user_id.as_str()) == Some(&r.notification.seq)
            })
            .collect();
        due.sort_by_key(|r| (r.next_attempt_at, r.notification.created_at, r.notification.id.clone()));
        let ids: Vec<String> = due.into_iter().take(limit).map(|r| r.notification.id.clone()).collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = self.0.get_mut(&id) {
                row.lease_owner = Some(owner.to_string());
                row.lease_until = Some(lease_until);
                out.push(row.notification.clone());
            }
        }
        out
    }
}
