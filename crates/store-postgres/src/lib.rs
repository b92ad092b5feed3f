//! The PostgreSQL adapter of passlink's [`Store`] port: several stateless passlink replicas on
//! one database.
//!
//! Layout:
//! - [`PostgresStore`]: parses the URL, runs migrations, serves reads from a connection pool and
//!   sends every [`Commit`] to this process's writer task.
//! - `writer`: the group commit. One task owns one connection and writes every commit waiting in
//!   its queue in one transaction, its statements pipelined (sent without waiting for each
//!   answer); a failing commit is isolated by replaying the batch with one savepoint per commit.
//!   A caller's future resolves only after `COMMIT` returned (durable: `synchronous_commit` is the
//!   server's, `on` by default).
//! - `lookups`: the SQL of the list RPCs' user reads (candidate users of a narrowing).
//! - `schema`: the migrations, applied at start under `pg_advisory_lock`, so replicas starting
//!   together apply each exactly once; `schema_migrations` records them.
//!
//! Driver: tokio-postgres with deadpool-postgres. It pipelines statements on one connection (the
//! writer sends a whole batch in one round trip), needs no macros or compile-time database, keeps
//! the dependency tree small (no second SQLite binding next to rusqlite), and deadpool replaces
//! dead connections by itself, so the store recovers from a database restart without a restart of
//! passlink.
//!
//! Outages fail fast and heal by themselves (`crates/server/tests/postgres_outage.rs`, through a
//! TCP proxy that is cut and stalled): getting a connection is bounded by [`CONNECT_TIMEOUT`];
//! every read (connection included) and every writer batch by [`OP_TIMEOUT`], and a caller waits
//! at most as long for its commit; a connection that did not answer in time is discarded, not
//! returned to the pool, so nothing waits on it again. A caller that gave up is answered
//! Unavailable (the commit's outcome is then unknown, as for any lost answer) and its commit is
//! skipped if the writer has not started it. After a timeout (or a connection that could not be
//! made in time: the server accepts but does not answer) the store is "stalled" (a circuit
//! breaker): the idle connections are dropped, every operation answers Unavailable at once (so a
//! request with several reads does not wait [`OP_TIMEOUT`] for each), and a background probe
//! (`SELECT 1` every [`PROBE_INTERVAL`]) clears the state as soon as the database answers. TCP
//! keepalives and `TCP_USER_TIMEOUT` (unless the URL sets them) close connections to a peer that
//! vanished without a word.
//!
//! Group commit: chosen by measurement (`tests/throughput.rs`, ignored by default; 2 cores,
//! PostgreSQL 15 on loopback, 64 tasks committing a user's event, claim and view in a loop): the
//! writer task wrote about 6 900 commits/s, one transaction per commit on the pool of 16 (relying
//! on PostgreSQL's own sharing of WAL flushes between concurrent commits) about 4 800. The writer
//! also keeps the number of connections per replica small and constant.
//!
//! Errors: a unique violation of an event's (aggregate, sequence) is
//! [`Error::conflict`](passlink_core::error::Error::conflict), so are serialization failures and
//! deadlocks (both retryable); a taken claim is the claim's own error; a connection that cannot be
//! made or was lost is [`Kind::Unavailable`](passlink_core::error::Kind) (HTTP 503).
//!
//! Schema: [`PostgresStore::connect`] takes an optional schema; it is created if missing and
//! becomes the connection's `search_path`. A URL option `?options=-csearch_path%3Dname` works
//! too (a single plain name there is created the same way). SQL is kept CockroachDB-compatible where it costs nothing
//! (plain types, `ON CONFLICT ... DO UPDATE`, savepoints); the advisory lock is PostgreSQL's.
//!
//! Nothing PostgreSQL-specific leaves this crate: callers see the core's types and errors only.

mod lookups;
mod notifications;
mod schema;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use passlink_core::code::CodeView;
use passlink_core::error::{Error, Result};
use passlink_core::event::{AggregateKind, OutboxJob, Recorded};
use passlink_core::passkey::PasskeyView;
use passlink_core::query::UserNarrowing;
use passlink_core::session::{SessionFilter, SessionView};
use passlink_core::store::{Commit, JobState, JobStatus, OutboxCounts, Store};
use passlink_core::time::Timestamp;
use passlink_core::view::{InstanceView, Membership, OrgView, PatView, Scope, UserView};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

