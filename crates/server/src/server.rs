//! The server: [`router`] (every route on the one port) and [`Server::start`] (open the store,
//! load keys, bootstrap, start the delivery worker, serve until shutdown).
//!
//! Shutdown ([`Server::shutdown`]), bounded by `Config::shutdown_timeout`: /readyz answers 503
//! at once (load balancers stop sending), the requests that were in flight finish while the
//! listener still answers, then it stops accepting and open connections finish their request;
//! meanwhile the delivery worker lets its sends finish for half the bound and releases the jobs
//! of the others (pending again at once). Past the bound the server stops anyway, with a log
//! line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use passlink_core::app::App;
use passlink_core::ports::Clock;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::api::Api;
use crate::assemble::{RunningWorker, bootstrap, build_app, start_worker};
use crate::config::{Backend, Config};
use crate::limits::{Limiter, Limits};
use crate::metrics::Metrics;
use crate::observe::{self, Observe};
use crate::platform::{SystemClock, check_private};
use crate::tls::Tls;
use crate::{oauth_endpoints, oidc_endpoints, ops, rest, rpc, ui, ui_login};

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served when `--metrics-listen` moved it off the main port.
    pub metrics_addr: Option<SocketAddr>,
    /// The server's metrics (rendered by `GET /metrics`).
    pub metrics: Arc<Metrics>,
    pub app: Arc<App>,
    /// `<data-dir>/admin.pat`: where the bootstrap admin's token was written.
    pub admin_token_file: PathBuf,
    /// The external URL default links point to.
    pub external_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    /// Turns true when the shutdown starts (ends gRPC health Watch streams).
    stopping: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    /// The delivery worker (when a provider is configured) and its stop signal.
    worker: Option<RunningWorker>,
    /// The events webhook's worker (when configured) and its stop signal.
    events_worker: Option<RunningWorker>,
    drain: Arc<Drain>,
    shutdown_timeout: Duration,
    /// The main port's TLS (its certificate is reloaded by [`Server::reload_tls`]).
    tls: Option<Arc<Tls>>,
}

/// What the router and [`Server::shutdown`] share: is the server draining, and how many requests
/// that started before the drain are still running.
#[derive(Debug, Default)]
pub struct Drain {
    draining: AtomicBool,
    before: AtomicUsize,
}

/// A request counted in [`Drain::before`] until it is answered.
struct Counted(Arc<Drain>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.before.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Count the requests that start before the drain (the ones it waits for).
async fn count_requests(State(drain): State<Arc<Drain>>, req: Request, next: Next) -> Response {
    let _counted = (!drain.draining.load(Ordering::Acquire)).then(|| {
        drain.before.fetch_add(1, Ordering::AcqRel);
        Counted(drain.clone())
    });
    next.run(req).await
}

async fn readyz(State((app, drain)): State<(Arc<App>, Arc<Drain>)>) -> (StatusCode, &'static str) {
    if drain.draining.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match app.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}

/// `GET /metrics`: the exposition, with the outbox depth and the events webhook's backlog read
/// from the store now (left at their last values when the store does not answer).
async fn metrics((app, metrics): (Arc<App>, Arc<Metrics>)) -> Response {
    let depth = match app.store().outbox_depth().await {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the outbox depth");
            None
        }
    };
    match app.store().events_depth().await {
        Ok(d) => metrics.set_events_depth(d),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the events webhook's backlog"),
    }
    let mut r = metrics.render(depth).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE));
    r
}

/// The `GET /metrics` route alone (with the request layer), for the separate metrics listener.
pub fn metrics_router(app: Arc<App>, metrics: Arc<Metrics>) -> Router {
    let observe = Observe::new(metrics.clone());
    Router::new()
        .route("/metrics", get(move || self::metrics((app.clone(), metrics.clone()))))
        .layer(axum::middleware::from_fn_with_state(observe, observe::layer))
}

/// The one router: REST routes, the hosted page, OAuth2, health, and the RPC protocols (gRPC,
/// gRPC-web, Connect through connectrpc) as the fallback. REST and the RPC protocols serve the
/// same table of RPCs ([`rpc::table`]); the RPC protocols also serve gRPC health and reflection
/// ([`ops`]), whose Watch streams end when `stopping` turns true. `GET /metrics` is on it when
/// `serve_metrics`; the request layer ([`observe`]) wraps every route, CORS included, and
/// the limits layer ([`crate::limits`]) every route inside it.
pub fn router(
    app: Arc<App>,
    metrics: Arc<Metrics>,
    serve_metrics: bool,
    stopping: watch::Receiver<bool>,
    limits: &Limits,
) -> Result<Router, String> {
    router_draining(app, metrics, serve_metrics, stopping, Arc::default(), limits, false)
}

