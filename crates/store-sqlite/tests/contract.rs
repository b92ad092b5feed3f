//! The storage contract suite (`passlink-store-contract`) run against the SQLite adapter, one
//! fresh database file per test.

#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use passlink_core::store::Store;
use passlink_store_sqlite::SqliteStore;

/// A database file in the temp dir, unique to this process and test; removed (with its WAL and
/// shared-memory files) when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn remove(&self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl passlink_store_contract::Harness for TempDb {
    async fn new(test: &str) -> TempDb {
        let path = std::env::temp_dir().join(format!("passlink-contract-{}-{test}.db", std::process::id()));
        let db = TempDb(path);
        db.remove();
        db
    }

    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.0).expect("open sqlite store"))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

passlink_store_contract::contract_tests!(TempDb);
