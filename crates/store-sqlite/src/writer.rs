//! The single writer thread: group commit; between batches, the checkpoints of `checkpoint`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use passlink_core::error::{Error, Result};
use passlink_core::event::OutboxJob;
use passlink_core::ports::Observer;
use passlink_core::store::Commit;
use passlink_core::view::Change;
use rusqlite::{Connection, ErrorCode, params};

use crate::checkpoint::{Checkpoints, wal_frames};
use crate::db_err;
use crate::users::UserCache;

/// The most commits applied in one transaction.
pub const MAX_BATCH: usize = 1024;

pub(crate) enum Job {
    Commit {
        commit: Commit,
        reply: tokio::sync::oneshot::Sender<Result<()>>,
    },
    /// Lease due outbox jobs (see [`passlink_core::store::Store::claim_jobs`]).
    Claim {
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
        reply: tokio::sync::oneshot::Sender<Result<Vec<OutboxJob>>>,
    },
    /// Lease due notifications (see [`passlink_core::store::Store::claim_notifications`]).
    ClaimNotifications {
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
        reply: tokio::sync::oneshot::Sender<Result<Vec<passlink_core::notify::Notification>>>,
    },
    /// A liveness probe: succeeds to send only while the writer thread runs.
    Ping,
}

pub(crate) fn spawn(
    conn: Connection,
    path: PathBuf,
    users: Arc<UserCache>,
    observer: Arc<dyn Observer>,
) -> Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || run(conn, &path, rx, &users, observer.as_ref()))
        .map_err(Error::internal)?;
    Ok(tx)
}

fn run(conn: Connection, path: &Path, rx: mpsc::Receiver<Job>, users: &UserCache, observer: &dyn Observer) {
    let mut checkpoints = match Checkpoints::start(&conn, path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "sqlite writer cannot start its checkpoints");
            return;
        }
    };
    // Ends when every sender (the store) is dropped.
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut claims = Vec::new();
        let mut note_claims = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Commit { commit, reply } => batch.push((commit, reply)),
                Job::Claim { owner, now, lease_until, limit, reply } => {
                    claims.push((owner, now, lease_until, limit, reply));
                }
                Job::ClaimNotifications { owner, now, lease_until, limit, reply } => {
                    note_claims.push((owner, now, lease_until, limit, reply));
                }
                Job::Ping => {}
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let frames_before = wal_frames();
            let started = std::time::Instant::now();
            let results = write_batch(&conn, &batch);
            let elapsed = started.elapsed();
            observer.batch_committed(batch.len(), elapsed);
            let micros = elapsed.as_micros();
            let frames = wal_frames();
            let written = if frames >= frames_before { frames - frames_before } else { frames };
            tracing::trace!(commits = batch.len(), pages = written, micros, "sqlite batch committed");
            // Durable: the cache learns the new views before anyone is answered.
            let durable = batch.iter().zip(&results).filter(|(_, r)| r.is_ok()).map(|((c, _), _)| c);
            users.written(durable);
            for ((_, reply), r) in batch.into_iter().zip(results) {
                let _ = reply.send(r);
            }
        }
        for (owner, now, lease_until, limit, reply) in claims {
            let _ = reply.send(claim(&conn, &owner, now, lease_until, limit));
        }
        for (owner, now, lease_until, limit, reply) in note_claims {
            let _ = reply.send(crate::notifications::claim(&conn, &owner, now, lease_until, limit));
        }
        // Every caller of the batch has its answer: copy the WAL back before the next batch.
        checkpoints.after_commit(&conn);
    }
    checkpoints.finish(&conn);
}

type Pending = (Commit, tokio::sync::oneshot::Sender<Result<()>>);

/// Apply a batch in one transaction and commit once. Fast path: every commit applied straight
/// away. If any fails (a lost race, a taken claim), the transaction is rolled back and the batch
/// replayed with one savepoint per commit, so a failing commit rolls back only itself.
fn write_batch(conn: &Connection, batch: &[Pending]) -> Vec<Result<()>> {
    let fast = transaction(conn, |c| {
        for (commit, _) in batch {
            apply(c, commit)?;
        }
        Ok(batch.iter().map(|_| Ok(())).collect())
    });
    match fast {
        Ok(results) => results,
        Err(_) => transaction(conn, |c| {
            Ok(batch.iter().map(|(commit, _)| savepoint(c, |c| apply(c, commit))).collect())
        })
        .unwrap_or_else(|err| batch.iter().map(|_| Err(err.clone())).collect()),
    }
}

/// `BEGIN IMMEDIATE`, run `f`, `COMMIT` (or `ROLLBACK` when `f` or the commit fails).
pub(crate) fn transaction(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<Vec<Result<()>>>,
) -> Result<Vec<Result<()>>> {
    exec(conn, "BEGIN IMMEDIATE", [])?;
    let r = f(conn).and_then(|results| exec(conn, "COMMIT", []).map(|()| results));
    if r.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if let Err(e) = &r
        && e.kind != passlink_core::error::Kind::Aborted
        && e.kind != passlink_core::error::Kind::AlreadyExists
    {
        tracing::warn!(error = %e, "sqlite batch failed");
    }
    r
}