/// [`router`] with the drain state of a [`Server`]: /readyz answers 503 once it drains, and the
/// requests in flight are counted. With `tls`, the hosted pages (registration, sign-in, OAuth2
/// and OpenID Connect) send HSTS.
fn router_draining(
    app: Arc<App>,
    metrics: Arc<Metrics>,
    serve_metrics: bool,
    stopping: watch::Receiver<bool>,
    drain: Arc<Drain>,
    limits: &Limits,
    tls: bool,
) -> Result<Router, String> {
    let pages = |r: Router| if tls { r.layer(axum::middleware::map_response(crate::tls::hsts)) } else { r };
    let table = rpc::table();
    let services = ops::served_services(table.iter().map(|(path, _)| *path));
    let api = Api::new(app.clone(), table);
    let rest = api.rest_routes();
    let openapi = api.openapi();
    let ops = ops::dispatcher(app.clone(), services, stopping)?;
    let limiter = Limiter::new(limits);
    let max_body = limiter.max_body_bytes();
    // A body without a Content-Length is counted while it is read: by connectrpc for the RPC
    // protocols, by axum's body limit for the other routes.
    let connect = connectrpc::ConnectRpcService::new(connectrpc::Chain(api, ops)).with_limits(
        connectrpc::Limits::default().with_max_request_body_size(max_body).with_max_message_size(max_body),
    );
    let observe = Observe::new(metrics.clone());
    let mut router = rest
        .merge(pages(ui::routes(app.clone())))
        .merge(pages(ui_login::routes(app.clone())))
        .merge(pages(oauth_endpoints::routes(app.clone(), metrics.clone())))
        .merge(pages(oidc_endpoints::routes(app.clone())))
        .route("/openapi.json", get(move || async move { rest::json_response(StatusCode::OK, openapi) }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz).with_state((app.clone(), drain.clone())));
    if serve_metrics {
        router = router.route("/metrics", get(move || self::metrics((app.clone(), metrics.clone()))));
    }
    Ok(router
        .fallback_service(connect)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(limiter, crate::limits::layer))
        .layer(cors())
        .layer(axum::middleware::from_fn_with_state(drain, count_requests))
        .layer(axum::middleware::from_fn_with_state(observe, observe::layer)))
}

/// Browsers on other origins may call the API (a customer's own registration page calls
/// RegisterPasskey with the code): any origin, no cookies (credentials travel in headers), the
/// headers the four protocols use, and the gRPC status headers exposed to gRPC-web clients.
fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, Method};
    let h = HeaderName::from_static;
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::PUT, Method::PATCH])
        .allow_headers([
            h("authorization"),
            h("content-type"),
            h("x-zitadel-orgid"),
            h("connect-protocol-version"),
            h("connect-timeout-ms"),
            h("x-grpc-web"),
            h("x-user-agent"),
            h("grpc-timeout"),
            h("accept-language"),
            h(observe::REQUEST_ID),
        ])
        .expose_headers([
            h("grpc-status"),
            h("grpc-message"),
            h("grpc-status-details-bin"),
            h(observe::REQUEST_ID),
        ])
        .max_age(std::time::Duration::from_secs(3600))
}

impl Server {
    /// Start serving on `listener` with `cfg`.
    pub async fn start(cfg: Config, listener: TcpListener) -> Result<Server, String> {
        Server::start_with_clock(cfg, listener, Arc::new(SystemClock)).await
    }

