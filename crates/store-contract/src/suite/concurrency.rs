//! Concurrency: racing writers on one aggregate, independent writers, failures inside a batch,
//! racing claims.

use std::collections::HashSet;

use passlink_core::error::Kind;
use passlink_core::event::{AggregateKind, Event, OutboxJob};
use passlink_core::store::{Commit, Store};
use passlink_core::view::Change;

use crate::fixtures::{
    all_jobs, assert_claims_free, assert_no_trace, at, claim, code_requested, create_user_commit, job, rec,
};
use crate::join_all;

/// Many concurrent writers on one user aggregate, each reading the current sequence, appending
/// the next and retrying on [`Kind::Aborted`]: every writer succeeds, and the log is gap-free
/// `1..=N` with each writer's event exactly once.
pub async fn concurrent_commits_on_one_aggregate_serialize(store: &dyn Store) {
    const WRITERS: u64 = 40;
    let (org, user) = ("cc-org", "cc-user");
    store.commit(create_user_commit(user, org, "cc")).await.expect("create user");

    let writer = |i: u64| async move {
        let code_id = format!("cc-code-{i}");
        let mut attempts = 0u64;
        loop {
            attempts += 1;
            // Each loss means another writer's commit landed after our read; there are only
            // WRITERS - 1 others, so a correct store lets every writer in within WRITERS tries.
            assert!(
                attempts <= WRITERS,
                "writer {i} lost {} races: lost updates or stale reads",
                attempts - 1
            );
            let current = store.user(user).await.expect("user").expect("user exists");
            let (r, code) = code_requested(&current, current.sequence + 1, &code_id, true);
            let mut after = current.clone();
            after.apply(&r);
            let commit = Commit {
                events: vec![r],
                claims: vec![claim("code_id", &code_id)],
                changes: vec![Change::User(after), Change::Code(code)],
                outbox: vec![],
                released: vec![],
                outbox_updates: vec![],
                notifications: vec![],
                notification_updates: vec![],
            };
            match store.commit(commit).await {
                Ok(()) => return attempts,
                Err(e) => assert_eq!(e.kind, Kind::Aborted, "writer {i}: only a conflict may fail it: {e:?}"),
            }
        }
    };
    let attempts = join_all((0..WRITERS).map(writer)).await;
    assert_eq!(attempts.len() as u64, WRITERS, "every writer finished with success");

    let log = store.events_of(AggregateKind::User, user).await.expect("events_of");
    let seqs: Vec<u64> = log.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=WRITERS + 1).collect::<Vec<_>>(), "gap-free, duplicate-free, in order");
    let mut seen = HashSet::new();
    for e in &log[1..] {
        let Event::PasskeyCodeRequested(c) = &e.event else { panic!("unexpected event {e:?}") };
        assert!(seen.insert(c.id.clone()), "{} written twice", c.id);
    }
    assert_eq!(seen.len() as u64, WRITERS, "each writer's event exactly once");
    let view = store.user(user).await.expect("user").expect("exists");
    assert_eq!(view.sequence, WRITERS + 1, "the view matches the last event");
    for i in 0..WRITERS {
        let code =
            store.code(&format!("cc-code-{i}")).await.expect("code").expect("every writer's code exists");
        let at_seq =
            log.iter().find(|e| matches!(&e.event, Event::PasskeyCodeRequested(c) if c.id == code.id));
        assert_eq!(
            Some(code.created_at),
            at_seq.map(|e| e.created_at),
            "the code view is the one of its event"
        );
    }
}

/// Many concurrent commits on different aggregates (the group-commit path) all succeed and are
/// all readable.
pub async fn independent_concurrent_commits_all_succeed(store: &dyn Store) {
    const USERS: usize = 200;
    let org = "ic-org";
    let commits: Vec<Commit> = (0..USERS)
        .map(|i| {
            let id = format!("ic-user-{i}");
            let mut c = create_user_commit(&id, org, &id);
            c.outbox.push(job(&format!("ic-job-{i:04}"), &id, org, &format!("ic-code-{i}"), at(i as i64)));
            c
        })
        .collect();
    let results = join_all(commits.iter().cloned().map(|c| store.commit(c))).await;
    for (i, r) in results.iter().enumerate() {
        assert!(r.is_ok(), "independent commit {i} failed: {r:?}");
    }
    for c in &commits {
        let Some(Change::User(v)) = c.changes.first() else { panic!("fixture") };
        assert_eq!(store.user(&v.id).await.expect("user").as_ref(), Some(v));
        assert_eq!(store.events_of(AggregateKind::User, &v.id).await.expect("events_of"), c.events);
    }
    let jobs = all_jobs(store).await;
    assert_eq!(jobs.len(), USERS);
    let expected: Vec<OutboxJob> = commits.iter().flat_map(|c| c.outbox.clone()).collect();
    assert_eq!(jobs, expected, "every job, oldest first");
}

