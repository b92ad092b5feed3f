//! `passlink serve`: its flags and `PASSLINK_*` variables ([`ServeArgs`]), the configuration
//! they make, the process signals (SIGTERM/SIGINT drain, SIGHUP reloads the TLS certificate) and
//! [`run`], which binds the listener and serves until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use passlink_core::secret::Secret;
use passlink_server::config::{Delivery, DeliveryPolicy, SmtpConfig, SmtpTls};
use passlink_server::{Config, Server};

#[derive(clap::Args, Clone)]
pub(crate) struct ServeArgs {
    /// Address to listen on; REST, gRPC, gRPC-web and Connect share it.
    #[arg(long, env = "PASSLINK_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory for the SQLite database, the server keys and admin.pat.
    #[arg(long, env = "PASSLINK_DATA_DIR", default_value = "passlink-data")]
    data_dir: PathBuf,
    /// Database URL: sqlite://PATH (default: <data-dir>/passlink.db) or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "PASSLINK_DATABASE")]
    database: Option<String>,
    /// Public origin of default links and the WebAuthn relying party (default http://localhost:<port>
    /// on loopback, else http://<listen>; https with --tls-cert-file).
    #[arg(long, env = "PASSLINK_EXTERNAL_URL")]
    external_url: Option<String>,
    /// Server keys file (default <data-dir>/keys.json, generated with mode 0600 on first start).
    #[arg(long, env = "PASSLINK_KEYS_FILE")]
    keys_file: Option<PathBuf>,
    /// Machine id (0-65535) for ids; give each replica its own when several share a database.
    #[arg(long, env = "PASSLINK_MACHINE_ID")]
    machine_id: Option<u16>,
    /// Lifetime of passkey registration codes in seconds.
    #[arg(long, env = "PASSLINK_CODE_LIFETIME_SECS", default_value_t = passlink_core::app::DEFAULT_CODE_LIFETIME_SECS)]
    code_lifetime_secs: u64,
    /// Registering a passkey revokes the user's other outstanding registration codes (their
    /// links stop working, unsent deliveries are cancelled).
    #[arg(long, env = "PASSLINK_REVOKE_CODES_ON_REGISTRATION")]
    revoke_codes_on_registration: bool,
    /// Name authenticators (ListPasskeys, the hosted page's default passkey name) from this AAGUID
    /// list instead of the shipped one: JSON as the community list of passkey provider AAGUIDs,
    /// `{"<aaguid>": {"name": …, "icon_light": …, "icon_dark": …}}`.
    #[arg(long, env = "PASSLINK_AAGUID_FILE")]
    aaguid_file: Option<PathBuf>,
    /// Authenticator policy (JSON): `{"allow"|"deny": [AAGUIDs], "attestation": "none"|"verified",
    /// "organizations": {"<orgId>": {...}}}`; a registration from an authenticator it does not
    /// allow is refused (PASSKEY-Pol01), the code stays usable.
    #[arg(long, env = "PASSLINK_AUTHENTICATOR_POLICY")]
    authenticator_policy: Option<PathBuf>,
    /// PEM bundle of attestation root certificates trusted besides the shipped vendor roots
    /// (under "attestation": "verified").
    #[arg(long, env = "PASSLINK_ATTESTATION_ROOTS")]
    attestation_roots: Option<PathBuf>,
    /// Trust only the roots of --attestation-roots, not the shipped ones.
    #[arg(long, env = "PASSLINK_ATTESTATION_ROOTS_ONLY", requires = "attestation_roots")]
    attestation_roots_only: bool,
    /// More WebAuthn origins (besides --external-url) whose hosts may be relying party ids;
    /// repeat the flag or separate with commas.
    #[arg(long = "webauthn-origin", env = "PASSLINK_WEBAUTHN_ORIGINS", value_delimiter = ',')]
    webauthn_origins: Vec<String>,
    /// Send OpenID Connect sign-ins to this login UI (`<url>/login?authRequest=<id>`, like
    /// ZITADEL's login v2) instead of the hosted page `/ui/login`. It finishes them with
    /// OIDCService GetAuthRequest / CreateCallback.
    #[arg(long, env = "PASSLINK_LOGIN_UI_URL")]
    login_ui_url: Option<String>,
    /// Lifetime of access tokens issued by /oauth/v2/token, in seconds.
    #[arg(long, env = "PASSLINK_ACCESS_TOKEN_LIFETIME_SECS", default_value_t = passlink_core::app::DEFAULT_ACCESS_TOKEN_LIFETIME_SECS)]
    access_token_lifetime_secs: u64,
    /// Generate a new token-signing key at start when the newest is older than this many days.
    #[arg(long, env = "PASSLINK_SIGNING_KEY_MAX_AGE_DAYS", default_value_t = passlink_server::config::DEFAULT_SIGNING_KEY_MAX_AGE_DAYS)]
    signing_key_max_age_days: u64,
    /// Trust access tokens of this OpenID issuer (repeatable, or comma-separated): a token
    /// authenticates the passlink user whose user id equals its `sub`.
    #[arg(long = "trust-issuer", env = "PASSLINK_TRUST_ISSUERS", value_delimiter = ',')]
    trust_issuers: Vec<String>,
    /// SMTP server for delivering registration links by email.
    #[arg(long, env = "PASSLINK_SMTP_HOST")]
    smtp_host: Option<String>,
    #[arg(long, env = "PASSLINK_SMTP_PORT", default_value_t = 587)]
    smtp_port: u16,
    /// none (plain text: a local relay only), starttls (required), or tls (implicit, port 465).
    #[arg(long, env = "PASSLINK_SMTP_TLS", value_enum, default_value = "starttls")]
    smtp_tls: TlsArg,
    #[arg(long, env = "PASSLINK_SMTP_USER")]
    smtp_user: Option<String>,
    /// File holding the SMTP password (a trailing newline is ignored).
    #[arg(long, env = "PASSLINK_SMTP_PASSWORD_FILE")]
    smtp_password_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for the SMTP server besides the public roots.
    #[arg(long, env = "PASSLINK_SMTP_CA_FILE")]
    smtp_ca_file: Option<PathBuf>,
    /// Sender address of the emails (default passlink@<host of --external-url>).
    #[arg(long, env = "PASSLINK_SMTP_FROM")]
    smtp_from: Option<String>,
    /// Sender name shown with --smtp-from.
    #[arg(long, env = "PASSLINK_SMTP_FROM_NAME")]
    smtp_from_name: Option<String>,
    /// Deliver registration links by POSTing JSON to this URL instead of email.
    #[arg(long, env = "PASSLINK_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// File holding the webhook signing secret (required with --webhook-url).
    #[arg(long, env = "PASSLINK_WEBHOOK_SECRET_FILE")]
    webhook_secret_file: Option<PathBuf>,
    /// POST enrollment events (passkey.registered, passkey.removed, registration_code.expired,
    /// link.delivery_failed, session.passkey_checked) as signed JSON to this URL.
    #[arg(long, env = "PASSLINK_EVENTS_WEBHOOK_URL")]
    events_webhook_url: Option<String>,
    /// File holding the events webhook's signing secret (mode 0600; required with
    /// --events-webhook-url).
    #[arg(long, env = "PASSLINK_EVENTS_WEBHOOK_SECRET_FILE")]
    events_webhook_secret_file: Option<PathBuf>,
    /// Give an undelivered event up this many seconds after it happened (retried with backoff
    /// until then).
    #[arg(long, env = "PASSLINK_EVENTS_MAX_AGE_SECS", default_value_t = passlink_core::app::DEFAULT_EVENTS_MAX_AGE_SECS)]
    events_max_age_secs: u64,
    /// Delivery attempts before a link is given up.
    #[arg(long, env = "PASSLINK_DELIVERY_MAX_ATTEMPTS", default_value_t = passlink_core::app::DEFAULT_DELIVERY_MAX_ATTEMPTS)]
    delivery_max_attempts: u32,
    /// Give up a delivery this many seconds after the link was requested (an expired code is
    /// never sent, whatever this says).
    #[arg(long, env = "PASSLINK_DELIVERY_MAX_AGE_SECS", default_value_t = passlink_core::app::DEFAULT_DELIVERY_MAX_AGE_SECS)]
    delivery_max_age_secs: u64,
    /// Delay after the first failed attempt, in milliseconds; it doubles per failure (with jitter).
    #[arg(long, env = "PASSLINK_DELIVERY_RETRY_MIN_MS", default_value_t = passlink_core::app::DEFAULT_DELIVERY_RETRY_MIN_MS)]
    delivery_retry_min_ms: u64,
    /// Longest delay between attempts, in seconds.
    #[arg(long, env = "PASSLINK_DELIVERY_RETRY_MAX_SECS", default_value_t = passlink_core::app::DEFAULT_DELIVERY_RETRY_MAX_SECS)]
    delivery_retry_max_secs: u64,
    /// How long a replica's worker owns a job it took; a job of a replica that died is taken
    /// over after this many seconds.
    #[arg(long, env = "PASSLINK_DELIVERY_LEASE_SECS", default_value_t = passlink_core::app::DEFAULT_DELIVERY_LEASE_SECS)]
    delivery_lease_secs: u64,
    /// Run the delivery worker in this process (set false on replicas that should only queue).
    #[arg(long, env = "PASSLINK_DELIVERY_WORKER", default_value_t = true, action = clap::ArgAction::Set)]
    delivery_worker: bool,
    /// On SIGTERM/SIGINT: how long draining requests and deliveries may take, in seconds, before
    /// the server stops anyway (with a log line).
    #[arg(long, env = "PASSLINK_SHUTDOWN_TIMEOUT_SECS", default_value_t = passlink_server::config::DEFAULT_SHUTDOWN_TIMEOUT_SECS)]
    shutdown_timeout_secs: u64,
    /// Serve `GET /metrics` (Prometheus text format) on its own listener at this address
    /// instead of on the main port.
    #[arg(long, env = "PASSLINK_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Largest request body in bytes: a larger one is answered 413 (REST) / ResourceExhausted
    /// before it is read.
    #[arg(long, env = "PASSLINK_MAX_BODY_BYTES", default_value_t = passlink_server::limits::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Failed attempts a client address may make per minute on what needs no account (code
    /// redemption, hosted pages, OAuth endpoints); 0 turns the limit off.
    #[arg(long, env = "PASSLINK_RATE_LIMIT_IP_PER_MINUTE", default_value_t = passlink_server::limits::DEFAULT_PER_IP.per_minute)]
    rate_limit_ip_per_minute: u32,
    /// Failed attempts a client address may make at once before the per-minute rate applies.
    #[arg(long, env = "PASSLINK_RATE_LIMIT_IP_BURST", default_value_t = passlink_server::limits::DEFAULT_PER_IP.burst)]
    rate_limit_ip_burst: u32,
    /// Failed attempts per minute on one target (a user, code, session, authorization request or
    /// OAuth client), from any address; 0 turns the limit off.
    #[arg(long, env = "PASSLINK_RATE_LIMIT_TARGET_PER_MINUTE", default_value_t = passlink_server::limits::DEFAULT_PER_TARGET.per_minute)]
    rate_limit_target_per_minute: u32,
    /// Failed attempts on one target at once before the per-minute rate applies.
    #[arg(long, env = "PASSLINK_RATE_LIMIT_TARGET_BURST", default_value_t = passlink_server::limits::DEFAULT_PER_TARGET.burst)]
    rate_limit_target_burst: u32,
    /// Behind a reverse proxy: the header it puts the client address in (e.g. X-Forwarded-For;
    /// the rightmost hop that is not a --trusted-proxy is the client). Unset: the socket peer.
    #[arg(long, env = "PASSLINK_TRUSTED_PROXY_HEADER")]
    trusted_proxy_header: Option<String>,
    /// Networks of the trusted proxies (repeatable or comma-separated, e.g. 10.0.0.0/8): only
    /// their requests' header is believed, and their hops are skipped.
    #[arg(long = "trusted-proxy", env = "PASSLINK_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<passlink_server::limits::IpNet>,
    /// Serve HTTPS and gRPC over TLS on --listen with this PEM certificate chain (leaf first);
    /// needs --tls-key-file. Reloaded from the file on SIGHUP.
    #[arg(long, env = "PASSLINK_TLS_CERT_FILE")]
    tls_cert_file: Option<PathBuf>,
    /// The PEM private key of --tls-cert-file (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "PASSLINK_TLS_KEY_FILE")]
    tls_key_file: Option<PathBuf>,
    /// Close a connection whose request head (or TLS handshake, or first HTTP/2 request) has not
    /// arrived within this many seconds; also the idle time of an HTTP/1 keep-alive connection.
    #[arg(long, env = "PASSLINK_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    header_read_timeout_secs: u64,
    /// Fail a request whose body has not arrived whole this many seconds after its head (gRPC
    /// and Connect streaming requests excepted).
    #[arg(long, env = "PASSLINK_BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    body_read_timeout_secs: u64,
    /// Largest request head in bytes (HTTP/1 request line and headers: 431 past it; HTTP/2
    /// header list).
    #[arg(long, env = "PASSLINK_MAX_HEADER_BYTES", default_value_t = 65_536)]
    max_header_bytes: usize,
    /// Most header fields of an HTTP/1 request (431 past it).
    #[arg(long, env = "PASSLINK_MAX_HEADERS", default_value_t = 100)]
    max_headers: usize,
    /// HTTP/2 streams a connection may have open at once.
    #[arg(long, env = "PASSLINK_HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = 100)]
    http2_max_concurrent_streams: u32,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "passlink=debug"; one line per
    /// request: "info,passlink::request=debug".
    #[arg(long, env = "PASSLINK_LOG", default_value = "info")]
    pub(crate) log: String,
    /// Log lines as text, or as one JSON object per line.
    #[arg(long, env = "PASSLINK_LOG_FORMAT", value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum TlsArg {
    None,
    Starttls,
    Tls,
}

