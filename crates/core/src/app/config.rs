//! The core's tunables and their defaults. Every default is written once, here: the server's
//! `Config` and the binary's flags use these constants.

use std::time::Duration;

use crate::ports::Entropy;

/// How long a passkey registration code is valid, in seconds (ZITADEL: 1 h).
pub const DEFAULT_CODE_LIFETIME_SECS: u64 = 3600;
/// Length of a passkey registration code (ZITADEL: 12).
pub const DEFAULT_CODE_LENGTH: usize = 12;
/// How long a verified token stays in the in-memory cache, in seconds.
pub const DEFAULT_TOKEN_CACHE_TTL_SECS: u64 = 30;
/// How often a command is retried after losing an optimistic-concurrency race.
pub const DEFAULT_MAX_CONFLICT_RETRIES: u32 = 8;
/// The OAuth2 issuer when none is configured.
pub const DEFAULT_ISSUER: &str = "http://localhost:8080";
/// Lifetime of access tokens from the token endpoint, in seconds (ZITADEL: 12 h).
pub const DEFAULT_ACCESS_TOKEN_LIFETIME_SECS: u64 = 12 * 3600;

/// Lease of a delivery job, in seconds.
pub const DEFAULT_DELIVERY_LEASE_SECS: u64 = 60;
/// Delivery attempts before a job is given up.
pub const DEFAULT_DELIVERY_MAX_ATTEMPTS: u32 = 20;
/// Age (from the link request) after which a delivery is given up, in seconds.
pub const DEFAULT_DELIVERY_MAX_AGE_SECS: u64 = 3600;
/// Delay after the first failed delivery, in milliseconds.
pub const DEFAULT_DELIVERY_RETRY_MIN_MS: u64 = 1000;
/// Longest delay between delivery attempts, in seconds.
pub const DEFAULT_DELIVERY_RETRY_MAX_SECS: u64 = 300;

/// Tunables of the core, with ZITADEL's defaults.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// How long a passkey registration code is valid (ZITADEL: 1 h).
    pub code_lifetime: Duration,
    /// Length of a passkey registration code (ZITADEL: 12).
    pub code_length: usize,
    /// How long a verified token stays in the in-memory cache before it is checked again.
    pub token_cache_ttl: Duration,
    /// How often a command is retried after losing an optimistic-concurrency race.
    pub max_conflict_retries: u32,
    /// The OAuth2 issuer (the external URL): `iss` of access tokens, `aud` of assertions.
    pub issuer: String,
    /// Lifetime of access tokens from the token endpoint (ZITADEL: 12 h).
    pub access_token_lifetime: Duration,
    /// Is a delivery provider (SMTP or webhook) configured? Without one, links to be sent are
    /// refused at request time (400) instead of waiting forever.
    pub delivery_enabled: bool,
    pub delivery: DeliveryPolicy,
    /// An external login UI (ZITADEL's login v2 or your own) that finishes authorization
    /// requests: `/oauth/v2/authorize` redirects to `<url>/login?authRequest=<id>`. `None`: the
    /// hosted login page (`<issuer>/ui/login`).
    pub login_ui_url: Option<String>,
    /// Which store adapter serves this app (`sqlite`, `postgres`, `memory`): reported by
    /// GetStatus.
    pub store_kind: &'static str,
    /// Does a verified passkey registration revoke the user's other outstanding registration
    /// codes (and cancel their pending deliveries)? Off by default.
    pub revoke_codes_on_registration: bool,
    /// AAGUID → provider name and icons, for ListPasskeys and the hosted page (empty: none known).
    pub authenticators: std::sync::Arc<crate::aaguid::Catalog>,
    /// Which authenticators may register (AAGUID allow-/deny-lists per instance and
    /// organization) and whether their attestation must verify. Default: no policy.
    pub authenticator_policy: std::sync::Arc<crate::policy::Policy>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            code_lifetime: Duration::from_secs(DEFAULT_CODE_LIFETIME_SECS),
            code_length: DEFAULT_CODE_LENGTH,
            token_cache_ttl: Duration::from_secs(DEFAULT_TOKEN_CACHE_TTL_SECS),
            max_conflict_retries: DEFAULT_MAX_CONFLICT_RETRIES,
            issuer: DEFAULT_ISSUER.to_string(),
            access_token_lifetime: Duration::from_secs(DEFAULT_ACCESS_TOKEN_LIFETIME_SECS),
            delivery_enabled: false,
            delivery: DeliveryPolicy::default(),
            login_ui_url: None,
            store_kind: "memory",
            revoke_codes_on_registration: false,
            authenticators: std::sync::Arc::default(),
            authenticator_policy: std::sync::Arc::default(),
        }
    }
}

/// How the delivery worker retries. ZITADEL's notification worker has the same knobs.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// How long a leased job belongs to its worker; a job of a worker that died is taken over
    /// after this.
    pub lease: Duration,
    /// Attempts before a job is given up.
    pub max_attempts: u32,
    /// Age (from the link request) after which a job is given up.
    pub max_age: Duration,
    /// Delay after the first failure; doubles per failure up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            lease: Duration::from_secs(DEFAULT_DELIVERY_LEASE_SECS),
            max_attempts: DEFAULT_DELIVERY_MAX_ATTEMPTS,
            max_age: Duration::from_secs(DEFAULT_DELIVERY_MAX_AGE_SECS),
            min_backoff: Duration::from_millis(DEFAULT_DELIVERY_RETRY_MIN_MS),
            max_backoff: Duration::from_secs(DEFAULT_DELIVERY_RETRY_MAX_SECS),
        }
    }
}

/// The delay before attempt `failures + 1`: `min · 2^(failures-1)`, capped at `max`, times a
/// random factor in [0.5, 1.0) ("equal jitter"), so workers that failed together do not retry in
/// lockstep.
pub fn backoff(policy: &DeliveryPolicy, failures: u32, entropy: &dyn Entropy) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let base = policy.min_backoff.saturating_mul(1u32 << exp).min(policy.max_backoff);
    let mut b = [0u8; 2];
    entropy.fill(&mut b);
    let r = f64::from(u16::from_le_bytes(b)) / 65536.0; // [0, 1)
    base.mul_f64(0.5 + r / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SeededEntropy;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = DeliveryPolicy {
            min_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            ..DeliveryPolicy::default()
        };
        let e = SeededEntropy::new(7);
        for failures in 1..40u32 {
            let full = Duration::from_secs(2)
                .saturating_mul(1u32 << (failures - 1).min(30))
                .min(Duration::from_secs(60));
            let d = backoff(&p, failures, &e);
            assert!(
                d >= full / 2 && d < full,
                "failures {failures}: {d:?} not in [{:?}, {full:?})",
                full / 2
            );
        }
        // Jitter: the same failure count gives different delays.
        let ds: std::collections::HashSet<_> = (0..20).map(|_| backoff(&p, 3, &e)).collect();
        assert!(ds.len() > 10);
    }
}
