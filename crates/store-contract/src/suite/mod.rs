//! The tests, one `pub async fn` each, grouped by what they exercise. Each takes a fresh, empty
//! store (`durable_across_reopen` takes a function that opens one location again and again) and
//! panics on a breach of the contract written in [`passlink_core::store`].

mod concurrency;
mod durability;
mod failures;
mod lookups;
// Paging through an organization (bulk enrollment).
mod notifications;
mod org_pages;
mod outbox;
mod read_back;
mod sessions;

pub use concurrency::{
    concurrent_commits_on_one_aggregate_serialize, failures_in_a_batch_are_isolated,
    independent_concurrent_commits_all_succeed, racing_claims_have_one_winner,
};
pub use durability::durable_across_reopen;
pub use failures::{
    failed_commit_leaves_no_trace, released_claims_are_free_again,
    stale_sequence_is_aborted_and_writes_nothing, taken_claim_fails_with_its_error_and_writes_nothing,
    user_by_username_is_case_insensitive,
};
pub use lookups::{orgs_lists_every_organization, users_matching_admits_exactly_its_narrowing};
pub use notifications::{
    concurrent_notification_claims_never_share, notifications_leased_in_each_users_order,
};
pub use org_pages::org_users_after_pages_an_organization_in_id_order;
pub use outbox::{concurrent_claims_never_share_a_job, outbox_counts_by_state, outbox_leases_and_outcomes};
pub use read_back::{
    a_sequence_only_user_change_reads_back, commit_then_read_back, empty_store_reads_nothing,
    events_of_kind_lists_every_aggregate_of_a_kind, ping,
};
pub use sessions::{
    credential_owner_follows_the_last_verification, passkeys_of_a_user_in_creation_order,
    sessions_read_back_and_filter,
};
