//! Assembling a server from its configuration: the core [`App`] on the configured store with
//! the server keys ([`build_app`]), the first start's instance and admin token ([`bootstrap`]),
//! and the delivery worker for the configured provider ([`start_worker`]).

use std::sync::Arc;

use passlink_core::app::{App, AppConfig, Deps};
use passlink_core::ids::Sonyflake;
use passlink_core::ports::{Clock, Entropy};
use passlink_core::secret;
use passlink_core::store::Store;
use passlink_store_postgres::PostgresStore;
use passlink_store_sqlite::SqliteStore;
use tokio::task::JoinHandle;

use crate::config::{Backend, Config, Delivery};
use crate::metrics::Metrics;
use crate::platform::{OsEntropy, key_fingerprint, load_or_create_keys, machine_id, write_private};

pub(crate) async fn build_app(
    cfg: &Config,
    external_url: &str,
    clock: Arc<dyn Clock>,
    metrics: &Arc<Metrics>,
) -> Result<Arc<App>, String> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| format!("{}: {e}", cfg.data_dir.display()))?;
    let (policy, roots) = crate::authenticator_policy::load(
        cfg.authenticator_policy.as_deref(),
        cfg.attestation_roots.as_deref(),
        cfg.attestation_roots_only,
    )?;
    let webauthn = passlink_core::passkey::Ceremony::new("passlink", external_url, &cfg.webauthn_origins)?
        .with_attestation_roots(roots);
    let entropy: Arc<dyn Entropy> = Arc::new(OsEntropy);
    let keys_path = cfg.keys_file.clone().unwrap_or_else(|| cfg.data_dir.join("keys.json"));
    let keys = load_or_create_keys(&keys_path, &*entropy, clock.now(), cfg.signing_key_max_age)
        .map_err(|e| e.to_string())?;
    let backend = cfg.backend()?;
    let store_kind = match backend {
        Backend::Sqlite(_) => "sqlite",
        Backend::Postgres(_) => "postgres",
    };
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite(db) => Arc::new(
            SqliteStore::open_observed(&db, metrics.clone()).map_err(|e| format!("{}: {e}", db.display()))?,
        ),
        Backend::Postgres(url) => {
            // Connecting, migrating and the key check get one bound: a database that stops
            // answering must fail the start with a message, not hang it.
            let start = async {
                let store = PostgresStore::connect_observed(&url, None, metrics.clone())
                    .await
                    .map_err(|e| format!("PostgreSQL: {e}"))?;
                // Replicas must share the server keys: refuse to start with keys other than the
                // ones this database was first used with.
                store.check_key_fingerprint(&key_fingerprint(&keys)).await.map_err(|e| {
                    format!("{e} (every replica must use the same --keys-file as the first one)")
                })?;
                Ok::<_, String>(store)
            };
            let limit = cfg.store_start_timeout;
            let store = tokio::time::timeout(limit, start).await.map_err(|_| {
                format!("PostgreSQL did not answer within {}s during start", limit.as_secs())
            })??;
            Arc::new(store)
        }
    };
    // The events webhook: every commit also writes the notifications of its events.
    let store: Arc<dyn Store> = match cfg.events_webhook {
        Some(_) => Arc::new(passlink_core::notify::NotifyingStore::new(store)),
        None => store,
    };
    let mut trusted_issuers: Vec<Arc<dyn passlink_core::ports::TrustedIssuer>> = Vec::new();
    for url in &cfg.trust_issuers {
        trusted_issuers.push(Arc::new(crate::trust::RemoteIssuer::new(url).map_err(|e| e.to_string())?));
    }
    let deps = Deps {
        trusted_issuers,
        store,
        webauthn,
        ids: Arc::new(Sonyflake::new(clock.clone(), machine_id(cfg.machine_id))),
        clock,
        entropy,
        keys,
    };
    let app_cfg = AppConfig {
        code_lifetime: cfg.code_lifetime,
        issuer: external_url.to_string(),
        access_token_lifetime: cfg.access_token_lifetime,
        delivery_enabled: !matches!(cfg.delivery, Delivery::None),
        delivery: cfg.delivery_policy.clone(),
        login_ui_url: cfg.login_ui_url.clone(),
        store_kind,
        revoke_codes_on_registration: cfg.revoke_codes_on_registration,
        authenticators: Arc::new(crate::aaguid::catalog(cfg.aaguid_file.as_deref())?),
        authenticator_policy: Arc::new(policy),
        ..AppConfig::default()
    };
    Ok(Arc::new(App::new(deps, app_cfg).with_observer(metrics.clone())))
}

