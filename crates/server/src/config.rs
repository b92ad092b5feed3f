//! Server configuration, passed down explicitly (never global).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use passlink_core::app::DeliveryPolicy;
use passlink_core::app::{DEFAULT_ACCESS_TOKEN_LIFETIME_SECS, DEFAULT_CODE_LIFETIME_SECS};
use passlink_core::secret::Secret;
pub use passlink_delivery::{SmtpConfig, SmtpTls};

/// Age in days after which a new token-signing key is generated at start.
/// Default bound of a shutdown (SIGTERM/SIGINT), in seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_SIGNING_KEY_MAX_AGE_DAYS: u64 = 90;

/// Which store to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite database at this path.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (libpq style; `?options=-csearch_path%3Dschema` selects a schema).
    Postgres(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (default 127.0.0.1:8080).
    pub listen: SocketAddr,
    /// Directory for the embedded database, server keys and the admin token.
    pub data_dir: PathBuf,
    /// `sqlite://path` (default: `<data-dir>/passlink.db`) or `postgres://user@host:port/db`.
    pub database: Option<String>,
    /// Public origin of default links and the WebAuthn relying party (see [`Config::external_url`]).
    pub external_url: Option<String>,
    /// Server keys file (default `<data-dir>/keys.json`, generated on first start).
    pub keys_file: Option<PathBuf>,
    /// Machine id for sonyflake ids; set it per replica when several share one database.
    pub machine_id: Option<u16>,
    /// Lifetime of passkey registration codes (default 1 h).
    pub code_lifetime: Duration,
    /// More WebAuthn origins besides the external URL (each origin's host becomes an allowed RP
    /// id, selectable with RegisterPasskey's `domain`).
    pub webauthn_origins: Vec<String>,
    /// Lifetime of access tokens from `/oauth/v2/token` (default 12 h, as ZITADEL).
    pub access_token_lifetime: Duration,
    /// Age after which a new token-signing key is generated at start (default 90 days).
    pub signing_key_max_age: Duration,
    /// External OpenID issuers whose access tokens authenticate the passlink user whose id is
    /// the token's `sub` (see README).
    pub trust_issuers: Vec<String>,
    /// How long connecting to PostgreSQL, migrating and checking the keys may take at start.
    pub store_start_timeout: Duration,
    /// Where registration links are sent (none: `sendLink` is refused with 400).
    pub delivery: Delivery,
    /// Retries, leases and limits of the delivery worker.
    pub delivery_policy: DeliveryPolicy,
    /// How often the delivery worker looks for due jobs when idle.
    pub delivery_poll_interval: Duration,
    /// How long a shutdown may take (draining requests, the delivery worker's sends) before the
    /// server stops anyway.
    pub shutdown_timeout: Duration,
    /// Run the delivery worker in this process (default). With several replicas, workers may
    /// run on some only; links are queued by every replica either way.
    pub delivery_worker: bool,
    /// Serve `GET /metrics` on its own listener at this address instead of the main port.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve HTTPS (and gRPC over TLS) on the main port with this certificate and key
    /// (`--tls-cert-file` / `--tls-key-file`); `None`: plain HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Connection-level limits of the main port: header and body read timeouts, header size and
    /// count, HTTP/2 streams and resets.
    pub connection: crate::listen::ConnLimits,
    /// An external login UI for OIDC authorization requests (`<url>/login?authRequest=…`);
    /// `None`: the hosted page `/ui/login`.
    pub login_ui_url: Option<String>,
    /// Body size limit, rate limits of failed attempts, where the client address comes from.
    pub limits: crate::limits::Limits,
    /// A verified passkey registration revokes the user's other outstanding registration codes
    /// (and cancels their pending deliveries). Default off.
    pub revoke_codes_on_registration: bool,
    /// An AAGUID list (the community list's JSON format) instead of the one shipped with
    /// passlink: names and icons of authenticators, read at start.
    pub aaguid_file: Option<PathBuf>,
    /// The authenticator policy (JSON: AAGUID allow-/deny-lists per instance and organization,
    /// attestation none or verified), read at start; `None`: no policy.
    pub authenticator_policy: Option<PathBuf>,
    /// A PEM bundle of attestation roots added to the shipped ones (or, with
    /// `attestation_roots_only`, replacing them).
    pub attestation_roots: Option<PathBuf>,
    pub attestation_roots_only: bool,
    /// The events webhook (`--events-webhook-url`, `--events-webhook-secret-file`): enrollment
    /// events POSTed to the application. `None`: no events are recorded for it.
    pub events_webhook: Option<EventsWebhook>,
}

