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
    /// (year, month, day, hour, minute, second) in UTC, the fraction dropped.
    pub fn civil(self) -> (i64, i64, i64, i64, i64, i64) {
        let (secs, _) = self.secs_nanos();
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
    }

    /// `2026-11-28T12:05:00Z` (whole seconds).
    pub fn to_rfc3339(self) -> String {
        let (y, m, d, h, mi, s) = self.civil();
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
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
    fn rfc3339_dates() {
        assert_eq!(Timestamp::from_unix_secs(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp::from_unix_secs(951_782_400).to_rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(Timestamp::from_unix_secs(1_735_725_600).to_rfc3339(), "2025-01-01T10:00:00Z");
        assert_eq!(Timestamp(4_070_908_800_999_999_999).to_rfc3339(), "2099-01-01T00:00:00Z");
    }

    #[test]
    fn plus_and_since() {
        let t = Timestamp::from_unix_secs(10);
        let u = t.plus(Duration::from_secs(5));
        assert_eq!(u.since(t), Duration::from_secs(5));
        assert_eq!(t.since(u), Duration::ZERO);
    }
}
