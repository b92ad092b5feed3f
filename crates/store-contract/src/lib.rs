//! The storage contract suite: one body of tests every [`Store`] adapter must pass, and the one
//! macro, [`contract_tests!`], that expands all of them for an adapter. The list of tests exists
//! once, in that macro; a unit test below checks that it names every test of [`suite`].
//!
//! Layout:
//! - [`contract_tests!`] and [`Harness`] (here): how an adapter runs the suite.
//! - [`suite`]: the tests, by theme (`read_back`, `failures`, `concurrency`, `durability`,
//!   `outbox`, `notifications`, `sessions`,
//!   `lookups`); `fixtures`: the test data and the "no trace of a failed commit" checks.
//! - [`join_all`]: many futures polled at once without a runtime (commits in flight together).
//! - [`Split`]: two stores on one location used alternately (replicas behind a load balancer).
//! - [`legacy`]: data as an older passlink wrote it, for the adapters' migration tests.
//!
//! An adapter's test file (with `tokio` as a dev-dependency, features `macros`, `rt-multi-thread`):
//!
//! ```ignore
//! struct Place(/* a temp file, a fresh schema, ... */);
//! impl passlink_store_contract::Harness for Place { /* new(test), open() */ }
//! passlink_store_contract::contract_tests!(Place);               // every test
//! passlink_store_contract::contract_tests!(Place, two_stores);   // and the two-store runs
//! ```
//!
//! Each test gets a fresh place from [`Harness::new`] and a store from [`Harness::open`];
//! `durable_across_reopen` opens the same place three times, the two-store runs open it twice
//! and use both stores through [`Split`].

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;

use passlink_core::store::Store;

mod fixtures;
mod join;
pub mod legacy;
mod split;
pub mod suite;

pub use join::join_all;
pub use split::Split;

/// Where an adapter's test keeps its data, and how it opens a store on it.
pub trait Harness: Sized {
    /// A fresh, empty place for the test called `test` (removed when the value is dropped).
    fn new(test: &str) -> impl Future<Output = Self>;
    /// Open a store on this place. Called again to reopen it (durability) or to get a second
    /// store on the same data (two replicas).
    fn open(&self) -> impl Future<Output = Arc<dyn Store>>;
}

/// Expand every contract test as a `#[tokio::test]` for a [`Harness`] type.
///
/// `contract_tests!(H)` expands the single-store tests (including `durable_across_reopen`);
/// `contract_tests!(H, two_stores)` also expands `two_stores_<test>` runs, each on two stores
/// opened on one place and used alternately. The test names are those of [`suite`].
#[macro_export]
macro_rules! contract_tests {
    ($harness:ty) => {
        $crate::contract_tests!(@one $harness;
            empty_store_reads_nothing,
            ping,
            outbox_leases_and_outcomes,
            concurrent_claims_never_share_a_job,
            outbox_counts_by_state,
            commit_then_read_back,
            a_sequence_only_user_change_reads_back,
            stale_sequence_is_aborted_and_writes_nothing,
            taken_claim_fails_with_its_error_and_writes_nothing,
            failed_commit_leaves_no_trace,
            concurrent_commits_on_one_aggregate_serialize,
            independent_concurrent_commits_all_succeed,
            failures_in_a_batch_are_isolated,
            racing_claims_have_one_winner,
            released_claims_are_free_again,
            user_by_username_is_case_insensitive,
            sessions_read_back_and_filter,
            credential_owner_follows_the_last_verification,
            passkeys_of_a_user_in_creation_order,
            users_matching_admits_exactly_its_narrowing,
            orgs_lists_every_organization,
            events_of_kind_lists_every_aggregate_of_a_kind,
            org_users_after_pages_an_organization_in_id_order,
            notifications_leased_in_each_users_order,
            concurrent_notification_claims_never_share,
        );

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn durable_across_reopen() {
            let place = <$harness as $crate::Harness>::new("durable_across_reopen").await;
            $crate::suite::durable_across_reopen(|| $crate::Harness::open(&place)).await;
        }
    };
    ($harness:ty, two_stores) => {
        $crate::contract_tests!($harness);
        $crate::contract_tests!(@two $harness;
            two_stores_racing_claims_have_one_winner = racing_claims_have_one_winner,
            two_stores_commits_on_one_aggregate_serialize = concurrent_commits_on_one_aggregate_serialize,
            two_stores_failures_in_a_batch_are_isolated = failures_in_a_batch_are_isolated,
            two_stores_commit_then_read_back = commit_then_read_back,
            two_stores_outbox_leases_and_outcomes = outbox_leases_and_outcomes,
            two_stores_concurrent_claims_never_share_a_job = concurrent_claims_never_share_a_job,
            two_stores_notifications_leased_in_each_users_order = notifications_leased_in_each_users_order,
            two_stores_concurrent_notification_claims_never_share = concurrent_notification_claims_never_share,
        );
    };
    (@one $harness:ty; $($test:ident,)*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let place = <$harness as $crate::Harness>::new(stringify!($test)).await;
                let store = $crate::Harness::open(&place).await;
                $crate::suite::$test(store.as_ref()).await;
            }
        )*
    };
    (@two $harness:ty; $($test:ident = $suite:ident,)*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let place = <$harness as $crate::Harness>::new(stringify!($test)).await;
                let (a, b) = ($crate::Harness::open(&place).await, $crate::Harness::open(&place).await);
                $crate::suite::$suite(&$crate::Split::new(a, b)).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// Every `pub async fn` of the suite is named in the macro: a new test cannot be forgotten.
    #[test]
    fn the_macro_expands_every_suite_test() {
        let sources = [
            include_str!("suite/concurrency.rs"),
            include_str!("suite/durability.rs"),
            include_str!("suite/failures.rs"),
            include_str!("suite/lookups.rs"),
            include_str!("suite/org_pages.rs"),
            include_str!("suite/notifications.rs"),
            include_str!("suite/outbox.rs"),
            include_str!("suite/read_back.rs"),
            include_str!("suite/sessions.rs"),
        ];
        let lib = include_str!("lib.rs");
        let start = lib.find("macro_rules! contract_tests").unwrap();
        let end = lib[start..].find("(@one $harness:ty").unwrap() + start;
        let listed = &lib[start..end];
        let mut names = Vec::new();
        for src in sources {
            for line in src.lines() {
                if let Some(rest) = line.strip_prefix("pub async fn ") {
                    let name: String =
                        rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    names.push(name);
                }
            }
        }
        assert_eq!(names.len(), 26, "{names:?}");
        for name in names {
            let named = listed.contains(&format!("{name},")) || listed.contains(&format!("fn {name}()"));
            assert!(named, "suite test {name} is not expanded by contract_tests!");
        }
    }

    #[test]
    fn join_all_returns_outputs_in_order() {
        let out = futures_lite_block_on(super::join_all((0..5).map(|i| async move { i * 2 })));
        assert_eq!(out, vec![0, 2, 4, 6, 8]);
    }

    /// A minimal executor for ready-at-once futures.
    fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }
}
