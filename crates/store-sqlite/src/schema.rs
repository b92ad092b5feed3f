//! Migrations, applied in order at start inside one transaction each.

use passlink_core::error::Result;
use passlink_core::event::AggregateKind;
use rusqlite::{Connection, params};

use crate::db_err;

/// (version, SQL). Append only; never edit a released migration.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
    "CREATE TABLE events (
        aggregate_type TEXT NOT NULL,
        aggregate_id TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        resource_owner TEXT NOT NULL,
        creator TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, sequence)
    ) WITHOUT ROWID;
    CREATE TABLE unique_constraints (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (kind, value)
    ) WITHOUT ROWID;
    CREATE TABLE instances (id TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE orgs (id TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE users (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, data TEXT NOT NULL);
    CREATE INDEX users_org ON users (org_id);
    CREATE TABLE memberships (
        user_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        roles TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, scope)
    ) WITHOUT ROWID;
    CREATE TABLE pats (token_hash BLOB PRIMARY KEY, id TEXT NOT NULL, user_id TEXT NOT NULL, data TEXT NOT NULL);
    CREATE INDEX pats_user ON pats (user_id);
    CREATE TABLE passkey_codes (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, data TEXT NOT NULL);
    CREATE INDEX passkey_codes_user ON passkey_codes (user_id);
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX outbox_pending ON outbox (state, next_attempt_at);",
    ),
    (
        2,
        "ALTER TABLE users ADD COLUMN username TEXT;
    UPDATE users SET username = lower(json_extract(data, '$.username'));
    CREATE INDEX users_username ON users (username);",
    ),
    (
        3,
        "ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
    ALTER TABLE outbox ADD COLUMN lease_until INTEGER;
    ALTER TABLE outbox ADD COLUMN last_error TEXT;",
    ),
    // Sign-in sessions and the credential → user index (issue 11).
    (4, include_str!("sessions.sql")),
    // The passkeys read model; [`after`] fills it from the events already stored.
    (
        5,
        "CREATE TABLE passkeys (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at INTEGER NOT NULL, data TEXT NOT NULL);
    CREATE INDEX passkeys_user ON passkeys (user_id, created_at, id);",
    ),
    // Fewer pages per registration link (issue 13): no per-user index on the codes (no read
    // uses it, and every user's codes had their own last index page: one more page written per
    // link).
    (6, "DROP INDEX IF EXISTS passkey_codes_user;"),
    // The event log in the order it is written (a new event appends to the table's last page)
    // with a slim index by aggregate and sequence, instead of the whole rows clustered by
    // aggregate: each event of a user inserted in the middle of the table, into a leaf of ~10
    // rows that SQLite rebalanced with its neighbours every few events (measured: 3.2 pages
    // written per registration link; an index leaf holds ~60 entries).
    (
        7,
        "CREATE TABLE events_log (
        position INTEGER PRIMARY KEY,
        aggregate_type TEXT NOT NULL,
        aggregate_id TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        resource_owner TEXT NOT NULL,
        creator TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    INSERT INTO events_log (aggregate_type, aggregate_id, sequence, event_type, created_at, resource_owner, creator, payload)
        SELECT aggregate_type, aggregate_id, sequence, event_type, created_at, resource_owner, creator, payload
        FROM events ORDER BY created_at, aggregate_type, aggregate_id, sequence;
    DROP TABLE events;
    ALTER TABLE events_log RENAME TO events;
    CREATE UNIQUE INDEX events_aggregate ON events (aggregate_type, aggregate_id, sequence);",
    ),
    // The notification outbox of the events webhook (issue 16).
    (8, crate::notifications::MIGRATION),
];

/// A migration's step that SQL cannot do, run after its SQL in the same transaction.
fn after(version: i64, conn: &Connection) -> Result<()> {
    match version {
        5 => backfill_passkeys(conn),
        _ => Ok(()),
    }
}

/// Fold the passkey events of every user that has any into the new `passkeys` table.
fn backfill_passkeys(conn: &Connection) -> Result<()> {
    let users: Vec<String> = conn
        .prepare("SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = ?1 AND event_type = ?2")
        .and_then(|mut st| {
            let added = "user.human.passwordless.token.added";
            st.query_map(params![AggregateKind::User.as_str(), added], |r| r.get(0))?.collect()
        })
        .map_err(db_err)?;
    for user in &users {
        let events = crate::events_of(conn, AggregateKind::User, user).map_err(db_err)?;
        for passkey in passlink_core::passkey::fold(&events) {
            crate::writer::upsert_passkey(conn, &passkey)?;
        }
    }
    if !users.is_empty() {
        tracing::info!(users = users.len(), "built the passkeys read model from the events");
    }
    Ok(())
}

pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(db_err)?;
    let current: i64 = conn
        .query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
        .map_err(db_err)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
        let applied =
            conn.execute_batch(sql).map_err(db_err).and_then(|()| after(*version, conn)).and_then(|()| {
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, unixepoch())",
                    [version],
                )
                .map_err(db_err)
            });
        if let Err(e) = applied.and_then(|_| conn.execute_batch("COMMIT").map_err(db_err)) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
        tracing::info!(version, "applied sqlite migration");
    }
    Ok(())
}
