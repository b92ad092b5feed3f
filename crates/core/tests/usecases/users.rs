//! Users: AddHumanUser / CreateUser (human and machine), GetUserByID, DeactivateUser, DeleteUser.

use passlink_core::app::{LinkMedium, NewMachine};
use passlink_core::error::Kind;
use passlink_core::event::{Event, MachineProfile};
use passlink_core::store::Store;
use passlink_core::view::{UserKind, UserState};

use crate::world::{Matrix, USER_NOT_FOUND, USER_READERS, World, assert_err, assert_kind, new_human};

const ORG_NOT_FOUND: &str = "ORG-o0Ng9";

/// Holders of `user.write`.
const USER_WRITE: Matrix = Matrix {
    ok: &[
        "IAM_OWNER",
        "IAM_ORG_MANAGER",
        "IAM_USER_MANAGER",
        "IAM_LOGIN_CLIENT",
        "ORG_OWNER",
        "ORG_USER_MANAGER",
    ],
    not_found: &["ORG_OWNER@other", "ORG_USER_MANAGER@other"],
    not_found_id: USER_NOT_FOUND,
};

#[tokio::test]
async fn add_human_permission_matrix() {
    let w = World::new().await;
    let m = Matrix { not_found_id: ORG_NOT_FOUND, ..USER_WRITE };
    let n = std::sync::atomic::AtomicU32::new(0);
    w.check_matrix(&m, async |caller, org| {
        let name = format!("matrix-human-{}", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        w.app.add_human(caller, new_human(org, &name)).await
    })
    .await;
}

#[tokio::test]
async fn add_human_records_the_user_and_claims_its_names() {
    let w = World::new().await;
    let org = w.given_org("acme").await;
    let now = w.app.now();
    // When adding a human without username or display name
    let mut h = new_human(&org, "ignored");
    h.username = None;
    let created = w.app.add_human(&w.admin, h).await.unwrap();
    // Then the email is the username and the display name is derived
    assert_eq!((created.details.sequence, created.details.creation_date), (1, Some(now)));
    assert_eq!(created.details.resource_owner, org);
    let events = w.user_events(&created.user_id).await;
    assert_eq!(events.len(), 1);
    let Event::HumanAdded { username, profile } = &events[0].event else { panic!() };
    assert_eq!((username.as_str(), profile.display_name.as_str()), ("ignored@example.com", "Ada Lovelace"));
    assert_eq!(events[0].creator, w.admin_id);
    // And the username and the id are unique
    let mut dup = new_human(&org, "IGNORED@example.com");
    dup.profile.email = "other@example.com".into();
    assert_err(w.app.add_human(&w.admin, dup).await, Kind::AlreadyExists, "COMMAND-k2unb");
    let mut same_id = new_human(&org, "someone-else");
    same_id.user_id = Some(created.user_id.clone());
    assert_err(w.app.add_human(&w.admin, same_id).await, Kind::AlreadyExists, "V3-DKcYh");
    // A given id is used as is
    let mut with_id = new_human(&org, "with-id");
    with_id.user_id = Some("external-sub-1".into());
    assert_eq!(w.app.add_human(&w.admin, with_id).await.unwrap().user_id, "external-sub-1");
}

#[tokio::test]
async fn add_human_goes_to_the_context_org_and_needs_an_existing_org() {
    let w = World::new().await;
    let org = w.given_org("acme").await;
    let mut h = new_human("", "ctx");
    h.org_id = None;
    let caller = w.app.caller(w.admin.principal.clone(), Some(&org));
    let id = w.app.add_human(&caller, h).await.unwrap().user_id;
    assert_eq!(w.user(&id).await.org_id, org);
    assert_err(w.app.add_human(&w.admin, new_human("no-such-org", "x")).await, Kind::NotFound, ORG_NOT_FOUND);
    let mut bad = new_human(&org, "bad");
    bad.profile.given_name = String::new();
    assert_kind(w.app.add_human(&w.admin, bad).await, Kind::InvalidArgument);
    let mut bad = new_human(&org, "bad2");
    bad.profile.email = "not-an-email".into();
    assert_kind(w.app.add_human(&w.admin, bad).await, Kind::InvalidArgument);
}

#[tokio::test]
async fn add_machine() {
    let w = World::new().await;
    let org = w.given_org("acme").await;
    let m = NewMachine {
        user_id: None,
        username: None,
        org_id: org.clone(),
        profile: MachineProfile { name: "Robot".into(), ..MachineProfile::default() },
    };
    let created = w.app.add_machine(&w.admin, m.clone()).await.unwrap();
    let user = w.user(&created.user_id).await;
    assert_eq!(user.username, created.user_id, "the id is the default username");
    assert!(matches!(user.kind, UserKind::Machine(_)));
    assert_eq!(w.user_event_types(&created.user_id).await, ["user.machine.added"]);
    let bad = NewMachine { profile: MachineProfile::default(), ..m.clone() };
    assert_kind(w.app.add_machine(&w.admin, bad).await, Kind::InvalidArgument);
    let nowhere = NewMachine { org_id: "nowhere".into(), ..m.clone() };
    assert_err(w.app.add_machine(&w.admin, nowhere).await, Kind::NotFound, ORG_NOT_FOUND);
    let no_org = NewMachine { org_id: String::new(), ..m };
    assert_kind(w.app.add_machine(&w.admin, no_org).await, Kind::InvalidArgument);
    let m = Matrix { not_found_id: ORG_NOT_FOUND, ..USER_WRITE };
    w.check_matrix(&m, async |caller, org| {
        let m = NewMachine {
            user_id: None,
            username: None,
            org_id: org.to_string(),
            profile: MachineProfile { name: "Robot".into(), ..MachineProfile::default() },
        };
        w.app.add_machine(caller, m).await
    })
    .await;
}

#[tokio::test]
async fn get_user_matrix_self_and_deleted() {
    let w = World::new().await;
    let read = Matrix {
        ok: USER_READERS,
        not_found: &["ORG_OWNER@other", "ORG_USER_MANAGER@other"],
        not_found_id: USER_NOT_FOUND,
    };
    w.check_matrix(&read, async |caller, org| {
        let user = w.given_human(org).await;
        w.app.get_user(caller, &user).await
    })
    .await;
    // A user without any role reads itself.
    let me = w.nobody().await;
    let r = w.app.get_user(&me, &me.principal.user_id).await.unwrap();
    assert_eq!(r.user.id, me.principal.user_id);
    assert_eq!(
        (r.details.sequence, r.details.resource_owner.as_str()),
        (r.user.sequence, w.default_org.as_str())
    );
    // Unknown and deleted users are not found.
    assert_err(w.app.get_user(&w.admin, "404").await, Kind::NotFound, USER_NOT_FOUND);
    let gone = w.given_human(&w.default_org).await;
    w.app.delete_user(&w.admin, &gone).await.unwrap();
    assert_err(w.app.get_user(&w.admin, &gone).await, Kind::NotFound, USER_NOT_FOUND);
}

#[tokio::test]
async fn deactivate_user() {
    let w = World::new().await;
    w.check_matrix(&USER_WRITE, async |caller, org| {
        let user = w.given_human(org).await;
        w.app.deactivate_user(caller, &user).await
    })
    .await;
    let user = w.given_human(&w.default_org).await;
    let d = w.app.deactivate_user(&w.admin, &user).await.unwrap();
    assert_eq!(d.sequence, 2);
    assert_eq!(w.last_user_event(&user).await, Event::UserDeactivated {});
    assert_eq!(w.user(&user).await.state, UserState::Inactive);
    assert_err(w.app.deactivate_user(&w.admin, &user).await, Kind::FailedPrecondition, "COMMAND-5M0sd");
    assert_err(w.app.deactivate_user(&w.admin, "404").await, Kind::NotFound, USER_NOT_FOUND);
    assert_kind(w.app.deactivate_user(&w.admin, "").await, Kind::InvalidArgument);
}

#[tokio::test]
async fn delete_user_releases_the_username_and_stops_codes() {
    let w = World::new().await;
    let delete = Matrix {
        ok: &["IAM_OWNER", "IAM_ORG_MANAGER", "IAM_USER_MANAGER", "ORG_OWNER", "ORG_USER_MANAGER"],
        ..USER_WRITE
    };
    w.check_matrix(&delete, async |caller, org| {
        let user = w.given_human(org).await;
        w.app.delete_user(caller, &user).await
    })
    .await;
    // Given a user with a returned code
    let org = w.default_org.clone();
    let user = w.app.add_human(&w.admin, new_human(&org, "reused")).await.unwrap().user_id;
    let code = w.app.create_passkey_link(&w.admin, &user, LinkMedium::Return).await.unwrap().code.unwrap();
    // When deleting it
    let d = w.app.delete_user(&w.admin, &user).await.unwrap();
    assert_eq!(d.sequence, 3);
    assert_eq!(w.last_user_event(&user).await, Event::UserRemoved {});
    assert_eq!(w.user(&user).await.state, UserState::Deleted);
    // Then it is gone, its code is refused, and its username is free again (its id is not)
    assert_err(w.app.delete_user(&w.admin, &user).await, Kind::NotFound, USER_NOT_FOUND);
    let req = passlink_core::app::RegisterPasskey {
        user_id: user.clone(),
        code: Some(code),
        attachment: None,
        domain: String::new(),
    };
    assert_err(w.app.register_passkey(None, req).await, Kind::NotFound, USER_NOT_FOUND);
    let again = w.app.add_human(&w.admin, new_human(&org, "reused")).await.unwrap();
    assert_ne!(again.user_id, user);
    let mut same_id = new_human(&org, "fresh-name");
    same_id.user_id = Some(user.clone());
    assert_err(w.app.add_human(&w.admin, same_id).await, Kind::AlreadyExists, "V3-DKcYh");
    assert!(w.store.user(&user).await.unwrap().is_some(), "the deleted user's record stays");
}
