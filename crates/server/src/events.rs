//! The events webhook's worker (`--events-webhook-url`): started beside the delivery worker,
//! stopped with it. The notifications themselves are written by the store decorator
//! `passlink_core::notify::NotifyingStore` that [`crate::assemble`] puts around the store.

use std::sync::Arc;
use std::time::Duration;

use passlink_core::app::App;
use passlink_core::ports::Entropy;

use crate::assemble::RunningWorker;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::platform::OsEntropy;

/// Start the events worker when the events webhook is configured (and this process runs
/// workers, `--no-delivery-worker` stops both).
pub(crate) fn start_events_worker(
    cfg: &Config,
    app: &Arc<App>,
    metrics: &Arc<Metrics>,
) -> Result<Option<RunningWorker>, String> {
    let Some(hook) = &cfg.events_webhook else { return Ok(None) };
    if !cfg.delivery_worker {
        tracing::info!("events webhook worker disabled here: events are queued for other replicas");
        return Ok(None);
    }
    let mut nonce = [0u8; 4];
    OsEntropy.fill(&mut nonce);
    let owner = format!(
        "{}-{}-{:08x}-events",
        crate::platform::hostname(),
        std::process::id(),
        u32::from_le_bytes(nonce)
    );
    let mut policy = passlink_core::app::events_policy();
    policy.max_age = hook.max_age;
    policy.min_backoff = cfg.delivery_policy.min_backoff;
    policy.max_backoff = cfg.delivery_policy.max_backoff;
    let worker = passlink_delivery::EventsWorker::new(
        app.clone(),
        passlink_delivery::EventsConfig {
            url: hook.url.clone(),
            secret: hook.secret.clone(),
            owner,
            poll_interval: cfg.delivery_poll_interval,
            batch: 16,
            policy,
            timeout: Duration::from_secs(10),
        },
    )?
    .with_observer(metrics.clone());
    tracing::info!(url = %hook.url, "events webhook configured");
    let (stop, rx) = tokio::sync::watch::channel(false);
    Ok(Some((stop, tokio::spawn(worker.run(rx)))))
}
