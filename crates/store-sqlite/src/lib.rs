//! The embedded SQLite adapter of passlink's [`Store`] port.
//!
//! Layout:
//! - [`SqliteStore`]: opens the database, runs migrations, serves reads from a small pool of
//!   read-only connections, and sends every [`Commit`] to one writer thread.
//! - `writer`: the single writer. It takes every commit waiting in its queue, applies each in its
//!   own savepoint inside one transaction, and commits once (group commit: one fsync per batch).
//!   A caller's future resolves only after its batch is durable (WAL, `synchronous=FULL`).
//! - `checkpoint`: a copier thread copies the WAL back beside the writes; between batches, past
//!   [`CHECKPOINT_FRAMES`] frames, the writer finishes the copy (RESTART) so that its next write
//!   starts the WAL over: the WAL stays bounded under constant load and is never reset while
//!   writes wait.
//! - `schema`: the migrations, applied in order at start.
//! - [`backup`]: a consistent copy of the database beside a running server (`passlink backup`).
//! - `lookups`: the reads of the list RPCs (candidate users of a narrowing, every organization).
//! - `users`: user rows with the sequence and change date of their last event (a command that
//!   changes only those writes no user row), and the user views the request path reads from
//!   memory, kept exact by the writer.
//!
//! Nothing SQLite-specific leaves this crate: callers see the core's types and errors only.

pub mod backup;
mod checkpoint;
mod lookups;
mod notifications;
mod schema;
mod users;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use passlink_core::code::CodeView;
use passlink_core::error::{Error, Result};
use passlink_core::event::{AggregateKind, OutboxJob, Recorded};
use passlink_core::passkey::PasskeyView;
use passlink_core::query::UserNarrowing;
use passlink_core::session::{SessionFilter, SessionView};
use passlink_core::store::{Commit, JobState, JobStatus, OutboxCounts, Store};
use passlink_core::time::Timestamp;
use passlink_core::view::{InstanceView, Membership, OrgView, PatView, Scope, UserView};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::from_str;

pub use checkpoint::CHECKPOINT_FRAMES;
pub use writer::MAX_BATCH;

/// SQLite-backed store: one writer thread, pooled readers.
pub struct SqliteStore {
    path: PathBuf,
    writer: mpsc::Sender<writer::Job>,
    readers: Mutex<Vec<Connection>>,
    /// User views the writer keeps exact (`users::UserCache`).
    users: Arc<users::UserCache>,
    /// Opened next to a running server ([`SqliteStore::open_read_only`]): no cache.
    read_only: bool,
}

fn open_reader(path: &Path) -> Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(Error::unavailable)?;
    c.busy_timeout(std::time::Duration::from_secs(5)).map_err(Error::unavailable)?;
    // 1 MiB of page cache per reader (SQLite's default is 2 MiB): each commit of the writer
    // empties a reader's cache anyway, and the operating system's page cache holds the file.
    c.execute_batch("PRAGMA cache_size=-1024").map_err(Error::unavailable)?;
    Ok(c)
}

pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            Error::unavailable(e)
        }
        Some(
            rusqlite::ErrorCode::CannotOpen
            | rusqlite::ErrorCode::DiskFull
            | rusqlite::ErrorCode::SystemIoFailure,
        ) => Error::unavailable(e),
        _ => Error::internal(e),
    }
}

/// The events of one aggregate, in sequence order.
pub(crate) fn events_of(c: &Connection, kind: AggregateKind, id: &str) -> rusqlite::Result<Vec<Recorded>> {
    let mut st = c.prepare_cached(
        "SELECT sequence, created_at, resource_owner, creator, payload FROM events \
         WHERE aggregate_type = ?1 AND aggregate_id = ?2 ORDER BY sequence",
    )?;
    let rows = st.query_map(params![kind.as_str(), id], |r| {
        let payload: String = r.get(4)?;
        Ok(Recorded {
            aggregate_kind: kind,
            aggregate_id: id.to_string(),
            sequence: r.get::<_, i64>(0)? as u64,
            created_at: passlink_core::time::Timestamp(r.get(1)?),
            resource_owner: r.get(2)?,
            creator: r.get(3)?,
            event: json(&payload)?,
        })
    })?;
    rows.collect()
}

