//! The accept loop of the main port: plain TCP or TLS ([`crate::tls`]), then hyper's automatic
//! HTTP/1.1-or-HTTP/2 connection serving the router (gRPC over h2, the rest over either), with
//! the connection-level limits of [`ConnLimits`] (slow and abusive clients).
//!
//! Shutdown: when `shutdown` completes the loop stops accepting, tells every open connection to
//! finish gracefully (HTTP/1: close after the response in progress; HTTP/2: GOAWAY, the streams
//! in progress finish), drops the handshakes still running, and returns once every connection
//! has closed. [`crate::server::Server::shutdown`] bounds the whole with its timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// Limits of each connection on the main port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    /// A client must finish the TLS handshake, send its first request's head (HTTP/1) or its
    /// preface and first request (HTTP/2), and each later HTTP/1 request head, within this; an
    /// idle HTTP/1 keep-alive connection is closed after it too. Default 10 s.
    pub header_read_timeout: Duration,
    /// A request body must have arrived whole this long after its head (gRPC and Connect
    /// streaming requests excepted). Default 30 s.
    pub body_read_timeout: Duration,
    /// Largest request head: HTTP/1 request line and headers (431 past it; at least 8 KiB),
    /// HTTP/2 header list. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Most header fields of an HTTP/1 request (431 past it). Default 100.
    pub max_headers: usize,
    /// HTTP/2 streams a connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    /// Default 100.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 streams a client may reset before the server accepted them, per connection, before
    /// the connection ends with GOAWAY ENHANCE_YOUR_CALM (the rapid-reset attack). Default 20.
    pub h2_max_pending_accept_reset_streams: usize,
    /// HTTP/2 streams the server may reset because of the client's protocol errors, per
    /// connection, before GOAWAY (the "made you reset" attack). Default 256.
    pub h2_max_local_error_reset_streams: usize,
}

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            h2_max_concurrent_streams: 100,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 256,
        }
    }
}

/// hyper's smallest HTTP/1 read buffer.
const MIN_BUF: usize = 8 * 1024;

fn builder(l: &ConnLimits) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(l.header_read_timeout)
        .max_headers(l.max_headers)
        .max_buf_size(l.max_header_bytes.max(MIN_BUF));
    b.http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .max_concurrent_streams(l.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(l.h2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(l.h2_max_local_error_reset_streams)
        .max_header_list_size(u32::try_from(l.max_header_bytes).unwrap_or(u32::MAX));
    b
}

/// Serve `router` on `listener` (TLS when `tls` is given) until `shutdown` completes, then
/// drain the connections (see the module note).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let builder = builder(&limits);
    // Connections watch `stop` for the shutdown and hold `open` until they close.
    let (stop_tx, stop) = watch::channel(false);
    let (open_tx, open) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let conn = Conn {
            builder: builder.clone(),
            router: router.clone(),
            limits: limits.clone(),
            stop: stop.clone(),
            _open: open.clone(),
        };
        tokio::spawn(conn.run(tcp, peer, acceptor.clone()));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open);
    open_tx.closed().await;
    Ok(())
}

/// An error of `accept`: one connection's (reset before it was accepted) is skipped; others
/// (no file descriptors left) are logged and retried after a pause, as hyper's and axum's
/// servers do.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One accepted connection and what it needs.
struct Conn {
    builder: Builder<TokioExecutor>,
    router: Router,
    limits: ConnLimits,
    stop: watch::Receiver<bool>,
    /// Held until the connection closes: the accept loop waits for every one.
    _open: watch::Receiver<()>,
}

impl Conn {
    async fn run(mut self, tcp: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.serve(tcp, peer).await;
        };
        let handshake = tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(tcp));
        let stream = tokio::select! {
            r = handshake => r,
            _ = self.stop.wait_for(|s| *s) => return,
        };
        match stream {
            Ok(Ok(stream)) => self.serve(stream, peer).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }

    /// HTTP/1.1 or HTTP/2 (by the client's preface) until the connection ends; on the shutdown
    /// signal the connection finishes gracefully. No first request within the header read
    /// timeout (a silent client, a preface that never ends): the connection is dropped.
    async fn serve<I>(mut self, io: I, peer: SocketAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let started = Arc::new(AtomicBool::new(false));
        let service = {
            let started = started.clone();
            let body_timeout = self.limits.body_read_timeout;
            let router = self.router.clone();
            tower::service_fn(move |mut req: Request<Incoming>| {
                started.store(true, Ordering::Relaxed);
                // The client's address for handlers and layers (`ConnectInfo<SocketAddr>`), as
                // axum's `into_make_service_with_connect_info` gives it.
                req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                let (req, expired) = with_deadline(req, body_timeout);
                let answer = router.clone().oneshot(req);
                async move {
                    let answer = answer.await;
                    // A body cut off by its deadline fails the handler's read (its own error
                    // answer, a 500 for some protocols): the client was too slow, say so.
                    match expired {
                        Some(e) if e.load(Ordering::Relaxed) => Ok(body_timed_out()),
                        _ => answer,
                    }
                }
            })
        };
        let conn =
            self.builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
        let mut conn = std::pin::pin!(conn);
        let first = tokio::time::sleep(self.limits.header_read_timeout);
        let mut first = std::pin::pin!(first);
        let mut first_passed = false;
        let mut stopping = false;
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = &mut first, if !first_passed => {
                    if !started.load(Ordering::Relaxed) {
                        tracing::debug!(%peer, "no request within the header read timeout: closed");
                        return;
                    }
                    first_passed = true;
                }
                _ = self.stop.wait_for(|s| *s), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The request with its body bounded by `timeout` (from now), and the flag its deadline sets;
/// gRPC and Connect streaming requests are left alone (their bodies are streams of messages that
/// may last), and so are requests without a body.
fn with_deadline(req: Request<Incoming>, timeout: Duration) -> (Request<Body>, Option<Arc<AtomicBool>>) {
    use hyper::body::Body as _;
    let streaming =
        req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| {
            (t.starts_with("application/grpc") && !t.starts_with("application/grpc-web"))
                || t.starts_with("application/connect+")
        });
    if streaming || req.body().is_end_stream() {
        return (req.map(Body::new), None);
    }
    let expired = Arc::new(AtomicBool::new(false));
    let sleep = Box::pin(tokio::time::sleep(timeout));
    let req = req.map(|inner| Body::new(Deadline { inner, sleep, expired: expired.clone() }));
    (req, Some(expired))
}

/// `408 Request Timeout`, and the connection closes (the rest of the body is never read).
fn body_timed_out() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut r = (http::StatusCode::REQUEST_TIMEOUT, "request body timeout\n").into_response();
    r.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    r
}

/// A request body that fails once its deadline passes before it has ended.
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// Set when the deadline cut the body off.
    expired: Arc<AtomicBool>,
}

/// The error of a body cut off by its deadline.
#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive within the body read timeout")
    }
}

impl std::error::Error for BodyTimeout {}

impl hyper::body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(|f| f.map_err(Into::into))),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err(Box::new(BodyTimeout))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
