//! The storage contract suite (`passlink_core::contract`) run against the SQLite adapter, one
//! fresh database file per test.

#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use passlink_core::contract;
use passlink_core::store::Store;
use passlink_store_sqlite::SqliteStore;

/// A database file in the temp dir, unique to this process and test; removed (with its WAL and
/// shared-memory files) when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(test: &str) -> TempDb {
        let path = std::env::temp_dir().join(format!("passlink-contract-{}-{test}.db", std::process::id()));
        let db = TempDb(path);
        db.remove();
        db
    }

    fn open(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.0).expect("open sqlite store"))
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

macro_rules! contract_test {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let db = TempDb::new(stringify!($name));
            let store = db.open();
            contract::$name(store.as_ref()).await;
        }
    };
}

contract_test!(empty_store_reads_nothing);
contract_test!(ping);
contract_test!(outbox_leases_and_outcomes);
contract_test!(concurrent_claims_never_share_a_job);
contract_test!(commit_then_read_back);
contract_test!(stale_sequence_is_aborted_and_writes_nothing);
contract_test!(taken_claim_fails_with_its_error_and_writes_nothing);
contract_test!(failed_commit_leaves_no_trace);
contract_test!(concurrent_commits_on_one_aggregate_serialize);
contract_test!(independent_concurrent_commits_all_succeed);
contract_test!(failures_in_a_batch_are_isolated);
contract_test!(racing_claims_have_one_winner);
contract_test!(released_claims_are_free_again);
contract_test!(user_by_username_is_case_insensitive);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_across_reopen() {
    let db = TempDb::new("durable_across_reopen");
    contract::durable_across_reopen(|| {
        let store = db.open();
        async move { store }
    })
    .await;
}
