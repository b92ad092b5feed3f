//! The storage contract suite (`passlink_core::contract`) run against the PostgreSQL adapter, one
//! freshly created schema per test, dropped at the end (also when the test fails).
//!
//! The database is `PASSLINK_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`).
//! A PostgreSQL that cannot be reached fails every test with that message: it never passes
//! silently.

#![allow(clippy::expect_used, clippy::panic)]

mod pg;

use std::sync::Arc;

use passlink_core::contract;
use passlink_core::store::Store;
use pg::TempSchema;

macro_rules! contract_test {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let schema = TempSchema::new(stringify!($name)).await;
            let store = schema.open().await;
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
    let schema = TempSchema::new("durable_across_reopen").await;
    contract::durable_across_reopen(|| {
        let schema = &schema;
        async move { schema.open().await as Arc<dyn Store> }
    })
    .await;
}

/// Two stores (two replicas' worth of pools and writers) on one schema, used alternately: commits
/// on one are read on the other at once, and their racing writes still serialize.
macro_rules! two_store_test {
    ($test:ident, $suite:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let schema = TempSchema::new(stringify!($test)).await;
            let (a, b) = (schema.open().await, schema.open().await);
            contract::$suite(&Split(a, b)).await;
        }
    };
}

two_store_test!(two_stores_racing_claims_have_one_winner, racing_claims_have_one_winner);
two_store_test!(two_stores_commits_on_one_aggregate_serialize, concurrent_commits_on_one_aggregate_serialize);
two_store_test!(two_stores_failures_in_a_batch_are_isolated, failures_in_a_batch_are_isolated);
two_store_test!(two_stores_commit_then_read_back, commit_then_read_back);
two_store_test!(two_stores_outbox_leases_and_outcomes, outbox_leases_and_outcomes);
two_store_test!(two_stores_concurrent_claims_never_share_a_job, concurrent_claims_never_share_a_job);

/// Migrations run concurrently from many connections at once on a fresh schema: the advisory
/// lock lets exactly one apply them, and every store comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_migrate_once() {
    let schema = TempSchema::new("concurrent_starts").await;
    let stores = contract::join_all((0..6).map(|_| schema.try_open())).await;
    for s in &stores {
        assert!(s.is_ok(), "a concurrent start failed: {:?}", s.as_ref().err());
    }
    let applied = schema.query_i64("SELECT count(*) FROM schema_migrations").await;
    assert_eq!(applied, passlink_store_postgres::LATEST_MIGRATION, "each migration recorded once");
}

/// A store whose commits alternate between two stores and whose reads come from the other one
/// than the last write: what a load balancer in front of two replicas does.
struct Split(Arc<passlink_store_postgres::PostgresStore>, Arc<passlink_store_postgres::PostgresStore>);

static FLIP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Split {
    fn pick(&self) -> &dyn Store {
        if FLIP.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(2) {
            self.0.as_ref()
        } else {
            self.1.as_ref()
        }
    }
}

#[async_trait::async_trait]
impl Store for Split {
    async fn commit(&self, commit: passlink_core::store::Commit) -> passlink_core::error::Result<()> {
        self.pick().commit(commit).await
    }
    async fn instance(&self) -> passlink_core::error::Result<Option<passlink_core::view::InstanceView>> {
        self.pick().instance().await
    }
    async fn org(&self, id: &str) -> passlink_core::error::Result<Option<passlink_core::view::OrgView>> {
        self.pick().org(id).await
    }
    async fn user(&self, id: &str) -> passlink_core::error::Result<Option<passlink_core::view::UserView>> {
        self.pick().user(id).await
    }
    async fn user_by_username(
        &self,
        username: &str,
    ) -> passlink_core::error::Result<Option<passlink_core::view::UserView>> {
        self.pick().user_by_username(username).await
    }
    async fn memberships_of(
        &self,
        user_id: &str,
    ) -> passlink_core::error::Result<Vec<passlink_core::view::Membership>> {
        self.pick().memberships_of(user_id).await
    }
    async fn pat_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> passlink_core::error::Result<Option<passlink_core::view::PatView>> {
        self.pick().pat_by_hash(hash).await
    }
    async fn code(&self, id: &str) -> passlink_core::error::Result<Option<passlink_core::code::CodeView>> {
        self.pick().code(id).await
    }
    async fn events_of(
        &self,
        kind: passlink_core::event::AggregateKind,
        id: &str,
    ) -> passlink_core::error::Result<Vec<passlink_core::event::Recorded>> {
        self.pick().events_of(kind, id).await
    }
    async fn pending_jobs(
        &self,
        limit: usize,
    ) -> passlink_core::error::Result<Vec<passlink_core::event::OutboxJob>> {
        self.pick().pending_jobs(limit).await
    }
    async fn claim_jobs(
        &self,
        owner: &str,
        now: passlink_core::time::Timestamp,
        lease_until: passlink_core::time::Timestamp,
        limit: usize,
    ) -> passlink_core::error::Result<Vec<passlink_core::event::OutboxJob>> {
        self.pick().claim_jobs(owner, now, lease_until, limit).await
    }
    async fn job(&self, id: &str) -> passlink_core::error::Result<Option<passlink_core::store::JobStatus>> {
        self.pick().job(id).await
    }
    async fn ping(&self) -> passlink_core::error::Result<()> {
        self.pick().ping().await
    }
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
