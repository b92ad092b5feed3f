//! What a login UI asks before it signs someone in: ListUsers, ListAuthenticationMethodTypes,
//! ListOrganizations, and the settings reads (login, branding, security, identity providers).
//!
//! All are reads: load candidates → a pure decide (who may read what, which rows match, the
//! page) → answer. Rows the caller may not read are left out, never an error: `user.read` in a
//! user's organization or instance-wide (or the user themself) for users, `org.read` for
//! organizations. The settings describe passlink truthfully (passkeys only, no passwords, no
//! registration, no external identity providers, no second factors): [`LOGIN_FACTS`].

use super::codes::authorize_on_user;
use super::{App, Caller, Details, UserRead, org_not_found};
use crate::error::Result;
use crate::passkey::PasskeyState;
use crate::permission::{self as perm, holds_in, holds_instance_wide, require_in, require_somewhere};
use crate::query::{
    MAX_NESTING, OrgFilter, Page, UserFilter, UserNarrowing, UserSort, page_orgs, page_users, too_deep,
};
use crate::validate;
use crate::view::{Membership, OrgView, Scope, UserState, UserView};

/// ListUsers: the queries (ANDed), the sorting column and the page.
#[derive(Debug, Clone, Default)]
pub struct UserSearch {
    pub queries: Vec<UserFilter>,
    pub sort: UserSort,
    pub page: Page,
}

/// A page of users and how many matched in all.
#[derive(Debug, Clone)]
pub struct UserList {
    pub users: Vec<UserRead>,
    pub total: u64,
}

/// ListOrganizations: the queries (ANDed), sort by name (else by id), the page.
#[derive(Debug, Clone, Default)]
pub struct OrgSearch {
    pub queries: Vec<OrgFilter>,
    pub by_name: bool,
    pub page: Page,
}

/// A page of organizations and how many matched in all.
#[derive(Debug, Clone)]
pub struct OrgList {
    pub orgs: Vec<OrgView>,
    pub total: u64,
}

/// The authentication methods a user has set up (ZITADEL's `AuthenticationMethodType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Passkey,
}

/// Which organization's settings a request asks for (`ctx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsContext {
    /// No `ctx`: the caller's context organization.
    Caller,
    Org(String),
    Instance,
}

/// passlink's login settings: what it can do, stated as ZITADEL's LoginSettings fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFacts {
    pub allow_username_password: bool,
    pub allow_register: bool,
    pub allow_external_idp: bool,
    pub force_mfa: bool,
    pub passkeys_allowed: bool,
    pub hide_password_reset: bool,
    pub ignore_unknown_usernames: bool,
    pub allow_domain_discovery: bool,
    pub disable_login_with_email: bool,
    pub disable_login_with_phone: bool,
    /// Check lifetimes in seconds (ZITADEL's defaults: 240 h, 240 h, 720 h, 18 h, 12 h).
    pub password_check_lifetime_secs: i64,
    pub external_login_check_lifetime_secs: i64,
    pub mfa_init_skip_lifetime_secs: i64,
    pub second_factor_check_lifetime_secs: i64,
    pub multi_factor_check_lifetime_secs: i64,
}

/// Passkeys only: no password (so no password reset), no self-registration, no external
/// identity providers, no second factors; users sign in by username, email or phone number (the
/// login names a user may type; ListUsers answers each). Phone login stays on, as ZITADEL's
/// default: ZITADEL's TypeScript login refuses a user whose typed name is not both the login
/// name and the email when it is off.
pub const LOGIN_FACTS: LoginFacts = LoginFacts {
    allow_username_password: false,
    allow_register: false,
    allow_external_idp: false,
    force_mfa: false,
    passkeys_allowed: true,
    hide_password_reset: true,
    ignore_unknown_usernames: false,
    allow_domain_discovery: false,
    disable_login_with_email: false,
    disable_login_with_phone: false,
    password_check_lifetime_secs: 240 * 3600,
    external_login_check_lifetime_secs: 240 * 3600,
    mfa_init_skip_lifetime_secs: 720 * 3600,
    second_factor_check_lifetime_secs: 18 * 3600,
    multi_factor_check_lifetime_secs: 12 * 3600,
};

/// Who a caller may read with `permission`: everyone (instance-wide), or the members of some
/// organizations (and, for users, themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadScope {
    all: bool,
    orgs: Vec<String>,
    self_id: String,
    self_org: String,
}

impl ReadScope {
    pub(crate) fn of(caller: &Caller, permission: &str) -> ReadScope {
        let ms: &[Membership] = caller.memberships();
        let orgs = ms
            .iter()
            .filter_map(|m| match &m.scope {
                Scope::Org(o) if holds_in(std::slice::from_ref(m), permission, o) => Some(o.clone()),
                _ => None,
            })
            .collect();
        ReadScope {
            all: holds_instance_wide(ms, permission),
            orgs,
            self_id: caller.user_id().to_string(),
            self_org: caller.principal.org_id.clone(),
        }
    }

    /// The users a store needs to read for this scope (the caller's own organization included:
    /// it holds the caller).
    fn user_narrowing(&self) -> UserNarrowing {
        if self.all {
            return UserNarrowing::default();
        }
        let mut orgs = self.orgs.clone();
        orgs.push(self.self_org.clone());
        UserNarrowing { org_ids: Some(orgs), ..UserNarrowing::default() }
    }