pub use schema::LATEST as LATEST_MIGRATION;
pub use writer::MAX_BATCH;

/// Connections in the read pool (the writer takes one more from the same pool).
pub const POOL_SIZE: usize = 16;
/// How long a request waits for a connection (or for one to be made) before it answers
/// Unavailable: short, so an outage fails fast.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest a read (getting its connection included), a writer batch, or a caller's wait for
/// its commit may take before it answers Unavailable. Generous for point reads and batches that
/// take milliseconds; short enough that a stalled database fails requests fast.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// An operation that did not finish within [`OP_TIMEOUT`].
pub(crate) fn timed_out(what: &str) -> Error {
    Error::unavailable(format!("postgres: {what} did not finish within {}s", OP_TIMEOUT.as_secs()))
}

/// PostgreSQL-backed store: pooled readers, one group-commit writer task per process.
pub struct PostgresStore {
    pool: Pool,
    writer: mpsc::UnboundedSender<writer::Job>,
    health: Arc<Health>,
}

/// The circuit breaker: set when an operation timed out, cleared when one (or the probe)
/// succeeds.
#[derive(Default)]
pub(crate) struct Health {
    stalled: AtomicBool,
}

/// While stalled, how often the background probe asks the database.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

impl Health {
    /// May an operation go to the database now? Not while stalled: fail at once.
    pub(crate) fn admit(&self) -> Result<()> {
        if self.stalled.load(Ordering::SeqCst) {
            return Err(Error::unavailable(
                "postgres did not answer in time; waiting until it answers again",
            ));
        }
        Ok(())
    }

    /// An operation succeeded.
    pub(crate) fn answered(&self) {
        if self.stalled.swap(false, Ordering::SeqCst) {
            tracing::info!("postgres answers again");
        }
    }

    /// An operation timed out: fail fast from now on, drop the idle connections (they most likely
    /// lead to the same unresponsive server), and probe until the database answers.
    pub(crate) fn timed_out(self: &Arc<Self>, pool: &Pool) {
        pool.retain(|_, _| false);
        if !self.stalled.swap(true, Ordering::SeqCst) {
            tracing::warn!("postgres stopped answering; failing requests fast until it answers again");
            tokio::spawn(probe(Arc::downgrade(self), pool.clone()));
        }
    }
}

/// A pooled connection. One that cannot be made within [`CONNECT_TIMEOUT`] (the server accepts
/// but does not answer) trips the breaker like an operation that timed out.
pub(crate) async fn connection(pool: &Pool, health: &Arc<Health>) -> Result<Object> {
    pool.get().await.map_err(|e| {
        if matches!(e, PoolError::Timeout(TimeoutType::Create)) {
            health.timed_out(pool);
        }
        pool_err(e)
    })
}

/// `SELECT 1` every [`PROBE_INTERVAL`] (each within [`OP_TIMEOUT`]) until it succeeds, the state
/// was cleared otherwise, or the store is gone.
async fn probe(health: std::sync::Weak<Health>, pool: Pool) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        let Some(health) = health.upgrade() else { return };
        if !health.stalled.load(Ordering::SeqCst) {
            return;
        }
        let mut held: Option<Object> = None;
        let asked = tokio::time::timeout(OP_TIMEOUT, async {
            let client = held.insert(pool.get().await.map_err(pool_err)?);
            client.simple_query("SELECT 1").await.map_err(db_err)
        })
        .await;
        match asked {
            Ok(Ok(_)) => {
                health.answered();
                return;
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "postgres probe failed"),
            Err(_) => {
                if let Some(client) = held.take() {
                    drop(Object::take(client));
                }
                tracing::debug!("postgres probe timed out");
            }
        }
    }
}

