//! User rows as the core sees them: the row's view with the sequence and change date of the
//! user's last event; and [`UserCache`], the views the request path reads without SQLite.
//!
//! The user row: the view with the sequence and change date of the user's last event. A command whose events change nothing but those two
//! ([`Change::UserSequence`](passlink_core::view::Change::UserSequence), e.g. every registration
//! link) writes no user row: one B-tree page less per link, and no JSON to rewrite. One
//! statement reads both, so they come from one snapshot.

use std::collections::HashMap;
use std::sync::Mutex;

use passlink_core::store::Commit;
use passlink_core::time::Timestamp;
use passlink_core::view::{Change, UserView};
use rusqlite::Row;

use crate::json;

/// `SELECT` of user rows (alias `u`) with their last event's sequence and creation time;
/// append `WHERE …` on the columns of `users`.
pub(crate) const SELECT: &str = "SELECT u.data, \
    (SELECT e.sequence FROM events e WHERE e.aggregate_type = 'user' AND e.aggregate_id = u.id \
     ORDER BY e.sequence DESC LIMIT 1), \
    (SELECT e.created_at FROM events e WHERE e.aggregate_type = 'user' AND e.aggregate_id = u.id \
     ORDER BY e.sequence DESC LIMIT 1) \
    FROM users u";

/// A row of [`SELECT`] as the view.
pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<UserView> {
    let mut v: UserView = json(&r.get::<_, String>(0)?)?;
    if let (Some(sequence), Some(at)) = (r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?)
        && sequence as u64 > v.sequence
    {
        v.sequence = sequence as u64;
        v.changed_at = Timestamp(at);
    }
    Ok(v)
}

/// Recently read or written user views, by id, kept exact by the single writer: it stores every
/// user view a commit changes after the commit is durable and before its caller is answered, so a
/// read served here sees every commit that returned before it (read-your-writes), as a read of
/// the database would. A read that misses loads the row and keeps it only if no newer view
/// arrived meanwhile (sequences only grow), so a slow read never overwrites a newer write.
///
/// Every command on a user reads the user first: with the view here, a registration link reads
/// nothing from SQLite (whose per-connection page caches every commit empties, so each read was
/// several `pread`s). Bounded by [`UserCache::CAPACITY`] views (about 1 KB each); past it an
/// arbitrary view is dropped.
#[derive(Default)]
pub(crate) struct UserCache {
    views: Mutex<HashMap<String, UserView>>,
}

impl UserCache {
    pub const CAPACITY: usize = 10_000;

    pub fn get(&self, id: &str) -> Option<UserView> {
        self.views.lock().ok()?.get(id).cloned()
    }

    /// Keep a view read from the database, unless a newer one is here.
    pub fn offer(&self, v: &UserView) {
        let Ok(mut views) = self.views.lock() else { return };
        match views.get(&v.id) {
            Some(have) if have.sequence >= v.sequence => {}
            _ => insert(&mut views, v.clone()),
        }
    }

    /// The user views of durable commits (called by the writer before it answers them).
    pub fn written<'a>(&self, commits: impl Iterator<Item = &'a Commit>) {
        let Ok(mut views) = self.views.lock() else { return };
        for commit in commits {
            for change in &commit.changes {
                if let Change::User(v) | Change::UserSequence(v) = change {
                    insert(&mut views, v.clone());
                }
            }
        }
    }
}

fn insert(views: &mut HashMap<String, UserView>, v: UserView) {
    if views.len() >= UserCache::CAPACITY
        && !views.contains_key(&v.id)
        && let Some(evicted) = views.keys().next().cloned()
    {
        views.remove(&evicted);
    }
    views.insert(v.id.clone(), v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use passlink_core::event::{AggregateKind, Event, HumanProfile, Recorded};

    fn view(id: &str, sequence: u64) -> UserView {
        let r = Recorded {
            aggregate_kind: AggregateKind::User,
            aggregate_id: id.into(),
            sequence,
            created_at: Timestamp(sequence as i64),
            resource_owner: "o".into(),
            creator: String::new(),
            event: Event::HumanAdded { username: id.into(), profile: HumanProfile::default() },
        };
        UserView::created(&r).unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn a_read_never_replaces_a_newer_write() {
        let cache = UserCache::default();
        let commit = Commit { changes: vec![Change::UserSequence(view("u", 6))], ..Commit::default() };
        cache.written([&commit].into_iter());
        cache.offer(&view("u", 5));
        assert_eq!(cache.get("u").map(|v| v.sequence), Some(6));
        cache.offer(&view("v", 2));
        let commit = Commit { changes: vec![Change::User(view("v", 3))], ..Commit::default() };
        cache.written([&commit].into_iter());
        assert_eq!(cache.get("v").map(|v| v.sequence), Some(3), "a write replaces an older read");
        assert_eq!(cache.get("w"), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = UserCache::default();
        for i in 0..UserCache::CAPACITY + 10 {
            cache.offer(&view(&i.to_string(), 1));
        }
        let len = cache.views.lock().map(|v| v.len()).unwrap_or_default();
        assert_eq!(len, UserCache::CAPACITY);
    }
}
