//! What a login UI reads before a sign-in: ListUsers (permission filtering, each query type,
//! nesting, paging), ListAuthenticationMethodTypes (a READY passkey, or nothing),
//! ListOrganizations (org.read, each query type) and the settings reads (policy.read in the
//! asked organization, iam.policy.read).

use passlink_core::app::{AuthMethod, Caller, LinkMedium, OrgSearch, SettingsContext, UserSearch};
use passlink_core::error::Kind;
use passlink_core::permission as perm;
use passlink_core::query::{OrgFilter, Page, Text, TextMethod, UserField, UserFilter, UserSort};
use passlink_core::view::Scope;

use crate::codes::{register_and_verify, returned_code, with_code};
use crate::world::{Matrix, USER_NOT_FOUND, USER_READERS, World, assert_err, new_human};

const ORG_NOT_FOUND: &str = "ORG-o0Ng9";

fn asc() -> Page {
    Page { asc: true, ..Page::default() }
}

fn search(queries: Vec<UserFilter>) -> UserSearch {
    UserSearch { queries, page: asc(), ..UserSearch::default() }
}

fn text(f: UserField, v: &str, m: TextMethod) -> UserFilter {
    UserFilter::Text(f, Text::new(v, m))
}

/// The ids ListUsers answers `caller` for `s`, and the total.
async fn listed(w: &World, caller: &Caller, s: &UserSearch) -> (Vec<String>, u64) {
    let l = w.app.list_users(caller, s).await.unwrap();
    (l.users.into_iter().map(|u| u.user.id).collect(), l.total)
}

/// A human with a chosen username (its email is `<username>@example.com`).
async fn human(w: &World, org: &str, username: &str) -> String {
    w.app.add_human(&w.admin, new_human(org, username)).await.unwrap().user_id
}

#[tokio::test]
async fn list_users_leaves_out_rows_the_caller_may_not_read() {
    // Given two orgs with a user each
    let w = World::new().await;
    let (a, b) = (w.given_org("lu-a").await, w.given_org("lu-b").await);
    let (ua, ub) = (human(&w, &a, "ua").await, human(&w, &b, "ub").await);
    let only_ours = search(vec![UserFilter::Ids(vec![ua.clone(), ub.clone()])]);

    // Then an instance-wide reader sees both, an org owner their org's, an org owner elsewhere
    // and a caller without roles none of them (no error)
    let login = w.caller(&w.default_org, Scope::Instance, &["IAM_LOGIN_CLIENT"]).await;
    assert_eq!(listed(&w, &login, &only_ours).await, (vec![ua.clone(), ub.clone()], 2));
    let owner_a = w.caller(&a, Scope::Org(a.clone()), &["ORG_OWNER"]).await;
    assert_eq!(listed(&w, &owner_a, &only_ours).await, (vec![ua.clone()], 1));
    let viewer_b = w.caller(&w.default_org, Scope::Org(b.clone()), &["ORG_OWNER_VIEWER"]).await;
    assert_eq!(listed(&w, &viewer_b, &only_ours).await, (vec![ub.clone()], 1));
    assert_eq!(listed(&w, &w.nobody().await, &only_ours).await, (vec![], 0));

    // And a caller without roles finds themself
    let me = w.nobody().await;
    let mine = search(vec![]);
    assert_eq!(listed(&w, &me, &mine).await, (vec![me.principal.user_id.clone()], 1));
}

