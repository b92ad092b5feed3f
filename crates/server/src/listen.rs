//! The accept loop of the main port: plain TCP or TLS ([`crate::tls`]), then hyper's automatic
//! HTTP/1.1-or-HTTP/2 connection serving the router (gRPC over h2, the rest over either).
//!
//! Shutdown: when `shutdown` completes the loop stops accepting, tells every open connection to
//! finish gracefully (HTTP/1: close after the response in progress; HTTP/2: GOAWAY, the streams
//! in progress finish), drops the handshakes still running, and returns once every connection
//! has closed. [`crate::server::Server::shutdown`] bounds the whole with its timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How long a client may take for the TLS handshake before its connection is closed.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `router` on `listener` (TLS when `tls` is given) until `shutdown` completes, then
/// drain the connections (see the module note).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http2().enable_connect_protocol();
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
    stop: watch::Receiver<bool>,
    /// Held until the connection closes: the accept loop waits for every one.
    _open: watch::Receiver<()>,
}

impl Conn {
    async fn run(mut self, tcp: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.serve(tcp, peer).await;
        };
        let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
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
    /// signal the connection finishes gracefully.
    async fn serve<I>(mut self, io: I, peer: SocketAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = TowerToHyperService::new(self.router.clone());
        let conn = self.builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let mut stopping = false;
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = self.stop.wait_for(|s| *s), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
