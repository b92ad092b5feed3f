//! Bootstrap: the first start creates the instance, the default org and the admin with a token;
//! a second start does nothing.

use passlink_core::event::{AggregateKind, Event};
use passlink_core::secret::Secret;
use passlink_core::store::Store;
use passlink_core::view::{Scope, UserState};

use crate::world::{ADMIN_TOKEN, Options, T0, World, app, app_on};

#[tokio::test]
async fn first_start_creates_instance_org_and_admin_with_a_token() {
    // Given a fresh store; when bootstrapping
    let (app, store, _) = app(Options::default());
    let b = app.bootstrap("passlink", Secret::new(ADMIN_TOKEN)).await.unwrap().expect("bootstrapped");
    // Then the ids come from the id generator in order
    assert_eq!((b.instance_id.as_str(), b.org_id.as_str(), b.admin_user_id.as_str()), ("1", "2", "3"));
    assert_eq!(b.admin_token.expose(), ADMIN_TOKEN);
    let inst = store.instance().await.unwrap().expect("instance");
    assert_eq!((inst.id.as_str(), inst.default_org_id.as_str(), inst.sequence), ("1", "2", 3));
    let types: Vec<_> = store
        .events_of(AggregateKind::Instance, "1")
        .await
        .unwrap()
        .iter()
        .map(|r| r.event.type_name())
        .collect();
    assert_eq!(types, ["instance.added", "instance.default.org.set", "instance.member.added"]);
    let org = store.events_of(AggregateKind::Org, "2").await.unwrap();
    assert_eq!(org[0].event, Event::OrgAdded { name: "Default".into() });
    let admin = store.events_of(AggregateKind::User, "3").await.unwrap();
    assert!(matches!(&admin[0].event, Event::MachineAdded { username, .. } if username == "admin"));
    assert!(matches!(&admin[1].event, Event::PatAdded { token_id, .. } if token_id == "4"));
    assert!(admin.iter().all(|r| r.created_at == T0 && r.creator.is_empty()));
    let ms = store.memberships_of("3").await.unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!((ms[0].scope.clone(), ms[0].roles.clone()), (Scope::Instance, vec!["IAM_OWNER".to_string()]));
    // And the token authenticates the admin
    let p = app.authenticate(Some(&format!("Bearer {ADMIN_TOKEN}"))).await.unwrap();
    assert_eq!((p.user_id.as_str(), p.org_id.as_str()), ("3", "2"));
    assert_eq!(store.user("3").await.unwrap().unwrap().state, UserState::Active);
}

#[tokio::test]
async fn second_start_does_nothing() {
    let w = World::new().await;
    let before = w.store.events_of(AggregateKind::Instance, &w.instance_id).await.unwrap();
    // When bootstrapping again (another token)
    let again = w.app.bootstrap("passlink", Secret::new("another-token")).await.unwrap();
    // Then nothing is created and the new token is not valid
    assert!(again.is_none());
    assert_eq!(w.store.events_of(AggregateKind::Instance, &w.instance_id).await.unwrap(), before);
    assert!(w.app.authenticate(Some("Bearer another-token")).await.is_err());
}

#[tokio::test]
async fn a_replica_that_loses_the_bootstrap_race_gets_nothing() {
    // Given two apps on one store, both seeing no instance yet
    let (a, store, _) = app(Options::default());
    let (b, _, _) = app_on(store.reopen(), Options::default());
    let (ra, rb) =
        tokio::join!(a.bootstrap("passlink", Secret::new("ta")), b.bootstrap("passlink", Secret::new("tb")));
    // Then exactly one bootstraps; the other answers "nothing to do"
    let done = [ra.unwrap().is_some(), rb.unwrap().is_some()];
    assert_eq!(done.iter().filter(|d| **d).count(), 1, "{done:?}");
    assert!(store.instance().await.unwrap().is_some());
}
