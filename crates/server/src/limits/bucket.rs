//! Token buckets by key, in bounded memory: the arithmetic of [`crate::limits`].
//!
//! Each key's bucket is one number, its GCRA "theoretical arrival time" (`tat`, in milliseconds
//! since the limiter started): a bucket holds `burst` tokens and gains one every
//! `60 000 / per_minute` ms; taking a token moves `tat` one interval on, and a take is refused
//! when `tat` would run more than `burst` intervals ahead of now. A key whose `tat` is not ahead
//! of now has a full bucket and is not stored at all, so memory holds only the keys that failed
//! recently. Keys are hashed (SipHash with a per-process key): a key an attacker sends (a user
//! id of a megabyte) costs 16 bytes like any other.
//!
//! Time is a parameter (`now_ms`), so the rules are tested without waiting.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

/// A rate: `per_minute` tokens a minute, at most `burst` at once. `per_minute == 0` or
/// `burst == 0`: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

impl Rate {
    pub const OFF: Rate = Rate { per_minute: 0, burst: 0 };

    pub fn enabled(&self) -> bool {
        self.per_minute > 0 && self.burst > 0
    }

    /// Milliseconds between two tokens.
    fn interval_ms(&self) -> u64 {
        (60_000 / u64::from(self.per_minute.max(1))).max(1)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.enabled() {
            write!(f, "{}/min (burst {})", self.per_minute, self.burst)
        } else {
            f.write_str("off")
        }
    }
}

const SHARDS: usize = 16;
/// A shard sweeps its full buckets out after this many new keys (idle keys leave memory).
const SWEEP_EVERY: u32 = 1024;

struct Shard {
    tat: HashMap<u64, u64>,
    inserts: u32,
}

/// Buckets of one rate, by key, holding at most `max_keys` keys.
pub struct Buckets {
    rate: Rate,
    shards: Vec<Mutex<Shard>>,
    max_per_shard: usize,
    hasher: RandomState,
}

impl Buckets {
    pub fn new(rate: Rate, max_keys: usize) -> Buckets {
        Buckets {
            rate,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard { tat: HashMap::new(), inserts: 0 })).collect(),
            max_per_shard: (max_keys / SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    fn shard(&self, key: &str) -> (std::sync::MutexGuard<'_, Shard>, u64) {
        let h = self.hasher.hash_one(key);
        let shard = &self.shards[(h % SHARDS as u64) as usize];
        // A panic while holding the lock leaves plain numbers behind: keep using them.
        (shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner), h)
    }

    /// Take a token of `key`'s bucket, or say how long until one is there.
    pub fn take(&self, key: &str, now_ms: u64) -> Result<(), Duration> {
        if !self.rate.enabled() {
            return Ok(());
        }
        let t = self.rate.interval_ms();
        let capacity = t.saturating_mul(u64::from(self.rate.burst));
        let (mut shard, h) = self.shard(key);
        let known = shard.tat.get(&h).copied();
        let next = known.unwrap_or(now_ms).max(now_ms) + t;
        if next - now_ms > capacity {
            return Err(Duration::from_millis(next - now_ms - capacity));
        }
        if known.is_none() {
            shard.inserts += 1;
            if shard.inserts >= SWEEP_EVERY || shard.tat.len() >= self.max_per_shard {
                shard.inserts = 0;
                shard.tat.retain(|_, tat| *tat > now_ms);
            }
            if shard.tat.len() >= self.max_per_shard {
                // Every tracked key failed within the last `burst` intervals: the new key is
                // let through untracked rather than an attacker's key being forgotten.
                tracing::warn!(keys = shard.tat.len() * SHARDS, "rate limiter full: a key is not tracked");
                return Ok(());
            }
        }
        shard.tat.insert(h, next);
        Ok(())
    }

    /// Give back a token taken by [`Buckets::take`] (the attempt succeeded).
    pub fn give_back(&self, key: &str, now_ms: u64) {
        if !self.rate.enabled() {
            return;
        }
        let t = self.rate.interval_ms();
        let (mut shard, h) = self.shard(key);
        if let Some(tat) = shard.tat.get_mut(&h) {
            *tat = tat.saturating_sub(t);
            if *tat <= now_ms {
                shard.tat.remove(&h);
            }
        }
    }

    /// Keys held now (full buckets not swept yet included).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(std::sync::PoisonError::into_inner).tat.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TEN: Rate = Rate { per_minute: 10, burst: 3 };

    #[test]
    fn a_burst_then_one_token_per_interval() {
        let b = Buckets::new(TEN, 1000);
        for _ in 0..3 {
            b.take("u", 0).unwrap();
        }
        // The fourth waits one interval (6 s) for its token.
        assert_eq!(b.take("u", 0), Err(Duration::from_secs(6)));
        assert_eq!(b.take("u", 4_000), Err(Duration::from_secs(2)));
        b.take("u", 6_000).unwrap();
        assert!(b.take("u", 6_000).is_err());
        // Other keys have their own buckets.
        b.take("v", 6_000).unwrap();
    }

    #[test]
    fn a_refused_take_costs_nothing_and_a_given_back_token_is_there_again() {
        let b = Buckets::new(TEN, 1000);
        for _ in 0..3 {
            b.take("u", 0).unwrap();
        }
        for _ in 0..100 {
            assert!(b.take("u", 0).is_err());
        }
        b.take("u", 6_000).unwrap(); // hammering did not push the wait further
        b.give_back("u", 6_000);
        b.take("u", 6_000).unwrap();
    }

    #[test]
    fn successes_leave_nothing_behind() {
        let b = Buckets::new(TEN, 1000);
        for i in 0..10_000u64 {
            b.take("legit", i).unwrap();
            b.give_back("legit", i);
        }
        assert!(b.is_empty());
    }

    #[test]
    fn memory_is_bounded_and_idle_keys_leave() {
        let b = Buckets::new(TEN, 160);
        for i in 0..10_000 {
            b.take(&format!("k{i}"), 0).unwrap(); // past the bound: let through untracked
        }
        assert!(b.len() <= 160, "{}", b.len());
        // After a full refill (3 intervals), new keys sweep the idle ones out.
        for i in 0..1_000 {
            b.take(&format!("n{i}"), 18_001).unwrap();
        }
        assert!(b.len() <= 160);
        // A key just charged is still tracked (not forgotten in favour of new keys).
        let c = Buckets::new(TEN, 16 * 4);
        for _ in 0..3 {
            c.take("attacker", 0).unwrap();
        }
        for i in 0..10_000 {
            let _ = c.take(&format!("x{i}"), 1);
        }
        assert!(c.take("attacker", 2).is_err());
    }

    #[test]
    fn an_off_rate_never_refuses() {
        let b = Buckets::new(Rate::OFF, 10);
        for _ in 0..1000 {
            b.take("u", 0).unwrap();
        }
        assert!(b.is_empty());
    }
}