/// Map a driver error: no answer from the server (connect, I/O, closed) and the server's
/// "cannot serve now" classes are Unavailable; serialization failures and deadlocks are a
/// retryable conflict; the rest is internal.
pub(crate) fn db_err(e: tokio_postgres::Error) -> Error {
    let Some(code) = e.code() else {
        // The driver's Display hides the reason ("error connecting to server"): add the sources.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        return Error::unavailable(text);
    };
    let c = code.code();
    if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
        return Error::conflict().with_cause(e);
    }
    // 08: connection exception; 53: insufficient resources (too many connections);
    // 57P0x: admin/crash shutdown, cannot connect now; 57014: query canceled.
    if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") || c == "57014" {
        return Error::unavailable(e);
    }
    Error::internal(e)
}

pub(crate) fn pool_err(e: PoolError) -> Error {
    match e {
        PoolError::Backend(e) => db_err(e),
        other => Error::unavailable(format!("postgres pool: {other}")),
    }
}

/// One event row (sequence, created_at, resource_owner, creator, payload) of an aggregate.
pub(crate) fn recorded(kind: AggregateKind, id: &str, r: &Row) -> Result<Recorded> {
    Ok(Recorded {
        aggregate_kind: kind,
        aggregate_id: id.to_string(),
        sequence: u64::try_from(col::<i64>(r, 0)?).map_err(Error::internal)?,
        created_at: Timestamp(col(r, 1)?),
        resource_owner: col(r, 2)?,
        creator: col(r, 3)?,
        event: json(col(r, 4)?)?,
    })
}

fn json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(Error::internal)
}

pub(crate) fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(Error::internal)
}

