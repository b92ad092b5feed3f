//! Migrations on data written by an older passlink: the passkeys read model (migration 5) is
//! built from the passkey events already stored, so a database from before it signs in the same.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use passlink_store_contract::legacy;
use passlink_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_passkeys_read_model_is_built_from_events_written_before_it() {
    let path = std::env::temp_dir().join(format!("passlink-migration-{}.db", std::process::id()));
    let remove = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    };
    remove();
    legacy::write_events_only(&SqliteStore::open(&path).expect("open")).await;
    // Back to the schema before migration 5.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("DROP TABLE passkeys; DELETE FROM schema_migrations WHERE version >= 5;").unwrap();
    drop(c);
    let store = SqliteStore::open(&path).expect("reopen and migrate");
    legacy::assert_passkeys_built(&store).await;
    drop(store);
    remove();
}
