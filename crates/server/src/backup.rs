//! `passlink backup`: a restorable copy of an SQLite deployment next to the running server:
//! the database (SQLite's online backup, [`passlink_store_sqlite::backup`]) and, unless told
//! not to, the server keys and the admin token beside it (mode 0600). Without the keys a copy of
//! the database is of little use: sealed outbox codes cannot be opened, code and token hashes
//! cannot be checked, and the signing keys are gone. PostgreSQL is backed up with `pg_dump`.

use std::path::{Path, PathBuf};

use crate::config::{Backend, Config};
use crate::platform::write_private;

/// What `passlink backup` wrote.
#[derive(Debug)]
pub struct Written {
    pub database: PathBuf,
    pub report: passlink_store_sqlite::backup::BackupReport,
    /// `<file>.keys.json` and `<file>.admin.pat`, when copied.
    pub keys: Option<PathBuf>,
    pub admin_token: Option<PathBuf>,
}

/// `<file><suffix>`: the files written beside the database copy.
pub fn beside(file: &Path, suffix: &str) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Back up the store of `cfg` to `file` (and its keys and admin token beside it, with
/// `with_keys`). Existing files are refused unless `force`.
pub fn backup(cfg: &Config, file: &Path, force: bool, with_keys: bool) -> Result<Written, String> {
    let db = match cfg.backend()? {
        Backend::Sqlite(db) => db,
        Backend::Postgres(_) => {
            return Err("a PostgreSQL store is backed up with pg_dump (README: Backups and restore)".into());
        }
    };
    let keys_src = cfg.keys_file.clone().unwrap_or_else(|| cfg.data_dir.join("keys.json"));
    let pat_src = cfg.data_dir.join("admin.pat");
    let keys_dst = beside(file, ".keys.json");
    let pat_dst = beside(file, ".admin.pat");
    let mut targets = vec![file.to_path_buf()];
    if with_keys {
        targets.push(keys_dst.clone());
        if pat_src.exists() {
            targets.push(pat_dst.clone());
        }
    }
    for t in &targets {
        if t.exists() {
            if !force {
                return Err(format!("{} exists (--force overwrites it)", t.display()));
            }
            std::fs::remove_file(t).map_err(|e| format!("{}: {e}", t.display()))?;
        }
    }
    // The keys first: a backup without them must not look complete.
    let keys = if with_keys {
        let k = std::fs::read(&keys_src).map_err(|e| format!("the keys file {}: {e}", keys_src.display()))?;
        write_private(&keys_dst, &k).map_err(|e| format!("{}: {e}", keys_dst.display()))?;
        Some(keys_dst)
    } else {
        None
    };
    let admin_token = match (with_keys, std::fs::read(&pat_src)) {
        (true, Ok(t)) => {
            write_private(&pat_dst, &t).map_err(|e| format!("{}: {e}", pat_dst.display()))?;
            Some(pat_dst)
        }
        _ => None,
    };
    let report =
        passlink_store_sqlite::backup::backup(&db, file).map_err(|e| format!("{}: {e}", db.display()))?;
    Ok(Written { database: file.to_path_buf(), report, keys, admin_token })
}
