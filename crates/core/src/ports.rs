//! The ports: what the core needs from the outside world, as traits.
//!
//! Time, ids and randomness are parameters, so every rule is testable with fixed values. The
//! [`Store`](crate::store::Store) port lives in [`crate::store`].

use crate::time::Timestamp;

/// The current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Unique, decimal, roughly time-ordered ids (ZITADEL-style sonyflake strings).
pub trait IdGenerator: Send + Sync {
    fn next_id(&self) -> String;
}

/// A cryptographically secure random source.
pub trait Entropy: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

/// Claims of a token from a trusted external issuer, after its signature was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalClaims {
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub nbf: Option<i64>,
}

/// An external OpenID issuer whose access tokens passlink accepts (`--trust-issuer`). The
/// adapter fetches its discovery document and JWKS (I/O); the core maps `sub` to a user.
#[async_trait::async_trait]
pub trait TrustedIssuer: Send + Sync {
    fn issuer(&self) -> &str;
    /// Verify the signature (refreshing the keys on an unknown `kid`); lifetime and audience
    /// are checked by the core.
    async fn verify(&self, token: &str) -> crate::error::Result<ExternalClaims>;
}

/// A clock that always answers the same instant (tests) or a settable one.
#[derive(Debug, Default)]
pub struct FixedClock(pub std::sync::atomic::AtomicI64);

impl FixedClock {
    pub fn at(t: Timestamp) -> Self {
        FixedClock(std::sync::atomic::AtomicI64::new(t.0))
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Deterministic "randomness" for tests: a counter-seeded xorshift stream. NOT for production.
#[derive(Debug)]
pub struct SeededEntropy(std::sync::Mutex<u64>);

impl SeededEntropy {
    pub fn new(seed: u64) -> Self {
        SeededEntropy(std::sync::Mutex::new(seed | 1))
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, buf: &mut [u8]) {
        let mut s = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for b in buf {
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            *b = (*s >> 24) as u8;
        }
    }
}

/// Sequential ids for tests: "1", "2", ...
#[derive(Debug, Default)]
pub struct SequentialIds(std::sync::atomic::AtomicU64);

impl IdGenerator for SequentialIds {
    fn next_id(&self) -> String {
        (self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1).to_string()
    }
}

/// Adapts the core's entropy port to the `rand_core` traits RSA and argon2 want.
pub struct EntropyRng<'a>(pub &'a dyn Entropy);

impl rand_core::RngCore for EntropyRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for EntropyRng<'_> {}

/// What the operator counts (the server's metrics): told by the core's use cases, the stores'
/// writers and the delivery worker as things happen. The core knows no metrics library: the
/// server implements this with atomics. Every method must be cheap and must not block; the
/// defaults do nothing ([`NoObserver`]).
pub trait Observer: Send + Sync {
    /// A store's writer committed one batch of `commits` commits in one transaction, taking
    /// `elapsed` (the transaction and its fsync).
    fn batch_committed(&self, commits: usize, elapsed: std::time::Duration) {
        let _ = (commits, elapsed);
    }
    /// A sign-in session was created (SessionService CreateSession, the hosted login page).
    fn session_created(&self) {}
    /// A passkey check of a session (SetSession with `checks.webAuthN`) succeeded or failed.
    fn passkey_sign_in(&self, succeeded: bool) {
        let _ = succeeded;
    }
    /// The delivery worker's outcome for one job over `channel` (`smtp`, `webhook`).
    fn delivery(&self, channel: &'static str, outcome: DeliveryOutcome) {
        let _ = (channel, outcome);
    }
}

/// The end of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Sent (and recorded as `code.sent`).
    Sent,
    /// Failed; another attempt is scheduled.
    Retried,
    /// Failed for good (`code.send.failed`).
    GivenUp,
}

/// The observer that counts nothing (tests, tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}
