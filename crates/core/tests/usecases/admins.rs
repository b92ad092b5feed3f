//! CreateAdministrator: instance roles need `iam.member.write` on the instance, org roles
//! `org.member.write` in the org.

use passlink_core::error::Kind;
use passlink_core::event::{AggregateKind, Event};
use passlink_core::store::Store;
use passlink_core::view::{Membership, Scope};

use crate::world::{DENIED, Matrix, USER_NOT_FOUND, World, assert_err, assert_kind};

const ORG_NOT_FOUND: &str = "ORG-o0Ng9";

#[tokio::test]
async fn instance_scope_matrix() {
    let w = World::new().await;
    let m = Matrix { ok: &["IAM_OWNER"], not_found: &[], not_found_id: "" };
    w.check_matrix(&m, async |caller, org| {
        let user = w.given_human(org).await;
        w.app.create_administrator(caller, &user, Scope::Instance, vec!["IAM_OWNER_VIEWER".into()]).await
    })
    .await;
}

#[tokio::test]
async fn org_scope_matrix() {
    let w = World::new().await;
    let m = Matrix {
        ok: &["IAM_OWNER", "IAM_ORG_MANAGER", "ORG_OWNER"],
        not_found: &["ORG_OWNER@other"],
        not_found_id: ORG_NOT_FOUND,
    };
    w.check_matrix(&m, async |caller, org| {
        let user = w.given_human(org).await;
        w.app
            .create_administrator(caller, &user, Scope::Org(org.to_string()), vec!["ORG_USER_MANAGER".into()])
            .await
    })
    .await;
}

#[tokio::test]
async fn grants_are_recorded_on_the_instance_or_the_org() {
    let w = World::new().await;
    let org = w.given_org("acme").await;
    let user = w.given_human(&org).await;
    let now = w.app.now();
    let at = w
        .app
        .create_administrator(&w.admin, &user, Scope::Instance, vec!["IAM_USER_MANAGER".into()])
        .await
        .unwrap();
    assert_eq!(at, now);
    let inst = w.store.events_of(AggregateKind::Instance, &w.instance_id).await.unwrap();
    assert_eq!(
        inst.last().unwrap().event,
        Event::InstanceMemberAdded { user_id: user.clone(), roles: vec!["IAM_USER_MANAGER".into()] }
    );
    assert_eq!(w.store.instance().await.unwrap().unwrap().sequence, inst.len() as u64);
    w.app
        .create_administrator(&w.admin, &user, Scope::Org(org.clone()), vec!["ORG_OWNER".into()])
        .await
        .unwrap();
    let log = w.store.events_of(AggregateKind::Org, &org).await.unwrap();
    assert_eq!(
        log.last().unwrap().event,
        Event::OrgMemberAdded { user_id: user.clone(), roles: vec!["ORG_OWNER".into()] }
    );
    let ms = w.store.memberships_of(&user).await.unwrap();
    assert_eq!(ms.len(), 2);
    assert!(ms.contains(&Membership {
        user_id: user.clone(),
        scope: Scope::Org(org.clone()),
        roles: vec!["ORG_OWNER".into()],
        created_at: now
    }));
}

#[tokio::test]
async fn errors() {
    let w = World::new().await;
    let org = w.given_org("acme").await;
    let user = w.given_human(&org).await;
    let roles = |r: &str| vec![r.to_string()];
    w.app.create_administrator(&w.admin, &user, Scope::Org(org.clone()), roles("ORG_OWNER")).await.unwrap();
    assert_err(
        w.app.create_administrator(&w.admin, &user, Scope::Org(org.clone()), roles("ORG_OWNER_VIEWER")).await,
        Kind::AlreadyExists,
        "COMMAND-PtXi1",
    );
    assert_err(
        w.app.create_administrator(&w.admin, &user, Scope::Instance, roles("ORG_OWNER")).await,
        Kind::InvalidArgument,
        "MEMBER-4m0fS",
    );
    assert_err(
        w.app.create_administrator(&w.admin, &user, Scope::Org(org.clone()), roles("NO_SUCH_ROLE")).await,
        Kind::InvalidArgument,
        "MEMBER-4m0fS",
    );
    assert_kind(
        w.app.create_administrator(&w.admin, &user, Scope::Instance, vec![]).await,
        Kind::InvalidArgument,
    );
    assert_err(
        w.app.create_administrator(&w.admin, "404", Scope::Instance, roles("IAM_OWNER")).await,
        Kind::NotFound,
        USER_NOT_FOUND,
    );
    assert_err(
        w.app.create_administrator(&w.admin, &user, Scope::Org("nowhere".into()), roles("ORG_OWNER")).await,
        Kind::NotFound,
        ORG_NOT_FOUND,
    );
    // An org owner cannot grant on the instance (403).
    let owner = w.caller(&org, Scope::Org(org.clone()), &["ORG_OWNER"]).await;
    assert_err(
        w.app.create_administrator(&owner, &user, Scope::Instance, roles("IAM_OWNER")).await,
        Kind::PermissionDenied,
        DENIED,
    );
}
