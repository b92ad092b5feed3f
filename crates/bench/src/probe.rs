//! Server-side resource figures of a spawned SQLite passlink, read from `/proc/<pid>` and its data
//! dir (Linux only; a figure that cannot be read is reported as such, never fails the run):
//!
//! - bytes written per link: `/proc/<pid>/io` `wchar` (bytes passed to write/pwrite: the database
//!   file and its WAL, but also the HTTP responses written to the sockets, which the bench counts
//!   on its side and subtracts) and `write_bytes` (page-cache bytes dirtied for the disk), sampled
//!   at the start and the end of a measured window;
//! - the WAL (`passlink.db-wal`) polled every 5 ms during a phase: resets (the file shrank, a
//!   TRUNCATE checkpoint), new WAL headers (checkpoint sequence number and salts changed: a reset or
//!   a restart from the file's beginning), the largest size;
//! - `VmRSS` and `VmHWM` from `/proc/<pid>/status`; the binary's size, and stripped (`strip` on a copy).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Res;
use crate::stats::Window;

/// A spawned SQLite server: its process and its database file.
pub struct Server {
    pub pid: u32,
    pub db: PathBuf,
}

impl Server {
    /// The WAL next to the database (`<db>-wal`).
    pub fn wal(&self) -> PathBuf {
        let mut p = self.db.as_os_str().to_owned();
        p.push("-wal");
        PathBuf::from(p)
    }
}

/// The write counters of `/proc/<pid>/io`.
#[derive(Clone, Copy)]
pub struct ProcIo {
    pub wchar: u64,
    pub write_bytes: u64,
}

pub fn read_io(pid: u32) -> Res<ProcIo> {
    let path = format!("/proc/{pid}/io");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let field = |name: &str| -> Res<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("{path}: no {name}"))
    };
    Ok(ProcIo { wchar: field("wchar")?, write_bytes: field("write_bytes")? })
}

/// `VmRSS` and `VmHWM` (peak RSS) of `/proc/<pid>/status`, in kB.
#[derive(Clone, Copy)]
pub struct Mem {
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

impl std::fmt::Display for Mem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VmRSS {:.1} MB, VmHWM {:.1} MB", self.rss_kb as f64 / 1024.0, self.hwm_kb as f64 / 1024.0)
    }
}

pub fn read_mem(pid: u32) -> Res<Mem> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let field = |name: &str| -> Res<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("{path}: no {name}"))
    };
    Ok(Mem { rss_kb: field("VmRSS")?, hwm_kb: field("VmHWM")? })
}

pub fn file_len(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Bytes as MB (10^6) with one decimal.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The size of `binary`, and of a stripped copy (`strip` on a temp copy, removed afterwards).
pub fn binary_size(binary: &Path) -> String {
    let Some(size) = file_len(binary) else {
        return format!("{}: size unknown", binary.display());
    };
    let copy = std::env::temp_dir().join(format!("passlink-bench-strip-{}", std::process::id()));
    let stripped = match std::fs::copy(binary, &copy) {
        Err(e) => format!("no stripped size (copying to {}: {e})", copy.display()),
        Ok(_) => {
            let r = std::process::Command::new("strip")
                .arg(&copy)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .output();
            let s = match r {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    "no stripped size (no strip command)".into()
                }
                Err(e) => format!("no stripped size (strip: {e})"),
                Ok(o) if !o.status.success() => {
                    format!("no stripped size (strip: {})", String::from_utf8_lossy(&o.stderr).trim())
                }
                Ok(_) => match file_len(&copy) {
                    Some(n) => format!("stripped {}", mb(n)),
                    None => "no stripped size".into(),
                },
            };
            let _ = std::fs::remove_file(&copy);
            s
        }
    };
    format!("{} {} ({stripped})", binary.display(), mb(size))
}

// ------------------------------------------------------------------------- bytes on the sockets

/// Bytes the bench has read from its connections: the server's socket writes, which `wchar` counts
/// along with the database's.
static RECEIVED: AtomicU64 = AtomicU64::new(0);

