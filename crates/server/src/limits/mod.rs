//! Request limits applied in the router: body size, and rate limits on what needs no account.
//!
//! - **Body size** ([`Limits::max_body_bytes`], 1 MiB by default): a request whose
//!   `Content-Length` is over the limit is answered before its body is read ([`layer`]): REST
//!   and the other HTTP routes 413 with grpc-gateway's status JSON (code 8), gRPC and gRPC-web
//!   `grpc-status: 8`, Connect 429 `resource_exhausted`. A body without a length (chunked,
//!   HTTP/2 data frames) is counted while it is read: axum's body limit for the REST and HTTP
//!   routes, connectrpc's `Limits` for the RPC protocols, the same answers.
//! - **Rate limits** ([`Limiter`]): token buckets ([`bucket`]) keyed by client address
//!   ([`client`]: the peer, or the trusted proxy's header) and by target (the user, code, session,
//!   authorization request or OAuth client the request names). **Only failed attempts count**: a
//!   token is taken when the request starts and given back when it succeeds (or fails on the
//!   server's side), so guessing codes of one user is throttled while users who enroll or sign in
//!   never are, however many share an address. A request refused by a limit costs nothing more.
//!   Guarded: code redemption (RegisterPasskey, VerifyPasskeyRegistration, the registration page's
//!   info), session checks (CreateSession, SetSession), `/oauth/v2/token`, `/oauth/v2/introspect`,
//!   `/oauth/v2/authorize` and the hosted sign-in pages. The per-address bucket applies to
//!   requests without a token (an authenticated login UI's many users share its address; its
//!   calls are limited per target only). A refusal is the core's [`Error::rate_limited`] (429 /
//!   ResourceExhausted with `Retry-After`), mapped once per protocol in [`crate::error`].

pub mod bucket;
pub mod client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use passlink_core::error::{Error, Kind};

pub use bucket::Rate;
pub use client::{IpNet, ProxyConfig};

use bucket::Buckets;

/// Default body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default per-address limit of failed attempts: 60 a minute, 120 at once.
pub const DEFAULT_PER_IP: Rate = Rate { per_minute: 60, burst: 120 };
/// Default per-target limit of failed attempts: 10 a minute, 20 at once.
pub const DEFAULT_PER_TARGET: Rate = Rate { per_minute: 10, burst: 20 };
/// Default bound of the keys each limiter tracks (about 100 bytes each).
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// The limits' configuration (part of [`crate::Config`]).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Failed attempts per client address (IPv6: per /64).
    pub per_ip: Rate,
    /// Failed attempts per target (user, code, session, authorization request, OAuth client).
    pub per_target: Rate,
    /// Where the client address comes from.
    pub proxy: ProxyConfig,
    /// Keys tracked per limiter at most.
    pub max_keys: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            per_ip: DEFAULT_PER_IP,
            per_target: DEFAULT_PER_TARGET,
            proxy: ProxyConfig::default(),
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// The rate limiter of a server: its buckets and the body limit.
pub struct Limiter {
    max_body_bytes: usize,
    proxy: ProxyConfig,
    by_ip: Buckets,
    by_target: Buckets,
    started: Instant,
}

