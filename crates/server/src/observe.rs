//! The request layer in front of every route: a request id (`x-request-id`, taken from the
//! request when well-formed, else generated) on every response, the request metrics
//! ([`Metrics::request`]) and one log line per request (target `passlink::request`, at debug).
//!
//! What the layer cannot see from outside, the RPC entries tell it through the request's
//! [`RequestInfo`] (an extension): which RPC ran ([`crate::api`] sets the table's own
//! `&'static str`), its gRPC code, and the caller. The log line carries ids only: never the
//! URI (a hosted page's query holds a code), a header, a body, a token or a code.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use passlink_core::app::Caller;

use crate::metrics::{Metrics, RequestLabels};

/// The log target of the per-request line (`--log info,passlink::request=debug` shows it).
pub const LOG_TARGET: &str = "passlink::request";

/// The request id header, read and written.
pub const REQUEST_ID: &str = "x-request-id";

/// The longest incoming request id kept; a longer or malformed one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

const UNSET: u8 = u8::MAX;

/// What an RPC entry tells the layer about the request it served (a request extension).
#[derive(Clone, Default)]
pub struct RequestInfo(Arc<Info>);

#[derive(Default)]
struct Info {
    rpc: OnceLock<&'static str>,
    rest: AtomicBool,
    /// The gRPC code of the answer (0 = OK), or [`UNSET`].
    code: AtomicU8,
    /// Filled only when the log line is wanted (it allocates).
    caller: OnceLock<(String, String)>,
    wants_caller: bool,
}

impl RequestInfo {
    fn new(wants_caller: bool) -> RequestInfo {
        RequestInfo(Arc::new(Info { code: AtomicU8::new(UNSET), wants_caller, ..Info::default() }))
    }

    /// The RPC being served (its table path, `pkg.Service/Method`).
    pub fn set_rpc(&self, rpc: &'static str) {
        let _ = self.0.rpc.set(rpc);
    }

    /// The RPC is served as a REST route.
    pub fn set_rest(&self) {
        self.0.rest.store(true, Ordering::Relaxed);
    }

    /// How the RPC ended: its gRPC code (0 for OK).
    pub fn set_code(&self, code: u32) {
        self.0.code.store(u8::try_from(code).unwrap_or(2), Ordering::Relaxed);
    }

    /// Who called (user id and context organization), for the log line.
    pub fn set_caller(&self, caller: &Caller) {
        if self.0.wants_caller {
            let _ = self.0.caller.set((caller.principal.user_id.clone(), caller.context_org.clone()));
        }
    }
}

/// The layer's state: the metrics and the request id source.
pub struct Observe {
    metrics: Arc<Metrics>,
    /// Random per process, so ids of replicas do not collide.
    id_prefix: u64,
    next_id: AtomicU64,
}

impl Observe {
    pub fn new(metrics: Arc<Metrics>) -> Arc<Observe> {
        let mut seed = [0u8; 8];
        if getrandom::fill(&mut seed).is_err() {
            seed = std::process::id().to_le_bytes().repeat(2).try_into().unwrap_or_default();
        }
        Arc::new(Observe { metrics, id_prefix: u64::from_le_bytes(seed), next_id: AtomicU64::new(1) })
    }

    fn generate_id(&self) -> HeaderValue {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:016x}{:016x}", self.id_prefix, n);
        HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("0"))
    }
}

/// An incoming request id worth keeping: 1 to [`MAX_REQUEST_ID_LEN`] characters of letters,
/// digits and `-_.:+/=` (UUIDs, hex, base64, the ids of common proxies).
pub fn valid_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_REQUEST_ID_LEN
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:+/=".contains(c))
}

/// The protocol a request speaks, from its content type (before the answer).
fn protocol_of(req: &Request) -> &'static str {
    let ct = req.headers().get(header::CONTENT_TYPE).map(HeaderValue::as_bytes).unwrap_or_default();
    if ct.starts_with(b"application/grpc-web") {
        "grpc-web"
    } else if ct.starts_with(b"application/grpc") {
        "grpc"
    } else if req.headers().contains_key("connect-protocol-version")
        || ct.starts_with(b"application/connect+")
        || ct.starts_with(b"application/proto")
    {
        "connect"
    } else {
        "http"
    }
}

