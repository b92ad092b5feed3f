//! A consistent copy of the database while the server runs (`passlink backup`), with SQLite's
//! online backup API, from another process.
//!
//! The copy is one snapshot: the backup holds a read transaction on the source for the whole
//! copy. Without it SQLite starts a backup over whenever another connection commits between two
//! steps, and under constant writes a stepped backup never ends. In WAL mode the snapshot never
//! blocks the server's writer; what it holds back is the writer's WAL restart (`checkpoint`):
//! frames written during the copy stay in the WAL until the copy ends. The copy is stepped
//! [`PAGES_PER_STEP`] pages at a time, as fast as the disk allows, to keep that window short.
//!
//! The copy is written to `<file>.partial` (mode 0600: it holds PAT hashes and sealed codes),
//! checked with `PRAGMA integrity_check`, synced, and only then renamed to its name.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use passlink_core::error::{Error, Result};
use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

use crate::{db_err, open_reader};

/// Pages copied per backup step (2 MiB with passlink's 2 KiB pages).
pub const PAGES_PER_STEP: i32 = 1024;

/// What a finished backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub pages: u64,
    pub page_size: u64,
    /// The copy's size in bytes (pages × page size).
    pub bytes: u64,
    /// Backup steps taken.
    pub steps: u64,
}

fn partial(dst: &Path) -> PathBuf {
    let mut p = dst.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// Copy the database at `src` (read-only, next to a running server) to `dst`, which must not
/// exist; check the copy's integrity.
pub fn backup(src: &Path, dst: &Path) -> Result<BackupReport> {
    if !src.exists() {
        return Err(Error::unavailable(format!("{}: no such database", src.display())));
    }
    let source = open_reader(src)?;
    let tmp = partial(dst);
    let _ = std::fs::remove_file(&tmp);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::unavailable(format!("{}: {e}", tmp.display())))?;
    let copied = copy(&source, &tmp);
    drop(source);
    match copied {
        Ok(report) => {
            std::fs::rename(&tmp, dst).map_err(|e| Error::unavailable(format!("{}: {e}", dst.display())))?;
            if let Some(dir) = dst.parent().filter(|d| !d.as_os_str().is_empty())
                && let Ok(d) = std::fs::File::open(dir)
            {
                let _ = d.sync_all();
            }
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[allow(clippy::disallowed_methods)] // a CLI thread, not a runtime's: it waits for a busy source
fn copy(source: &Connection, tmp: &Path) -> Result<BackupReport> {
    let mut dest = Connection::open(tmp).map_err(db_err)?;
    // One snapshot for the whole copy (see the module note).
    source.execute_batch("BEGIN").map_err(db_err)?;
    source.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).map_err(db_err)?;
    let mut steps = 0u64;
    {
        let b = Backup::new(source, &mut dest).map_err(db_err)?;
        loop {
            steps += 1;
            match b.step(PAGES_PER_STEP).map_err(db_err)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                _ => {}
            }
        }
    }
    source.execute_batch("COMMIT").map_err(db_err)?;
    let problems: Vec<String> = {
        let mut st = dest.prepare("PRAGMA integrity_check").map_err(db_err)?;
        let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(db_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_err)?
    };
    if problems != ["ok"] {
        return Err(Error::internal(format!("the copy fails integrity_check: {}", problems.join("; "))));
    }
    let page_size: i64 = dest.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(db_err)?;
    let pages: i64 = dest.query_row("PRAGMA page_count", [], |r| r.get(0)).map_err(db_err)?;
    // Leave a single file: the copy's own WAL (it keeps the source's journal mode) folded in.
    dest.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(db_err)?;
    dest.close().map_err(|(_, e)| db_err(e))?;
    let f = std::fs::File::open(tmp).map_err(|e| Error::unavailable(format!("{}: {e}", tmp.display())))?;
    f.sync_all().map_err(|e| Error::unavailable(format!("{}: {e}", tmp.display())))?;
    let (pages, page_size) = (pages.max(0) as u64, page_size.max(0) as u64);
    Ok(BackupReport { pages, page_size, bytes: pages * page_size, steps })
}
