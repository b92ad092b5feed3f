//! The writer task and its group commit.
//!
//! One task per process owns one connection. It takes every commit waiting in its queue (up to
//! [`MAX_BATCH`]) and writes them in one transaction: `BEGIN`, every statement of every commit
//! sent back to back without waiting for answers (tokio-postgres pipelines them on the
//! connection), `COMMIT`. One round trip for the statements and one WAL flush for the whole batch.
//!
//! If any statement fails (a lost race on a sequence, a taken claim), the transaction is rolled
//! back and the batch replayed with one savepoint per commit, so a failing commit fails alone and
//! the others are written whole. Callers are answered only after `COMMIT` returned.
//!
//! A batch (with its savepoint replay) that takes longer than [`OP_TIMEOUT`] fails as Unavailable
//! and its connection is discarded; jobs whose caller stopped waiting are not written.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use deadpool_postgres::{Object, Pool};
use passlink_core::error::{Error, Kind, Result};
use passlink_core::ports::Observer;
use passlink_core::store::Commit;
use passlink_core::view::Change;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

use crate::{Health, OP_TIMEOUT, connection, db_err, timed_out};

/// The most commits applied in one transaction.
pub const MAX_BATCH: usize = 512;

pub(crate) struct Job {
    pub commit: Commit,
    pub reply: oneshot::Sender<Result<()>>,
}

pub(crate) fn spawn(
    pool: Pool,
    health: Arc<Health>,
    observer: Arc<dyn Observer>,
) -> mpsc::UnboundedSender<Job> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(pool, health, rx, observer));
    tx
}

async fn run(
    pool: Pool,
    health: Arc<Health>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    observer: Arc<dyn Observer>,
) {
    let mut conn: Option<Object> = None;
    // Ends when every sender (the store) is dropped.
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A caller that gave up (see `Store::commit`) was answered Unavailable: do not write it.
        batch.retain(|job| !job.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let client = match conn.take() {
            Some(c) if !c.is_closed() => c,
            _ => match connection(&pool, &health).await {
                Ok(c) => c,
                Err(err) => {
                    tracing::warn!(error = %err, "postgres writer cannot get a connection");
                    for job in batch {
                        let _ = job.reply.send(Err(err.clone()));
                    }
                    continue;
                }
            },
        };
        let commits: Vec<&Commit> = batch.iter().map(|j| &j.commit).collect();
        let started = std::time::Instant::now();
        let (results, healthy) = match tokio::time::timeout(OP_TIMEOUT, write_batch(&client, &commits)).await
        {
            Ok(r) => {
                observer.batch_committed(commits.len(), started.elapsed());
                r
            }
            Err(_) => {
                let err = timed_out("a write batch");
                tracing::warn!(error = %err, commits = commits.len(), "postgres writer: no answer, dropping the connection");
                drop(Object::take(client));
                health.timed_out(&pool);
                for job in batch {
                    let _ = job.reply.send(Err(err.clone()));
                }
                continue;
            }
        };
        if healthy && !client.is_closed() {
            conn = Some(client);
            health.answered();
        }
        for (job, r) in batch.into_iter().zip(results) {
            let _ = job.reply.send(r);
        }
    }
}

/// Write `commits` in one transaction (see the module doc). Returns one result per commit, and
/// whether the connection is left in a clean state (no open transaction) for the next batch.
pub(crate) async fn write_batch(client: &Object, commits: &[&Commit]) -> (Vec<Result<()>>, bool) {
    let ops: Vec<Result<Vec<Op>>> = commits.iter().map(|c| ops(c)).collect();
    // Commits that cannot even be encoded fail alone, before anything is sent.
    let good: Vec<&Op> = ops.iter().filter_map(|o| o.as_ref().ok()).flatten().collect();

    // Fast path: everything in one transaction.
    let fast = async {
        client.batch_execute("BEGIN").await.map_err(db_err)?;
        run_ops(client, &good).await?;
        client.batch_execute("COMMIT").await.map_err(db_err)
    }
    .await;
    match fast {
        Ok(()) => {
            return (ops.into_iter().map(|o| o.map(|_| ())).collect(), true);
        }
        Err(e) if e.kind == Kind::Unavailable => {
            let _ = client.batch_execute("ROLLBACK").await;
            return (ops.iter().map(|_| Err(e.clone())).collect(), false);
        }
        Err(_) => {
            if client.batch_execute("ROLLBACK").await.is_err() {
                let e = Error::unavailable("postgres rollback failed");
                return (ops.iter().map(|_| Err(e.clone())).collect(), false);
            }
        }
    }

    // Slow path: one savepoint per commit.
    let mut results: Vec<Result<()>> = Vec::with_capacity(ops.len());
    let replay = async {
        client.batch_execute("BEGIN").await.map_err(db_err)?;
        for o in &ops {
            let r = match o {
                Err(e) => Err(e.clone()),
                Ok(ops) => {
                    client.batch_execute("SAVEPOINT c").await.map_err(db_err)?;
                    let refs: Vec<&Op> = ops.iter().collect();
                    match run_ops(client, &refs).await {
                        Ok(()) => {
                            client.batch_execute("RELEASE SAVEPOINT c").await.map_err(db_err)?;
                            Ok(())
                        }
                        Err(e) if e.kind == Kind::Unavailable => return Err(e),
                        Err(e) => {
                            client
                                .batch_execute("ROLLBACK TO SAVEPOINT c; RELEASE SAVEPOINT c")
                                .await
                                .map_err(db_err)?;
                            Err(e)
                        }
                    }
                }
            };
            results.push(r);
        }
        client.batch_execute("COMMIT").await.map_err(db_err)
    }
    .await;
    match replay {
        Ok(()) => (results, true),
        Err(e) => {
            if e.kind != Kind::Unavailable {
                tracing::warn!(error = %e, "postgres batch failed");
            }
            let clean = client.batch_execute("ROLLBACK").await.is_ok();
            (ops.iter().map(|_| Err(e.clone())).collect(), clean)
        }
    }
}

