//! Sonyflake-style ids, as ZITADEL renders them: 39 bits of time in 10 ms units since
//! 2019-04-29T00:00:00Z, 8 bits of sequence, 16 bits of machine id, printed in decimal.
//!
//! Unlike sonyflake, a full sequence does not sleep: the generator borrows the next 10 ms tick,
//! so ids stay unique and ordered and the request path never blocks. The clock catches up.

use std::sync::Arc;
use std::sync::Mutex;

use crate::ports::{Clock, IdGenerator};

/// 2019-04-29T00:00:00Z in Unix nanoseconds (ZITADEL's sonyflake start time).
const EPOCH_NANOS: i64 = 1_556_496_000_000_000_000;
const TICK_NANOS: i64 = 10_000_000;

pub struct Sonyflake {
    clock: Arc<dyn Clock>,
    machine: u16,
    state: Mutex<(i64, u16)>, // (last tick, sequence within it)
}

impl Sonyflake {
    pub fn new(clock: Arc<dyn Clock>, machine: u16) -> Self {
        Sonyflake { clock, machine, state: Mutex::new((-1, 0)) }
    }

    fn next(&self) -> u64 {
        let now_tick = (self.clock.now().0 - EPOCH_NANOS).max(0) / TICK_NANOS;
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if now_tick > st.0 {
            *st = (now_tick, 0);
        } else if st.1 >= 255 {
            *st = (st.0 + 1, 0); // borrow the next tick
        } else {
            st.1 += 1;
        }
        ((st.0 as u64) << 24) | (u64::from(st.1) << 16) | u64::from(self.machine)
    }
}

impl IdGenerator for Sonyflake {
    fn next_id(&self) -> String {
        self.next().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::FixedClock;
    use crate::time::Timestamp;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_increasing_even_within_one_tick() {
        let clock = Arc::new(FixedClock::at(Timestamp::from_unix_secs(1_764_000_000)));
        let g = Sonyflake::new(clock, 7);
        let ids: Vec<u64> = (0..2000).map(|_| g.next()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 2000);
        assert!(ids.iter().all(|i| i & 0xffff == 7));
    }

    #[test]
    fn ids_look_like_zitadel_ids() {
        let clock = Arc::new(FixedClock::at(Timestamp::from_unix_secs(1_764_000_000)));
        let id = Sonyflake::new(clock, 1).next_id();
        assert_eq!(id.len(), 18, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
    }
}
