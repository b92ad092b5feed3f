//! What the workers of a phase collect: latencies of the successful requests in the measured
//! window (with their completion times, for the per-second timeline), failures by kind, and the
//! nearest-rank percentiles the table prints.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::timeline::Timeline;

/// A phase's measured window: requests completing inside it are measured, the others (warm-up,
/// finishing after the end) only counted.
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    /// A window starting after `warmup` and lasting `duration`.
    pub fn after(warmup: Duration, duration: Duration) -> Window {
        let start = Instant::now() + warmup;
        Window { start, end: start + duration }
    }

    pub fn contains(&self, t: Instant) -> bool {
        t >= self.start && t <= self.end
    }

    /// Milliseconds from the window's start to `t` (0 before it), saturated to u32.
    pub fn offset_ms(&self, t: Instant) -> u32 {
        u32::try_from(t.saturating_duration_since(self.start).as_millis()).unwrap_or(u32::MAX)
    }
}

#[derive(Default)]
pub struct Stats {
    /// Latencies of successful requests completed inside the measured window, in µs (sorted by
    /// [`Stats::finish`]).
    pub lat_us: Vec<u32>,
    /// The same requests: completion time and latency, for the per-second timeline.
    pub timeline: Timeline,
    /// Successful requests outside the window (warm-up, or finishing after the end).
    pub ok_outside: u64,
    /// Failed requests completed inside the measured window.
    pub errors: u64,
    /// Failed requests outside it (warm-up, or finishing after the end).
    pub errors_outside: u64,
    /// Failures by kind ("HTTP 409", "transport").
    pub kinds: BTreeMap<String, u64>,
    /// The first few failures (with the response bodies).
    pub first_errors: Vec<String>,
    /// Per-step latencies of the successful iterations in the measured window, in µs (phases of
    /// several requests; `steps[i]` is step i).
    pub steps: Vec<Vec<u32>>,
}

/// How many failures a phase keeps for the report.
const ERROR_SAMPLES: usize = 3;

impl Stats {
    /// A request (or iteration) started at `started` succeeded at `done`; true when it is measured.
    pub fn success(&mut self, w: &Window, started: Instant, done: Instant) -> bool {
        if w.contains(done) {
            let lat = micros(done.duration_since(started));
            self.lat_us.push(lat);
            self.timeline.push(w.offset_ms(done), lat);
            true
        } else {
            self.ok_outside += 1;
            false
        }
    }

    /// A request failed at `at`.
    pub fn error(&mut self, kind: String, detail: String, w: &Window, at: Instant) {
        if w.contains(at) {
            self.errors += 1;
            self.timeline.push_error(w.offset_ms(at));
        } else {
            self.errors_outside += 1;
        }
        *self.kinds.entry(kind).or_default() += 1;
        if self.first_errors.len() < ERROR_SAMPLES {
            self.first_errors.push(detail);
        }
    }

    pub fn merge(&mut self, o: Stats) {
        self.lat_us.extend(o.lat_us);
        self.timeline.merge(o.timeline);
        self.ok_outside += o.ok_outside;
        self.errors += o.errors;
        self.errors_outside += o.errors_outside;
        for (k, v) in o.kinds {
            *self.kinds.entry(k).or_default() += v;
        }
        let room = ERROR_SAMPLES.saturating_sub(self.first_errors.len());
        self.first_errors.extend(o.first_errors.into_iter().take(room));
        if self.steps.len() < o.steps.len() {
            self.steps.resize_with(o.steps.len(), Vec::new);
        }
        for (mine, theirs) in self.steps.iter_mut().zip(o.steps) {
            mine.extend(theirs);
        }
    }

    /// Sort the latencies (for the percentiles) once every worker's stats are merged.
    pub fn finish(&mut self) {
        self.lat_us.sort_unstable();
        for v in &mut self.steps {
            v.sort_unstable();
        }
        self.timeline.finish();
    }

    /// Successful requests, in the window and outside it.
    pub fn ok_total(&self) -> u64 {
        self.lat_us.len() as u64 + self.ok_outside
    }
}

/// Microseconds, saturated to u32.
pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The nearest-rank percentile `p` of sorted latencies (µs), in ms.
pub fn pct_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}