/// What a unique violation of a statement means.
enum OnUnique {
    /// An (aggregate, sequence) that exists: a lost race.
    Conflict,
    /// A taken claim: the claim's own error.
    Taken(Error),
    /// Cannot happen (upserts, deletes): an internal error.
    Internal,
}

type Param = Box<dyn ToSql + Sync + Send>;

/// One statement with its parameters.
struct Op {
    sql: &'static str,
    params: Vec<Param>,
    unique: OnUnique,
}

fn op(sql: &'static str, params: Vec<Param>) -> Op {
    Op { sql, params, unique: OnUnique::Internal }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

fn s(v: &str) -> Param {
    Box::new(v.to_string())
}

/// The statements of one commit, in the order the SQLite adapter writes them.
fn ops(commit: &Commit) -> Result<Vec<Op>> {
    let mut out = Vec::new();
    for claim in &commit.claims {
        out.push(Op {
            sql: "INSERT INTO unique_constraints (kind, value) VALUES ($1, $2)",
            params: vec![s(claim.kind), s(&claim.value)],
            unique: OnUnique::Taken(claim.taken.clone()),
        });
    }
    for (kind, value) in &commit.released {
        out.push(op(
            "DELETE FROM unique_constraints WHERE kind = $1 AND value = $2",
            vec![s(kind), s(value)],
        ));
    }
    for ev in &commit.events {
        let sequence = i64::try_from(ev.sequence).map_err(Error::internal)?;
        out.push(Op {
            sql: "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, created_at, \
                  resource_owner, creator, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            params: vec![
                s(ev.aggregate_kind.as_str()),
                s(&ev.aggregate_id),
                Box::new(sequence),
                s(ev.event.type_name()),
                Box::new(ev.created_at.0),
                s(&ev.resource_owner),
                s(&ev.creator),
                Box::new(to_json(&ev.event)?),
            ],
            unique: OnUnique::Conflict,
        });
    }
    for ch in &commit.changes {
        out.push(change(ch)?);
    }
    for job in &commit.outbox {
        out.push(op(
            "INSERT INTO outbox (id, state, created_at, next_attempt_at, data) \
             VALUES ($1, 'pending', $2, $2, $3)",
            vec![s(&job.id), Box::new(job.created_at.0), Box::new(to_json(job)?)],
        ));
    }
    for n in &commit.notifications {
        out.push(op(
            "INSERT INTO notifications (id, kind, user_id, seq, state, created_at, next_attempt_at, attempts, data) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
            vec![
                s(&n.id),
                s(&n.kind),
                s(&n.user_id),
                Box::new(i64::try_from(n.seq).map_err(Error::internal)?),
                Box::new(n.created_at.0),
                Box::new(n.due_at.0),
                Box::new(i64::from(n.attempts)),
                Box::new(to_json(n)?),
            ],
        ));
    }
    for u in &commit.notification_updates {
        // A notification in a final state stays there (a late outcome of a lost lease).
        out.push(op(
            "UPDATE notifications SET state = $2, next_attempt_at = $3, attempts = $4, last_error = $5, \
             lease_owner = NULL, lease_until = NULL WHERE id = $1 AND state = 'pending'",
            vec![
                s(&u.id),
                s(u.state.as_str()),
                Box::new(u.next_attempt_at.0),
                Box::new(i64::from(u.attempts)),
                Box::new(u.last_error.clone()),
            ],
        ));
    }
    for u in &commit.outbox_updates {
        // A job in a final state stays there (a late outcome of a taken-over lease is ignored).
        out.push(op(
            "UPDATE outbox SET state = $2, next_attempt_at = $3, data = $4, last_error = $5, \
             lease_owner = NULL, lease_until = NULL WHERE id = $1 AND state = 'pending'",
            vec![
                s(&u.job.id),
                s(u.state.as_str()),
                Box::new(u.next_attempt_at.0),
                Box::new(to_json(&u.job)?),
                Box::new(u.last_error.clone()),
            ],
        ));
    }
    Ok(out)
}

