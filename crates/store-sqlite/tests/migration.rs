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

/// Migration 7 moves the event log into write order with an index by aggregate: every event
/// reads back the same, and a sequence taken before the migration is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_keeps_every_event_and_its_sequence_check_across_migration_7() {
    use passlink_core::event::AggregateKind;
    use passlink_core::store::{Commit, Store};
    let path = std::env::temp_dir().join(format!("passlink-migration7-{}.db", std::process::id()));
    let remove = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    };
    remove();
    let store = SqliteStore::open(&path).expect("open");
    store.commit(Commit { events: legacy::passkey_history(), ..Commit::default() }).await.expect("write");
    let before = store.events_of(AggregateKind::User, "u").await.expect("events");
    drop(store);
    // Back to the layout before migration 7: whole rows clustered by aggregate.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE old_events (aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, sequence INTEGER NOT NULL,
            event_type TEXT NOT NULL, created_at INTEGER NOT NULL, resource_owner TEXT NOT NULL, creator TEXT NOT NULL,
            payload TEXT NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence)) WITHOUT ROWID;
         INSERT INTO old_events SELECT aggregate_type, aggregate_id, sequence, event_type, created_at, resource_owner,
            creator, payload FROM events;
         DROP TABLE events; ALTER TABLE old_events RENAME TO events;
         DELETE FROM schema_migrations WHERE version >= 7;",
    )
    .unwrap();
    drop(c);
    let store = SqliteStore::open(&path).expect("reopen and migrate");
    assert_eq!(store.events_of(AggregateKind::User, "u").await.expect("events"), before);
    assert_eq!(before.len(), 5);
    let again = legacy::passkey_history().into_iter().take(1).collect();
    let refused = store.commit(Commit { events: again, ..Commit::default() }).await;
    assert_eq!(refused.err().map(|e| e.kind), Some(passlink_core::error::Kind::Aborted));
    drop(store);
    remove();
}
