//! The events webhook (issue 16): enrollment events POSTed to the application, from the
//! notification outbox (`passlink_core::notify`).
//!
//! Headers: `content-type: application/json`, [`SIGNATURE_HEADER`]
//! `t=<unix seconds>,v1=<hex of HMAC-SHA-256(secret, "<t>.<raw body>")>` (the timestamp is
//! signed with the body: a receiver refuses a replay older than its tolerance, 5 minutes is
//! usual; see [`verify`]), [`EVENT_ID_HEADER`] (the stable event id; a redelivery repeats it)
//! and [`EVENT_TYPE_HEADER`]. Body: `{"id","type","createdAt","userId","orgId","data"}`,
//! byte-identical on every redelivery (the timestamp of the signature is the attempt's).
//!
//! A 2xx answer is success; anything else (and a network error or timeout) is retried with
//! backoff until the event is `max_age` old (default 3 days), then given up and logged
//! (`events webhook: given up`, metric `channel="events_webhook", outcome="given_up"`). A user's
//! events go out in order: the next one only after the previous was delivered or given up.
//!
//! The worker also runs the expiry checks of registration codes (`registration_code.expired`).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use passlink_core::app::{App, DeliveryPolicy};
use passlink_core::notify::{KIND_CODE_EXPIRY, Notification};
use passlink_core::ports::{DeliveryOutcome, NoObserver, Observer};
use passlink_core::secret::Secret;
use sha2::Sha256;
use tokio::sync::watch;

pub const SIGNATURE_HEADER: &str = "x-passlink-signature";
pub const EVENT_ID_HEADER: &str = "x-passlink-event-id";
pub const EVENT_TYPE_HEADER: &str = "x-passlink-event-type";
/// The metric channel of the events webhook's outcomes.
pub const CHANNEL: &str = "events_webhook";

fn hmac_hex(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(), // HMAC accepts keys of any length
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The signature header's value: `t=<t>,v1=<hex of HMAC-SHA-256(secret, "<t>.<body>")>`.
pub fn sign_event(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hmac_hex(secret, t, body))
}

/// The receiver's check: the header parses, `|now - t| <= tolerance_secs`, and one `v1` equals
/// the recomputed HMAC (compared in constant time).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > tolerance_secs {
        return false;
    }
    let want = hmac_hex(secret, t, body);
    sigs.iter().any(|s| {
        s.len() == want.len() && s.bytes().zip(want.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    })
}

#[derive(Debug, Clone)]
pub struct EventsConfig {
    pub url: String,
    pub secret: Secret,
    /// This worker's lease owner name (unique per process).
    pub owner: String,
    /// How often to look for due notifications when there were none.
    pub poll_interval: Duration,
    /// Notifications leased at a time.
    pub batch: usize,
    /// Lease, backoff and age bound (see `passlink_core::app::events_policy`).
    pub policy: DeliveryPolicy,
    /// Bound of one POST.
    pub timeout: Duration,
}

pub struct EventsWorker {
    app: Arc<App>,
    client: reqwest::Client,
    cfg: EventsConfig,
    observer: Arc<dyn Observer>,
}

