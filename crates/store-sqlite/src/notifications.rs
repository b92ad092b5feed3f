//! The notification outbox of the events webhook (see `passlink_core::notify`): the table
//! `notifications` (migration 8), written by the writer with the commit's events, leased by the
//! writer (so a lease cannot race another), read by the readers.

use passlink_core::error::{Error, Result};
use passlink_core::notify::{Notification, NotificationStatus};
use passlink_core::store::{Commit, JobState};
use passlink_core::time::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use crate::db_err;
use crate::writer::{exec, transaction};

pub(crate) const MIGRATION: &str = "CREATE TABLE IF NOT EXISTS notifications (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        user_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        state TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until INTEGER,
        last_error TEXT,
        data TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS notifications_due ON notifications (state, next_attempt_at);
    CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, kind, state, seq);";

/// The commit's notifications and their outcomes (inside the writer's transaction).
pub(crate) fn apply(c: &Connection, commit: &Commit) -> Result<()> {
    for n in &commit.notifications {
        let data = serde_json::to_string(n).map_err(Error::internal)?;
        exec(
            c,
            "INSERT INTO notifications (id, kind, user_id, seq, state, created_at, next_attempt_at, attempts, data) \
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
            params![n.id, n.kind, n.user_id, n.seq as i64, n.created_at.0, n.due_at.0, n.attempts, data],
        )?;
    }
    for u in &commit.notification_updates {
        // A notification in a final state stays there (a late outcome of a lost lease).
        exec(
            c,
            "UPDATE notifications SET state = ?2, next_attempt_at = ?3, attempts = ?4, last_error = ?5, \
             lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND state = 'pending'",
            params![u.id, u.state.as_str(), u.next_attempt_at.0, u.attempts, u.last_error],
        )?;
    }
    Ok(())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Notification> {
    let data: String = r.get(0)?;
    let mut n: Notification = crate::json(&data)?;
    n.attempts = r.get(1)?;
    Ok(n)
}

/// Lease due notifications in one transaction (the writer is the only writer). An event
/// notification is due only when no older one of its user is pending.
pub(crate) fn claim(
    conn: &Connection,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: usize,
) -> Result<Vec<Notification>> {
    let mut out = Vec::new();
    transaction(conn, |c| {
        let mut st = c
            .prepare_cached(
                "SELECT data, attempts FROM notifications n WHERE state = 'pending' AND next_attempt_at <= ?1 \
                 AND (lease_until IS NULL OR lease_until <= ?1) \
                 AND (kind <> 'event' OR NOT EXISTS (SELECT 1 FROM notifications o \
                      WHERE o.user_id = n.user_id AND o.kind = 'event' AND o.state = 'pending' AND o.seq < n.seq)) \
                 ORDER BY next_attempt_at, created_at, id LIMIT ?2",
            )
            .map_err(db_err)?;
        let rows =
            st.query_map(params![now, i64::try_from(limit).unwrap_or(i64::MAX)], row).map_err(db_err)?;
        for n in rows {
            out.push(n.map_err(db_err)?);
        }
        for n in &out {
            exec(
                c,
                "UPDATE notifications SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1",
                params![n.id, owner, lease_until],
            )?;
        }
        Ok(Vec::new())
    })?;
    Ok(out)
}

pub(crate) fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<NotificationStatus>> {
    let mut st = c.prepare_cached(
        "SELECT data, attempts, state, next_attempt_at, lease_owner, lease_until, last_error \
         FROM notifications WHERE id = ?1",
    )?;
    st.query_row([id], |r| {
        let state: String = r.get(2)?;
        Ok(NotificationStatus {
            notification: row(r)?,
            state: JobState::parse(&state),
            next_attempt_at: Timestamp(r.get(3)?),
            lease_owner: r.get(4)?,
            lease_until: r.get::<_, Option<i64>>(5)?.map(Timestamp),
            last_error: r.get(6)?,
        })
    })
    .optional()
}