    fn admits_user(&self, u: &UserView) -> bool {
        self.all || u.id == self.self_id || self.orgs.contains(&u.org_id)
    }

    fn admits_org(&self, org_id: &str) -> bool {
        self.all || self.orgs.iter().any(|o| o == org_id)
    }
}

/// The details GetUserByID shows for a user.
pub(crate) fn user_details(u: &UserView) -> Details {
    Details {
        sequence: u.sequence,
        change_date: u.changed_at,
        resource_owner: u.org_id.clone(),
        creation_date: Some(u.created_at),
    }
}

fn check_depth(queries: &[UserFilter]) -> Result<()> {
    if queries.iter().any(|q| q.depth() > MAX_NESTING) { Err(too_deep()) } else { Ok(()) }
}

/// ListUsers, decided on the candidates a store read: the readable, not deleted users matching
/// every query, sorted and paged.
fn decide_list_users(scope: &ReadScope, search: &UserSearch, candidates: Vec<UserView>) -> Result<UserList> {
    check_depth(&search.queries)?;
    let rows = candidates
        .into_iter()
        .filter(|u| u.state != UserState::Deleted && scope.admits_user(u))
        .filter(|u| search.queries.iter().all(|q| q.matches(u)))
        .collect();
    let (page, total) = page_users(rows, search.sort, &search.page)?;
    let users = page.into_iter().map(|u| UserRead { details: user_details(&u), user: u }).collect();
    Ok(UserList { users, total })
}

/// ListOrganizations, decided on every organization.
fn decide_list_orgs(
    scope: &ReadScope,
    search: &OrgSearch,
    orgs: Vec<OrgView>,
    default_org: &str,
) -> Result<OrgList> {
    let rows = orgs
        .into_iter()
        .filter(|o| scope.admits_org(&o.id))
        .filter(|o| search.queries.iter().all(|q| q.matches(o, default_org)))
        .collect();
    let (orgs, total) = page_orgs(rows, search.by_name, &search.page)?;
    Ok(OrgList { orgs, total })
}

/// The organization whose settings a request reads, after the caller's permission checks:
/// 403 without `permission` anywhere, 404 for an organization they may not read it in.
fn decide_settings_org(caller: &Caller, ctx: &SettingsContext, permission: &str) -> Result<Option<String>> {
    let ms = caller.memberships();
    require_somewhere(ms, permission)?;
    match ctx {
        SettingsContext::Org(o) => {
            require_in(ms, permission, o, org_not_found)?;
            Ok(Some(o.clone()))
        }
        SettingsContext::Caller | SettingsContext::Instance => Ok(None),
    }
}

impl App {
    /// ListUsers: users the caller may read that match every query, one page of them.
    pub async fn list_users(&self, caller: &Caller, search: &UserSearch) -> Result<UserList> {
        check_depth(&search.queries)?;
        search.page.limit()?;
        let scope = ReadScope::of(caller, perm::USER_READ);
        let narrowing = search.queries.iter().fold(scope.user_narrowing(), |n, q| n.and(&q.narrowing()));
        let candidates = self.deps.store.users_matching(&narrowing).await?;
        decide_list_users(&scope, search, candidates)
    }

    /// ListAuthenticationMethodTypes: `[Passkey]` when the user has a READY passkey (for the
    /// relying party `domain`, if given), else nothing. The user themself, or `user.read` in
    /// the user's organization.
    pub async fn auth_methods(
        &self,
        caller: &Caller,
        user_id: &str,
        domain: Option<&str>,
    ) -> Result<Vec<AuthMethod>> {
        validate::runes_between("ListAuthenticationMethodTypesRequest", "UserId", user_id, 1, 200)?;
        let user = self.visible_user(user_id).await?;
        authorize_on_user(Some(caller), &user, perm::USER_READ)?;
        let passkeys = self.deps.store.passkeys_of(&user.id).await?;
        let ready = passkeys
            .iter()
            .any(|p| p.state == PasskeyState::Ready && domain.is_none_or(|d| d.is_empty() || p.rp_id == d));
        Ok(if ready { vec![AuthMethod::Passkey] } else { Vec::new() })
    }

    /// ListOrganizations: organizations the caller may read (`org.read`) that match every
    /// query, one page of them.
    pub async fn list_orgs(&self, caller: &Caller, search: &OrgSearch) -> Result<OrgList> {
        search.page.limit()?;
        let scope = ReadScope::of(caller, perm::ORG_READ);
        let default_org = self.deps.store.instance().await?.map(|i| i.default_org_id).unwrap_or_default();
        let orgs = self.deps.store.orgs().await?;
        decide_list_orgs(&scope, search, orgs, &default_org)
    }

    /// The details of a settings read (the instance's: passlink's settings are instance-wide)
    /// after `permission` (`policy.read`, `iam.policy.read`) is checked for `ctx`.
    pub async fn settings(
        &self,
        caller: &Caller,
        ctx: &SettingsContext,
        permission: &str,
    ) -> Result<Details> {
        if let Some(org) = decide_settings_org(caller, ctx, permission)? {
            self.deps.store.org(&org).await?.ok_or_else(org_not_found)?;
        }
        let instance = self.deps.store.instance().await?.ok_or_else(org_not_found)?;
        Ok(Details {
            sequence: instance.sequence,
            change_date: instance.changed_at,
            resource_owner: instance.id,
            creation_date: None,
        })
    }
}

#[cfg(test)]
mod tests;
