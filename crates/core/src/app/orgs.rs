//! Organizations: AddOrganization, with optional admins (existing users or new humans).

use super::administrators::check_roles;
use super::tx::Tx;
use super::users::{NewHuman, record_new_human};
use super::{App, Caller, Details, user_not_found};
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, Event};
use crate::permission::{self as perm, require_somewhere};
use crate::store::UniqueClaim;
use crate::time::Timestamp;
use crate::validate;
use crate::view::{Scope, UserState};

/// An admin of a new organization: an existing user or a new human.
#[derive(Debug, Clone)]
pub enum OrgAdmin {
    Existing { user_id: String, roles: Vec<String> },
    New { human: Box<NewHuman>, roles: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct OrgCreated {
    pub org_id: String,
    pub details: Details,
    pub admin_ids: Vec<String>,
}

/// What the load step found for one admin: whether an existing user is visible, or the id a
/// new human gets.
#[derive(Debug, Clone)]
enum Loaded {
    Existing { visible: bool },
    New { user_id: String },
}

const MSG: &str = "AddOrganizationRequest";

/// AddOrganization, request checks: `org.create` instance-wide, name and id.
fn check(caller: &Caller, name: &str, org_id: Option<&str>) -> Result<()> {
    let ms = caller.memberships();
    require_somewhere(ms, perm::ORG_CREATE)?;
    if !perm::holds_instance_wide(ms, perm::ORG_CREATE) {
        return Err(perm::denied());
    }
    validate::runes_between(MSG, "Name", name.trim(), 1, 200)?;
    if let Some(id) = org_id {
        validate::runes_between(MSG, "OrgId", id, 1, 200)?;
    }
    Ok(())
}

/// AddOrganization: `org.added`, each admin (a new human's `user.human.added`) and its
/// `org.member.added` (default role ORG_OWNER), and the org's name and id claims.
fn decide(
    caller: &Caller,
    name: &str,
    org_id: &str,
    admins: Vec<(OrgAdmin, Loaded)>,
    now: Timestamp,
) -> Result<(Tx, Vec<String>)> {
    let mut tx = Tx::new(now, caller.user_id());
    let org = AggregateKind::Org;
    tx.record(org, org_id, org_id, Event::OrgAdded { name: name.trim().into() });
    tx.commit.claims.push(UniqueClaim {
        kind: "org_name",
        value: name.trim().to_lowercase(),
        taken: Error::new(Kind::AlreadyExists, "ORG-lapo2m", "Errors.Org.NameTaken"),
    });
    tx.commit.claims.push(UniqueClaim {
        kind: "org_id",
        value: org_id.to_string(),
        taken: Error::new(Kind::AlreadyExists, "ORG-8nfSr", "Errors.Org.AlreadyExists"),
    });
    let mut admin_ids = Vec::new();
    for (admin, loaded) in admins {
        let (user_id, roles) = match (admin, loaded) {
            (OrgAdmin::Existing { user_id, roles }, Loaded::Existing { visible }) => {
                if !visible {
                    return Err(user_not_found());
                }
                (user_id, roles)
            }
            (OrgAdmin::New { human, roles }, Loaded::New { user_id }) => {
                let mut human = *human;
                human.org_id = Some(org_id.to_string());
                (record_new_human(&mut tx, &human, org_id, user_id)?, roles)
            }
            _ => return Err(Error::internal("admin loaded as another kind")),
        };
        let roles = if roles.is_empty() { vec!["ORG_OWNER".to_string()] } else { roles };
        check_roles(&Scope::Org(org_id.to_string()), &roles)?;
        tx.record(org, org_id, org_id, Event::OrgMemberAdded { user_id: user_id.clone(), roles });
        admin_ids.push(user_id);
    }
    Ok((tx, admin_ids))
}

impl App {
    /// AddOrganization, with optional admins (existing users or new humans).
    pub async fn add_org(
        &self,
        caller: &Caller,
        name: &str,
        org_id: Option<&str>,
        admins: Vec<OrgAdmin>,
    ) -> Result<OrgCreated> {
        check(caller, name, org_id)?;
        let now = self.now();
        let org_id = org_id.map_or_else(|| self.next_id(), str::to_string);
        let mut loaded = Vec::with_capacity(admins.len());
        for admin in admins {
            let l = match &admin {
                OrgAdmin::Existing { user_id, .. } => {
                    let user = self.deps.store.user(user_id).await?;
                    Loaded::Existing { visible: user.is_some_and(|u| u.state != UserState::Deleted) }
                }
                OrgAdmin::New { human, .. } => {
                    Loaded::New { user_id: human.user_id.clone().unwrap_or_else(|| self.next_id()) }
                }
            };
            loaded.push((admin, l));
        }
        let (tx, admin_ids) = decide(caller, name, &org_id, loaded, now)?;
        let details = tx.details(AggregateKind::Org, &org_id, true);
        self.deps.store.commit(tx.into_commit()).await?;
        if !admin_ids.is_empty() {
            self.forget_principals();
        }
        Ok(OrgCreated { org_id, details, admin_ids })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NOW, caller, org};
    use super::*;
    use crate::event::HumanProfile;
    use crate::view::Change;

    fn new_human() -> Box<NewHuman> {
        Box::new(NewHuman {
            profile: HumanProfile {
                given_name: "G".into(),
                family_name: "F".into(),
                email: "g@example.com".into(),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    #[test]
    fn only_instance_wide_org_create() {
        assert!(check(&caller(Scope::Instance, "IAM_ORG_MANAGER"), "acme", None).is_ok());
        let e = check(&caller(org("A"), "ORG_OWNER"), "acme", None).err();
        assert_eq!(e.map(|e| e.kind), Some(Kind::PermissionDenied));
        let e = check(&caller(Scope::Instance, "IAM_OWNER"), "  ", None).err();
        assert_eq!(e.map(|e| e.kind), Some(Kind::InvalidArgument));
    }

    #[test]
    fn admins_become_members_of_the_folded_org() {
        let admins = vec![
            (OrgAdmin::Existing { user_id: "u1".into(), roles: vec![] }, Loaded::Existing { visible: true }),
            (
                OrgAdmin::New { human: new_human(), roles: vec!["ORG_USER_MANAGER".into()] },
                Loaded::New { user_id: "u2".into() },
            ),
        ];
        let (tx, ids) = decide(&caller(Scope::Instance, "IAM_OWNER"), " Acme ", "o", admins, NOW).unwrap();
        assert_eq!(ids, vec!["u1", "u2"]);
        assert_eq!(tx.details(AggregateKind::Org, "o", true).sequence, 3);
        let c = tx.into_commit();
        assert!(
            c.changes.iter().any(|ch| matches!(ch, Change::Org(o) if o.name == "Acme" && o.sequence == 3))
        );
        let members: Vec<_> = c
            .changes
            .iter()
            .filter_map(|ch| match ch {
                Change::Membership(m) => Some((m.user_id.as_str(), m.roles[0].as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(members, vec![("u1", "ORG_OWNER"), ("u2", "ORG_USER_MANAGER")]);
        assert_eq!(
            c.claims.iter().map(|c| c.value.as_str()).collect::<Vec<_>>(),
            vec!["acme", "o", "u2", "g@example.com"]
        );
    }

    #[test]
    fn unknown_admins_and_instance_roles_are_refused() {
        let c = caller(Scope::Instance, "IAM_OWNER");
        let gone = vec![(
            OrgAdmin::Existing { user_id: "x".into(), roles: vec![] },
            Loaded::Existing { visible: false },
        )];
        assert_eq!(decide(&c, "a", "o", gone, NOW).err().map(|e| e.id), Some("COMMAND-M9dsd"));
        let iam = vec![(
            OrgAdmin::Existing { user_id: "u".into(), roles: vec!["IAM_OWNER".into()] },
            Loaded::Existing { visible: true },
        )];
        assert_eq!(decide(&c, "a", "o", iam, NOW).err().map(|e| e.id), Some("MEMBER-4m0fS"));
    }
}