    /// Start with a given clock (tests move time forward to expire codes).
    pub async fn start_with_clock(
        cfg: Config,
        listener: TcpListener,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, String> {
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        if let Some(h) = &cfg.limits.proxy.header {
            axum::http::HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| format!("--trusted-proxy-header {h:?} is not a header name"))?;
        }
        // A bad certificate or key fails the start before anything else is opened.
        let tls = cfg.tls.as_ref().map(Tls::new).transpose()?.map(Arc::new);
        let external_url = cfg.external_url(addr);
        let store_kind = match cfg.backend()? {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        };
        let metrics = Metrics::new(store_kind);
        let metrics_listener = match cfg.metrics_listen {
            Some(at) => Some(TcpListener::bind(at).await.map_err(|e| format!("--metrics-listen {at}: {e}"))?),
            None => None,
        };
        // The admin token, like the keys file, must be private to passlink's user.
        let admin_token_file = cfg.data_dir.join("admin.pat");
        check_private(&admin_token_file, "admin token")?;
        let app = build_app(&cfg, &external_url, clock, &metrics).await?;
        bootstrap(&app, &admin_token_file).await?;
        let worker = start_worker(&cfg, &app, &external_url, &metrics)?;
        let events_worker = crate::events::start_events_worker(&cfg, &app, &metrics)?;
        let (tx, rx) = oneshot::channel::<()>();
        let (stop_metrics, stopped_metrics) = tokio::sync::watch::channel(false);
        let metrics_addr = match metrics_listener {
            Some(l) => {
                let at = l.local_addr().map_err(|e| e.to_string())?;
                let router = metrics_router(app.clone(), metrics.clone());
                let mut stopped = stopped_metrics;
                tokio::spawn(async move {
                    let served = axum::serve(l, router)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.changed().await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "the metrics listener failed");
                    }
                });
                tracing::info!(addr = %at, "serving GET /metrics on its own listener");
                Some(at)
            }
            None => None,
        };
        let (stopping, stopping_rx) = watch::channel(false);
        let drain = Arc::new(Drain::default());
        let router = router_draining(
            app.clone(),
            metrics.clone(),
            metrics_addr.is_none(),
            stopping_rx,
            drain.clone(),
            &cfg.limits,
            tls.is_some(),
        )?;
        let tls_config = tls.as_ref().map(|t| t.config());
        let connection = cfg.connection.clone();
        let task = tokio::spawn(async move {
            // The peer's address reaches the limits layer as `ConnectInfo` (set by the accept loop).
            let served = crate::listen::serve(listener, router, tls_config, connection, async {
                let _ = rx.await;
            })
            .await;
            let _ = stop_metrics.send(true);
            served
        });
        let over = if tls.is_some() { "TLS" } else { "plain HTTP" };
        tracing::info!(%addr, %external_url, over, "passlink is serving REST, gRPC, gRPC-web and Connect");
        tracing::info!(
            max_body_bytes = cfg.limits.max_body_bytes,
            per_ip = %cfg.limits.per_ip,
            per_target = %cfg.limits.per_target,
            client_address = cfg.limits.proxy.header.as_deref().unwrap_or("socket peer"),
            "limits of failed attempts"
        );
        Ok(Server {
            addr,
            metrics_addr,
            metrics,
            app,
            admin_token_file,
            external_url,
            shutdown: Some(tx),
            stopping,
            task,
            worker,
            events_worker,
            drain,
            shutdown_timeout: cfg.shutdown_timeout,
            tls,
        })
    }

    /// Read the TLS certificate and key files again (SIGHUP in the binary): new handshakes get
    /// the new certificate, open connections keep theirs. On an error the certificate in use
    /// stays and the error says why. Without TLS there is nothing to reload (`Ok(false)`).
    pub fn reload_tls(&self) -> Result<bool, String> {
        let Some(tls) = &self.tls else { return Ok(false) };
        tls.reload()?;
        let files = tls.files();
        tracing::info!(
            cert_file = %files.cert_file.display(),
            key_file = %files.key_file.display(),
            "reloaded the TLS certificate: new connections use it"
        );
        Ok(true)
    }

    /// Drain and stop (see the module note), within the shutdown timeout.
    pub async fn shutdown(mut self) -> Result<(), String> {
        let limit = self.shutdown_timeout;
        match tokio::time::timeout(limit, self.drain_and_stop()).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(
                    timeout_secs = limit.as_secs_f64(),
                    requests_in_flight = self.drain.before.load(Ordering::Acquire),
                    "shutdown timeout: stopping with work unfinished"
                );
                self.task.abort();
                Ok(())
            }
        }
    }

    async fn drain_and_stop(&mut self) -> Result<(), String> {
        self.drain.draining.store(true, Ordering::Release);
        // gRPC health: Check answers NOT_SERVING, Watch streams end.
        let _ = self.stopping.send(true);
        // The worker drains beside the requests.
        let worker = self.worker.take().map(|(stop, task)| {
            let _ = stop.send(true);
            task
        });
        let events_worker = self.events_worker.take().map(|(stop, task)| {
            let _ = stop.send(true);
            task
        });
        // The requests that were in flight at the signal finish while the listener still
        // answers (/readyz with 503 among them).
        while self.drain.before.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = match (&mut self.task).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Some(task) = worker {
            let _ = task.await;
        }
        if let Some(task) = events_worker {
            let _ = task.await;
        }
        tracing::info!("shutdown complete");
        served
    }

    /// Wait until the server stops by itself (it does not, unless the listener fails).
    pub async fn wait_for(self, signal: impl std::future::Future<Output = ()>) -> Result<(), String> {
        signal.await;
        tracing::info!("shutting down: draining in-flight requests");
        self.shutdown().await
    }
}