/// A secret from a file, without the trailing newline editors add.
fn read_secret(path: &std::path::Path, what: &str) -> Result<Secret, String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let s = s.trim_end_matches(['\r', '\n']);
    if s.is_empty() {
        return Err(format!("{what} {} is empty", path.display()));
    }
    Ok(Secret::new(s))
}

/// `--events-webhook-url` and `--events-webhook-secret-file`: both or neither; the secret file
/// private to passlink's user.
fn events_webhook(args: &ServeArgs) -> Result<Option<passlink_server::config::EventsWebhook>, String> {
    match (&args.events_webhook_url, &args.events_webhook_secret_file) {
        (None, None) => Ok(None),
        (Some(_), None) => Err("--events-webhook-url needs --events-webhook-secret-file".into()),
        (None, Some(_)) => Err("--events-webhook-secret-file needs --events-webhook-url".into()),
        (Some(url), Some(path)) => {
            passlink_server::keyfile::check_private(path, "events webhook secret")?;
            let secret = read_secret(path, "--events-webhook-secret-file")?;
            let mut hook = passlink_server::config::EventsWebhook::new(url.clone(), secret);
            hook.max_age = Duration::from_secs(args.events_max_age_secs);
            Ok(Some(hook))
        }
    }
}

fn delivery(args: &ServeArgs) -> Result<Delivery, String> {
    match (&args.smtp_host, &args.webhook_url) {
        (Some(_), Some(_)) => Err("configure either --smtp-host or --webhook-url, not both".into()),
        (Some(host), None) => {
            let from = args.smtp_from.clone().unwrap_or_default();
            let password = match &args.smtp_password_file {
                Some(p) => Some(read_secret(p, "--smtp-password-file")?),
                None => None,
            };
            Ok(Delivery::Smtp(SmtpConfig {
                host: host.clone(),
                port: args.smtp_port,
                tls: match args.smtp_tls {
                    TlsArg::None => SmtpTls::None,
                    TlsArg::Starttls => SmtpTls::Starttls,
                    TlsArg::Tls => SmtpTls::Tls,
                },
                user: args.smtp_user.clone(),
                password,
                from,
                from_name: args.smtp_from_name.clone(),
                ca_pem: match &args.smtp_ca_file {
                    Some(p) => {
                        Some(std::fs::read(p).map_err(|e| format!("--smtp-ca-file {}: {e}", p.display()))?)
                    }
                    None => None,
                },
                timeout: Duration::from_secs(30),
            }))
        }
        (None, Some(url)) => {
            let path =
                args.webhook_secret_file.as_ref().ok_or("--webhook-url needs --webhook-secret-file")?;
            Ok(Delivery::Webhook { url: url.clone(), secret: read_secret(path, "--webhook-secret-file")? })
        }
        (None, None) => Ok(Delivery::None),
    }
}

