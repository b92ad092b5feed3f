//! Administrators: CreateAdministrator grants roles on the instance or on an organization.

use super::tx::Tx;
use super::{App, Caller, org_not_found};
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, Event};
use crate::permission::{self as perm, require_in, require_somewhere};
use crate::time::Timestamp;
use crate::validate;
use crate::view::{InstanceView, Membership, OrgView, Scope, UserView};

const MSG: &str = "CreateAdministratorRequest";

/// Roles must exist and fit the scope (IAM_* on the instance, ORG_* on organizations).
pub(super) fn check_roles(scope: &Scope, roles: &[String]) -> Result<()> {
    let allowed = match scope {
        Scope::Instance => perm::INSTANCE_ROLES,
        Scope::Org(_) => perm::ORG_ROLES,
    };
    if let Some(bad) = roles.iter().find(|r| !allowed.contains(&r.as_str())) {
        return Err(Error::new(Kind::InvalidArgument, "MEMBER-4m0fS", "Errors.Member.InvalidRole")
            .with_cause(format!("role {bad}")));
    }
    Ok(())
}

fn permission_for(scope: &Scope) -> &'static str {
    match scope {
        Scope::Instance => perm::IAM_MEMBER_WRITE,
        Scope::Org(_) => perm::ORG_MEMBER_WRITE,
    }
}

/// Request checks: the permission somewhere, the user id, at least one role that fits.
fn check(caller: &Caller, user_id: &str, scope: &Scope, roles: &[String]) -> Result<()> {
    require_somewhere(caller.memberships(), permission_for(scope))?;
    validate::runes_between(MSG, "UserId", user_id, 1, 200)?;
    if roles.is_empty() {
        return Err(Error::validation(format!("invalid {MSG}.Roles: value must contain at least 1 item(s)")));
    }
    check_roles(scope, roles)
}

/// The aggregate a membership is recorded on, as loaded.
#[derive(Debug, Clone)]
enum Target {
    Instance(Option<InstanceView>),
    Org(Option<OrgView>),
}

/// CreateAdministrator on the loaded user, their memberships and the scope's aggregate:
/// `instance.member.added` or `org.member.added`, folded into the aggregate and the membership.
fn decide(
    caller: &Caller,
    user: &UserView,
    existing: &[Membership],
    scope: &Scope,
    target: Target,
    roles: &[String],
    now: Timestamp,
) -> Result<Tx> {
    let ms = caller.memberships();
    let permission = permission_for(scope);
    // The permission first: whether someone is already a member is not for a caller who may
    // not add members there to learn.
    match scope {
        Scope::Instance if !perm::holds_instance_wide(ms, permission) => return Err(perm::denied()),
        Scope::Instance => {}
        Scope::Org(org_id) => require_in(ms, permission, org_id, org_not_found)?,
    }
    if existing.iter().any(|m| m.scope == *scope) {
        return Err(Error::new(Kind::AlreadyExists, "COMMAND-PtXi1", "Errors.Member.AlreadyExists"));
    }
    let mut tx = Tx::new(now, caller.user_id());
    let (user_id, roles) = (user.id.clone(), roles.to_vec());
    match (scope, target) {
        (Scope::Instance, Target::Instance(inst)) => {
            let inst = inst.ok_or_else(|| Error::internal("no instance"))?;
            let id = inst.id.clone();
            tx.load_instance(inst);
            tx.record(AggregateKind::Instance, &id, &id, Event::InstanceMemberAdded { user_id, roles });
        }
        (Scope::Org(_), Target::Org(org)) => {
            let org = org.ok_or_else(org_not_found)?;
            let id = org.id.clone();
            tx.load_org(org);
            tx.record(AggregateKind::Org, &id, &id, Event::OrgMemberAdded { user_id, roles });
        }
        _ => return Err(Error::internal("scope loaded as another kind")),
    }
    Ok(tx)
}

