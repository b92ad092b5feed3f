//! AddOrganization: instance-wide `org.create`, unique names and ids, admins.

use passlink_core::app::OrgAdmin;
use passlink_core::error::Kind;
use passlink_core::event::{AggregateKind, Event};
use passlink_core::store::Store;
use passlink_core::view::Scope;

use crate::world::{Matrix, USER_NOT_FOUND, World, assert_err, assert_kind, new_human};

#[tokio::test]
async fn permission_matrix() {
    let w = World::new().await;
    // Only instance-wide holders of org.create; an ORG_OWNER cannot create orgs.
    let m = Matrix { ok: &["IAM_OWNER", "IAM_ORG_MANAGER"], not_found: &[], not_found_id: "" };
    let n = std::sync::atomic::AtomicU32::new(0);
    w.check_matrix(&m, async |caller, _org| {
        let name = format!("created-{}", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        w.app.add_org(caller, &name, None, vec![]).await
    })
    .await;
}

#[tokio::test]
async fn an_org_with_admins() {
    let w = World::new().await;
    let existing = w.given_human(&w.default_org).await;
    let now = w.app.now();
    let admins = vec![
        OrgAdmin::Existing { user_id: existing.clone(), roles: vec![] },
        OrgAdmin::New {
            human: Box::new(new_human("ignored", "new-admin")),
            roles: vec!["ORG_USER_MANAGER".into()],
        },
    ];
    let created = w.app.add_org(&w.admin, "  Acme  ", None, admins).await.unwrap();
    assert_eq!((created.details.sequence, created.details.creation_date), (3, Some(now)));
    assert_eq!(created.details.resource_owner, created.org_id);
    assert_eq!(created.admin_ids.len(), 2);
    assert_eq!(created.admin_ids[0], existing);
    let org = w.store.org(&created.org_id).await.unwrap().unwrap();
    assert_eq!((org.name.as_str(), org.sequence), ("Acme", 3));
    let log = w.store.events_of(AggregateKind::Org, &created.org_id).await.unwrap();
    assert_eq!(log[0].event, Event::OrgAdded { name: "Acme".into() });
    assert_eq!(
        log[1].event,
        Event::OrgMemberAdded { user_id: existing.clone(), roles: vec!["ORG_OWNER".into()] }
    );
    let new_admin = &created.admin_ids[1];
    assert_eq!(
        log[2].event,
        Event::OrgMemberAdded { user_id: new_admin.clone(), roles: vec!["ORG_USER_MANAGER".into()] }
    );
    // The new admin lives in the new org; memberships are readable at once.
    assert_eq!(w.user(new_admin).await.org_id, created.org_id);
    let ms = w.store.memberships_of(&existing).await.unwrap();
    assert_eq!(ms[0].scope, Scope::Org(created.org_id.clone()));
}

#[tokio::test]
async fn errors() {
    let w = World::new().await;
    w.given_org("Acme").await;
    assert_err(w.app.add_org(&w.admin, " acme ", None, vec![]).await, Kind::AlreadyExists, "ORG-lapo2m");
    assert_err(w.app.add_org(&w.admin, "default", None, vec![]).await, Kind::AlreadyExists, "ORG-lapo2m");
    let id = w.app.add_org(&w.admin, "given-id", Some("org-7"), vec![]).await.unwrap().org_id;
    assert_eq!(id, "org-7");
    assert_err(
        w.app.add_org(&w.admin, "other", Some("org-7"), vec![]).await,
        Kind::AlreadyExists,
        "ORG-8nfSr",
    );
    assert_kind(w.app.add_org(&w.admin, "   ", None, vec![]).await, Kind::InvalidArgument);
    let unknown = vec![OrgAdmin::Existing { user_id: "404".into(), roles: vec![] }];
    assert_err(w.app.add_org(&w.admin, "x1", None, unknown).await, Kind::NotFound, USER_NOT_FOUND);
    let user = w.given_human(&w.default_org).await;
    let bad_role = vec![OrgAdmin::Existing { user_id: user, roles: vec!["IAM_OWNER".into()] }];
    assert_err(w.app.add_org(&w.admin, "x2", None, bad_role).await, Kind::InvalidArgument, "MEMBER-4m0fS");
    // Nothing of the failed requests was written: the names are still free.
    for name in ["x1", "x2", "other"] {
        assert!(w.app.add_org(&w.admin, name, None, vec![]).await.is_ok(), "{name}");
    }
}
