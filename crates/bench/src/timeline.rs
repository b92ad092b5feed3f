//! The per-second timeline of a phase: for each second of the measured window, the requests
//! completed in it (req/s), their p50, p99 and max latency and the failures, with the WAL resets
//! seen in that second when the WAL was watched. A stall shows as one slow second that a whole
//! window's p99 hides.

use crate::stats::pct_ms;

/// The target of the issue "durable writes, no stalls, p99 < 5 ms": seconds whose p99 reaches it
/// are marked.
pub const P99_TARGET_MS: f64 = 5.0;

#[derive(Default)]
pub struct Timeline {
    /// Successful requests in the window: (completion, ms from the window's start; latency, µs).
    samples: Vec<(u32, u32)>,
    /// Failed requests in the window: completion, ms from the window's start.
    errors: Vec<u32>,
}

/// One second of the window.
struct Second {
    /// The second's end, in whole seconds from the window's start (1 for the first).
    end_s: usize,
    /// Its length in seconds (the last one of a fractional window is shorter).
    width_s: f64,
    ok: usize,
    errors: usize,
    wal_resets: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Second {
    fn rps(&self) -> f64 {
        if self.width_s > 0.0 { self.ok as f64 / self.width_s } else { f64::NAN }
    }
}

impl Timeline {
    pub fn push(&mut self, offset_ms: u32, lat_us: u32) {
        self.samples.push((offset_ms, lat_us));
    }

    pub fn push_error(&mut self, offset_ms: u32) {
        self.errors.push(offset_ms);
    }

    pub fn merge(&mut self, o: Timeline) {
        self.samples.extend(o.samples);
        self.errors.extend(o.errors);
    }

    pub fn finish(&mut self) {
        self.samples.sort_unstable();
        self.errors.sort_unstable();
    }

    /// The seconds of a `window_s`-second window; `wal_resets` are ms offsets.
    fn seconds(&self, window_s: f64, wal_resets: &[u32]) -> Vec<Second> {
        let n = (window_s.ceil() as usize).max(1);
        let bucket = |offset_ms: u32| (offset_ms as usize / 1000).min(n - 1);
        let mut lat: Vec<Vec<u32>> = vec![Vec::new(); n];
        for &(t, l) in &self.samples {
            lat[bucket(t)].push(l);
        }
        let mut errors = vec![0usize; n];
        for &t in &self.errors {
            errors[bucket(t)] += 1;
        }
        let mut resets = vec![0usize; n];
        for &t in wal_resets {
            resets[bucket(t)] += 1;
        }
        lat.into_iter()
            .enumerate()
            .map(|(i, mut l)| {
                l.sort_unstable();
                Second {
                    end_s: i + 1,
                    width_s: (window_s - i as f64).clamp(0.0, 1.0),
                    ok: l.len(),
                    errors: errors[i],
                    wal_resets: resets[i],
                    p50_ms: pct_ms(&l, 50.0),
                    p99_ms: pct_ms(&l, 99.0),
                    max_ms: pct_ms(&l, 100.0),
                }
            })
            .collect()
    }

    /// Print one line per second of the `window_s`-second window, then a summary line.
    /// `wal_resets`: the WAL resets' offsets (ms) when the WAL was watched.
    pub fn print(&self, label: &str, window_s: f64, wal_resets: Option<&[u32]>) {
        let seconds = self.seconds(window_s, wal_resets.unwrap_or_default());
        println!();
        println!("timeline, {label}: each second of the measured window (the requests completed in it)");
        let wal_head = if wal_resets.is_some() { "  WAL resets" } else { "" };
        println!(
            "{:>5} {:>9} {:>8} {:>9} {:>9} {:>6}{wal_head}",
            "s", "req/s", "p50 ms", "p99 ms", "max ms", "errors"
        );
        for s in &seconds {
            let mark = if s.p99_ms >= P99_TARGET_MS { "*" } else { " " };
            let wal = match (wal_resets.is_some(), s.wal_resets) {
                (false, _) | (true, 0) => String::new(),
                (true, k) => format!("  {k:>10}"),
            };
            println!(
                "{:>5} {:>9.0} {:>8.2} {:>8.2}{mark} {:>9.2} {:>6}{wal}",
                s.end_s,
                s.rps(),
                s.p50_ms,
                s.p99_ms,
                s.max_ms,
                s.errors
            );
        }
        println!("  {}", summary(&seconds));
    }
}

/// Which seconds miss the p99 target, the worst second, and the spread of req/s.
fn summary(seconds: &[Second]) -> String {
    let over: Vec<String> =
        seconds.iter().filter(|s| s.p99_ms >= P99_TARGET_MS).map(|s| s.end_s.to_string()).collect();
    let shown = over.iter().take(12).cloned().collect::<Vec<_>>().join(", ");
    let more = if over.len() > 12 { ", …" } else { "" };
    let over = if over.is_empty() {
        format!("* p99 ≥ {P99_TARGET_MS} ms: in none of {} s", seconds.len())
    } else {
        format!("* p99 ≥ {P99_TARGET_MS} ms: in {} of {} s (s {shown}{more})", over.len(), seconds.len())
    };
    let worst = |f: fn(&Second) -> f64| {
        seconds.iter().filter(|s| !f(s).is_nan()).max_by(|a, b| f(a).total_cmp(&f(b)))
    };
    let worst_p99 = worst(|s| s.p99_ms).map(|s| format!("worst p99 {:.2} ms (s {})", s.p99_ms, s.end_s));
    let worst_max = worst(|s| s.max_ms).map(|s| format!("worst max {:.2} ms (s {})", s.max_ms, s.end_s));
    // Only whole seconds for the req/s spread (a last partial second would look slow).
    let mut rps: Vec<(f64, usize)> =
        seconds.iter().filter(|s| s.width_s >= 1.0).map(|s| (s.rps(), s.end_s)).collect();
    rps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let spread = match (rps.first(), rps.get(rps.len() / 2), rps.last()) {
        (Some(lo), Some(mid), Some(hi)) => {
            Some(format!("req/s min {:.0} (s {}), median {:.0}, max {:.0}", lo.0, lo.1, mid.0, hi.0))
        }
        _ => None,
    };
    let mut parts = vec![over];
    parts.extend(worst_p99);
    parts.extend(worst_max);
    parts.extend(spread);
    parts.join("; ")
}