impl App {
    /// CreateAdministrator: grant roles on the instance or on an organization.
    pub async fn create_administrator(
        &self,
        caller: &Caller,
        user_id: &str,
        scope: Scope,
        roles: Vec<String>,
    ) -> Result<Timestamp> {
        check(caller, user_id, &scope, &roles)?;
        let now = self.now();
        let _lock = self.lock_aggregate(scope.key()).await;
        retry!(self, async {
            let user = self.visible_user(user_id).await?;
            let existing = self.deps.store.memberships_of(user_id).await?;
            let target = match &scope {
                Scope::Instance => Target::Instance(self.deps.store.instance().await?),
                Scope::Org(org_id) => Target::Org(self.deps.store.org(org_id).await?),
            };
            let tx = decide(caller, &user, &existing, &scope, target, &roles, now)?;
            self.deps.store.commit(tx.into_commit()).await?;
            Ok(now)
        })
        .inspect(|_| self.forget_principals())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NOW, caller, human, org};
    use super::*;
    use crate::view::Change;

    fn org_view(id: &str) -> OrgView {
        OrgView { id: id.into(), name: id.into(), sequence: 4, created_at: NOW, changed_at: NOW }
    }

    #[test]
    fn request_checks() {
        let owner = caller(org("A"), "ORG_OWNER");
        assert!(check(&owner, "u", &org("A"), &["ORG_OWNER".into()]).is_ok());
        assert_eq!(
            check(&owner, "u", &Scope::Instance, &["IAM_OWNER".into()]).err().map(|e| e.kind),
            Some(Kind::PermissionDenied)
        );
        assert_eq!(check(&owner, "u", &org("A"), &[]).err().map(|e| e.kind), Some(Kind::InvalidArgument));
        assert_eq!(
            check(&owner, "u", &org("A"), &["IAM_OWNER".into()]).err().map(|e| e.id),
            Some("MEMBER-4m0fS")
        );
    }

    #[test]
    fn an_org_member_is_folded_into_the_org_and_the_membership() {
        let roles = vec!["ORG_USER_MANAGER".to_string()];
        let c = caller(org("A"), "ORG_OWNER");
        let tx = decide(&c, &human("u", "A"), &[], &org("A"), Target::Org(Some(org_view("A"))), &roles, NOW)
            .unwrap();
        let commit = tx.into_commit();
        assert_eq!(commit.events[0].sequence, 5);
        assert!(commit.changes.iter().any(|ch| matches!(ch, Change::Org(o) if o.sequence == 5)));
        assert!(
            commit
                .changes
                .iter()
                .any(|ch| matches!(ch, Change::Membership(m) if m.user_id == "u" && m.roles == roles))
        );
    }

    #[test]
    fn existing_members_other_orgs_and_org_managers_on_the_instance_are_refused() {
        let roles = vec!["ORG_OWNER".to_string()];
        let c = caller(org("A"), "ORG_OWNER");
        let member =
            Membership { user_id: "u".into(), scope: org("A"), roles: roles.clone(), created_at: NOW };
        let e =
            decide(&c, &human("u", "A"), &[member], &org("A"), Target::Org(Some(org_view("A"))), &roles, NOW);
        assert_eq!(e.err().map(|e| e.id), Some("COMMAND-PtXi1"));
        let e = decide(&c, &human("u", "A"), &[], &org("B"), Target::Org(Some(org_view("B"))), &roles, NOW);
        assert_eq!(e.err().map(|e| e.id), Some("ORG-o0Ng9"));
        // An existing member of another organization is not revealed to this one's owner.
        let member_b =
            Membership { user_id: "u".into(), scope: org("B"), roles: roles.clone(), created_at: NOW };
        let e = decide(
            &c,
            &human("u", "B"),
            &[member_b],
            &org("B"),
            Target::Org(Some(org_view("B"))),
            &roles,
            NOW,
        );
        assert_eq!(e.err().map(|e| e.id), Some("ORG-o0Ng9"));
        let org_manager = caller(org("A"), "ORG_OWNER");
        let iam = vec!["IAM_OWNER".to_string()];
        let e =
            decide(&org_manager, &human("u", "A"), &[], &Scope::Instance, Target::Instance(None), &iam, NOW);
        assert_eq!(e.err().map(|e| e.kind), Some(Kind::PermissionDenied));
    }
}
