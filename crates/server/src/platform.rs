//! The real clock, randomness and key material: the adapters behind the core's ports (the key
//! file itself is in [`crate::keyfile`]).

use passlink_core::ports::{Clock, Entropy};
use passlink_core::time::Timestamp;

pub use crate::keyfile::{check_private, key_fingerprint, load_or_create_keys, write_private};

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl SystemClock {
    /// Whole seconds since the epoch.
    pub fn now_secs(&self) -> i64 {
        self.now().secs_nanos().0
    }
}

/// The operating system's CSPRNG.
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        if let Err(e) = getrandom::fill(buf) {
            // Without randomness no code or token may be issued: stop rather than continue weakly.
            tracing::error!(error = %e, "the operating system's random source failed");
            std::process::abort();
        }
    }
}

/// This machine's host name ("" if unknown).
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim().to_string()
}

/// A 16-bit machine id for sonyflake ids: from configuration, else hostname and pid mixed.
pub fn machine_id(configured: Option<u16>) -> u16 {
    configured.unwrap_or_else(|| {
        let host = hostname();
        let mut h: u32 = 0x811c_9dc5; // FNV-1a
        for b in host.bytes().chain(std::process::id().to_le_bytes()) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        (h ^ (h >> 16)) as u16
    })
}
