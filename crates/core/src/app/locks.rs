//! Per-aggregate write locks and the retry of commands that lose an optimistic-concurrency race.
//!
//! Writes to one aggregate from this process queue up on a striped lock instead of losing races
//! to each other; races with other replicas are still caught by the store's sequence check
//! (`Kind::Aborted`) and the command is run again by [`retry!`].

/// Striped locks, keyed by aggregate id.
pub(crate) struct AggregateLocks {
    stripes: Vec<async_lock::Mutex<()>>,
}

const STRIPES: usize = 1024;

impl Default for AggregateLocks {
    fn default() -> Self {
        AggregateLocks { stripes: (0..STRIPES).map(|_| async_lock::Mutex::new(())).collect() }
    }
}

impl AggregateLocks {
    /// Hold the write lock of one aggregate (by id) for the duration of a command.
    pub async fn lock(&self, id: &str) -> async_lock::MutexGuard<'_, ()> {
        self.stripes[stripe(id)].lock().await
    }
}

/// FNV-1a of the id, modulo the number of stripes.
fn stripe(id: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % STRIPES as u64) as usize
}

/// Run the async block again while it loses optimistic-concurrency races (up to
/// `cfg.max_conflict_retries`).
macro_rules! retry {
    ($self:ident, $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let result: $crate::error::Result<_> = $body.await;
            match result {
                Err(e)
                    if e.kind == $crate::error::Kind::Aborted && attempt < $self.cfg.max_conflict_retries =>
                {
                    attempt += 1
                }
                r => break r,
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_are_stable_and_in_range() {
        assert_eq!(stripe("123"), stripe("123"));
        assert!((0..1000).map(|i| stripe(&i.to_string())).all(|s| s < STRIPES));
    }
}