/// First start: create the instance and write the admin token (0600) before it becomes valid.
pub(crate) async fn bootstrap(app: &App, token_file: &std::path::Path) -> Result<(), String> {
    if app.store().instance().await.map_err(|e| e.to_string())?.is_some() {
        return Ok(());
    }
    let token = secret::generate_token(&OsEntropy);
    let pending = token_file.with_extension("pending");
    write_private(&pending, token.expose().as_bytes()).map_err(|e| format!("{}: {e}", pending.display()))?;
    match app.bootstrap("passlink", token).await.map_err(|e| e.to_string())? {
        Some(b) => {
            std::fs::rename(&pending, token_file).map_err(|e| format!("{}: {e}", token_file.display()))?;
            tracing::info!(
                admin_user_id = %b.admin_user_id,
                org_id = %b.org_id,
                token_file = %token_file.display(),
                "created the instance, the default organization and the admin user; its token is in the file"
            );
        }
        None => {
            let _ = std::fs::remove_file(&pending);
        }
    }
    Ok(())
}

/// A delivery worker's stop signal and task.
pub(crate) type RunningWorker = (tokio::sync::watch::Sender<bool>, JoinHandle<()>);

/// Start the outbox worker for the configured provider, if any.
/// The sender address when `--smtp-from` is not given: `passlink@<external-url host>`
/// (`localhost` for an IP address).
fn default_sender(external_url: &str) -> String {
    let host = url::Url::parse(external_url)
        .ok()
        .and_then(|u| match u.host() {
            Some(url::Host::Domain(d)) => Some(d.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "localhost".to_string());
    format!("passlink@{host}")
}

pub(crate) fn start_worker(
    cfg: &Config,
    app: &Arc<App>,
    external_url: &str,
    metrics: &Arc<Metrics>,
) -> Result<Option<RunningWorker>, String> {
    let timeout = std::time::Duration::from_secs(30);
    let sender: Arc<dyn passlink_delivery::Sender> = match &cfg.delivery {
        Delivery::None => {
            tracing::info!(
                "no delivery provider configured: links with sendLink are refused; returnCode works"
            );
            return Ok(None);
        }
        Delivery::Smtp(smtp) => {
            let mut smtp = smtp.clone();
            if smtp.from.is_empty() {
                smtp.from = default_sender(external_url);
                tracing::info!(from = %smtp.from, "no --smtp-from given: emails are sent from this address");
            }
            Arc::new(passlink_delivery::SmtpSender::new(&smtp)?)
        }
        Delivery::Webhook { url, secret } => {
            Arc::new(passlink_delivery::WebhookSender::new(url, secret.clone(), timeout)?)
        }
    };
    if !cfg.delivery_worker {
        tracing::info!(
            sender = sender.name(),
            "delivery worker disabled here: links are queued for the workers of other replicas"
        );
        return Ok(None);
    }
    let mut nonce = [0u8; 4];
    OsEntropy.fill(&mut nonce);
    let owner =
        format!("{}-{}-{:08x}", crate::platform::hostname(), std::process::id(), u32::from_le_bytes(nonce));
    let worker = passlink_delivery::Worker::new(
        app.clone(),
        sender,
        passlink_delivery::WorkerConfig {
            owner,
            poll_interval: cfg.delivery_poll_interval,
            batch: 16,
            drain: cfg.shutdown_timeout / 2,
        },
    )
    .with_observer(metrics.clone());
    let (stop, rx) = tokio::sync::watch::channel(false);
    Ok(Some((stop, tokio::spawn(worker.run(rx)))))
}
