//! The notification outbox of the events webhook (see `passlink_core::notify`): the table
//! `notifications` (migration 5); its rows are written by the writer with the commit's events
//! (`writer::ops`), leased here with `FOR UPDATE SKIP LOCKED` like the delivery outbox.

use passlink_core::error::Result;
use passlink_core::notify::{Notification, NotificationStatus};
use passlink_core::store::JobState;
use passlink_core::time::Timestamp;
use tokio_postgres::Row;

use crate::{PostgresStore, col, json};

pub(crate) const MIGRATION: &str = "CREATE TABLE IF NOT EXISTS notifications (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        user_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        state TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until BIGINT,
        last_error TEXT,
        data TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS notifications_due ON notifications (state, next_attempt_at);
    CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, kind, state, seq);";

fn note(r: &Row) -> Result<Notification> {
    let mut n: Notification = json(col(r, 0)?)?;
    n.attempts = u32::try_from(col::<i64>(r, 1)?).unwrap_or(u32::MAX);
    Ok(n)
}

/// Lease due notifications: an event notification only when no older one of its user is
/// pending. Replicas claiming at once skip each other's locked rows; the lease keeps them.
pub(crate) async fn claim(
    store: &PostgresStore,
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
    limit: usize,
) -> Result<Vec<Notification>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = store
        .rows(
            "UPDATE notifications SET lease_owner = $1, lease_until = $2 WHERE id IN ( \
               SELECT id FROM notifications n WHERE state = 'pending' AND next_attempt_at <= $3 \
               AND (lease_until IS NULL OR lease_until <= $3) \
               AND (kind <> 'event' OR NOT EXISTS (SELECT 1 FROM notifications o \
                    WHERE o.user_id = n.user_id AND o.kind = 'event' AND o.state = 'pending' AND o.seq < n.seq)) \
               ORDER BY next_attempt_at, created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING data, attempts, next_attempt_at, created_at, id",
            &[&owner, &lease_until.0, &now.0, &limit],
        )
        .await?;
    let mut out: Vec<(i64, i64, String, Notification)> =
        rows.iter().map(|r| Ok((col(r, 2)?, col(r, 3)?, col(r, 4)?, note(r)?))).collect::<Result<_>>()?;
    out.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    Ok(out.into_iter().map(|n| n.3).collect())
}

pub(crate) async fn get(store: &PostgresStore, id: &str) -> Result<Option<NotificationStatus>> {
    let rows = store
        .rows(
            "SELECT data, attempts, state, next_attempt_at, lease_owner, lease_until, last_error \
             FROM notifications WHERE id = $1",
            &[&id],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(NotificationStatus {
                notification: note(r)?,
                state: JobState::parse(col(r, 2)?),
                next_attempt_at: Timestamp(col(r, 3)?),
                lease_owner: col(r, 4)?,
                lease_until: col::<Option<i64>>(r, 5)?.map(Timestamp),
                last_error: col(r, 6)?,
            })
        })
        .transpose()
}
