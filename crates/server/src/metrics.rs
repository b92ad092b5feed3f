//! The server's metrics: one [`Metrics`] registry (prometheus-client, the Prometheus project's
//! Rust client), written by the request layer ([`crate::observe`]), the stores' writers, the
//! delivery worker and the core (through [`Observer`]), and rendered by [`Metrics::render`] in
//! the Prometheus text format (0.0.4) for `GET /metrics`.
//!
//! Hot path: a request costs one read-locked map lookup per family (labels of `&'static str`
//! for RPCs, so no allocation) and a few atomic adds; counters without labels are plain
//! atomics. Every metric is listed in the README ("Metrics").

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use passlink_core::ports::{DeliveryOutcome, Observer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Labels of one request: what was called, over which protocol, and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The RPC's full method name (`zitadel.user.v2.UserService/AddHumanUser`) for REST, gRPC,
    /// gRPC-web and Connect; the route template (`/ui/passkey/register`, `/oauth/v2/token`) for
    /// the other HTTP routes; `other` for paths no route matched.
    pub rpc: Cow<'static, str>,
    /// `rest`, `grpc`, `grpc-web`, `connect` or `http`.
    pub protocol: &'static str,
    /// The gRPC code name (`OK`, `NOT_FOUND`, …) for an RPC (over any protocol, REST too), the
    /// HTTP status class (`2xx`, `4xx`, …) for the other routes.
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant_type: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    store: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … 4.1 s, doubling.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

/// Every metric of the server. Cheap to share (`Arc`); see the module note.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    commit_duration: Histogram,
    batch_commits: Histogram,
    outbox_depth: Gauge,
    events_depth: Gauge,
    deliveries: Family<DeliveryLabels, Counter>,
    sessions_created: Counter,
    sign_ins: Family<ResultLabels, Counter>,
    tokens_issued: Family<GrantLabels, Counter>,
}

impl Metrics {
    /// A registry with every metric registered; `store` (`sqlite`, `postgres`) goes into
    /// `passlink_build_info`.
    pub fn new(store: &'static str) -> Arc<Metrics> {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "passlink_requests",
            "Requests answered, by RPC or route, protocol and status",
            requests.clone(),
        );
        let request_duration =
            Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "passlink_request_duration_seconds",
            "Time from the request to its response headers, by RPC or route, protocol and status",
            request_duration.clone(),
        );
        let commit_duration = latency_histogram();
        registry.register(
            "passlink_store_commit_duration_seconds",
            "Time the store's writer took to write and commit one batch (one transaction)",
            commit_duration.clone(),
        );
        let batch_commits = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "passlink_store_batch_commits",
            "Commits (one per command) written together in one batch",
            batch_commits.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "passlink_outbox_depth",
            "Delivery jobs not yet finished (read from the store at each scrape)",
            outbox_depth.clone(),
        );
        let events_depth = Gauge::default();
        registry.register(
            "passlink_events_webhook_depth",
            "Events webhook notifications not yet delivered or given up (read from the store at each scrape)",
            events_depth.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "passlink_deliveries",
            "Link deliveries by channel (smtp, webhook) and outcome (sent, retried, given_up)",
            deliveries.clone(),
        );
        let sessions_created = Counter::default();
        registry.register("passlink_sessions_created", "Sign-in sessions created", sessions_created.clone());
        let sign_ins = Family::<ResultLabels, Counter>::default();
        registry.register(
            "passlink_passkey_sign_ins",
            "Passkey checks of sessions, by result (succeeded, failed)",
            sign_ins.clone(),
        );
        let tokens_issued = Family::<GrantLabels, Counter>::default();
        registry.register(
            "passlink_oidc_tokens_issued",
            "Token responses of /oauth/v2/token, by grant type",
            tokens_issued.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION"), store }).set(1);
        registry.register("passlink_build_info", "The running version and store; always 1", build);
        // Zero series that exist before their first event, so rates start from 0.
        for channel in ["smtp", "webhook"] {
            for outcome in ["sent", "retried", "given_up"] {
                let _ = deliveries.get_or_create(&DeliveryLabels { channel, outcome });
            }
        }
        for result in ["succeeded", "failed"] {
            let _ = sign_ins.get_or_create(&ResultLabels { result });
        }
        Arc::new(Metrics {
            registry,
            requests,
            request_duration,
            commit_duration,
            batch_commits,
            outbox_depth,
            events_depth,
            deliveries,
            sessions_created,
            sign_ins,
            tokens_issued,
        })
    }

    /// One request answered after `elapsed`.
    pub fn request(&self, labels: &RequestLabels, elapsed: Duration) {
        self.requests.get_or_create(labels).inc();
        self.request_duration.get_or_create(labels).observe(elapsed.as_secs_f64());
    }

    /// A token response of `/oauth/v2/token` (the grant type is one of the few the endpoint
    /// serves, so the label stays bounded).
    pub fn token_issued(&self, grant_type: &str) {
        let grant_type = match grant_type {
            "authorization_code" => Cow::Borrowed("authorization_code"),
            "refresh_token" => Cow::Borrowed("refresh_token"),
            "client_credentials" => Cow::Borrowed("client_credentials"),
            "urn:ietf:params:oauth:grant-type:jwt-bearer" => Cow::Borrowed("jwt_bearer"),
            _ => Cow::Borrowed("other"),
        };
        self.tokens_issued.get_or_create(&GrantLabels { grant_type }).inc();
    }

    /// The events webhook's backlog as read from the store (shown by the next [`Metrics::render`]).
    pub fn set_events_depth(&self, depth: u64) {
        self.events_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// The exposition, with the outbox depth as of `outbox_depth` (read by the caller).
    pub fn render(&self, outbox_depth: Option<u64>) -> String {
        if let Some(depth) = outbox_depth {
            self.outbox_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
        let mut out = String::with_capacity(8192);
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

impl Observer for Metrics {
    fn batch_committed(&self, commits: usize, elapsed: Duration) {
        self.commit_duration.observe(elapsed.as_secs_f64());
        self.batch_commits.observe(commits as f64);
    }

    fn session_created(&self) {
        self.sessions_created.inc();
    }

    fn passkey_sign_in(&self, succeeded: bool) {
        let result = if succeeded { "succeeded" } else { "failed" };
        self.sign_ins.get_or_create(&ResultLabels { result }).inc();
    }

    fn delivery(&self, channel: &'static str, outcome: DeliveryOutcome) {
        let outcome = match outcome {
            DeliveryOutcome::Sent => "sent",
            DeliveryOutcome::Retried => "retried",
            DeliveryOutcome::GivenUp => "given_up",
        };
        self.deliveries.get_or_create(&DeliveryLabels { channel, outcome }).inc();
    }
}
