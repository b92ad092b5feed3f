//! Failed commits: stale sequences, taken claims, released claims, and partial failures leave no
//! trace; usernames are found case-insensitively.

use passlink_core::error::Kind;
use passlink_core::event::{AggregateKind, Event};
use passlink_core::store::{Commit, Store};
use passlink_core::view::{Change, Membership, OrgView, PatView, Scope, UserState};

use crate::fixtures::{
    all_jobs, assert_claims_free, assert_no_trace, at, claim, code_requested, create_user_commit, job,
    new_human, rec,
};

/// Two commits with the same (aggregate, sequence): the second fails with [`Kind::Aborted`]
/// and writes nothing of itself, wherever its conflicting event sits in the commit.
pub async fn stale_sequence_is_aborted_and_writes_nothing(store: &dyn Store) {
    let (org, user) = ("oc-org", "oc-user");
    let base = create_user_commit(user, org, "oc");
    store.commit(base.clone()).await.expect("create user");
    let v1 = store.user(user).await.expect("user").expect("user exists");

    // Both writers read sequence 1 and append sequence 2.
    let (w2, winner_code) = code_requested(&v1, 2, "oc-code-winner", true);
    let mut winner_view = v1.clone();
    winner_view.apply(&w2);
    let winner = Commit {
        events: vec![w2.clone()],
        claims: vec![],
        changes: vec![Change::User(winner_view.clone()), Change::Code(winner_code.clone())],
        outbox: vec![],
        released: vec![],
        outbox_updates: vec![],
        notifications: vec![],
        notification_updates: vec![],
    };
    store.commit(winner).await.expect("the first writer wins");

    for (n, conflict_first) in [(1, true), (2, false)] {
        let other_user = format!("oc-other-{n}");
        let (l2, loser_code) = code_requested(&v1, 2, &format!("oc-code-loser-{n}"), false);
        let mut loser_view = v1.clone();
        loser_view.apply(&l2);
        loser_view.state = UserState::Inactive;
        let l3 = rec(AggregateKind::User, user, org, 3, Event::PasskeyCodeSent { id: loser_code.id.clone() });
        let (o1, other_view) = new_human(&other_user, org, &other_user);
        let new_org = format!("oc-new-org-{n}");
        let org1 = rec(AggregateKind::Org, &new_org, &new_org, 1, Event::OrgAdded { name: new_org.clone() });
        let events = if conflict_first { vec![l2, l3, o1, org1] } else { vec![o1, org1, l2, l3] };
        let loser = Commit {
            events,
            claims: vec![claim("username", &other_user), claim("org_name", &new_org)],
            changes: vec![
                Change::User(loser_view),
                Change::User(other_view),
                Change::Org(OrgView {
                    id: new_org.clone(),
                    name: new_org.clone(),
                    sequence: 1,
                    created_at: at(1),
                    changed_at: at(1),
                }),
                Change::Code(loser_code.clone()),
                Change::Membership(Membership {
                    user_id: other_user.clone(),
                    scope: Scope::Org(new_org.clone()),
                    roles: vec!["ORG_OWNER".into()],
                    created_at: at(1),
                }),
                Change::Pat(PatView {
                    id: format!("oc-pat-{n}"),
                    user_id: user.into(),
                    token_hash: [n; 32],
                    expiration: at(99),
                    created_at: at(2),
                    revoked: false,
                }),
            ],
            outbox: vec![job(&format!("oc-job-{n}"), user, org, &loser_code.id, at(2))],
            released: vec![],
            outbox_updates: vec![],
            notifications: vec![],
            notification_updates: vec![],
        };
        let err = store.commit(loser.clone()).await.expect_err("a stale sequence must fail");
        assert_eq!(err.kind, Kind::Aborted, "stale sequence (conflict first: {conflict_first}): {err:?}");

        assert_no_trace(store, &loser, "stale sequence").await;
        assert_eq!(
            store.user(user).await.expect("user"),
            Some(winner_view.clone()),
            "the winner's view stays"
        );
        assert_eq!(store.code(&winner_code.id).await.expect("code"), Some(winner_code.clone()));
        assert_eq!(
            store.events_of(AggregateKind::User, user).await.expect("events_of"),
            vec![base.events[0].clone(), w2.clone()]
        );
        assert!(store.events_of(AggregateKind::User, &other_user).await.expect("events_of").is_empty());
        assert!(all_jobs(store).await.is_empty());
        assert_claims_free(store, &loser.claims, "stale sequence").await;
    }
    // The aggregate goes on at the next sequence.
    let w3 = rec(AggregateKind::User, user, org, 3, Event::PasskeyCodeSent { id: winner_code.id.clone() });
    store
        .commit(Commit { events: vec![w3], ..Commit::default() })
        .await
        .expect("sequence 3 after a fresh read");
    let seqs: Vec<u64> = store
        .events_of(AggregateKind::User, user)
        .await
        .expect("events_of")
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

/// A taken claim fails the commit with exactly that claim's `taken` error and writes nothing of
/// it. Claims are unique per (kind, value): the same value under another kind is free.
pub async fn taken_claim_fails_with_its_error_and_writes_nothing(store: &dyn Store) {
    let org = "uc-org";
    store.commit(create_user_commit("uc-first", org, "alice")).await.expect("first alice");

    // Another user with the same username; its claims list a free claim before the taken one.
    let mut dup = create_user_commit("uc-second", org, "alice");
    dup.claims =
        vec![claim("user_id", "uc-second"), claim("email", "second@example.com"), claim("username", "alice")];
    dup.outbox.push(job("uc-job", "uc-second", org, "uc-code", at(5)));
    dup.changes.push(Change::Membership(Membership {
        user_id: "uc-second".into(),
        scope: Scope::Instance,
        roles: vec!["IAM_OWNER".into()],
        created_at: at(1),
    }));
    let err = store.commit(dup.clone()).await.expect_err("a taken username must fail");
    assert_eq!(err, claim("username", "alice").taken, "the error is the taken claim's own error");
    assert_eq!(err, dup.claims[2].taken);
    assert_ne!(err.kind, Kind::Aborted);
    assert_no_trace(store, &dup, "taken claim").await;
    assert_eq!(store.user("uc-second").await.expect("user"), None);
    assert!(store.memberships_of("uc-second").await.expect("memberships_of").is_empty());
    assert!(all_jobs(store).await.is_empty());

    // Claims are per kind, and values are compared exactly (callers normalize case).
    let mut other_kinds = create_user_commit("uc-third", org, "alice-2");
    other_kinds.claims.extend([claim("org_name", "alice"), claim("username", "Alice")]);
    store.commit(other_kinds).await.expect("same value under another kind, or other bytes, is free");

    // The free claims of the failed commit were not kept.
    assert_claims_free(store, &dup.claims[..2], "taken claim").await;
    // And the taken one is still taken, by the same error, also when it comes first.
    let again = Commit {
        claims: vec![claim("username", "alice"), claim("email", "fresh@example.com")],
        ..Commit::default()
    };
    assert_eq!(store.commit(again).await.expect_err("still taken"), claim("username", "alice").taken);
    assert_claims_free(store, &[claim("email", "fresh@example.com")], "taken claim first").await;
}

/// Users are found by username, case-insensitively (client ids of machine users).
pub async fn user_by_username_is_case_insensitive(store: &dyn Store) {
    store.commit(create_user_commit("ubn-1", "ubn-org", "Alice")).await.expect("alice");
    let found = store.user_by_username("alice").await.expect("lookup").expect("found");
    assert_eq!(found.id, "ubn-1");
    assert_eq!(
        store.user_by_username("ALICE").await.expect("lookup").map(|u| u.id).as_deref(),
        Some("ubn-1")
    );
    assert_eq!(store.user_by_username("bob").await.expect("lookup"), None);
}

/// A released claim can be taken again, in the same commit that releases it or later; releasing
/// a value nobody holds is harmless.
pub async fn released_claims_are_free_again(store: &dyn Store) {
    store.commit(create_user_commit("rel-1", "rel-org", "bob")).await.expect("bob");
    let release = Commit {
        released: vec![("username", "bob".into()), ("username", "nobody".into())],
        outbox_updates: vec![],
        ..Commit::default()
    };
    store.commit(release).await.expect("release");
    store.commit(create_user_commit("rel-2", "rel-org", "bob")).await.expect("bob again after the release");
    let err = store.commit(create_user_commit("rel-3", "rel-org", "bob")).await.expect_err("taken again");
    assert_eq!(err, claim("username", "bob").taken);
}

/// A commit whose later part fails leaves no trace of its earlier parts: a conflicting event
/// after fresh ones, a taken claim after free ones, a claim repeated inside one commit.
pub async fn failed_commit_leaves_no_trace(store: &dyn Store) {
    let org = "at-org";
    store.commit(create_user_commit("at-existing", org, "at-existing")).await.expect("setup");

    // 1. Fresh user, fresh claims, job, code, then an event that reuses at-existing's sequence 1.
    let existing = store.user("at-existing").await.expect("user").expect("exists");
    let (_, new_view) = new_human("at-new-1", org, "at-new-1");
    let (_, code) = code_requested(&new_view, 2, "at-code-1", false);
    let mut c1 = create_user_commit("at-new-1", org, "at-new-1");
    c1.changes.push(Change::Code(code));
    c1.outbox.push(job("at-job-1", "at-new-1", org, "at-code-1", at(3)));
    c1.events.push(rec(AggregateKind::User, "at-existing", org, 1, Event::UserRemoved {}));
    let err = store.commit(c1.clone()).await.expect_err("later conflicting event");
    assert_eq!(err.kind, Kind::Aborted, "{err:?}");
    assert_no_trace(store, &c1, "later conflicting event").await;
    assert_claims_free(store, &c1.claims, "later conflicting event").await;

    // 2. Events, changes and a job, then a taken claim last.
    let mut c2 = create_user_commit("at-new-2", org, "at-new-2");
    c2.outbox.push(job("at-job-2", "at-new-2", org, "at-code-2", at(3)));
    c2.claims.push(claim("username", "at-existing"));
    let err = store.commit(c2.clone()).await.expect_err("later taken claim");
    assert_eq!(err, claim("username", "at-existing").taken);
    assert_no_trace(store, &c2, "later taken claim").await;
    assert_claims_free(store, &c2.claims[..2], "later taken claim").await;

    // 3. A claim repeated inside one commit: the second copy finds it taken by the first.
    let mut c3 = create_user_commit("at-new-3", org, "at-new-3");
    c3.outbox.push(job("at-job-3", "at-new-3", org, "at-code-3", at(3)));
    c3.claims.push(claim("email", "twice@example.com"));
    c3.claims.push(claim("email", "twice@example.com"));
    let err = store.commit(c3.clone()).await.expect_err("a claim repeated in one commit");
    assert_eq!(err, claim("email", "twice@example.com").taken);
    assert_no_trace(store, &c3, "repeated claim").await;
    assert_claims_free(store, &c3.claims[..3], "repeated claim").await;

    // 4. The same (aggregate, sequence) twice inside one commit.
    let mut c4 = create_user_commit("at-new-4", org, "at-new-4");
    c4.outbox.push(job("at-job-4", "at-new-4", org, "at-code-4", at(3)));
    c4.events.push(rec(AggregateKind::User, "at-new-4", org, 1, Event::UserDeactivated {}));
    let err = store.commit(c4.clone()).await.expect_err("a sequence repeated in one commit");
    assert_eq!(err.kind, Kind::Aborted, "{err:?}");
    assert_no_trace(store, &c4, "repeated sequence").await;
    assert_claims_free(store, &c4.claims, "repeated sequence").await;

    assert!(all_jobs(store).await.is_empty());
    assert_eq!(
        store.user("at-existing").await.expect("user"),
        Some(existing),
        "the existing user is untouched"
    );
    assert_eq!(store.events_of(AggregateKind::User, "at-existing").await.expect("events_of").len(), 1);
}
