//! The outbox: leases, take-over of expired leases, outcomes atomic with their events, erased
//! codes in final states, concurrent claims.

use std::collections::HashSet;

use passlink_core::error::Kind;
use passlink_core::event::{AggregateKind, Event, OutboxJob};
use passlink_core::store::{Commit, JobState, OutboxCounts, Store};

use crate::fixtures::{all_jobs, at, create_user_commit, job, outbox_update, rec};
use crate::join_all;

/// Jobs are leased oldest first, to one owner at a time; a lease that ran out is taken over;
/// a retried job waits for its next attempt; the final states erase the sealed code and leave
/// the pending list; an outcome is written atomically with the commit's events.
pub async fn outbox_leases_and_outcomes(store: &dyn Store) {
    let (org, user) = ("ol-org", "ol-user");
    let mut c = create_user_commit(user, org, "outbox-lease");
    let jobs: Vec<OutboxJob> =
        (1..=3).map(|i| job(&format!("ol-job-{i}"), user, org, &format!("ol-code-{i}"), at(i))).collect();
    c.outbox = jobs.clone();
    store.commit(c).await.expect("commit jobs");

    let a = store.claim_jobs("worker-a", at(10), at(70), 2).await.expect("claim a");
    assert_eq!(a, jobs[..2].to_vec(), "the two oldest jobs, complete");
    let b = store.claim_jobs("worker-b", at(10), at(70), 10).await.expect("claim b");
    assert_eq!(b, vec![jobs[2].clone()], "a leased job is not leased again");
    assert!(store.claim_jobs("worker-b", at(20), at(80), 10).await.expect("claim").is_empty());
    let st = store.job("ol-job-1").await.expect("job").expect("exists");
    assert_eq!(
        (st.state, st.lease_owner.as_deref(), st.lease_until),
        (JobState::Pending, Some("worker-a"), Some(at(70)))
    );
    assert_eq!(store.job("ol-missing").await.expect("job"), None);

    // Delivered: sealed code erased, out of the pending list, never leased again.
    store
        .commit(Commit {
            outbox_updates: vec![outbox_update(&jobs[0], JobState::Delivered, at(11), 1, None)],
            ..Commit::default()
        })
        .await
        .expect("delivered");
    let st = store.job("ol-job-1").await.expect("job").expect("exists");
    assert_eq!(st.state, JobState::Delivered);
    assert_eq!(st.job.sealed_code, None, "the code is erased once delivered");
    assert_eq!(st.job.attempts, 1);
    assert_eq!(st.lease_owner, None);
    // Retry: due again at its next attempt, with its attempt count and error.
    store
        .commit(Commit {
            outbox_updates: vec![outbox_update(
                &jobs[1],
                JobState::Pending,
                at(100),
                1,
                Some("connection refused"),
            )],
            ..Commit::default()
        })
        .await
        .expect("retry");
    let st = store.job("ol-job-2").await.expect("job").expect("exists");
    assert_eq!(
        (st.state, st.next_attempt_at, st.last_error.as_deref()),
        (JobState::Pending, at(100), Some("connection refused"))
    );
    assert!(st.job.sealed_code.is_some(), "a job to retry keeps its code");
    assert_eq!(st.lease_owner, None);
    // After worker-b's lease ran out (it "died"), another worker takes job 3 over; job 2 is
    // not due yet.
    let c2 = store.claim_jobs("worker-c", at(80), at(140), 10).await.expect("claim c");
    assert_eq!(c2, vec![jobs[2].clone()], "an expired lease is taken over");
    let due = store.claim_jobs("worker-c", at(100), at(160), 10).await.expect("claim due");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id.as_str(), due[0].attempts), ("ol-job-2", 1));
    // Abandoned: erased and kept with its reason.
    store
        .commit(Commit {
            outbox_updates: vec![outbox_update(&jobs[2], JobState::Abandoned, at(101), 5, Some("gave up"))],
            ..Commit::default()
        })
        .await
        .expect("abandoned");
    let st = store.job("ol-job-3").await.expect("job").expect("exists");
    assert_eq!(
        (st.state, st.job.sealed_code.clone(), st.last_error.as_deref()),
        (JobState::Abandoned, None, Some("gave up"))
    );
    let pending: Vec<String> = all_jobs(store).await.into_iter().map(|j| j.id).collect();
    assert_eq!(pending, vec!["ol-job-2".to_string()]);

    // An outcome in a failing commit is not written either.
    let stale = rec(AggregateKind::User, user, org, 1, Event::PasskeyCodeSent { id: "ol-code-2".into() });
    let err = store
        .commit(Commit {
            events: vec![stale],
            outbox_updates: vec![outbox_update(&jobs[1], JobState::Delivered, at(102), 2, None)],
            ..Commit::default()
        })
        .await
        .expect_err("stale sequence");
    assert_eq!(err.kind, Kind::Aborted);
    let st = store.job("ol-job-2").await.expect("job").expect("exists");
    assert_eq!(st.state, JobState::Pending, "the outcome of a failed commit is not written");
    assert!(st.job.sealed_code.is_some());
}