fn events_of_kind(c: &Connection, kind: AggregateKind) -> rusqlite::Result<Vec<Recorded>> {
    let mut st = c.prepare_cached(
        "SELECT sequence, created_at, resource_owner, creator, payload, aggregate_id FROM events \
         WHERE aggregate_type = ?1 ORDER BY aggregate_id, sequence",
    )?;
    let rows = st.query_map(params![kind.as_str()], |r| {
        let payload: String = r.get(4)?;
        Ok(Recorded {
            aggregate_kind: kind,
            aggregate_id: r.get(5)?,
            sequence: r.get::<_, i64>(0)? as u64,
            created_at: passlink_core::time::Timestamp(r.get(1)?),
            resource_owner: r.get(2)?,
            creator: r.get(3)?,
            event: json(&payload)?,
        })
    })?;
    rows.collect()
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    from_str(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and run migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        SqliteStore::open_observed(path, Arc::new(passlink_core::ports::NoObserver))
    }

    /// [`SqliteStore::open`], with the writer telling `observer` about each batch it commits
    /// (commits per batch, commit latency).
    pub fn open_observed(
        path: impl AsRef<Path>,
        observer: Arc<dyn passlink_core::ports::Observer>,
    ) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(Error::unavailable)?;
        checkpoint::fine_busy_wait(&conn)?;
        // WAL + synchronous=FULL: a commit is on disk when it returns; readers never block writers.
        // Statement journals stay in memory; the writer checkpoints between batches, after its
        // callers have their answers (`writer::Checkpoints`), not inside a commit
        // (wal_autocheckpoint=0).
        // A new database gets 2 KiB pages: the WAL holds whole pages, and a registration link
        // changes about one and a half (its user's last index page and its share of the pages its
        // event and code append to), so smaller pages write fewer bytes per link. An existing
        // database keeps the page size it was created with.
        conn.execute_batch(
            "PRAGMA page_size=2048; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; \
             PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=0;",
        )
        .map_err(db_err)?;
        schema::migrate(&conn)?;
        // One process owns an SQLite database: leases left in it belong to a process that is
        // gone (killed mid-delivery), so its jobs are due again at once.
        conn.execute_batch(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL; \
             UPDATE notifications SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL;",
        )
        .map_err(db_err)?;
        let users = Arc::new(users::UserCache::default());
        let writer = writer::spawn(conn, path.clone(), users.clone(), observer)?;
        Ok(SqliteStore { path, writer, readers: Mutex::new(Vec::new()), users, read_only: false })
    }

    /// Open an existing database for reading only, next to a running server (the `passlink
    /// events` command): no migrations, no writer, no lease reset; commits and claims answer
    /// Unavailable.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(Error::unavailable(format!("{}: no such database", path.display())));
        }
        let reader = open_reader(&path)?;
        let (writer, _) = mpsc::channel();
        // No writer here: a cache would never learn of the server's writes.
        Ok(SqliteStore {
            path,
            writer,
            readers: Mutex::new(vec![reader]),
            users: Arc::default(),
            read_only: true,
        })
    }

    /// Run `f` on a pooled read-only connection. Reads are short, indexed point lookups, run
    /// inline: SQLite in WAL mode does not block them behind the writer.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let pooled = self.readers.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let r = f(&conn).map_err(db_err);
        if let Ok(mut p) = self.readers.lock()
            && p.len() < 16
        {
            p.push(conn);
        }
        r
    }

    fn one<T: serde::de::DeserializeOwned>(&self, sql: &'static str, key: &str) -> Result<Option<T>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql)?;
            let s: Option<String> = st.query_row([key], |r| r.get(0)).optional()?;
            s.map(|s| json(&s)).transpose()
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, commit: Commit) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(writer::Job::Commit { commit, reply: tx })
            .map_err(|_| Error::unavailable("sqlite writer stopped"))?;
        rx.await.map_err(|_| Error::unavailable("sqlite writer stopped"))?
    }

    async fn instance(&self) -> Result<Option<InstanceView>> {
        self.one("SELECT data FROM instances WHERE id = ?1 OR ?1 = '' LIMIT 1", "")
    }

    async fn org(&self, id: &str) -> Result<Option<OrgView>> {
        self.one("SELECT data FROM orgs WHERE id = ?1", id)
    }

    async fn user(&self, id: &str) -> Result<Option<UserView>> {
        if let Some(v) = self.users.get(id) {
            return Ok(Some(v));
        }
        let v = self.read(|c| {
            let mut st = c.prepare_cached(&format!("{} WHERE u.id = ?1", users::SELECT))?;
            st.query_row([id], users::from_row).optional()
        })?;
        if let Some(v) = &v
            && !self.read_only
        {
            self.users.offer(v);
        }
        Ok(v)
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserView>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("{} WHERE u.username = ?1", users::SELECT))?;
            st.query_row([username.to_lowercase()], users::from_row).optional()
        })
    }

    async fn memberships_of(&self, user_id: &str) -> Result<Vec<Membership>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT scope, roles, created_at FROM memberships WHERE user_id = ?1 ORDER BY scope",
            )?;
            let rows = st.query_map([user_id], |r| {
                let scope: String = r.get(0)?;
                let roles: String = r.get(1)?;
                Ok(Membership {
                    user_id: user_id.to_string(),
                    scope: Scope::from_key(&scope),
                    roles: json(&roles)?,
                    created_at: passlink_core::time::Timestamp(r.get(2)?),
                })
            })?;
            rows.collect()
        })
    }

    async fn users_matching(&self, narrowing: &UserNarrowing) -> Result<Vec<UserView>> {
        self.read(|c| lookups::users_matching(c, narrowing))
    }

    async fn org_users_after(&self, org_id: &str, after: &str, limit: usize) -> Result<Vec<UserView>> {
        self.read(|c| lookups::org_users_after(c, org_id, after, limit))
    }

    async fn orgs(&self) -> Result<Vec<OrgView>> {
        self.read(lookups::orgs)
    }

    async fn pat_by_hash(&self, hash: &[u8; 32]) -> Result<Option<PatView>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT data FROM pats WHERE token_hash = ?1")?;
            let s: Option<String> = st.query_row([&hash[..]], |r| r.get(0)).optional()?;
            s.map(|s| json(&s)).transpose()
        })
    }

    async fn code(&self, id: &str) -> Result<Option<CodeView>> {
        self.one("SELECT data FROM passkey_codes WHERE id = ?1", id)
    }

    async fn session(&self, id: &str) -> Result<Option<SessionView>> {
        self.one("SELECT data FROM sessions WHERE id = ?1", id)
    }

    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionView>> {
        let rows: Vec<SessionView> = self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT data FROM sessions WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR creator = ?2) \
                 ORDER BY created_at, id",
            )?;
            let rows = st.query_map(rusqlite::params![filter.user_id, filter.creator], |r| {
                let s: String = r.get(0)?;
                json(&s)
            })?;
            rows.collect()
        })?;
        Ok(rows.into_iter().filter(|s| filter.matches(s)).collect())
    }

    async fn credential_owner(&self, cred_id: &str) -> Result<Option<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT user_id FROM webauthn_credentials WHERE cred_id = ?1")?;
            st.query_row([cred_id], |r| r.get(0)).optional()
        })
    }

    async fn passkeys_of(&self, user_id: &str) -> Result<Vec<PasskeyView>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT data FROM passkeys WHERE user_id = ?1 ORDER BY created_at, id")?;
            let rows = st.query_map([user_id], |r| json(&r.get::<_, String>(0)?))?;
            rows.collect()
        })
    }

    async fn events_of(&self, kind: AggregateKind, id: &str) -> Result<Vec<Recorded>> {
        self.read(|c| events_of(c, kind, id))
    }

    async fn events_of_kind(&self, kind: AggregateKind) -> Result<Vec<Recorded>> {
        self.read(|c| events_of_kind(c, kind))
    }

    async fn pending_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT data FROM outbox WHERE state = 'pending' ORDER BY created_at, id LIMIT ?1",
            )?;
            let rows = st.query_map([limit as i64], |r| {
                let s: String = r.get(0)?;
                json(&s)
            })?;
            rows.collect()
        })
    }

    async fn outbox_depth(&self) -> Result<u64> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT count(*) FROM outbox WHERE state = 'pending'")?;
            st.query_row([], |r| r.get::<_, i64>(0))
        })
        .map(|n| n.max(0) as u64)
    }

    async fn claim_jobs(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxJob>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(writer::Job::Claim {
                owner: owner.to_string(),
                now: now.0,
                lease_until: lease_until.0,
                limit,
                reply: tx,
            })
            .map_err(|_| Error::unavailable("sqlite writer stopped"))?;
        rx.await.map_err(|_| Error::unavailable("sqlite writer stopped"))?
    }

    async fn outbox_counts(&self, now: Timestamp) -> Result<OutboxCounts> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT \
                   count(*) FILTER (WHERE state = 'pending' AND (lease_until IS NULL OR lease_until <= ?1)), \
                   count(*) FILTER (WHERE state = 'pending' AND lease_until > ?1), \
                   count(*) FILTER (WHERE state = 'abandoned') \
                 FROM outbox",
            )?;
            st.query_row([now.0], |r| {
                Ok(OutboxCounts {
                    pending: r.get::<_, i64>(0)?.max(0) as u64,
                    in_flight: r.get::<_, i64>(1)?.max(0) as u64,
                    failed: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })
        })
    }

    async fn job(&self, id: &str) -> Result<Option<JobStatus>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT data, state, next_attempt_at, lease_owner, lease_until, last_error FROM outbox WHERE id = ?1",
            )?;
            st.query_row([id], |r| {
                let data: String = r.get(0)?;
                let state: String = r.get(1)?;
                Ok(JobStatus {
                    job: json(&data)?,
                    state: JobState::parse(&state),
                    next_attempt_at: Timestamp(r.get(2)?),
                    lease_owner: r.get(3)?,
                    lease_until: r.get::<_, Option<i64>>(4)?.map(Timestamp),
                    last_error: r.get(5)?,
                })
            })
            .optional()
        })
    }

    async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<passlink_core::notify::Notification>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(writer::Job::ClaimNotifications {
                owner: owner.to_string(),
                now: now.0,
                lease_until: lease_until.0,
                limit,
                reply: tx,
            })
            .map_err(|_| Error::unavailable("sqlite writer stopped"))?;
        rx.await.map_err(|_| Error::unavailable("sqlite writer stopped"))?
    }

    async fn notification(&self, id: &str) -> Result<Option<passlink_core::notify::NotificationStatus>> {
        self.read(|c| notifications::get(c, id))
    }

    async fn events_depth(&self) -> Result<u64> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT count(*) FROM notifications WHERE state = 'pending' AND kind = 'event'",
            )?;
            st.query_row([], |r| r.get::<_, i64>(0))
        })
        .map(|n| n.max(0) as u64)
    }

    async fn ping(&self) -> Result<()> {
        // Reachable means: the database file is still there, the writer thread is running, and a
        // read succeeds.
        std::fs::metadata(&self.path)
            .map_err(|e| Error::unavailable(format!("{}: {e}", self.path.display())))?;
        if self.writer.send(writer::Job::Ping).is_err() {
            return Err(Error::unavailable("sqlite writer stopped"));
        }
        self.read(|c| c.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get::<_, i64>(0)))?;
        Ok(())
    }
}
