//! The outbox worker: lease due jobs, send, record the outcome.
//!
//! Every replica runs one. Leases (see `Store::claim_jobs`) keep two workers off the same job;
//! a job leased by a worker that died is taken over when its lease runs out. Jobs of one batch
//! are sent concurrently, each bounded by the sender's own timeout (well under the lease). At
//! stop, sends in progress get `WorkerConfig::drain` to finish and the jobs of the others are
//! released (pending again at once) instead of waiting for their lease to run out.

use std::sync::Arc;
use std::time::Duration;

use passlink_core::app::{App, Failed, Prepared};
use passlink_core::event::OutboxJob;
use passlink_core::ports::{DeliveryOutcome, NoObserver, Observer};
use tokio::sync::watch;

use crate::Sender;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's lease owner name (unique per process).
    pub owner: String,
    /// How often to look for due jobs when there were none.
    pub poll_interval: Duration,
    /// Jobs leased (and sent concurrently) at a time.
    pub batch: usize,
    /// At stop: how long sends in progress may still finish; the jobs of those that do not are
    /// released (pending again at once, see `App::release_deliveries`).
    pub drain: Duration,
}

pub struct Worker {
    app: Arc<App>,
    sender: Arc<dyn Sender>,
    cfg: WorkerConfig,
    observer: Arc<dyn Observer>,
}

impl Worker {
    pub fn new(app: Arc<App>, sender: Arc<dyn Sender>, cfg: WorkerConfig) -> Worker {
        Worker { app, sender, cfg, observer: Arc::new(NoObserver) }
    }

    /// This worker, telling `observer` how each delivery ended (sent, retried, given up).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Worker {
        self.observer = observer;
        self
    }

    /// Run until `stop` turns true. Sends in progress get [`WorkerConfig::drain`] to finish;
    /// the jobs of the others are released instead of waiting for their lease to run out.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(sender = self.sender.name(), owner = %self.cfg.owner, "delivery worker started");
        loop {
            if *stop.borrow() {
                break;
            }
            let idle = match self.app.claim_deliveries(&self.cfg.owner, self.cfg.batch).await {
                Ok(jobs) if jobs.is_empty() => true,
                Ok(jobs) => {
                    self.send_batch(jobs, &mut stop).await;
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, "delivery worker: cannot lease jobs");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                    changed = stop.changed() => if changed.is_err() { break },
                }
            }
        }
        tracing::info!("delivery worker stopped");
    }

    /// Send a batch concurrently; on stop, wait up to `drain`, then abort what is left and
    /// release those jobs.
    async fn send_batch(&self, jobs: Vec<OutboxJob>, stop: &mut watch::Receiver<bool>) {
        let mut set = tokio::task::JoinSet::new();
        let mut unfinished = std::collections::HashMap::new();
        for job in jobs {
            let (app, sender, j) = (self.app.clone(), self.sender.clone(), job.clone());
            let observer = self.observer.clone();
            let handle = set.spawn(async move {
                if let Some(outcome) = deliver(&app, sender.as_ref(), &j).await {
                    observer.delivery(sender.name(), outcome);
                }
            });
            unfinished.insert(handle.id(), job);
        }
        let mut stopping = *stop.borrow();
        let mut deadline = None;
        loop {
            if stopping && deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + self.cfg.drain);
            }
            let done = match deadline {
                None => tokio::select! {
                    done = set.join_next_with_id() => done,
                    // A dropped stop sender stops the worker too.
                    changed = stop.changed() => { stopping = changed.is_err() || *stop.borrow(); continue; }
                },
                Some(d) => match tokio::time::timeout_at(d, set.join_next_with_id()).await {
                    Ok(done) => done,
                    Err(_) => break,
                },
            };
            match done {
                Some(Ok((id, ()))) => {
                    unfinished.remove(&id);
                }
                Some(Err(e)) => {
                    unfinished.remove(&e.id());
                }
                None => return,
            }
        }
        set.abort_all();
        while set.join_next().await.is_some() {}
        let left: Vec<OutboxJob> = unfinished.into_values().collect();
        match self.app.release_deliveries(&left).await {
            Ok(()) => tracing::info!(jobs = left.len(), "delivery worker: released the jobs it had not sent"),
            Err(e) => {
                tracing::warn!(error = %e, jobs = left.len(), "delivery worker: releasing jobs failed; their leases run out")
            }
        }
    }
}

/// One job, start to end. Logs name the job, code id and user, never the link or the code.
/// Returns how the attempt ended, when it was recorded.
async fn deliver(app: &App, sender: &dyn Sender, job: &OutboxJob) -> Option<DeliveryOutcome> {
    let prepared = match app.prepare_delivery(job).await {
        Ok(p) => p,
        Err(e) => {
            // The store is unavailable, or the sealed code cannot be opened: the lease runs out
            // and the job is tried again (an unopenable code fails the same way each time and
            // ends at max attempts / max age).
            tracing::warn!(job = %job.id, code_id = %job.code_id, error = %e, "delivery: preparing the message failed");
            if e.kind != passlink_core::error::Kind::Unavailable {
                return record_failure(app, job, &format!("preparing the message: {}", e.key), false).await;
            }
            return None;
        }
    };
    let message = match prepared {
        Prepared::Send(m) => m,
        Prepared::Finished(why) => {
            tracing::info!(job = %job.id, code_id = %job.code_id, user = %job.user_id, outcome = why, "delivery finished without sending");
            // Every finish but a redelivery of a sent link abandons the job (expired code, user
            // gone): a give-up, as the core records it (`code.send.failed`).
            return (why != "already sent").then_some(DeliveryOutcome::GivenUp);
        }
    };
    match sender.send(&message).await {
        Ok(()) => match app.delivery_succeeded(job).await {
            Ok(()) => {
                tracing::info!(
                    job = %job.id, code_id = %job.code_id, user = %job.user_id, sender = sender.name(),
                    message_id = %message.message_id, "registration link delivered"
                );
                Some(DeliveryOutcome::Sent)
            }
            // Sent but not recorded: the lease runs out, the job is redone, and the redelivery
            // carries the same message id.
            Err(e) => {
                tracing::warn!(job = %job.id, code_id = %job.code_id, error = %e, "delivery: sent, but recording it failed");
                None
            }
        },
        Err(e) => record_failure(app, job, &e.reason, e.permanent).await,
    }
}

async fn record_failure(
    app: &App,
    job: &OutboxJob,
    reason: &str,
    permanent: bool,
) -> Option<DeliveryOutcome> {
    match app.delivery_failed(job, reason, permanent).await {
        Ok(Failed::RetryAt(at)) => {
            let in_ms = at.since(app.now()).as_millis();
            tracing::warn!(job = %job.id, code_id = %job.code_id, user = %job.user_id, attempt = job.attempts + 1, retry_in_ms = in_ms as u64, reason, "delivery failed, will retry");
            Some(DeliveryOutcome::Retried)
        }
        Ok(Failed::Abandoned) => {
            tracing::error!(
                job = %job.id, code_id = %job.code_id, user = %job.user_id, attempt = job.attempts + 1, reason,
                "delivery abandoned: the link was not delivered (recorded as code.send.failed)"
            );
            Some(DeliveryOutcome::GivenUp)
        }
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "delivery: recording the failure failed");
            None
        }
    }
}
