//! Migrations, applied at start under a PostgreSQL advisory lock so that replicas starting at
//! once apply each migration exactly once.
//!
//! The lock is a session lock taken on a dedicated connection (not a pooled one): if this
//! process dies mid-migration, PostgreSQL releases the lock with the session, and the
//! migration's own transaction rolls back.

use passlink_core::error::{Error, Result};
use passlink_core::event::AggregateKind;
use tokio_postgres::{Client, NoTls};

use crate::db_err;

/// (version, SQL). Append only; never edit a released migration.
///
/// Plain types only (TEXT, BIGINT, BYTEA; JSON kept as TEXT, exactly as serialized; instants
/// as i64 nanoseconds since the epoch) so the same SQL runs on CockroachDB.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
    "CREATE TABLE events (
        aggregate_type TEXT NOT NULL,
        aggregate_id TEXT NOT NULL,
        sequence BIGINT NOT NULL,
        event_type TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        resource_owner TEXT NOT NULL,
        creator TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, sequence)
    );
    CREATE TABLE unique_constraints (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (kind, value)
    );
    CREATE TABLE instances (id TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE orgs (id TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE users (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, username TEXT NOT NULL, data TEXT NOT NULL);
    CREATE INDEX users_org ON users (org_id);
    CREATE INDEX users_username ON users (lower(username));
    CREATE TABLE memberships (
        user_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        roles TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, scope)
    );
    CREATE TABLE pats (token_hash BYTEA PRIMARY KEY, id TEXT NOT NULL, user_id TEXT NOT NULL, data TEXT NOT NULL);
    CREATE INDEX pats_user ON pats (user_id);
    CREATE TABLE passkey_codes (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, data TEXT NOT NULL);
    CREATE INDEX passkey_codes_user ON passkey_codes (user_id);
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX outbox_pending ON outbox (state, next_attempt_at);
    CREATE TABLE server_keys (
        id TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );",
    ),
    (
        2,
        "ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
    ALTER TABLE outbox ADD COLUMN lease_until BIGINT;
    ALTER TABLE outbox ADD COLUMN last_error TEXT;",
    ),
    // Sign-in sessions and the credential → user index (issue 11).
    (3, include_str!("sessions.sql")),
    // The passkeys read model; [`after`] fills it from the events already stored.
    (
        4,
        "CREATE TABLE passkeys (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at BIGINT NOT NULL, data TEXT NOT NULL);
    CREATE INDEX passkeys_user ON passkeys (user_id, created_at, id);",
    ),
    // The notification outbox of the events webhook (issue 16).
    (5, crate::notifications::MIGRATION),
];

/// A migration's step that SQL cannot do, run after its SQL in the same transaction.
async fn after(version: i64, client: &Client) -> Result<()> {
    match version {
        4 => backfill_passkeys(client).await,
        _ => Ok(()),
    }
}

/// Fold the passkey events of every user that has any into the new `passkeys` table.
async fn backfill_passkeys(client: &Client) -> Result<()> {
    let kind = AggregateKind::User;
    let users = client
        .query(
            "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = $1 AND event_type = $2",
            &[&kind.as_str(), &"user.human.passwordless.token.added"],
        )
        .await
        .map_err(db_err)?;
    for row in &users {
        let user: String = crate::col(row, 0)?;
        let rows = client
            .query(
                "SELECT sequence, created_at, resource_owner, creator, payload FROM events \
                 WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
                &[&kind.as_str(), &user],
            )
            .await
            .map_err(db_err)?;
        let events = rows.iter().map(|r| crate::recorded(kind, &user, r)).collect::<Result<Vec<_>>>()?;
        for p in passlink_core::passkey::fold(&events) {
            let data = serde_json::to_string(&p).map_err(Error::internal)?;
            client
                .execute(
                    "INSERT INTO passkeys (id, user_id, created_at, data) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    &[&p.id, &p.user_id, &p.created_at.0, &data],
                )
                .await
                .map_err(db_err)?;
        }
    }
    if !users.is_empty() {
        tracing::info!(users = users.len(), "built the passkeys read model from the events");
    }
    Ok(())
}

/// The newest migration this build knows.
pub const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// A 64-bit advisory lock key for migrating the schema(s) named by `search_path` (FNV-1a), so
/// that runs in different schemas of one database do not wait for each other.
fn lock_key(search_path: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "passlink.migrate:".bytes().chain(search_path.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// Connect once (outside the pool), take the advisory lock, create `schema` if given, and apply
/// the missing migrations, each in its own transaction.
pub(crate) async fn migrate(cfg: &tokio_postgres::Config, schema: Option<&str>) -> Result<()> {
    let (client, connection) = cfg.connect(NoTls).await.map_err(db_err)?;
    let conn_task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "migration connection closed");
        }
    });
    let from_options = schema_from_options(cfg.get_options());
    let r = migrate_on(&client, schema.or(from_options.as_deref())).await;
    drop(client);
    let _ = conn_task.await;
    r
}

/// The schema a `search_path` in the connection options names (`-c search_path=name` or
/// `-csearch_path=name`), if it is one plain identifier: created like an explicit schema.
fn schema_from_options(options: Option<&str>) -> Option<String> {
    let rest = options?.split("search_path=").nth(1)?;
    let first = rest.split(|c: char| c.is_whitespace() || c == ',').next()?;
    crate::valid_schema(first).then(|| first.to_string())
}

async fn migrate_on(client: &Client, schema: Option<&str>) -> Result<()> {
    let search_path: String = client.query_one("SHOW search_path", &[]).await.map_err(db_err)?.get(0);
    client.execute("SELECT pg_advisory_lock($1)", &[&lock_key(&search_path)]).await.map_err(db_err)?;
    if let Some(schema) = schema {
        client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")).await.map_err(db_err)?;
    }
    let current_schema: Option<String> =
        client.query_one("SELECT current_schema()", &[]).await.map_err(db_err)?.get(0);
    let Some(current_schema) = current_schema else {
        return Err(Error::internal(format!(
            "no schema of search_path {search_path:?} exists; create it or pass a schema to create"
        )));
    };
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
               version BIGINT PRIMARY KEY, \
               applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(db_err)?;
    let current: i64 = client
        .query_one("SELECT coalesce(max(version), 0)::BIGINT FROM schema_migrations", &[])
        .await
        .map_err(db_err)?
        .get(0);
    if current > LATEST {
        tracing::warn!(current, known = LATEST, "the database was migrated by a newer passlink");
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        client.batch_execute("BEGIN").await.map_err(db_err)?;
        let applied = async {
            client.batch_execute(sql).await.map_err(db_err)?;
            after(*version, client).await?;
            client
                .execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[version])
                .await
                .map_err(db_err)?;
            client.batch_execute("COMMIT").await.map_err(db_err)
        };
        if let Err(e) = applied.await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
        tracing::info!(version, schema = %current_schema, "applied postgres migration");
    }
    client.execute("SELECT pg_advisory_unlock($1)", &[&lock_key(&search_path)]).await.map_err(db_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::schema_from_options;

    #[test]
    fn schema_from_connection_options() {
        assert_eq!(schema_from_options(Some("-c search_path=abc_1")), Some("abc_1".into()));
        assert_eq!(schema_from_options(Some("-csearch_path=abc -c x=y")), Some("abc".into()));
        assert_eq!(schema_from_options(Some("-c search_path=a,public")), Some("a".into()));
        assert_eq!(schema_from_options(Some("-c search_path=\"Odd\"")), None);
        assert_eq!(schema_from_options(Some("-c statement_timeout=5")), None);
        assert_eq!(schema_from_options(None), None);
    }
}
