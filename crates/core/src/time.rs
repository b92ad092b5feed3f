//! A point in time as nanoseconds since the Unix epoch (UTC).
//!
//! The core never reads the clock itself: the current time is passed in (see [`crate::ports::Clock`]).

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_unix_nanos(n: i64) -> Self {
        Timestamp(n)
    }
    pub const fn from_unix_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1_000_000_000))
    }
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }
    /// Whole seconds (floor) and the nanosecond remainder, as protobuf's Timestamp wants them.
    pub const fn secs_nanos(self) -> (i64, i32) {
        (self.0.div_euclid(1_000_000_000), self.0.rem_euclid(1_000_000_000) as i32)
    }
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }
    /// Time elapsed from `earlier` to `self`, zero if negative.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secs_nanos_split() {
        assert_eq!(Timestamp(1_500_000_001).secs_nanos(), (1, 500_000_001));
        assert_eq!(Timestamp(-1).secs_nanos(), (-1, 999_999_999));
    }

    #[test]
    fn plus_and_since() {
        let t = Timestamp::from_unix_secs(10);
        let u = t.plus(Duration::from_secs(5));
        assert_eq!(u.since(t), Duration::from_secs(5));
        assert_eq!(t.since(u), Duration::ZERO);
    }
}
