//! `grpc.health.v1.Health`: is passlink able to serve, for the whole server (`""`) or one of the
//! services it serves?
//!
//! The status is the readiness check's (`/readyz`): SERVING when the store answers a ping within
//! [`PROBE_TIMEOUT`], NOT_SERVING when it does not. Every served service shares it (they all
//! need the store). Check probes once per call; an unknown service name answers NOT_FOUND.
//! Watch sends the status at once, then again whenever it changes: one [`Monitor`] task probes
//! every [`POLL_INTERVAL`] while anyone watches, and all watches read its [`watch`] channel. An
//! unknown service gets SERVICE_UNKNOWN and the stream stays open (the published semantics).
//! When the server shuts down, each Watch sends NOT_SERVING and ends with UNAVAILABLE, so the
//! graceful shutdown does not wait for watchers; a Check still in flight answers NOT_SERVING.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use connectrpc::{ConnectError, RequestContext, Response, ServiceRequest, ServiceResult, ServiceStream};
use passlink_core::app::App;
use passlink_wire::grpc::health::v1::health_check_response::ServingStatus;
use passlink_wire::grpc::health::v1::{HealthCheckRequest, HealthCheckResponse};
use tokio::sync::watch;

/// How often the store is probed while a Watch is open.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A store that has not answered a ping within this is not serving.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The Health service: the services it knows, the shared monitor, the shutdown signal.
pub struct Health {
    services: HashSet<String>,
    monitor: Arc<Monitor>,
    stopping: watch::Receiver<bool>,
}

impl Health {
    /// `services`: the full names of the services served (the empty name is always known).
    pub fn new(app: Arc<App>, services: Vec<String>, stopping: watch::Receiver<bool>) -> Self {
        let (status, _) = watch::channel(ServingStatus::UNKNOWN);
        let monitor = Arc::new(Monitor { app, status, polling: AtomicBool::new(false) });
        Health { services: services.into_iter().collect(), monitor, stopping }
    }

    fn knows(&self, service: &str) -> bool {
        service.is_empty() || self.services.contains(service)
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse { status: status.into(), ..Default::default() }
}

/// Probes the store and publishes the status to the watches; polls only while some are open.
struct Monitor {
    app: Arc<App>,
    status: watch::Sender<ServingStatus>,
    /// Whether the polling task runs.
    polling: AtomicBool,
}

impl Monitor {
    /// The store's status now (the readiness check, bounded by [`PROBE_TIMEOUT`]).
    async fn probe(&self) -> ServingStatus {
        match tokio::time::timeout(PROBE_TIMEOUT, self.app.store().ping()).await {
            Ok(Ok(())) => ServingStatus::SERVING,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "health check: the store does not answer");
                ServingStatus::NOT_SERVING
            }
            Err(_) => {
                tracing::warn!("health check: the store did not answer in time");
                ServingStatus::NOT_SERVING
            }
        }
    }

    fn publish(&self, now: ServingStatus) {
        self.status.send_if_modified(|s| {
            let changed = *s != now;
            *s = now;
            changed
        });
    }

    /// A fresh status, published, and a receiver for its changes; starts polling if needed.
    async fn subscribe(self: &Arc<Self>) -> (ServingStatus, watch::Receiver<ServingStatus>) {
        let mut changes = self.status.subscribe();
        let now = self.probe().await;
        self.publish(now);
        changes.mark_unchanged();
        if !self.polling.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.clone().poll());
        }
        (now, changes)
    }

    async fn poll(self: Arc<Self>) {
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            if self.status.receiver_count() == 0 {
                self.polling.store(false, Ordering::SeqCst);
                // A watch that subscribed since the count saw `polling` still set: keep polling
                // for it unless another task has taken over.
                if self.status.receiver_count() == 0 || self.polling.swap(true, Ordering::SeqCst) {
                    return;
                }
            }
            let now = self.probe().await;
            self.publish(now);
        }
    }
}

// The concrete return types are the point (no boxing); the generated trait only bounds them.
#[allow(refining_impl_trait)]
impl passlink_wire::grpc::health::v1::Health for Health {
    async fn check(
        &self,
        _: RequestContext,
        request: ServiceRequest<'_, HealthCheckRequest>,
    ) -> ServiceResult<HealthCheckResponse> {
        let service = request.view().service;
        if !self.knows(service) {
            return Err(ConnectError::not_found(format!("unknown service {service:?}")));
        }
        if *self.stopping.borrow() {
            return Response::ok(response(ServingStatus::NOT_SERVING));
        }
        Response::ok(response(self.monitor.probe().await))
    }

    async fn watch(
        &self,
        _: RequestContext,
        request: ServiceRequest<'_, HealthCheckRequest>,
    ) -> ServiceResult<ServiceStream<HealthCheckResponse>> {
        let known = self.knows(request.view().service);
        let mut stopping = self.stopping.clone();
        let (first, mut changes) = if known {
            let (now, changes) = self.monitor.subscribe().await;
            (now, Some(changes))
        } else {
            (ServingStatus::SERVICE_UNKNOWN, None)
        };
        let stream = async_stream(move |tx| async move {
            let mut last = first;
            if tx.send(Ok(response(first))).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    () = shutdown(&mut stopping) => break,
                    _ = tx.closed() => return,
                    changed = async {
                        match changes.as_mut() {
                            Some(c) => c.changed().await.ok().map(|()| *c.borrow_and_update()),
                            None => std::future::pending().await,
                        }
                    } => {
                        let Some(now) = changed else { break };
                        if now != last {
                            last = now;
                            if tx.send(Ok(response(now))).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            if known && last != ServingStatus::NOT_SERVING {
                let _ = tx.send(Ok(response(ServingStatus::NOT_SERVING))).await;
            }
            let _ = tx.send(Err(ConnectError::unavailable("the server is shutting down"))).await;
        });
        Response::stream_ok(stream)
    }
}

/// Resolves when the server shuts down (never, if nothing can signal it any more).
async fn shutdown(stopping: &mut watch::Receiver<bool>) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A stream fed by a task: `body` sends the items into a small channel; the stream ends when the
/// task returns, and the task sees `tx.closed()` when the client goes away.
fn async_stream<T, F, Fut>(body: F) -> impl futures::Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(body(tx));
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