/// The process signals `serve` reacts to, installed before the server starts: a SIGTERM that
/// arrives as soon as the server answers drains it instead of killing the process.
struct Signals {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| format!("installing the {name} handler: {e}"))
        };
        Ok(Signals {
            term: install(SignalKind::terminate(), "SIGTERM")?,
            interrupt: install(SignalKind::interrupt(), "SIGINT")?,
            hangup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }
}

/// Serve until SIGTERM/SIGINT; on SIGHUP reload the TLS certificate (a failed reload keeps the
/// one in use and logs why).
async fn serve(server: Server, mut signals: Signals) -> Result<(), String> {
    loop {
        tokio::select! {
            _ = signals.term.recv() => break,
            _ = signals.interrupt.recv() => break,
            _ = signals.hangup.recv() => match server.reload_tls() {
                Ok(true) => {}
                Ok(false) => tracing::info!("SIGHUP: no TLS certificate to reload (no --tls-cert-file)"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: the TLS certificate was not reloaded; the previous one stays in use"),
            },
        }
    }
    server.wait_for(std::future::ready(())).await
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), String> {
    let mut cfg = Config::new(args.listen, args.data_dir.clone());
    cfg.database = args.database.clone();
    cfg.external_url = args.external_url.clone();
    cfg.keys_file = args.keys_file.clone();
    cfg.machine_id = args.machine_id;
    cfg.code_lifetime = Duration::from_secs(args.code_lifetime_secs);
    cfg.revoke_codes_on_registration = args.revoke_codes_on_registration;
    cfg.aaguid_file = args.aaguid_file.clone();
    cfg.authenticator_policy = args.authenticator_policy.clone();
    cfg.attestation_roots = args.attestation_roots.clone();
    cfg.attestation_roots_only = args.attestation_roots_only;
    cfg.webauthn_origins = args.webauthn_origins.clone();
    cfg.trust_issuers = args.trust_issuers.clone();
    cfg.login_ui_url = args.login_ui_url.clone();
    cfg.access_token_lifetime = Duration::from_secs(args.access_token_lifetime_secs);
    cfg.signing_key_max_age = Duration::from_secs(args.signing_key_max_age_days.saturating_mul(86_400));
    cfg.delivery = delivery(&args)?;
    cfg.delivery_worker = args.delivery_worker;
    cfg.events_webhook = events_webhook(&args)?;
    cfg.metrics_listen = args.metrics_listen;
    cfg.shutdown_timeout = Duration::from_secs(args.shutdown_timeout_secs);
    cfg.limits = passlink_server::limits::Limits {
        max_body_bytes: args.max_body_bytes,
        per_ip: passlink_server::limits::Rate {
            per_minute: args.rate_limit_ip_per_minute,
            burst: args.rate_limit_ip_burst,
        },
        per_target: passlink_server::limits::Rate {
            per_minute: args.rate_limit_target_per_minute,
            burst: args.rate_limit_target_burst,
        },
        proxy: passlink_server::limits::ProxyConfig {
            header: args.trusted_proxy_header.clone().filter(|h| !h.trim().is_empty()),
            trusted: args.trusted_proxies.clone(),
        },
        ..passlink_server::limits::Limits::default()
    };
    cfg.tls =
        passlink_server::tls::TlsFiles::from_flags(args.tls_cert_file.clone(), args.tls_key_file.clone())?;
    cfg.connection = passlink_server::listen::ConnLimits {
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
        body_read_timeout: Duration::from_secs(args.body_read_timeout_secs.max(1)),
        max_header_bytes: args.max_header_bytes,
        max_headers: args.max_headers,
        h2_max_concurrent_streams: args.http2_max_concurrent_streams.max(1),
        ..passlink_server::listen::ConnLimits::default()
    };
    cfg.delivery_policy = DeliveryPolicy {
        lease: Duration::from_secs(args.delivery_lease_secs.max(1)),
        max_attempts: args.delivery_max_attempts.max(1),
        max_age: Duration::from_secs(args.delivery_max_age_secs),
        min_backoff: Duration::from_millis(args.delivery_retry_min_ms),
        max_backoff: Duration::from_secs(args.delivery_retry_max_secs),
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", cfg.listen))?;
    let signals = Signals::install()?;
    let server = Server::start(cfg, listener).await?;
    serve(server, signals).await
}
