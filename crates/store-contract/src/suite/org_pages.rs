//! Paging through an organization's users (CreateRegistrationLinks' organization selection).

use passlink_core::event::{AggregateKind, Event};
use passlink_core::store::{Commit, Store};
use passlink_core::view::{Change, UserState};

use crate::fixtures::{create_user_commit, new_human, rec};

async fn page(store: &dyn Store, org: &str, after: &str, limit: usize) -> Vec<String> {
    store
        .org_users_after(org, after, limit)
        .await
        .expect("org_users_after")
        .into_iter()
        .map(|u| u.id)
        .collect()
}

/// `org_users_after` answers only the organization's users, in byte order of their ids, strictly
/// after the cursor, at most `limit`, each as its latest view (as `user()` answers it).
pub async fn org_users_after_pages_an_organization_in_id_order(store: &dyn Store) {
    assert!(page(store, "o1", "", 10).await.is_empty());
    // Ids whose numeric and byte orders differ ("10" < "9" in bytes), another org in between.
    for (id, org) in [("9", "o1"), ("10", "o1"), ("11", "o2"), ("100", "o1"), ("a", "o1"), ("B", "o1")] {
        store.commit(create_user_commit(id, org, &format!("user-{id}"))).await.expect("create user");
    }
    // "10" is deactivated later: the page answers its latest view.
    let (_, mut ten) = new_human("10", "o1", "user-10");
    let r = rec(AggregateKind::User, "10", "o1", 2, Event::UserDeactivated {});
    ten.apply(&r);
    store
        .commit(Commit { events: vec![r], changes: vec![Change::User(ten)], ..Commit::default() })
        .await
        .expect("deactivate");

    assert_eq!(page(store, "o1", "", 10).await, ["10", "100", "9", "B", "a"]);
    assert_eq!(page(store, "o1", "", 2).await, ["10", "100"]);
    assert_eq!(page(store, "o1", "100", 2).await, ["9", "B"]);
    assert_eq!(page(store, "o1", "B", 2).await, ["a"]);
    assert!(page(store, "o1", "a", 2).await.is_empty());
    assert_eq!(page(store, "o2", "", 10).await, ["11"]);
    assert!(page(store, "o3", "", 10).await.is_empty());
    let first = store.org_users_after("o1", "", 1).await.expect("org_users_after");
    assert_eq!((first[0].state, first[0].sequence), (UserState::Inactive, 2));
    assert_eq!(Some(&first[0]), store.user("10").await.expect("user").as_ref(), "the same view as user()");
}