/// A TCP stream counting the bytes read from it into [`RECEIVED`].
pub struct Counted(pub TcpStream);

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.get_mut().0).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        RECEIVED.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// `/proc/<pid>/io` with the bytes the bench had received by then.
#[derive(Clone, Copy)]
pub struct IoSample {
    io: ProcIo,
    received: u64,
}

fn sample(pid: u32) -> Res<IoSample> {
    Ok(IoSample { io: read_io(pid)?, received: RECEIVED.load(Ordering::Relaxed) })
}

// -------------------------------------------------------------------------------------- the WAL

/// What the WAL watcher saw.
#[derive(Default)]
pub struct WalReport {
    /// When the file shrank (a reset).
    resets: Vec<Instant>,
    /// How often its header changed (a new checkpoint sequence number or salts: a reset, or a
    /// restart from the beginning of the file without shrinking it).
    new_headers: usize,
    largest: u64,
}

/// Polls the WAL's size and header every 5 ms until stopped.
pub struct WalWatch {
    stop: oneshot::Sender<()>,
    task: JoinHandle<WalReport>,
}

/// The WAL header's checkpoint sequence number and salts (bytes 12..24), if the file has one.
fn wal_header(path: &Path) -> Option<[u8; 12]> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = [0u8; 24];
    f.read_exact(&mut h).ok()?;
    let mut key = [0u8; 12];
    key.copy_from_slice(&h[12..24]);
    Some(key)
}

impl WalWatch {
    pub fn start(wal: PathBuf) -> WalWatch {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut r = WalReport::default();
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last_len = file_len(&wal).unwrap_or(0);
            let mut last_header = wal_header(&wal);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                let len = file_len(&wal).unwrap_or(0);
                if len < last_len {
                    r.resets.push(Instant::now());
                }
                r.largest = r.largest.max(len);
                last_len = len;
                if let Some(h) = wal_header(&wal) {
                    if last_header.is_some_and(|l| l != h) {
                        r.new_headers += 1;
                    }
                    last_header = Some(h);
                }
            }
            r
        });
        WalWatch { stop, task }
    }

    pub async fn stop(self) -> Res<WalReport> {
        let _ = self.stop.send(());
        self.task.await.map_err(|e| format!("the WAL watcher failed: {e}"))
    }
}

impl WalReport {
    pub fn describe(&self) -> String {
        format!(
            "WAL: {} resets (the file shrank), {} new WAL headers (resets and restarts), largest {}",
            self.resets.len(),
            self.new_headers,
            mb(self.largest)
        )
    }
}

// ---------------------------------------------------------------------------------- one phase

/// The probes of one phase of a spawned SQLite server: the WAL watched from the phase's start,
/// `/proc/<pid>/io` sampled at the start and the end of its measured window.
pub struct PhaseProbe {
    wal: WalWatch,
    io: JoinHandle<Res<(IoSample, IoSample)>>,
    start: Instant,
    end: Instant,
}

/// What a [`PhaseProbe`] measured.
pub struct PhaseFigures {
    /// `/proc/<pid>/io` (and the bytes received) at the start and the end of the window.
    io: Res<(IoSample, IoSample)>,
    pub wal: WalReport,
    window: Window,
}

impl PhaseProbe {
    pub fn start(server: &Server, w: &Window) -> PhaseProbe {
        let (pid, start, end) = (server.pid, w.start, w.end);
        let io = tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            let a = sample(pid)?;
            tokio::time::sleep_until(end).await;
            Ok((a, sample(pid)?))
        });
        PhaseProbe { wal: WalWatch::start(server.wal()), io, start, end }
    }

    pub async fn finish(self) -> Res<PhaseFigures> {
        let io = self.io.await.map_err(|e| format!("the /proc sampler failed: {e}"))?;
        let wal = self.wal.stop().await?;
        Ok(PhaseFigures { io, wal, window: Window { start: self.start, end: self.end } })
    }
}

impl PhaseFigures {
    /// The WAL resets in the measured window, in ms from its start (for the timeline).
    pub fn resets_in_window_ms(&self) -> Vec<u32> {
        self.wal
            .resets
            .iter()
            .filter(|t| self.window.contains(**t))
            .map(|t| self.window.offset_ms(*t))
            .collect()
    }