/// Is `s` a plain lower-case SQL identifier (safe to splice into `CREATE SCHEMA "s"`)?
pub(crate) fn valid_schema(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user@host:port/db`, any libpq-style parameters), create
    /// `schema` if given (lower-case letters, digits, `_`) and use it as the `search_path`, run
    /// the migrations, and start the writer. Must be called inside a tokio runtime.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<PostgresStore> {
        PostgresStore::connect_observed(url, schema, Arc::new(passlink_core::ports::NoObserver)).await
    }

    /// [`PostgresStore::connect`], with the writer telling `observer` about each batch it
    /// commits (commits per batch, commit latency).
    pub async fn connect_observed(
        url: &str,
        schema: Option<&str>,
        observer: Arc<dyn passlink_core::ports::Observer>,
    ) -> Result<PostgresStore> {
        let mut cfg: tokio_postgres::Config =
            url.parse().map_err(|e| Error::internal(format!("invalid PostgreSQL URL: {e}")))?;
        if let Some(schema) = schema {
            if !valid_schema(schema) {
                return Err(Error::internal(format!(
                    "invalid PostgreSQL schema name {schema:?}: use [a-z_][a-z0-9_]*"
                )));
            }
            let options = match cfg.get_options() {
                Some(o) if !o.trim().is_empty() => format!("{o} -c search_path={schema}"),
                _ => format!("-c search_path={schema}"),
            };
            cfg.options(options);
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(CONNECT_TIMEOUT);
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("passlink");
        }
        // Notice a peer that is gone without a word (a dead host, a dropped route): unacknowledged
        // data for 15 s, or an idle connection not answering keepalives for about 30 s, closes it.
        if cfg.get_tcp_user_timeout().is_none() {
            cfg.tcp_user_timeout(Duration::from_secs(15));
        }
        if cfg.get_keepalives() && cfg.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            cfg.keepalives_idle(Duration::from_secs(15));
        }
        if cfg.get_keepalives_interval().is_none() {
            cfg.keepalives_interval(Duration::from_secs(5));
        }
        if cfg.get_keepalives_retries().is_none() {
            cfg.keepalives_retries(3);
        }
        schema::migrate(&cfg, schema).await?;

        let manager =
            Manager::from_config(cfg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE + 1)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(Error::internal)?;
        let health = Arc::new(Health::default());
        let writer = writer::spawn(pool.clone(), health.clone(), observer);
        Ok(PostgresStore { pool, writer, health })
    }

    /// One read on a pooled connection, within [`OP_TIMEOUT`] (a connection that did not answer
    /// in time is discarded).
    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.health.admit()?;
        let mut held: Option<Object> = None;
        let read = tokio::time::timeout(OP_TIMEOUT, async {
            let client = held.insert(connection(&self.pool, &self.health).await?);
            let st = client.prepare_cached(sql).await.map_err(db_err)?;
            client.query(&st, params).await.map_err(db_err)
        })
        .await;
        match read {
            Ok(Ok(rows)) => {
                self.health.answered();
                Ok(rows)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                if let Some(client) = held.take() {
                    drop(Object::take(client));
                }
                self.health.timed_out(&self.pool);
                Err(timed_out("a read"))
            }
        }
    }

    async fn one<T: serde::de::DeserializeOwned>(&self, sql: &str, key: &str) -> Result<Option<T>> {
        let rows = self.rows(sql, &[&key]).await?;
        rows.first().map(|r| json(col::<&str>(r, 0)?)).transpose()
    }

    /// Record `fingerprint` (of the server keys; never the keys) if this database has none yet,
    /// else check that it is the recorded one: every replica must use the same keys, or codes
    /// created on one fail on another. A mismatch is an error naming the cause.
    pub async fn check_key_fingerprint(&self, fingerprint: &str) -> Result<()> {
        let client = self.pool.get().await.map_err(pool_err)?;
        client
            .execute(
                "INSERT INTO server_keys (id, fingerprint) VALUES ('default', $1) ON CONFLICT (id) DO NOTHING",
                &[&fingerprint],
            )
            .await
            .map_err(db_err)?;
        let row = client
            .query_one("SELECT fingerprint FROM server_keys WHERE id = 'default'", &[])
            .await
            .map_err(db_err)?;
        let recorded: &str = col(&row, 0)?;
        if recorded != fingerprint {
            return Err(Error::internal(
                "the server keys differ from the ones this database was first used with",
            ));
        }
        Ok(())
    }

    /// The user with this username, compared case-insensitively (`lower()` on both sides, an
    /// index on `lower(username)`). Ready for the port's `user_by_username`.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserView>> {
        self.one("SELECT data FROM users WHERE lower(username) = lower($1) ORDER BY id LIMIT 1", username)
            .await
    }

    /// Write `commit` in its own transaction on a pooled connection, bypassing the group-commit
    /// writer: the "PostgreSQL's own group commit" alternative, kept for measurements.
    #[doc(hidden)]
    pub async fn commit_direct(&self, commit: Commit) -> Result<()> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let (mut results, clean) = writer::write_batch(&client, &[&commit]).await;
        if !clean {
            let _ = deadpool_postgres::Object::take(client);
        }
        results.pop().unwrap_or_else(|| Err(Error::internal("no result")))
    }
}

/// Drop `schema` and everything in it (tests create a schema per run and drop it afterwards).
#[doc(hidden)]
pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    if !valid_schema(schema) {
        return Err(Error::internal(format!("invalid PostgreSQL schema name {schema:?}")));
    }
    let mut cfg: tokio_postgres::Config =
        url.parse().map_err(|e| Error::internal(format!("invalid PostgreSQL URL: {e}")))?;
    cfg.connect_timeout(CONNECT_TIMEOUT);
    let (client, connection) = cfg.connect(NoTls).await.map_err(db_err)?;
    let task = tokio::spawn(connection);
    let r = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).await;
    drop(client);
    let _ = task.await;
    r.map_err(db_err)
}

#[async_trait]
impl Store for PostgresStore {
    async fn commit(&self, commit: Commit) -> Result<()> {
        self.health.admit()?;
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(writer::Job { commit, reply })
            .map_err(|_| Error::unavailable("postgres writer stopped"))?;
        // Waiting longer than a batch may take means the writer is stuck behind a database that
        // does not answer: give up (the commit is skipped if the writer has not started it yet).
        match tokio::time::timeout(OP_TIMEOUT, rx).await {
            Ok(r) => r.map_err(|_| Error::unavailable("postgres writer stopped"))?,
            Err(_) => Err(timed_out("a commit (its outcome is unknown)")),
        }
    }

    async fn instance(&self) -> Result<Option<InstanceView>> {
        let rows = self.rows("SELECT data FROM instances ORDER BY id LIMIT 1", &[]).await?;
        rows.first().map(|r| json(col::<&str>(r, 0)?)).transpose()
    }

    async fn org(&self, id: &str) -> Result<Option<OrgView>> {
        self.one("SELECT data FROM orgs WHERE id = $1", id).await
    }

    async fn user(&self, id: &str) -> Result<Option<UserView>> {
        self.one("SELECT data FROM users WHERE id = $1", id).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserView>> {
        self.one("SELECT data FROM users WHERE lower(username) = lower($1)", username).await
    }

    async fn users_matching(&self, narrowing: &UserNarrowing) -> Result<Vec<UserView>> {
        let (sql, args) = lookups::users_sql(narrowing);
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        let rows = self.rows(&sql, &params).await?;
        rows.iter().map(|r| json(col::<&str>(r, 0)?)).collect()
    }

    async fn org_users_after(&self, org_id: &str, after: &str, limit: usize) -> Result<Vec<UserView>> {
        // Byte order whatever the database's collation is (the order of the other stores).
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .rows(
                "SELECT data FROM users WHERE org_id = $1 AND id COLLATE \"C\" > $2 \
                 ORDER BY id COLLATE \"C\" LIMIT $3",
                &[&org_id, &after, &limit],
            )
            .await?;
        rows.iter().map(|r| json(col::<&str>(r, 0)?)).collect()
    }

    async fn orgs(&self) -> Result<Vec<OrgView>> {
        let rows = self.rows("SELECT data FROM orgs", &[]).await?;
        rows.iter().map(|r| json(col::<&str>(r, 0)?)).collect()
    }

    async fn memberships_of(&self, user_id: &str) -> Result<Vec<Membership>> {
        let rows = self
            .rows(
                "SELECT scope, roles, created_at FROM memberships WHERE user_id = $1 ORDER BY scope",
                &[&user_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Membership {
                    user_id: user_id.to_string(),
                    scope: Scope::from_key(col(r, 0)?),
                    roles: json(col(r, 1)?)?,
                    created_at: Timestamp(col(r, 2)?),
                })
            })
            .collect()
    }

    async fn pat_by_hash(&self, hash: &[u8; 32]) -> Result<Option<PatView>> {
        let rows = self.rows("SELECT data FROM pats WHERE token_hash = $1", &[&&hash[..]]).await?;
        rows.first().map(|r| json(col::<&str>(r, 0)?)).transpose()
    }

    async fn code(&self, id: &str) -> Result<Option<CodeView>> {
        self.one("SELECT data FROM passkey_codes WHERE id = $1", id).await
    }

    async fn session(&self, id: &str) -> Result<Option<SessionView>> {
        self.one("SELECT data FROM sessions WHERE id = $1", id).await
    }

    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionView>> {
        let rows = self
            .rows(
                "SELECT data FROM sessions WHERE ($1::TEXT IS NULL OR user_id = $1) \
                 AND ($2::TEXT IS NULL OR creator = $2) ORDER BY created_at, id",
                &[&filter.user_id, &filter.creator],
            )
            .await?;
        let all: Vec<SessionView> = rows.iter().map(|r| json(col::<&str>(r, 0)?)).collect::<Result<_>>()?;
        Ok(all.into_iter().filter(|s| filter.matches(s)).collect())
    }

    async fn credential_owner(&self, cred_id: &str) -> Result<Option<String>> {
        let rows =
            self.rows("SELECT user_id FROM webauthn_credentials WHERE cred_id = $1", &[&cred_id]).await?;
        rows.first().map(|r| col::<String>(r, 0)).transpose()
    }

    async fn events_of(&self, kind: AggregateKind, id: &str) -> Result<Vec<Recorded>> {
        let rows = self
            .rows(
                "SELECT sequence, created_at, resource_owner, creator, payload FROM events \
                 WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
                &[&kind.as_str(), &id],
            )
            .await?;
        rows.iter().map(|r| recorded(kind, id, r)).collect()
    }

    async fn events_of_kind(&self, kind: AggregateKind) -> Result<Vec<Recorded>> {
        let rows = self
            .rows(
                "SELECT sequence, created_at, resource_owner, creator, payload, aggregate_id FROM events \
                 WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence",
                &[&kind.as_str()],
            )
            .await?;
        rows.iter().map(|r| recorded(kind, &col::<String>(r, 5)?, r)).collect()
    }

    async fn passkeys_of(&self, user_id: &str) -> Result<Vec<PasskeyView>> {
        let rows = self
            .rows("SELECT data FROM passkeys WHERE user_id = $1 ORDER BY created_at, id", &[&user_id])
            .await?;
        rows.iter().map(|r| json(col(r, 0)?)).collect()
    }

    async fn pending_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .rows(
                "SELECT data FROM outbox WHERE state = 'pending' ORDER BY created_at, id LIMIT $1",
                &[&limit],
            )
            .await?;
        rows.iter().map(|r| json(col(r, 0)?)).collect()
    }

    async fn outbox_depth(&self) -> Result<u64> {
        let rows = self.rows("SELECT count(*) FROM outbox WHERE state = 'pending'", &[]).await?;
        let n: i64 = match rows.first() {
            Some(r) => col(r, 0)?,
            None => 0,
        };
        Ok(n.max(0) as u64)
    }

    async fn claim_jobs(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxJob>> {
        // SKIP LOCKED: replicas claiming at once pass over each other's rows instead of waiting;
        // the lease (not the row lock) then keeps the job theirs until it runs out.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .rows(
                "UPDATE outbox SET lease_owner = $1, lease_until = $2 WHERE id IN ( \
                   SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $3 \
                   AND (lease_until IS NULL OR lease_until <= $3) \
                   ORDER BY next_attempt_at, created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 RETURNING data, next_attempt_at, created_at, id",
                &[&owner, &lease_until.0, &now.0, &limit],
            )
            .await?;
        let mut jobs: Vec<(i64, i64, String, OutboxJob)> = rows
            .iter()
            .map(|r| Ok((col(r, 1)?, col(r, 2)?, col(r, 3)?, json(col(r, 0)?)?)))
            .collect::<Result<_>>()?;
        jobs.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        Ok(jobs.into_iter().map(|j| j.3).collect())
    }

    async fn outbox_counts(&self, now: Timestamp) -> Result<OutboxCounts> {
        let rows = self
            .rows(
                "SELECT \
                   count(*) FILTER (WHERE state = 'pending' AND (lease_until IS NULL OR lease_until <= $1)), \
                   count(*) FILTER (WHERE state = 'pending' AND lease_until > $1), \
                   count(*) FILTER (WHERE state = 'abandoned') \
                 FROM outbox",
                &[&now.0],
            )
            .await?;
        let row = rows.first().ok_or_else(|| Error::internal("outbox count: no row"))?;
        let n = |i: usize| col::<i64>(row, i).map(|v| v.max(0) as u64);
        Ok(OutboxCounts { pending: n(0)?, in_flight: n(1)?, failed: n(2)? })
    }

    async fn job(&self, id: &str) -> Result<Option<JobStatus>> {
        let rows = self
            .rows(
                "SELECT data, state, next_attempt_at, lease_owner, lease_until, last_error FROM outbox WHERE id = $1",
                &[&id],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(JobStatus {
                    job: json(col(r, 0)?)?,
                    state: JobState::parse(col(r, 1)?),
                    next_attempt_at: Timestamp(col(r, 2)?),
                    lease_owner: col(r, 3)?,
                    lease_until: col::<Option<i64>>(r, 4)?.map(Timestamp),
                    last_error: col(r, 5)?,
                })
            })
            .transpose()
    }

    async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<passlink_core::notify::Notification>> {
        notifications::claim(self, owner, now, lease_until, limit).await
    }

    async fn notification(&self, id: &str) -> Result<Option<passlink_core::notify::NotificationStatus>> {
        notifications::get(self, id).await
    }

    async fn events_depth(&self) -> Result<u64> {
        let rows = self
            .rows("SELECT count(*) FROM notifications WHERE state = 'pending' AND kind = 'event'", &[])
            .await?;
        let n: i64 = match rows.first() {
            Some(r) => col(r, 0)?,
            None => 0,
        };
        Ok(n.max(0) as u64)
    }

    async fn ping(&self) -> Result<()> {
        if self.writer.is_closed() {
            return Err(Error::unavailable("postgres writer stopped"));
        }
        self.rows("SELECT count(*) FROM schema_migrations", &[]).await?;
        Ok(())
    }
}