#[tokio::test]
async fn list_users_each_query_type() {
    let w = World::new().await;
    let org = w.given_org("lu-q").await;
    let ada = human(&w, &org, "Ada.Q").await;
    let bob = human(&w, &org, "bob.q").await;
    let robot = w.given_machine(&org).await;
    let gone = human(&w, &org, "gone.q").await;
    w.app.delete_user(&w.admin, &gone).await.unwrap();
    let inactive = human(&w, &org, "sleepy.q").await;
    w.app.deactivate_user(&w.admin, &inactive).await.unwrap();
    let in_org = UserFilter::Org(org.clone());
    let q = async |f: UserFilter| listed(&w, &w.admin, &search(vec![in_org.clone(), f])).await.0;

    assert_eq!(q(text(UserField::LoginName, "ada.q", TextMethod::EqualsIgnoreCase)).await, vec![ada.clone()]);
    assert_eq!(q(text(UserField::LoginName, "ada.q", TextMethod::Equals)).await, Vec::<String>::new());
    assert_eq!(q(text(UserField::UserName, "Ada.Q", TextMethod::Equals)).await, vec![ada.clone()]);
    assert_eq!(q(text(UserField::Email, "bob.q@example.com", TextMethod::Equals)).await, vec![bob.clone()]);
    assert_eq!(q(text(UserField::Email, ".Q@EXAMPLE", TextMethod::ContainsIgnoreCase)).await.len(), 3);
    assert_eq!(q(text(UserField::FirstName, "Ad", TextMethod::StartsWith)).await.len(), 3);
    assert_eq!(q(text(UserField::LastName, "lace", TextMethod::EndsWith)).await.len(), 3);
    assert_eq!(q(text(UserField::DisplayName, "Robot", TextMethod::Equals)).await, vec![robot.clone()]);
    assert_eq!(q(UserFilter::Type(2)).await, vec![robot.clone()]);
    assert_eq!(q(UserFilter::State(2)).await, vec![inactive.clone()]);
    assert_eq!(q(UserFilter::State(3)).await, Vec::<String>::new(), "deleted users are never listed");
    assert_eq!(q(UserFilter::Ids(vec![bob.clone(), gone.clone()])).await, vec![bob.clone()]);
    assert_eq!(q(UserFilter::Emails(vec!["ada.q@example.com".into()])).await, Vec::<String>::new(), "exact");
    assert_eq!(q(UserFilter::Emails(vec!["Ada.Q@example.com".into()])).await, vec![ada.clone()]);
    let either = UserFilter::Or(vec![UserFilter::Ids(vec![ada.clone()]), UserFilter::Type(2)]);
    let mut want = vec![ada.clone(), robot.clone()];
    want.sort();
    assert_eq!(q(either.clone()).await, want);
    let neither = UserFilter::Not(Box::new(either));
    let mut want = vec![bob.clone(), inactive.clone()];
    want.sort();
    assert_eq!(q(UserFilter::And(vec![neither])).await, want);

    // Too deep: 21 levels
    let mut deep = UserFilter::Ids(vec![]);
    for _ in 0..21 {
        deep = UserFilter::Not(Box::new(deep));
    }
    assert_err(w.app.list_users(&w.admin, &search(vec![deep])).await, Kind::InvalidArgument, "USER-zsQ97");
}

#[tokio::test]
async fn list_users_pages_after_filtering_and_counts_all() {
    let w = World::new().await;
    let org = w.given_org("lu-p").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(human(&w, &org, &format!("page{i}")).await);
    }
    let last_by_name = ids[4].clone();
    ids.sort(); // ids sort as text
    let page = |offset, limit, asc| UserSearch {
        queries: vec![UserFilter::Org(org.clone())],
        page: Page { offset, limit, asc },
        sort: UserSort::Id,
    };
    assert_eq!(listed(&w, &w.admin, &page(1, 2, true)).await, (ids[1..3].to_vec(), 5));
    let mut desc = ids.clone();
    desc.reverse();
    assert_eq!(listed(&w, &w.admin, &page(0, 0, false)).await, (desc, 5));
    assert_eq!(listed(&w, &w.admin, &page(9, 2, true)).await, (vec![], 5));
    let by_name = UserSearch { sort: UserSort::UserName, ..page(0, 1, false) };
    assert_eq!(listed(&w, &w.admin, &by_name).await.0, [last_by_name]);
    assert_err(w.app.list_users(&w.admin, &page(0, 1001, true)).await, Kind::InvalidArgument, "QUERY-4M0fs");
}