fn change(ch: &Change) -> Result<Op> {
    Ok(match ch {
        Change::Instance(v) => op(
            "INSERT INTO instances (id, data) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            vec![s(&v.id), Box::new(to_json(v)?)],
        ),
        Change::Org(v) => op(
            "INSERT INTO orgs (id, data) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            vec![s(&v.id), Box::new(to_json(v)?)],
        ),
        Change::User(v) | Change::UserSequence(v) => op(
            "INSERT INTO users (id, org_id, username, data) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET username = excluded.username, data = excluded.data",
            vec![s(&v.id), s(&v.org_id), s(&v.username), Box::new(to_json(v)?)],
        ),
        Change::Membership(m) => op(
            "INSERT INTO memberships (user_id, scope, roles, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, scope) DO UPDATE SET roles = excluded.roles",
            vec![s(&m.user_id), s(m.scope.key()), Box::new(to_json(&m.roles)?), Box::new(m.created_at.0)],
        ),
        Change::Pat(p) => op(
            "INSERT INTO pats (token_hash, id, user_id, data) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (token_hash) DO UPDATE SET data = excluded.data",
            vec![Box::new(p.token_hash.to_vec()), s(&p.id), s(&p.user_id), Box::new(to_json(p)?)],
        ),
        Change::Session(v) => op(
            "INSERT INTO sessions (id, user_id, creator, created_at, data) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, data = excluded.data",
            vec![
                s(&v.id),
                s(v.user_id().unwrap_or_default()),
                s(&v.creator),
                Box::new(v.created_at.0),
                Box::new(to_json(v)?),
            ],
        ),
        Change::Credential(o) => op(
            "INSERT INTO webauthn_credentials (cred_id, user_id) VALUES ($1, $2) \
             ON CONFLICT (cred_id) DO UPDATE SET user_id = excluded.user_id",
            vec![s(&o.cred_id), s(&o.user_id)],
        ),
        Change::Code(v) => op(
            "INSERT INTO passkey_codes (id, user_id, data) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            vec![s(&v.id), s(&v.user_id), Box::new(to_json(v)?)],
        ),
        Change::Passkey(v) => op(
            "INSERT INTO passkeys (id, user_id, created_at, data) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            vec![s(&v.id), s(&v.user_id), Box::new(v.created_at.0), Box::new(to_json(v)?)],
        ),
    })
}

/// Send every op back to back (pipelined, in order) and wait for all answers. The first failing
/// op decides the error (the ones after it fail only because the transaction is aborted).
async fn run_ops(client: &Object, ops: &[&Op]) -> Result<()> {
    let mut stmts = Vec::with_capacity(ops.len());
    for o in ops {
        // Cached per connection: a lookup after the first batch.
        stmts.push(client.prepare_cached(o.sql).await.map_err(db_err)?);
    }
    let params: Vec<Vec<&(dyn ToSql + Sync)>> =
        ops.iter().map(|o| o.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()).collect();
    let results =
        join_in_order(stmts.iter().zip(&params).map(|(st, p)| async move { client.execute(st, p).await }))
            .await;
    for (o, r) in ops.iter().zip(results) {
        if let Err(e) = r {
            let unique = e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION);
            return Err(match (&o.unique, unique) {
                (OnUnique::Taken(taken), true) => taken.clone(),
                (OnUnique::Conflict, true) => Error::conflict(),
                _ => db_err(e),
            });
        }
    }
    Ok(())
}

/// Poll every future concurrently and return their outputs in order. The first poll of each
/// happens in order, so tokio-postgres sends their statements in order. Answers arrive in order
/// too, so after the first pass only the oldest unfinished future is polled until it is done
/// (every future wakes the same task): linear, not quadratic, in the batch size.
async fn join_in_order<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let (mut next, mut sent) = (0, 0);
    std::future::poll_fn(|cx| {
        let mut blocked = false;
        for i in next..futures.len() {
            if outputs[i].is_some() {
                continue;
            }
            if blocked && i < sent {
                break;
            }
            match futures[i].as_mut().poll(cx) {
                Poll::Ready(v) => outputs[i] = Some(v),
                Poll::Pending => blocked = true,
            }
            sent = sent.max(i + 1);
        }
        while next < outputs.len() && outputs[next].is_some() {
            next += 1;
        }
        if next == outputs.len() { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