/// Failing commits in flight together with good ones (one group-commit batch, typically) fail
/// alone: the good ones are written whole, the bad ones not at all.
pub async fn failures_in_a_batch_are_isolated(store: &dyn Store) {
    const COMMITS: usize = 90;
    let org = "bi-org";
    store.commit(create_user_commit("bi-base", org, "bi-base")).await.expect("setup");
    let commits: Vec<Commit> = (0..COMMITS)
        .map(|i| {
            let id = format!("bi-user-{i}");
            let mut c = create_user_commit(&id, org, &id);
            c.outbox.push(job(&format!("bi-job-{i:03}"), &id, org, "bi-code", at(i as i64)));
            match i % 3 {
                // A stale sequence on the base user, after the fresh parts.
                0 => c.events.push(rec(AggregateKind::User, "bi-base", org, 1, Event::UserRemoved {})),
                // A taken claim, after the free ones.
                1 => c.claims.push(claim("username", "bi-base")),
                _ => {}
            }
            c
        })
        .collect();
    let results = join_all(commits.iter().cloned().map(|c| store.commit(c))).await;
    let mut good_jobs = Vec::new();
    for (i, (c, r)) in commits.iter().zip(&results).enumerate() {
        match i % 3 {
            0 => {
                assert_eq!(r.as_ref().map_err(|e| e.kind), Err(Kind::Aborted), "commit {i}");
                assert_no_trace(store, c, "stale sequence in a batch").await;
            }
            1 => {
                assert_eq!(r.as_ref().err(), Some(&claim("username", "bi-base").taken), "commit {i}");
                assert_no_trace(store, c, "taken claim in a batch").await;
            }
            _ => {
                assert!(r.is_ok(), "good commit {i} failed: {r:?}");
                let Some(Change::User(v)) = c.changes.first() else { panic!("fixture") };
                assert_eq!(store.user(&v.id).await.expect("user").as_ref(), Some(v));
                assert_eq!(store.events_of(AggregateKind::User, &v.id).await.expect("events_of"), c.events);
                good_jobs.extend(c.outbox.clone());
            }
        }
    }
    assert_eq!(all_jobs(store).await, good_jobs, "only the good commits' jobs");
    let base_log = store.events_of(AggregateKind::User, "bi-base").await.expect("events_of");
    assert_eq!(base_log.len(), 1, "the base user's log is untouched");
    for (i, c) in commits.iter().enumerate() {
        match i % 3 {
            0 => assert_claims_free(store, &c.claims, "stale sequence in a batch").await,
            1 => assert_claims_free(store, &c.claims[..2], "taken claim in a batch").await,
            _ => {}
        }
    }
}

/// Many concurrent commits racing for one claim: exactly one wins; every other fails with the
/// claim's error and leaves nothing.
pub async fn racing_claims_have_one_winner(store: &dyn Store) {
    const RACERS: usize = 24;
    let org = "rc-org";
    let commits: Vec<Commit> = (0..RACERS)
        .map(|i| {
            let id = format!("rc-user-{i}");
            let mut c = create_user_commit(&id, org, "racer");
            c.outbox.push(job(&format!("rc-job-{i}"), &id, org, "rc-code", at(1)));
            c
        })
        .collect();
    let results = join_all(commits.iter().cloned().map(|c| store.commit(c))).await;
    let winners: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_ok()).map(|(i, _)| i).collect();
    assert_eq!(winners.len(), 1, "exactly one commit wins the claim: {results:?}");
    let winner = winners[0];
    for (i, (c, r)) in commits.iter().zip(&results).enumerate() {
        if i == winner {
            let Some(Change::User(v)) = c.changes.first() else { panic!("fixture") };
            assert_eq!(store.user(&v.id).await.expect("user").as_ref(), Some(v));
        } else {
            assert_eq!(r.as_ref().err(), Some(&claim("username", "racer").taken), "racer {i}");
            assert_no_trace(store, c, "lost claim race").await;
        }
    }
    assert_eq!(all_jobs(store).await, commits[winner].outbox);
}