fn savepoint(conn: &Connection, f: impl FnOnce(&Connection) -> Result<()>) -> Result<()> {
    exec(conn, "SAVEPOINT job", [])?;
    match f(conn) {
        Ok(()) => exec(conn, "RELEASE job", []),
        Err(e) => {
            let _ = exec(conn, "ROLLBACK TO job", []).and_then(|()| exec(conn, "RELEASE job", []));
            Err(e)
        }
    }
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

fn apply(c: &Connection, commit: &Commit) -> Result<()> {
    for claim in &commit.claims {
        let mut st = c
            .prepare_cached("INSERT INTO unique_constraints (kind, value) VALUES (?1, ?2)")
            .map_err(db_err)?;
        if let Err(e) = st.execute(params![claim.kind, claim.value]) {
            return Err(if is_constraint(&e) { claim.taken.clone() } else { db_err(e) });
        }
    }
    for (kind, value) in &commit.released {
        exec(c, "DELETE FROM unique_constraints WHERE kind = ?1 AND value = ?2", params![kind, value])?;
    }
    for ev in &commit.events {
        let mut st = c
            .prepare_cached(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, created_at, \
                 resource_owner, creator, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(db_err)?;
        let payload = to_json(&ev.event)?;
        if let Err(e) = st.execute(params![
            ev.aggregate_kind.as_str(),
            ev.aggregate_id,
            ev.sequence as i64,
            ev.event.type_name(),
            ev.created_at.0,
            ev.resource_owner,
            ev.creator,
            payload
        ]) {
            return Err(if is_constraint(&e) { Error::conflict() } else { db_err(e) });
        }
    }
    for ch in &commit.changes {
        apply_change(c, ch)?;
    }
    for job in &commit.outbox {
        exec(
            c,
            "INSERT INTO outbox (id, state, created_at, next_attempt_at, data) VALUES (?1, 'pending', ?2, ?2, ?3)",
            params![job.id, job.created_at.0, to_json(job)?],
        )?;
    }
    crate::notifications::apply(c, commit)?;
    for u in &commit.outbox_updates {
        // A job in a final state stays there (a late outcome of a taken-over lease is ignored).
        exec(
            c,
            "UPDATE outbox SET state = ?2, next_attempt_at = ?3, data = ?4, last_error = ?5, \
             lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND state = 'pending'",
            params![u.job.id, u.state.as_str(), u.next_attempt_at.0, to_json(&u.job)?, u.last_error],
        )?;
    }
    Ok(())
}

/// Lease up to `limit` due jobs in one transaction (the writer is the only writer, so a select
/// followed by an update cannot race with another claim).
fn claim(conn: &Connection, owner: &str, now: i64, lease_until: i64, limit: usize) -> Result<Vec<OutboxJob>> {
    let mut jobs = Vec::new();
    let r = transaction(conn, |c| {
        let mut st = c
            .prepare_cached(
                "SELECT data FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1 \
                 AND (lease_until IS NULL OR lease_until <= ?1) \
                 ORDER BY next_attempt_at, created_at, id LIMIT ?2",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![now, i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        for data in rows {
            let data = data.map_err(db_err)?;
            jobs.push(serde_json::from_str::<OutboxJob>(&data).map_err(Error::internal)?);
        }
        for j in &jobs {
            exec(
                c,
                "UPDATE outbox SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1",
                params![j.id, owner, lease_until],
            )?;
        }
        Ok(Vec::new())
    });
    r.map(|_| jobs)
}

pub(crate) fn exec(c: &Connection, sql: &'static str, p: impl rusqlite::Params) -> Result<()> {
    c.prepare_cached(sql).and_then(|mut st| st.execute(p)).map(|_| ()).map_err(db_err)
}

fn apply_change(c: &Connection, ch: &Change) -> Result<()> {
    match ch {
        Change::Instance(v) => exec(
            c,
            "INSERT INTO instances (id, data) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            params![v.id, to_json(v)?],
        ),
        Change::Org(v) => exec(
            c,
            "INSERT INTO orgs (id, data) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            params![v.id, to_json(v)?],
        ),
        Change::User(v) => exec(
            c,
            "INSERT INTO users (id, org_id, username, data) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            params![v.id, v.org_id, v.username.to_lowercase(), to_json(v)?],
        ),
        // Read from the user's last event (`crate::users`): no row to rewrite.
        Change::UserSequence(_) => Ok(()),
        Change::Membership(m) => exec(
            c,
            "INSERT INTO memberships (user_id, scope, roles, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (user_id, scope) DO UPDATE SET roles = excluded.roles",
            params![m.user_id, m.scope.key(), to_json(&m.roles)?, m.created_at.0],
        ),
        Change::Pat(p) => exec(
            c,
            "INSERT INTO pats (token_hash, id, user_id, data) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (token_hash) DO UPDATE SET data = excluded.data",
            params![&p.token_hash[..], p.id, p.user_id, to_json(p)?],
        ),
        Change::Session(v) => exec(
            c,
            "INSERT INTO sessions (id, user_id, creator, created_at, data) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, data = excluded.data",
            params![v.id, v.user_id().unwrap_or_default(), v.creator, v.created_at.0, to_json(v)?],
        ),
        Change::Credential(o) => exec(
            c,
            "INSERT INTO webauthn_credentials (cred_id, user_id) VALUES (?1, ?2) \
             ON CONFLICT (cred_id) DO UPDATE SET user_id = excluded.user_id",
            params![o.cred_id, o.user_id],
        ),
        Change::Code(v) => exec(
            c,
            "INSERT INTO passkey_codes (id, user_id, data) VALUES (?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            params![v.id, v.user_id, to_json(v)?],
        ),
        Change::Passkey(v) => upsert_passkey(c, v),
    }
}

/// Insert or replace one passkey row (also used by the migration that builds the table).
pub(crate) fn upsert_passkey(c: &Connection, v: &passlink_core::passkey::PasskeyView) -> Result<()> {
    exec(
        c,
        "INSERT INTO passkeys (id, user_id, created_at, data) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data",
        params![v.id, v.user_id, v.created_at.0, to_json(v)?],
    )
}