impl Limiter {
    pub fn new(cfg: &Limits) -> Arc<Limiter> {
        Arc::new(Limiter {
            max_body_bytes: cfg.max_body_bytes,
            proxy: cfg.proxy.clone(),
            by_ip: Buckets::new(cfg.per_ip, cfg.max_keys),
            by_target: Buckets::new(cfg.per_target, cfg.max_keys),
            started: Instant::now(),
        })
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The limiter and the client of one request: a request extension set by [`layer`], read by
/// the RPC entries ([`crate::api`]).
#[derive(Clone)]
pub struct Throttle {
    limiter: Arc<Limiter>,
    /// The client's rate-limit key ([`client::key`]), if the address is known.
    ip: Option<String>,
}

/// The tokens one attempt holds until it ends ([`Attempt::end`]).
#[must_use]
pub struct Attempt {
    limiter: Arc<Limiter>,
    ip: Option<String>,
    targets: Vec<String>,
}

/// Does a failure of this kind count against the limits? The client's mistakes do; the server's
/// own failures (and a refusal by a limit) do not.
pub fn counts(kind: Kind) -> bool {
    !matches!(kind, Kind::Internal | Kind::Unavailable | Kind::Aborted | Kind::ResourceExhausted)
}

impl Throttle {
    /// Start an attempt on `targets` (`user:…`, `code:…`, …), by the client's address too when
    /// `by_ip`: a token of each bucket, or the rate-limited error of the first empty one.
    pub fn attempt(&self, by_ip: bool, targets: Vec<String>) -> Result<Attempt, Error> {
        let l = &self.limiter;
        let now = l.now_ms();
        let ip = self.ip.clone().filter(|_| by_ip);
        if let Some(ip) = &ip {
            l.by_ip.take(ip, now).map_err(Error::rate_limited)?;
        }
        let mut taken = Vec::with_capacity(targets.len());
        for t in targets.into_iter().filter(|t| !t.ends_with(':')) {
            if let Err(wait) = l.by_target.take(&t, now) {
                let held = Attempt { limiter: l.clone(), ip, targets: taken };
                held.end(false);
                return Err(Error::rate_limited(wait));
            }
            taken.push(t);
        }
        Ok(Attempt { limiter: l.clone(), ip, targets: taken })
    }
}

impl Attempt {
    /// The attempt ended: a failure that [`counts`] keeps its tokens, anything else gives them
    /// back.
    pub fn end(self, failed: bool) {
        if failed {
            return;
        }
        let now = self.limiter.now_ms();
        if let Some(ip) = &self.ip {
            self.limiter.by_ip.give_back(ip, now);
        }
        for t in &self.targets {
            self.limiter.by_target.give_back(t, now);
        }
    }

    /// End with the outcome of a core call.
    pub fn end_with<T>(self, result: &Result<T, Error>) {
        self.end(result.as_ref().err().is_some_and(|e| counts(e.kind)));
    }
}

/// Start an attempt of a guarded RPC: `targets` of the decoded request, the address too when the
/// request carries no token. `None`: the RPC is not guarded, or no limiter runs.
pub fn begin(
    throttle: Option<&Throttle>,
    headers: &HeaderMap,
    targets: Option<Vec<String>>,
) -> Result<Option<Attempt>, Error> {
    let (Some(throttle), Some(targets)) = (throttle, targets) else { return Ok(None) };
    let anonymous = !headers.contains_key(header::AUTHORIZATION);
    throttle.attempt(anonymous, targets).map(Some)
}

/// The HTTP routes that are guarded (not RPCs), and the targets a request names.
fn http_targets(path: &str, headers: &HeaderMap, query: Option<&str>) -> Option<Vec<String>> {
    let param = |name: &str| {
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some(match path {
        "/ui/passkey/register/info" => {
            vec![format!("user:{}", param("userID")), format!("code:{}", param("codeID"))]
        }
        "/ui/login" => vec![format!("authreq:{}", param("authRequest"))],
        "/ui/login/start" | "/ui/login/finish" | "/ui/passkey/login/start" | "/ui/passkey/login/finish" => {
            vec![]
        }
        "/oauth/v2/authorize" => vec![format!("client:{}", param("client_id"))],
        "/oauth/v2/token" | "/oauth/v2/introspect" => vec![format!("client:{}", basic_client_id(headers))],
        _ => return None,
    })
}

/// The client id of an `Authorization: Basic` header (empty when there is none).
fn basic_client_id(headers: &HeaderMap) -> String {
    use base64::Engine as _;
    let Some(b64) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
    else {
        return String::new();
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else { return String::new() };
    let raw = String::from_utf8_lossy(&raw);
    let id = raw.split_once(':').map_or(&*raw, |(id, _)| id);
    url::form_urlencoded::parse(id.as_bytes()).map(|(k, _)| k.into_owned()).next().unwrap_or_default()
}

/// Is this an RPC path (`/pkg.Service/Method`) of gRPC, gRPC-web or Connect?
fn is_rpc_path(path: &str) -> bool {
    let mut parts = path.trim_start_matches('/').split('/');
    matches!((parts.next(), parts.next(), parts.next()), (Some(s), Some(m), None) if s.contains('.') && !m.is_empty())
}

/// A body over the limit, answered in the request's protocol.
fn too_large(path: &str, headers: &HeaderMap, max: usize) -> Response {
    let message = format!("request body larger than {max} bytes");
    let detected = connectrpc::Protocol::detect(headers).filter(|_| is_rpc_path(path));
    match detected.map(|d| d.protocol) {
        Some(connectrpc::Protocol::Grpc | connectrpc::Protocol::GrpcWeb) => {
            let mut r = StatusCode::OK.into_response();
            let h = r.headers_mut();
            let content_type = headers.get(header::CONTENT_TYPE).cloned();
            h.insert(
                header::CONTENT_TYPE,
                content_type.unwrap_or(HeaderValue::from_static("application/grpc")),
            );
            h.insert("grpc-status", HeaderValue::from(connectrpc::ErrorCode::ResourceExhausted.grpc_code()));
            if let Ok(v) = HeaderValue::from_str(&message) {
                h.insert("grpc-message", v);
            }
            r
        }
        Some(_) => {
            let body = serde_json::json!({"code": "resource_exhausted", "message": message}).to_string();
            crate::rest::json_response(StatusCode::TOO_MANY_REQUESTS, Bytes::from(body))
        }
        None => {
            let (status, json) = crate::error::rest_rejection(StatusCode::PAYLOAD_TOO_LARGE, message);
            crate::rest::json_response(status, Bytes::from(json.to_string()))
        }
    }
}

/// The router layer: refuse a body whose `Content-Length` is over the limit, tell the routes
/// who the client is ([`Throttle`]), and guard the HTTP routes that need no account.
pub async fn layer(State(limiter): State<Arc<Limiter>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > limiter.max_body_bytes as u64) {
        return too_large(&path, req.headers(), limiter.max_body_bytes);
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ip = limiter.proxy.client(peer, req.headers()).map(client::key);
    let throttle = Throttle { limiter: limiter.clone(), ip };
    let targets = http_targets(&path, req.headers(), req.uri().query());
    req.extensions_mut().insert(throttle.clone());
    let Some(targets) = targets else { return next.run(req).await };
    match throttle.attempt(true, targets) {
        Err(e) => crate::error::rest_response(&e),
        Ok(attempt) => {
            let response = next.run(req).await;
            let status = response.status();
            attempt.end(status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS);
            response
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    #[test]
    fn rpc_paths_are_told_from_rest_paths() {
        assert!(is_rpc_path("/zitadel.user.v2.UserService/RegisterPasskey"));
        assert!(!is_rpc_path("/v2/users/1/passkeys"));
        assert!(!is_rpc_path("/oauth/v2/token"));
        assert!(!is_rpc_path("/zitadel.user.v2.UserService/"));
    }

    #[test]
    fn targets_of_the_http_routes() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Basic Y2xpZW50JTQwYXBwOnNlY3JldA==".parse().unwrap()); // client%40app:secret
        assert_eq!(http_targets("/oauth/v2/token", &h, None), Some(vec!["client:client@app".to_string()]));
        assert_eq!(
            http_targets("/ui/passkey/register/info", &HeaderMap::new(), Some("userID=7&codeID=9&code=x")),
            Some(vec!["user:7".to_string(), "code:9".to_string()])
        );
        assert_eq!(http_targets("/ui/passkey/register", &HeaderMap::new(), Some("userID=7")), None);
        assert_eq!(http_targets("/healthz", &HeaderMap::new(), None), None);
    }

    #[test]
    fn a_failed_attempt_keeps_its_tokens_and_a_success_gives_them_back() {
        let cfg = Limits {
            per_ip: Rate { per_minute: 1, burst: 2 },
            per_target: Rate { per_minute: 1, burst: 1 },
            ..Limits::default()
        };
        let t = Throttle { limiter: Limiter::new(&cfg), ip: Some("ip:192.0.2.1".into()) };
        for _ in 0..5 {
            t.attempt(true, vec!["user:1".into()]).unwrap().end(false);
        }
        t.attempt(true, vec!["user:1".into()]).unwrap().end(true);
        // user:1 is out of tokens; the address has one left, and the refusal did not take it.
        let e = t.attempt(true, vec!["user:1".into()]).err().unwrap();
        assert_eq!(e.kind, Kind::ResourceExhausted);
        assert!(e.retry_after.unwrap() > Duration::from_secs(50));
        t.attempt(true, vec!["user:2".into()]).unwrap().end(true);
        // Now the address is out too, for every target.
        assert!(t.attempt(true, vec!["user:3".into()]).is_err());
        // Requests with a token are not limited by address.
        t.attempt(false, vec!["user:3".into()]).unwrap().end(false);
    }
}
