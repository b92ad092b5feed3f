//! The storage contract suite (`passlink-store-contract`) run against the PostgreSQL adapter, one
//! freshly created schema per test, dropped at the end (also when the test fails).
//!
//! The database is `PASSLINK_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`).
//! A PostgreSQL that cannot be reached fails every test with that message: it never passes
//! silently.

#![allow(clippy::expect_used, clippy::panic)]

mod pg;

use std::sync::Arc;

use passlink_core::store::Store;
use pg::TempSchema;

impl passlink_store_contract::Harness for TempSchema {
    async fn new(test: &str) -> TempSchema {
        TempSchema::new(test).await
    }

    async fn open(&self) -> Arc<dyn Store> {
        TempSchema::open(self).await
    }
}

// Every contract test on a fresh schema, and the two-store runs: two stores (two replicas' worth
// of pools and writers) on one schema, used alternately: commits on one are read on the other at
// once, and their racing writes still serialize.
passlink_store_contract::contract_tests!(TempSchema, two_stores);

/// Migrations run concurrently from many connections at once on a fresh schema: the advisory
/// lock lets exactly one apply them, and every store comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_migrate_once() {
    let schema = TempSchema::new("concurrent_starts").await;
    let stores = passlink_store_contract::join_all((0..6).map(|_| schema.try_open())).await;
    for s in &stores {
        assert!(s.is_ok(), "a concurrent start failed: {:?}", s.as_ref().err());
    }
    let applied = schema.query_i64("SELECT count(*) FROM schema_migrations").await;
    assert_eq!(applied, passlink_store_postgres::LATEST_MIGRATION, "each migration recorded once");
}

/// A schema from before the passkeys read model (migration 4): the migration builds it from the
/// passkey events already stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_passkeys_read_model_is_built_from_events_written_before_it() {
    use passlink_store_contract::legacy;
    let schema = TempSchema::new("passkeys_backfill").await;
    legacy::write_events_only(schema.open().await.as_ref()).await;
    schema.execute("DROP TABLE passkeys; DELETE FROM schema_migrations WHERE version >= 4").await;
    legacy::assert_passkeys_built(schema.open().await.as_ref()).await;
}

/// Users are found by username, case-insensitively (for the port's `user_by_username`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_by_username_ignores_case() {
    use passlink_core::event::{AggregateKind, Event, HumanProfile, Recorded};
    use passlink_core::store::Commit;
    use passlink_core::view::{Change, UserView};
    let schema = TempSchema::new("user_by_username").await;
    let store = schema.open().await;
    let r = Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: "ub-1".into(),
        sequence: 1,
        created_at: passlink_core::time::Timestamp(1),
        resource_owner: "org".into(),
        creator: String::new(),
        event: Event::HumanAdded { username: "Ada.Lovelace".into(), profile: HumanProfile::default() },
    };
    let v = UserView::created(&r).expect("view");
    store
        .commit(Commit { events: vec![r], changes: vec![Change::User(v.clone())], ..Commit::default() })
        .await
        .expect("commit");
    assert_eq!(store.user_by_username("ada.lovelace").await.expect("read"), Some(v.clone()));
    assert_eq!(store.user_by_username("ADA.LOVELACE").await.expect("read"), Some(v));
    assert_eq!(store.user_by_username("ada").await.expect("read"), None);
}
