//! passlink's delivery: the link reaches the user.
//!
//! Layout:
//! - `worker`: the outbox worker. It leases due jobs from the store (through the core's
//!   delivery use cases), builds each message, sends it through the configured [`Sender`] and
//!   records the outcome (`code.sent`, a retry with backoff, or an abandoned job). It never runs
//!   on a request path.
//! - `message`: the email texts (English and German, by the user's preferred language), as
//!   text and HTML parts. Pure.
//! - `smtp`: the SMTP sender (lettre; STARTTLS, implicit TLS or plain).
//! - `webhook`: the webhook sender (reqwest; JSON body signed with HMAC-SHA-256).
//!
//! - `events`: the events webhook (issue 16): enrollment events to the application, from the
//!   notification outbox, signed with a timestamp; and the registration codes' expiry checks.
//!
//! A message carries a stable id derived from the code id (`Message-ID`, webhook delivery id):
//! delivery is at least once, so a receiver recognises a duplicate by it.

pub mod events;
mod message;
mod smtp;
mod webhook;
mod worker;

use async_trait::async_trait;
pub use passlink_core::app::LinkMessage;

pub use events::{EventsConfig, EventsWorker};
pub use message::{Email, render_email};
pub use smtp::{SmtpConfig, SmtpSender, SmtpTls};
pub use webhook::{SIGNATURE_HEADER, WebhookSender, sign};
pub use worker::{Worker, WorkerConfig};

/// Why a send failed. `reason` is for the log and the event: never the link or the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Retrying cannot help (a 5xx SMTP reply, a 4xx from the webhook).
    pub permanent: bool,
    pub reason: String,
}

impl SendError {
    pub fn transient(reason: impl Into<String>) -> SendError {
        SendError { permanent: false, reason: reason.into() }
    }
    pub fn permanent(reason: impl Into<String>) -> SendError {
        SendError { permanent: true, reason: reason.into() }
    }
}

/// One way to deliver a link: SMTP or a webhook.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    /// "smtp" or "webhook", for the log.
    fn name(&self) -> &'static str;
    async fn send(&self, message: &LinkMessage) -> Result<(), SendError>;
}