/// Where enrollment events go, and how long they are retried.
#[derive(Debug, Clone)]
pub struct EventsWebhook {
    pub url: String,
    pub secret: Secret,
    /// Age (from the event) after which an undelivered event is given up (default 3 days).
    pub max_age: Duration,
}

impl EventsWebhook {
    pub fn new(url: impl Into<String>, secret: Secret) -> EventsWebhook {
        EventsWebhook {
            url: url.into(),
            secret,
            max_age: Duration::from_secs(passlink_core::app::DEFAULT_EVENTS_MAX_AGE_SECS),
        }
    }
}

/// The delivery provider.
#[derive(Debug, Clone)]
pub enum Delivery {
    None,
    Smtp(SmtpConfig),
    Webhook { url: String, secret: Secret },
}

impl Config {
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Config {
        Config {
            listen,
            data_dir: data_dir.into(),
            database: None,
            external_url: None,
            keys_file: None,
            machine_id: None,
            code_lifetime: Duration::from_secs(DEFAULT_CODE_LIFETIME_SECS),
            webauthn_origins: Vec::new(),
            access_token_lifetime: Duration::from_secs(DEFAULT_ACCESS_TOKEN_LIFETIME_SECS),
            signing_key_max_age: Duration::from_secs(DEFAULT_SIGNING_KEY_MAX_AGE_DAYS * 24 * 3600),
            trust_issuers: Vec::new(),
            store_start_timeout: Duration::from_secs(60),
            delivery: Delivery::None,
            delivery_policy: DeliveryPolicy::default(),
            delivery_poll_interval: Duration::from_millis(500),
            shutdown_timeout: Duration::from_secs(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
            delivery_worker: true,
            login_ui_url: None,
            metrics_listen: None,
            tls: None,
            connection: crate::listen::ConnLimits::default(),
            limits: crate::limits::Limits::default(),
            revoke_codes_on_registration: false,
            aaguid_file: None,
            authenticator_policy: None,
            attestation_roots: None,
            attestation_roots_only: false,
            events_webhook: None,
        }
    }

    /// The store `--database` names: `sqlite://PATH` (default `<data-dir>/passlink.db`) or a
    /// `postgres://` / `postgresql://` URL.
    pub fn backend(&self) -> Result<Backend, String> {
        match &self.database {
            None => Ok(Backend::Sqlite(self.data_dir.join("passlink.db"))),
            Some(url) => match url.strip_prefix("sqlite://") {
                Some(p) => Ok(Backend::Sqlite(PathBuf::from(p))),
                None if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                    Ok(Backend::Postgres(url.clone()))
                }
                None => Err(format!(
                    "unsupported --database URL {url:?}: expected sqlite://PATH or postgres://USER@HOST/DB"
                )),
            },
        }
    }

    /// The configured external URL, else `http://localhost:<port>` on a loopback or unspecified
    /// address (WebAuthn refuses IP addresses as relying party ids), else `http://<addr>`; `https`
    /// instead of `http` when TLS is on.
    pub fn external_url(&self, bound: SocketAddr) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let default = || {
            if bound.ip().is_loopback() || bound.ip().is_unspecified() {
                format!("{scheme}://localhost:{}", bound.port())
            } else {
                format!("{scheme}://{bound}")
            }
        };
        self.external_url.clone().unwrap_or_else(default).trim_end_matches('/').to_string()
    }
}
