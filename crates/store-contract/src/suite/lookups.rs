//! The reads of the list RPCs: candidate users of a narrowing, every organization.

use passlink_core::event::{AggregateKind, Event};
use passlink_core::query::UserNarrowing;
use passlink_core::store::{Commit, Store};
use passlink_core::view::{Change, OrgView, UserState, UserView};

use crate::fixtures::{create_user_commit, rec};

async fn ids(store: &dyn Store, n: UserNarrowing) -> Vec<String> {
    let mut ids: Vec<String> =
        store.users_matching(&n).await.expect("users_matching").into_iter().map(|u| u.id).collect();
    ids.sort();
    ids
}

fn some(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

/// `users_matching` returns exactly the users its narrowing admits: each dimension (ids,
/// lower-cased usernames, organizations), their intersection, nothing for an empty list,
/// everyone (in any state, as last written) without constraints.
pub async fn users_matching_admits_exactly_its_narrowing(store: &dyn Store) {
    assert!(ids(store, UserNarrowing::default()).await.is_empty());
    for (id, org, username) in [("u1", "o1", "Ada.Lovelace"), ("u2", "o1", "bob"), ("u3", "o2", "carol")] {
        store.commit(create_user_commit(id, org, username)).await.expect("create user");
    }
    // u2 is deactivated later: the store answers its latest view.
    let (_, mut u2) = crate::fixtures::new_human("u2", "o1", "bob");
    let r = rec(AggregateKind::User, "u2", "o1", 2, Event::UserDeactivated {});
    u2.apply(&r);
    store
        .commit(Commit { events: vec![r], changes: vec![Change::User(u2)], ..Commit::default() })
        .await
        .expect("deactivate");

    assert_eq!(ids(store, UserNarrowing::default()).await, ["u1", "u2", "u3"]);
    let n = |ids, usernames, org_ids| UserNarrowing { ids, usernames, org_ids };
    assert_eq!(ids(store, n(some(&["u1", "u3", "nope"]), None, None)).await, ["u1", "u3"]);
    assert_eq!(
        ids(store, n(None, some(&["ada.lovelace"]), None)).await,
        ["u1"],
        "usernames compare lower-cased"
    );
    assert_eq!(ids(store, n(None, None, some(&["o1"]))).await, ["u1", "u2"]);
    assert_eq!(ids(store, n(some(&["u1", "u3"]), None, some(&["o1"]))).await, ["u1"]);
    assert_eq!(ids(store, n(None, some(&["bob", "carol"]), some(&["o1", "o2"]))).await, ["u2", "u3"]);
    assert!(ids(store, n(Some(vec![]), None, None)).await.is_empty());
    assert!(ids(store, n(None, None, Some(vec![]))).await.is_empty());
    let all: Vec<UserView> =
        store.users_matching(&n(some(&["u2"]), None, None)).await.expect("users_matching");
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].state, all[0].sequence), (UserState::Inactive, 2));
    assert_eq!(Some(&all[0]), store.user("u2").await.expect("user").as_ref(), "the same view as user()");
}

/// `orgs` returns every organization as last written.
pub async fn orgs_lists_every_organization(store: &dyn Store) {
    assert!(store.orgs().await.expect("orgs").is_empty());
    let mut written = Vec::new();
    for (id, name) in [("o2", "Beta"), ("o1", "Ächme \"quoted\"")] {
        let r = rec(AggregateKind::Org, id, id, 1, Event::OrgAdded { name: name.into() });
        let v = OrgView::created(&r).expect("org view");
        written.push(v.clone());
        store
            .commit(Commit { events: vec![r], changes: vec![Change::Org(v)], ..Commit::default() })
            .await
            .expect("org");
    }
    let mut read = store.orgs().await.expect("orgs");
    read.sort_by(|a, b| a.id.cmp(&b.id));
    written.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(read, written);
}
