//! Durability: everything survives closing and reopening the store.

use std::future::Future;
use std::sync::Arc;

use passlink_core::error::Kind;
use passlink_core::event::{AggregateKind, Event};
use passlink_core::store::{Commit, Store};
use passlink_core::view::{Change, InstanceView, Membership, OrgView, PatView, Scope};

use crate::fixtures::{all_jobs, at, claim, code_requested, create_user_commit, job, rec};

/// Everything committed survives closing and reopening the store on the same location:
/// views, log, claims, outbox, and the sequences that optimistic concurrency checks against.
/// `open` opens the store at one fixed location each time it is called.
pub async fn durable_across_reopen<F, Fut>(mut open: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let (org, user) = ("du-org", "du-user");
    let store = open().await;
    let mut c1 = create_user_commit(user, org, "durable");
    let org_view =
        OrgView { id: org.into(), name: "Durable".into(), sequence: 1, created_at: at(1), changed_at: at(1) };
    let membership = Membership {
        user_id: user.into(),
        scope: Scope::Org(org.into()),
        roles: vec!["ORG_OWNER".into()],
        created_at: at(1),
    };
    let instance = InstanceView {
        id: "du-inst".into(),
        name: "durable".into(),
        default_org_id: org.into(),
        sequence: 1,
        created_at: at(1),
        changed_at: at(1),
    };
    let pat = PatView {
        id: "du-pat".into(),
        user_id: user.into(),
        token_hash: [0x5A; 32],
        expiration: at(500),
        created_at: at(1),
        revoked: false,
    };
    c1.events.push(rec(AggregateKind::Org, org, org, 1, Event::OrgAdded { name: "Durable".into() }));
    c1.events.push(rec(
        AggregateKind::Instance,
        "du-inst",
        "du-inst",
        1,
        Event::InstanceAdded { name: "durable".into() },
    ));
    c1.changes.extend([
        Change::Org(org_view.clone()),
        Change::Membership(membership.clone()),
        Change::Instance(instance.clone()),
        Change::Pat(pat.clone()),
    ]);
    store.commit(c1.clone()).await.expect("commit 1");
    let Some(Change::User(v1)) = c1.changes.first().cloned() else { panic!("fixture") };
    let (e2, code) = code_requested(&v1, 2, "du-code", false);
    let mut v2 = v1.clone();
    v2.apply(&e2);
    let j = job("du-job", user, org, "du-code", at(2));
    store
        .commit(Commit {
            events: vec![e2.clone()],
            claims: vec![],
            changes: vec![Change::User(v2.clone()), Change::Code(code.clone())],
            outbox: vec![j.clone()],
            released: vec![],
            outbox_updates: vec![],
            notifications: vec![],
            notification_updates: vec![],
        })
        .await
        .expect("commit 2");
    drop(store);

    let store = open().await;
    store.ping().await.expect("ping after reopen");
    assert_eq!(store.user(user).await.expect("user"), Some(v2.clone()));
    assert_eq!(store.org(org).await.expect("org"), Some(org_view));
    assert_eq!(store.instance().await.expect("instance"), Some(instance));
    assert_eq!(store.memberships_of(user).await.expect("memberships_of"), vec![membership]);
    assert_eq!(store.pat_by_hash(&pat.token_hash).await.expect("pat_by_hash"), Some(pat));
    assert_eq!(store.code("du-code").await.expect("code"), Some(code.clone()));
    assert_eq!(
        store.events_of(AggregateKind::User, user).await.expect("events_of"),
        vec![c1.events[0].clone(), e2]
    );
    assert_eq!(all_jobs(store.as_ref()).await, vec![j.clone()]);

    // Sequences and claims are still enforced.
    let stale = rec(AggregateKind::User, user, org, 2, Event::UserDeactivated {});
    let err = store
        .commit(Commit { events: vec![stale], ..Commit::default() })
        .await
        .expect_err("stale after reopen");
    assert_eq!(err.kind, Kind::Aborted);
    let dup = Commit { claims: vec![claim("username", "durable")], ..Commit::default() };
    assert_eq!(store.commit(dup).await.expect_err("claim after reopen"), claim("username", "durable").taken);
    let e3 = rec(AggregateKind::User, user, org, 3, Event::PasskeyCodeSent { id: "du-code".into() });
    let mut v3 = v2;
    v3.apply(&e3);
    store
        .commit(Commit { events: vec![e3], changes: vec![Change::User(v3.clone())], ..Commit::default() })
        .await
        .expect("the next sequence after reopen");
    drop(store);

    let store = open().await;
    assert_eq!(store.user(user).await.expect("user"), Some(v3));
    let seqs: Vec<u64> = store
        .events_of(AggregateKind::User, user)
        .await
        .expect("events_of")
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(all_jobs(store.as_ref()).await, vec![j]);
}