/// gRPC code names, by number.
fn code_name(code: u8) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(usize::from(code)).copied().unwrap_or("UNKNOWN")
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The code of an RPC-protocol answer no table entry saw (an unknown method, a framing error):
/// the trailers-only `grpc-status` header, else Connect's HTTP → code mapping.
fn undispatched_code(response: &Response) -> u8 {
    if let Some(code) =
        response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u8>().ok())
    {
        return code;
    }
    match response.status().as_u16() {
        200 => 0,
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    }
}

/// The layer (`axum::middleware::from_fn_with_state`).
pub async fn layer(State(observe): State<Arc<Observe>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = match req.headers().get(REQUEST_ID) {
        Some(v) if valid_request_id(v) => v.clone(),
        _ => observe.generate_id(),
    };
    let protocol = protocol_of(&req);
    let route = req.extensions().get::<MatchedPath>().cloned();
    let log = tracing::enabled!(target: LOG_TARGET, tracing::Level::DEBUG);
    let info = RequestInfo::new(log);
    req.extensions_mut().insert(info.clone());

    let mut response = next.run(req).await;
    let elapsed = started.elapsed();

    let rpc = info.0.rpc.get().copied();
    let code = info.0.code.load(Ordering::Relaxed);
    let (rpc, protocol, status) = match rpc {
        Some(rpc) if info.0.rest.load(Ordering::Relaxed) => (
            Cow::Borrowed(rpc),
            "rest",
            if code == UNSET { status_class(response.status()) } else { code_name(code) },
        ),
        Some(rpc) => (
            Cow::Borrowed(rpc),
            if protocol == "http" { "connect" } else { protocol },
            code_name(if code == UNSET { undispatched_code(&response) } else { code }),
        ),
        // A matched route that is not an RPC: a hosted page, OAuth, health, metrics.
        None if route.is_some() => (
            Cow::Owned(route.as_ref().map(|r| r.as_str().to_string()).unwrap_or_default()),
            "http",
            status_class(response.status()),
        ),
        // No route, and no table entry behind the RPC protocols' fallback.
        None => match protocol {
            "http" => (Cow::Borrowed("other"), "http", status_class(response.status())),
            p => (Cow::Borrowed("other"), p, code_name(undispatched_code(&response))),
        },
    };
    observe.metrics.request(&RequestLabels { rpc: rpc.clone(), protocol, status }, elapsed);
    if log {
        let caller = info.0.caller.get();
        tracing::debug!(
            target: LOG_TARGET,
            request_id = request_id.to_str().unwrap_or_default(),
            rpc = %rpc,
            protocol,
            status,
            http_status = response.status().as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            user_id = caller.map(|c| c.0.as_str()),
            org_id = caller.map(|c| c.1.as_str()),
            "request"
        );
    }
    response.headers_mut().insert(REQUEST_ID, request_id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_bounded_and_plain() {
        let ok =
            |s: &str| valid_request_id(&HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("")));
        assert!(ok("3f2c9a1e-7b4d-4c55-9f00-0123456789ab"));
        assert!(ok("abc.DEF_1:2+3/4="));
        assert!(!ok(""));
        assert!(!ok("a b"));
        assert!(!ok("a\"b"));
        assert!(!ok(&"a".repeat(MAX_REQUEST_ID_LEN + 1)));
        assert!(ok(&"a".repeat(MAX_REQUEST_ID_LEN)));
    }

    #[test]
    fn generated_ids_are_unique() {
        let o = Observe::new(Metrics::new("sqlite"));
        let (a, b) = (o.generate_id(), o.generate_id());
        assert_ne!(a, b);
        assert!(valid_request_id(&a) && a.len() == 32);
    }
}
