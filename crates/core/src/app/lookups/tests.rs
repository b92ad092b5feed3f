//! Unit tests of `lookups` (pure, no store).

use super::super::testing::{NOW, caller, human, machine, org};
use super::*;
use crate::error::Kind;
use crate::query::{Text, TextMethod, UserField};

fn ids(l: &UserList) -> Vec<&str> {
    l.users.iter().map(|u| u.user.id.as_str()).collect()
}

fn users() -> Vec<UserView> {
    let mut gone = human("gone", "A");
    gone.state = UserState::Deleted;
    vec![human("a1", "A"), human("b1", "B"), machine("m1", "A"), human("caller", "A"), gone]
}

#[test]
fn rows_the_caller_may_not_read_are_left_out() {
    let all = UserSearch { page: Page { asc: true, ..Page::default() }, ..UserSearch::default() };
    let cases = [
        (caller(Scope::Instance, "IAM_LOGIN_CLIENT"), vec!["a1", "b1", "caller", "m1"]),
        (caller(org("B"), "ORG_OWNER"), vec!["b1", "caller"]),
        (caller(org("A"), "ORG_USER_MANAGER"), vec!["a1", "caller", "m1"]),
        (caller(Scope::Instance, ""), vec!["caller"]),
    ];
    for (c, want) in cases {
        let scope = ReadScope::of(&c, perm::USER_READ);
        let l = decide_list_users(&scope, &all, users()).unwrap();
        assert_eq!(ids(&l), want, "{:?}", c.memberships());
        assert_eq!(l.total, want.len() as u64);
    }
}

#[test]
fn the_store_reads_only_the_callers_orgs_unless_instance_wide() {
    let s = ReadScope::of(&caller(org("B"), "ORG_OWNER"), perm::USER_READ);
    assert_eq!(s.user_narrowing().org_ids, Some(vec!["B".to_string(), "A".to_string()]));
    let s = ReadScope::of(&caller(Scope::Instance, "IAM_OWNER_VIEWER"), perm::USER_READ);
    assert_eq!(s.user_narrowing(), UserNarrowing::default());
}

#[test]
fn queries_are_anded_and_paged_after_filtering() {
    let c = caller(Scope::Instance, "IAM_OWNER");
    let scope = ReadScope::of(&c, perm::USER_READ);
    let search = UserSearch {
        queries: vec![UserFilter::Org("A".into()), UserFilter::Type(1)],
        page: Page { offset: 1, limit: 1, asc: true },
        ..UserSearch::default()
    };
    let l = decide_list_users(&scope, &search, users()).unwrap();
    assert_eq!((ids(&l), l.total), (vec!["caller"], 2));
    assert_eq!(l.users[0].details.resource_owner, "A");
    let mut deep = UserFilter::Ids(vec![]);
    for _ in 0..=MAX_NESTING {
        deep = UserFilter::Or(vec![deep]);
    }
    let e = decide_list_users(&scope, &UserSearch { queries: vec![deep], ..search }, users()).err();
    assert_eq!(e.map(|e| e.id), Some("USER-zsQ97"));
    let by_login = UserSearch {
        queries: vec![UserFilter::Text(
            UserField::LoginName,
            Text::new("B1@EXAMPLE.COM", TextMethod::EqualsIgnoreCase),
        )],
        ..UserSearch::default()
    };
    assert_eq!(ids(&decide_list_users(&scope, &by_login, users()).unwrap()), ["b1"]);
}

#[test]
fn organizations_need_org_read() {
    let o = |id: &str| OrgView {
        id: id.into(),
        name: format!("org {id}"),
        sequence: 1,
        created_at: NOW,
        changed_at: NOW,
    };
    let orgs = vec![o("A"), o("B")];
    let search = OrgSearch { page: Page { asc: true, ..Page::default() }, ..OrgSearch::default() };
    let list = |c: &Caller, s: &OrgSearch| {
        let l = decide_list_orgs(&ReadScope::of(c, perm::ORG_READ), s, orgs.clone(), "A").unwrap();
        l.orgs.into_iter().map(|o| o.id).collect::<Vec<_>>()
    };
    assert_eq!(list(&caller(Scope::Instance, "IAM_LOGIN_CLIENT"), &search), ["A", "B"]);
    assert_eq!(list(&caller(org("B"), "ORG_OWNER"), &search), ["B"]);
    assert!(list(&caller(Scope::Instance, ""), &search).is_empty());
    let default = OrgSearch { queries: vec![OrgFilter::Default], ..search };
    assert_eq!(list(&caller(Scope::Instance, "IAM_OWNER"), &default), ["A"]);
}

#[test]
fn settings_need_policy_read_in_the_asked_org() {
    let ctx_b = SettingsContext::Org("B".into());
    let kind = |c: &Caller, ctx: &SettingsContext, p| decide_settings_org(c, ctx, p).err().map(|e| e.kind);
    assert_eq!(kind(&caller(Scope::Instance, "IAM_LOGIN_CLIENT"), &ctx_b, perm::POLICY_READ), None);
    assert_eq!(kind(&caller(org("A"), "ORG_OWNER"), &SettingsContext::Caller, perm::POLICY_READ), None);
    assert_eq!(kind(&caller(org("A"), "ORG_OWNER"), &ctx_b, perm::POLICY_READ), Some(Kind::NotFound));
    assert_eq!(
        kind(&caller(Scope::Instance, "IAM_USER_MANAGER"), &ctx_b, perm::POLICY_READ),
        Some(Kind::PermissionDenied)
    );
    assert_eq!(
        kind(&caller(org("A"), "ORG_OWNER"), &SettingsContext::Instance, perm::IAM_POLICY_READ),
        Some(Kind::PermissionDenied)
    );
    assert_eq!(
        kind(&caller(Scope::Instance, "IAM_LOGIN_CLIENT"), &SettingsContext::Instance, perm::IAM_POLICY_READ),
        None
    );
}

#[test]
fn login_facts_say_passkeys_only() {
    let f = LOGIN_FACTS;
    assert!(f.passkeys_allowed && f.hide_password_reset);
    assert!(!f.allow_username_password && !f.allow_register && !f.allow_external_idp && !f.force_mfa);
    assert_eq!(f.multi_factor_check_lifetime_secs, 43_200);
}