impl EventsWorker {
    pub fn new(app: Arc<App>, cfg: EventsConfig) -> Result<EventsWorker, String> {
        let parsed =
            reqwest::Url::parse(&cfg.url).map_err(|e| format!("--events-webhook-url {:?}: {e}", cfg.url))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("--events-webhook-url {:?}: must be http or https", cfg.url));
        }
        if cfg.secret.expose().is_empty() {
            return Err("the events webhook secret is empty".to_string());
        }
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("events webhook client: {e}"))?;
        Ok(EventsWorker { app, client, cfg, observer: Arc::new(NoObserver) })
    }

    /// This worker, telling `observer` how each notification ended (channel [`CHANNEL`]).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> EventsWorker {
        self.observer = observer;
        self
    }

    /// Run until `stop` turns true (a send in progress finishes first, bounded by the timeout;
    /// the leased notifications not yet sent are released: due again at once, for another
    /// replica or the next start).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(owner = %self.cfg.owner, "events webhook worker started");
        loop {
            if *stop.borrow() {
                break;
            }
            let idle = match self
                .app
                .claim_notifications(&self.cfg.owner, self.cfg.policy.lease, self.cfg.batch)
                .await
            {
                Ok(batch) if batch.is_empty() => true,
                Ok(batch) => {
                    let mut batch = batch.into_iter();
                    while let Some(n) = batch.next() {
                        if *stop.borrow() {
                            self.release(std::iter::once(n).chain(batch).collect()).await;
                            break;
                        }
                        self.handle(&n).await;
                    }
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, "events webhook: cannot lease notifications");
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
        tracing::info!("events webhook worker stopped");
    }

    /// Give back what was leased and not sent (at stop).
    async fn release(&self, left: Vec<Notification>) {
        match self.app.release_notifications(&left).await {
            Ok(()) => {
                tracing::info!(notifications = left.len(), "events webhook: released what it had not sent")
            }
            Err(e) => {
                tracing::warn!(error = %e, "events webhook: releasing at stop failed; due when the lease runs out")
            }
        }
    }

    async fn handle(&self, n: &Notification) {
        if n.kind == KIND_CODE_EXPIRY {
            match self.app.check_code_expiry(n).await {
                Ok(expired) => {
                    tracing::debug!(code_id = %n.payload, user = %n.user_id, expired, "code expiry checked")
                }
                Err(e) => {
                    tracing::warn!(code_id = %n.payload, error = %e, "code expiry check failed; retried")
                }
            }
            return;
        }
        let outcome = match self.post(n).await {
            Ok(()) => match self.app.notification_delivered(n).await {
                Ok(()) => {
                    tracing::info!(event_id = %n.id, user = %n.user_id, "events webhook: delivered");
                    Some(DeliveryOutcome::Sent)
                }
                Err(e) => {
                    // Sent, not recorded: redelivered with the same id after the lease.
                    tracing::warn!(event_id = %n.id, error = %e, "events webhook: sent, but recording it failed");
                    None
                }
            },
            Err(reason) => match self.app.notification_failed(n, &reason, &self.cfg.policy).await {
                Ok(Some(at)) => {
                    let in_ms = at.since(self.app.now()).as_millis() as u64;
                    tracing::warn!(event_id = %n.id, user = %n.user_id, attempt = n.attempts + 1, retry_in_ms = in_ms, reason, "events webhook failed, will retry");
                    Some(DeliveryOutcome::Retried)
                }
                Ok(None) => {
                    tracing::error!(event_id = %n.id, user = %n.user_id, attempt = n.attempts + 1, reason, "events webhook: given up");
                    Some(DeliveryOutcome::GivenUp)
                }
                Err(e) => {
                    tracing::warn!(event_id = %n.id, error = %e, "events webhook: recording the failure failed");
                    None
                }
            },
        };
        if let Some(o) = outcome {
            self.observer.delivery(CHANNEL, o);
        }
    }

    async fn post(&self, n: &Notification) -> Result<(), String> {
        let body = n.payload.as_bytes().to_vec();
        let t = self.app.now().secs_nanos().0;
        let signature = sign_event(self.cfg.secret.expose().as_bytes(), t, &body);
        let kind = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_string))
            .unwrap_or_default();
        let r = self
            .client
            .post(&self.cfg.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, &n.id)
            .header(EVENT_TYPE_HEADER, kind)
            .body(body)
            .send()
            .await;
        match r {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(format!("events webhook answered {}", resp.status())),
            Err(e) => Err(format!("events webhook: {}", e.without_url())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_the_timestamp_and_the_body() {
        let h = sign_event(b"s3cret", 1_700_000_000, b"{\"id\":\"e\"}");
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(h.len(), "t=1700000000,v1=".len() + 64);
        assert!(verify(b"s3cret", &h, b"{\"id\":\"e\"}", 1_700_000_100, 300));
        // Another body, another secret, a changed timestamp, a replay too old: refused.
        assert!(!verify(b"s3cret", &h, b"{\"id\":\"f\"}", 1_700_000_100, 300));
        assert!(!verify(b"other", &h, b"{\"id\":\"e\"}", 1_700_000_100, 300));
        let moved = h.replace("t=1700000000", "t=1700000200");
        assert!(!verify(b"s3cret", &moved, b"{\"id\":\"e\"}", 1_700_000_200, 300));
        assert!(!verify(b"s3cret", &h, b"{\"id\":\"e\"}", 1_700_000_301, 300));
        assert!(!verify(b"s3cret", "garbage", b"", 0, 300));
    }

    #[test]
    fn signature_is_hmac_sha256_of_t_dot_body() {
        // Python: hmac.new(b"k", b"42.body", hashlib.sha256).hexdigest()
        assert_eq!(
            sign_event(b"k", 42, b"body"),
            "t=42,v1=b659920af00f6ceb47785a65af6c6f2536fedfb07c8c4e6b8b99175f100fb165"
        );
    }
}
