//! `--prefill N`: grow the database by N links before the measured phases, as fast as the server
//! takes them (the links phase's request, connection i creating links for link user i, all
//! connections), printing progress every 10 % and the rate. Not a measured phase: its failures
//! still fail the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::StatusCode;
use tokio::time::Instant;

use crate::probe::WalWatch;
use crate::stats::{Stats, Window, pct_ms};
use crate::{Conn, PhaseResult, RequestSpec, Res, body_text, connected};

/// Claims request slots until `total` are taken; each claimed slot is one request (a failed
/// connection attempt spends its slot).
async fn fill(
    addr: Arc<str>,
    spec: Arc<RequestSpec>,
    path: String,
    next: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    total: u64,
    w: Arc<Window>,
) -> Res<Stats> {
    let mut stats = Stats::default();
    let mut conn: Option<Conn> = None;
    while next.fetch_add(1, Ordering::Relaxed) < total {
        let Some(c) = connected(&mut conn, &addr, &mut stats, &w).await else { continue };
        let req = spec.build(&path)?;
        let t = Instant::now();
        let r = c.send(req).await;
        let now = Instant::now();
        match r {
            Ok((StatusCode::OK, _)) => {
                stats.success(&w, t, now);
            }
            Ok((status, body)) => {
                let detail = format!("{} {path}: HTTP {status}: {}", spec.method, body_text(&body));
                stats.error(format!("HTTP {}", status.as_u16()), detail, &w, now);
            }
            Err(e) => {
                stats.error("transport".into(), format!("{} {path}: {e}", spec.method), &w, now);
                conn = None;
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(stats)
}

/// Send `total` link requests (`spec` on `paths`, connection i on `paths[i mod len]` and replica i
/// mod the replicas) on `n` connections; `wal`: the WAL to watch (a spawned SQLite server).
pub async fn prefill(
    name: &str,
    addrs: &[String],
    spec: RequestSpec,
    paths: &[String],
    n: usize,
    total: u64,
    wal: Option<std::path::PathBuf>,
) -> Res<PhaseResult> {
    println!("[{name}] prefill: {total} links as fast as possible on {n} connections (not measured)");
    let spec = Arc::new(spec);
    let now = Instant::now();
    // Every request counts as "in the window": the window is the whole prefill.
    let w = Arc::new(Window { start: now, end: now + Duration::from_secs(100 * 86_400) });
    let (next, done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let watch = wal.map(WalWatch::start);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let path = paths.get(i % paths.len().max(1)).cloned().ok_or("no request path")?;
        let addr =
            addrs.get(i % addrs.len().max(1)).map(|a| Arc::from(a.as_str())).ok_or("no server address")?;
        tasks.push(tokio::spawn(fill(
            addr,
            spec.clone(),
            path,
            next.clone(),
            done.clone(),
            total,
            w.clone(),
        )));
    }
    let step = total.div_ceil(10).max(1);
    let mut mark = step;
    let (mut last_n, mut last_t) = (0u64, now);
    while !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let d = done.load(Ordering::Relaxed);
        if d >= mark && d < total {
            let t = Instant::now();
            let since = (d - last_n) as f64 / t.duration_since(last_t).as_secs_f64();
            let elapsed = t.duration_since(now).as_secs_f64();
            println!(
                "[{name}] prefill: {d}/{total} links ({:.0} %), {elapsed:.1} s, {:.0} links/s ({since:.0}/s since the last line)",
                d as f64 * 100.0 / total as f64,
                d as f64 / elapsed
            );
            (last_n, last_t) = (d, t);
            mark = (d / step + 1) * step;
        }
    }
    let mut stats = Stats::default();
    for t in tasks {
        stats.merge(t.await.map_err(|e| format!("a prefill worker failed: {e}"))??);
    }
    stats.finish();
    let secs = now.elapsed().as_secs_f64();
    let wal = match watch {
        Some(w) => format!("; {}", w.stop().await?.describe()),
        None => String::new(),
    };
    let ok = stats.lat_us.len();
    println!(
        "[{name}] prefill: {ok} links in {secs:.1} s, {:.0} links/s, p50 {:.2} / p99 {:.2} / max {:.2} ms, {} failed{wal}",
        ok as f64 / secs,
        pct_ms(&stats.lat_us, 50.0),
        pct_ms(&stats.lat_us, 99.0),
        pct_ms(&stats.lat_us, 100.0),
        stats.errors,
    );
    Ok(PhaseResult { label: format!("{name}: prefill"), stats, secs, probe: None, timeline: false })
}
