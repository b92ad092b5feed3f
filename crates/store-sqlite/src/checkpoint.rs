//! Keeping the WAL small without making writes wait.
//!
//! SQLite starts the WAL over only when a write begins with every frame copied back into the
//! database and no reader left in the WAL. A checkpoint running beside the writer never gets
//! there under constant load (the writer keeps appending, readers keep older snapshots pinned),
//! so the WAL grew without bound; the forced resets (TRUNCATE) that bounded it made every write
//! wait for them: those were the 100–300 ms stalls of the links benchmark.
//!
//! Here the work is split in two:
//! - the **copier** thread copies frames back (PASSIVE: it never blocks the writer or a reader),
//!   from its own connection, whenever the writer has appended [`COPY_FRAMES`] frames since its
//!   last pass: the bulk of the copying and the database file's fsync happen beside the writes;
//! - the **writer**, between two batches and after the batch's callers have their answers, once
//!   the WAL holds [`CHECKPOINT_FRAMES`] frames, runs a RESTART checkpoint: no write is open, so it
//!   copies the few frames the copier has not copied yet, waits the microseconds until readers of
//!   older snapshots are done (new readers read the database file), and its next write starts the
//!   WAL over from its beginning. It skips its turn while the copier is copying, up to twice the
//!   threshold; past it, it holds the copier back and waits for its current pass.
//!
//! The WAL file stays below about twice [`CHECKPOINT_FRAMES`] frames plus a batch, and is reused,
//! never truncated.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use passlink_core::error::{Error, Result};
use rusqlite::Connection;

use crate::db_err;

/// WAL frames past which the writer starts the WAL over (between two batches).
pub const CHECKPOINT_FRAMES: i64 = 8192;

/// Frames appended since the copier's last pass that start its next pass.
const COPY_FRAMES: i64 = 1024;

thread_local! {
    /// Frames in the WAL after this thread's last commit (SQLite's WAL hook reports it).
    static WAL_FRAMES: Cell<i64> = const { Cell::new(0) };
}

fn record_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(i64::from(frames)));
    Ok(())
}

/// Frames in the WAL after the writer thread's last commit.
pub(crate) fn wal_frames() -> i64 {
    WAL_FRAMES.with(Cell::get)
}

/// The writer's side: when to wake the copier, when to start the WAL over.
pub(crate) struct Checkpoints {
    wake: mpsc::SyncSender<()>,
    /// The copier is copying.
    copying: Arc<AtomicBool>,
    /// The writer needs the WAL started over: the copier starts no pass.
    hold: Arc<AtomicBool>,
    /// WAL frames when the copier was last woken.
    woken_at: i64,
}

impl Checkpoints {
    /// Watch the writer connection's commits and start the copier on its own connection.
    pub fn start(writer: &Connection, path: &Path) -> Result<Checkpoints> {
        writer.wal_hook(Some(record_wal_frames));
        let conn = Connection::open(path).map_err(db_err)?;
        conn.execute_batch("PRAGMA synchronous=FULL").map_err(db_err)?;
        fine_busy_wait(&conn)?;
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let copying = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let (c, h) = (copying.clone(), hold.clone());
        std::thread::Builder::new()
            .name("sqlite-copier".into())
            .spawn(move || copier(&conn, &woken, &c, &h))
            .map_err(Error::internal)?;
        Ok(Checkpoints { wake, copying, hold, woken_at: 0 })
    }

    #[allow(clippy::disallowed_methods)] // the writer is a plain thread; it waits for the copier
    pub fn after_commit(&mut self, conn: &Connection) {
        let frames = wal_frames();
        if frames < self.woken_at {
            self.woken_at = 0; // the WAL started over
        }
        if frames - self.woken_at >= COPY_FRAMES {
            self.woken_at = frames;
            let _ = self.wake.try_send(()); // a pass already pending will see these frames
        }
        // While the copier copies, try again after the next batch; past twice the threshold
        // (the WAL's bound), hold the copier back and wait for its current pass to end.
        let urgent = frames >= 2 * CHECKPOINT_FRAMES;
        if frames < CHECKPOINT_FRAMES || (!urgent && self.copying.load(Ordering::Acquire)) {
            return;
        }
        self.hold.store(urgent, Ordering::Release);
        let started = Instant::now();
        loop {
            // (busy, frames in the WAL, frames copied back); SQLite answers busy at once while
            // another connection checkpoints.
            let restarted = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            });
            match restarted {
                Ok((1, _, _)) if urgent && started.elapsed() < Duration::from_secs(1) => {
                    std::thread::sleep(Duration::from_micros(200));
                }
                Ok((busy, wal, copied)) => {
                    let micros = started.elapsed().as_micros();
                    tracing::trace!(busy, wal, copied, micros, "wal restart checkpoint");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "wal restart checkpoint failed");
                    break;
                }
            }
        }
        self.hold.store(false, Ordering::Release);
    }

    /// At the end: copy everything back and leave an empty WAL (stops the copier).
    pub fn finish(self, conn: &Connection) {
        drop(self.wake);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "final wal checkpoint failed");
        }
    }
}

/// The copier thread: a PASSIVE checkpoint per wake-up (and every second when idle), until the
/// writer is gone.
fn copier(conn: &Connection, woken: &mpsc::Receiver<()>, copying: &AtomicBool, hold: &AtomicBool) {
    loop {
        match woken.recv_timeout(Duration::from_secs(1)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if hold.load(Ordering::Acquire) {
            continue;
        }
        copying.store(true, Ordering::Release);
        let started = Instant::now();
        let copied = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        copying.store(false, Ordering::Release);
        match copied {
            Ok((wal, copied)) => {
                tracing::trace!(wal, copied, micros = started.elapsed().as_micros(), "wal copied back")
            }
            Err(e) => tracing::warn!(error = %e, "wal checkpoint failed"),
        }
    }
}

/// Wait for a lock in 20 µs steps for 2 ms, then in 1 ms steps, up to 5 s. SQLite's own busy
/// timeout sleeps in growing steps (up to 100 ms), which turns a lock held for microseconds (a
/// reader the checkpoint waits for) into a long stall.
pub(crate) fn fine_busy_wait(conn: &Connection) -> Result<()> {
    #[allow(clippy::disallowed_methods)] // the writer and the copier are plain threads
    fn wait(attempt: i32) -> bool {
        // Readers hold their locks for microseconds: poll finely at first.
        let pause = if attempt < 100 { 20 } else { 1000 };
        std::thread::sleep(std::time::Duration::from_micros(pause));
        attempt < 5100
    }
    conn.busy_handler(Some(wait)).map_err(db_err)
}