#[tokio::test]
async fn auth_methods_show_a_ready_passkey_only() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    // No passkey yet; a started registration is not one either
    assert!(w.app.auth_methods(&w.admin, &user, None).await.unwrap().is_empty());
    let code = returned_code(&w, &user).await;
    w.app.register_passkey(None, with_code(&user, &code)).await.unwrap();
    assert!(w.app.auth_methods(&w.admin, &user, None).await.unwrap().is_empty());
    // A verified passkey
    register_and_verify(&w, None, with_code(&user, &code)).await.unwrap();
    assert_eq!(w.app.auth_methods(&w.admin, &user, None).await.unwrap(), [AuthMethod::Passkey]);
    assert_eq!(w.app.auth_methods(&w.admin, &user, Some("localhost")).await.unwrap(), [AuthMethod::Passkey]);
    assert!(w.app.auth_methods(&w.admin, &user, Some("other.example.com")).await.unwrap().is_empty());
    // Unknown user
    assert_err(w.app.auth_methods(&w.admin, "nope", None).await, Kind::NotFound, USER_NOT_FOUND);
    // A link for the user is no passkey
    let other = w.given_human(&w.default_org).await;
    w.app.create_passkey_link(&w.admin, &other, LinkMedium::Return).await.unwrap();
    assert!(w.app.auth_methods(&w.admin, &other, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn auth_methods_need_user_read_in_the_users_org() {
    let w = World::new().await;
    let m = Matrix {
        ok: USER_READERS,
        not_found: &["ORG_OWNER@other", "ORG_USER_MANAGER@other"],
        not_found_id: USER_NOT_FOUND,
    };
    w.check_matrix(&m, async |caller, org| {
        let user = w.given_human(org).await;
        w.app.auth_methods(caller, &user, None).await
    })
    .await;
}

#[tokio::test]
async fn list_organizations_by_org_read_and_each_query() {
    let w = World::new().await;
    let (a, b) = (w.given_org("Acme Lookup").await, w.given_org("Beta Lookup").await);
    let orgs = async |caller: &Caller, queries: Vec<OrgFilter>| {
        let s = OrgSearch { queries, by_name: true, page: asc() };
        let l = w.app.list_orgs(caller, &s).await.unwrap();
        (l.orgs.into_iter().map(|o| o.id).collect::<Vec<_>>(), l.total)
    };
    let ours = OrgFilter::Name(Text::new("lookup", TextMethod::EndsWithIgnoreCase));
    let login = w.caller(&w.default_org, Scope::Instance, &["IAM_LOGIN_CLIENT"]).await;
    assert_eq!(orgs(&login, vec![ours.clone()]).await, (vec![a.clone(), b.clone()], 2));
    let owner_b = w.caller(&b, Scope::Org(b.clone()), &["ORG_OWNER"]).await;
    assert_eq!(orgs(&owner_b, vec![ours.clone()]).await, (vec![b.clone()], 1));
    assert_eq!(orgs(&w.nobody().await, vec![]).await, (vec![], 0));
    assert_eq!(orgs(&login, vec![OrgFilter::Default]).await.0, vec![w.default_org.clone()]);
    assert_eq!(orgs(&login, vec![OrgFilter::Id(b.clone())]).await.0, vec![b.clone()]);
    assert_eq!(orgs(&login, vec![ours.clone(), OrgFilter::State(1)]).await.1, 2);
    assert_eq!(orgs(&login, vec![OrgFilter::State(2)]).await.1, 0);
    let domain = OrgFilter::Domain(Text::new("acme.example.com", TextMethod::Equals));
    assert_eq!(orgs(&login, vec![domain]).await.1, 0, "organizations have no domains");
    // Paged by name, descending
    let s = OrgSearch { queries: vec![ours], by_name: true, page: Page { offset: 0, limit: 1, asc: false } };
    let l = w.app.list_orgs(&login, &s).await.unwrap();
    assert_eq!((l.orgs[0].id.clone(), l.total), (b, 2));
}

#[tokio::test]
async fn settings_need_policy_read_in_the_asked_org() {
    let w = World::new().await;
    let m = Matrix {
        ok: &[
            "IAM_OWNER",
            "IAM_ORG_MANAGER",
            "IAM_LOGIN_CLIENT",
            "IAM_OWNER_VIEWER",
            "ORG_OWNER",
            "ORG_USER_MANAGER",
            "ORG_OWNER_VIEWER",
        ],
        not_found: &["ORG_OWNER@other", "ORG_USER_MANAGER@other"],
        not_found_id: ORG_NOT_FOUND,
    };
    w.check_matrix(&m, async |caller, org| {
        w.app.settings(caller, &SettingsContext::Org(org.into()), perm::POLICY_READ).await
    })
    .await;
    // The details are the instance's; an unknown org is 404 even for an instance-wide reader
    let login = w.caller(&w.default_org, Scope::Instance, &["IAM_LOGIN_CLIENT"]).await;
    let d = w.app.settings(&login, &SettingsContext::Caller, perm::POLICY_READ).await.unwrap();
    assert_eq!(d.resource_owner, w.instance_id);
    let unknown = SettingsContext::Org("nope".into());
    assert_err(w.app.settings(&login, &unknown, perm::POLICY_READ).await, Kind::NotFound, ORG_NOT_FOUND);
}

#[tokio::test]
async fn security_settings_need_iam_policy_read() {
    let w = World::new().await;
    let read = async |roles: &[&str], scope: Scope| {
        let c = w.caller(&w.default_org, scope, roles).await;
        w.app.settings(&c, &SettingsContext::Instance, perm::IAM_POLICY_READ).await
    };
    for role in ["IAM_OWNER", "IAM_OWNER_VIEWER", "IAM_LOGIN_CLIENT"] {
        assert!(read(&[role], Scope::Instance).await.is_ok(), "{role}");
    }
    for role in ["IAM_ORG_MANAGER", "IAM_USER_MANAGER"] {
        assert_err(read(&[role], Scope::Instance).await, Kind::PermissionDenied, "AUTH-5mWD2");
    }
    let org = Scope::Org(w.default_org.clone());
    assert_err(read(&["ORG_OWNER"], org).await, Kind::PermissionDenied, "AUTH-5mWD2");
}