    /// wchar, write_bytes and the bytes received in the window, per request (`n` requests).
    fn per_request(&self, n: usize) -> Res<(f64, f64, f64)> {
        let (a, b) = self.io.as_ref().map_err(Clone::clone)?;
        if n == 0 {
            return Err("no successful requests in the window".into());
        }
        let per = |x: u64, y: u64| y.saturating_sub(x) as f64 / n as f64;
        Ok((
            per(a.io.wchar, b.io.wchar),
            per(a.io.write_bytes, b.io.write_bytes),
            per(a.received, b.received),
        ))
    }

    /// The bytes written per link in the window (`links` of them).
    pub fn describe_links(&self, links: usize) -> String {
        match self.per_request(links) {
            Ok((wchar, write_bytes, received)) => format!(
                "bytes written per link (db + WAL), from /proc/PID/io wchar: {:.0} B (wchar {wchar:.0} B/link less \
                 {received:.0} B/link of HTTP responses); write_bytes {write_bytes:.0} B/link; {links} links in \
                 the window",
                wchar - received
            ),
            Err(e) => format!("bytes written per link: not measured ({e})"),
        }
    }

    /// The socket share of wchar, from a phase that writes nothing to the store (`n` requests).
    pub fn describe_socket(&self, n: usize) -> String {
        match self.per_request(n) {
            Ok((wchar, write_bytes, received)) => format!(
                "wchar {wchar:.0} B/request, write_bytes {write_bytes:.0} B/request; the bench received \
                 {received:.0} B/response (wchar counts the socket writes, subtracted above)"
            ),
            Err(e) => format!("not measured ({e})"),
        }
    }

    /// The WAL: resets in the window, and what the whole phase saw.
    pub fn describe_wal(&self) -> String {
        let w = &self.wal;
        let in_window = w.resets.iter().filter(|t| self.window.contains(**t)).count();
        format!(
            "WAL: {in_window} resets (the file shrank) in the measured window; in the whole phase (warm-up \
             included) {} resets, {} new WAL headers (resets and restarts), largest {}",
            w.resets.len(),
            w.new_headers,
            mb(w.largest)
        )
    }
}

/// The spawned SQLite server's figures over the whole run (besides the phases').
#[derive(Default)]
pub struct ServerFigures {
    pub pid: u32,
    /// `/proc/<pid>/status` once ready, before the setup.
    pub idle: Option<Res<Mem>>,
    /// The same after every phase.
    pub end: Option<Res<Mem>>,
    /// The database file's size after the setup, before the link phases.
    pub db_before_links: Option<u64>,
    /// Its size and the WAL's after the link phases (prefill, links, hot-user) and a pause for a
    /// checkpoint, with the links they created (warm-ups included).
    pub db_after_links: Option<(u64, u64, u64)>,
    /// Its size once the server has stopped (its last checkpoint has copied the WAL back).
    pub db_end: Option<u64>,
}

impl ServerFigures {
    pub fn print(&self, name: &str) {
        let mem = |m: &Option<Res<Mem>>| match m {
            Some(Ok(m)) => m.to_string(),
            Some(Err(e)) => format!("unknown ({e})"),
            None => "not measured".into(),
        };
        println!("  [{name}] RSS after start-up (idle, before the setup): {}", mem(&self.idle));
        println!("  [{name}] RSS at the end of the run (after every phase): {}", mem(&self.end));
        let size = |s: Option<u64>| s.map(mb).unwrap_or_else(|| "unknown".into());
        let growth = match (self.db_before_links, self.db_after_links) {
            (Some(before), Some((after, wal, links))) if links > 0 => format!(
                ", {} after the link phases: +{:.0} B/link over {links} links (prefill and warm-ups included; \
                 the WAL then held {})",
                mb(after),
                after.saturating_sub(before) as f64 / links as f64,
                mb(wal)
            ),
            _ => String::new(),
        };
        println!(
            "  [{name}] database file (passlink.db): {} after the setup{growth}; {} after the server stopped \
             (every phase; its last checkpoint copied the WAL back)",
            size(self.db_before_links),
            size(self.db_end)
        );
    }
}