/// Many workers claiming at once never get the same job, and together get every due job.
pub async fn concurrent_claims_never_share_a_job(store: &dyn Store) {
    let (org, user) = ("cc-org", "cc-user");
    let mut c = create_user_commit(user, org, "outbox-concurrent");
    c.outbox =
        (0..40).map(|i| job(&format!("cc-job-{i:02}"), user, org, &format!("cc-code-{i}"), at(i))).collect();
    store.commit(c).await.expect("commit jobs");
    let owners: Vec<String> = (0..8).map(|i| format!("worker-{i}")).collect();
    let claims = join_all(owners.iter().map(|o| store.claim_jobs(o, at(100), at(160), 10))).await;
    let mut seen = HashSet::new();
    for r in claims {
        for j in r.expect("claim") {
            assert!(seen.insert(j.id.clone()), "job {} leased twice", j.id);
        }
    }
    assert_eq!(seen.len(), 40, "every due job leased once");
}

/// `outbox_counts`: pending jobs without a live lease, leased ones (until the lease runs out),
/// abandoned ones; delivered jobs are not counted.
pub async fn outbox_counts_by_state(store: &dyn Store) {
    assert_eq!(store.outbox_counts(at(0)).await.expect("counts"), OutboxCounts::default());
    let (org, user) = ("oc-org", "oc-user");
    let mut c = create_user_commit(user, org, "outbox-counts");
    let jobs: Vec<OutboxJob> =
        (1..=5).map(|i| job(&format!("oc-job-{i}"), user, org, &format!("oc-code-{i}"), at(i))).collect();
    c.outbox = jobs.clone();
    store.commit(c).await.expect("commit jobs");
    let counts = |pending, in_flight, failed| OutboxCounts { pending, in_flight, failed };
    assert_eq!(store.outbox_counts(at(10)).await.expect("counts"), counts(5, 0, 0));

    let leased = store.claim_jobs("worker-a", at(10), at(70), 3).await.expect("claim");
    assert_eq!(leased.len(), 3);
    assert_eq!(store.outbox_counts(at(10)).await.expect("counts"), counts(2, 3, 0));
    store
        .commit(Commit {
            outbox_updates: vec![
                outbox_update(&leased[0], JobState::Delivered, at(11), 1, None),
                outbox_update(&leased[1], JobState::Abandoned, at(11), 5, Some("gave up")),
            ],
            ..Commit::default()
        })
        .await
        .expect("outcomes");
    assert_eq!(store.outbox_counts(at(12)).await.expect("counts"), counts(2, 1, 1));
    // The lease of the third ran out: it is pending again.
    assert_eq!(store.outbox_counts(at(70)).await.expect("counts"), counts(3, 0, 1));
}
