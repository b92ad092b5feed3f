//! Users: AddHumanUser / CreateUser (human or machine), GetUserByID, DeactivateUser, DeleteUser.

use super::tx::Tx;
use super::{App, Caller, Details, org_not_found, user_id_claim, user_not_found, username_claim};
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, Event, HumanProfile, MachineProfile};
use crate::passkey::PasskeyView;
use crate::permission::{self as perm, require_in, require_somewhere};
use crate::time::Timestamp;
use crate::validate;
use crate::view::{OrgView, UserState, UserView};

/// A new human user.
#[derive(Debug, Clone, Default)]
pub struct NewHuman {
    pub user_id: Option<String>,
    pub username: Option<String>,
    /// `None`: the caller's context organization.
    pub org_id: Option<String>,
    pub profile: HumanProfile,
}

/// A new machine user.
#[derive(Debug, Clone, Default)]
pub struct NewMachine {
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub org_id: String,
    pub profile: MachineProfile,
}

#[derive(Debug, Clone)]
pub struct UserCreated {
    pub user_id: String,
    pub details: Details,
}

/// A user as GetUserByID returns it.
#[derive(Debug, Clone)]
pub struct UserRead {
    pub user: UserView,
    pub details: Details,
}

/// Validate a new human and record its `user.human.added` in `tx` (with the id and username
/// claims); `user_id` is the request's id or a fresh one. Returns the user's id.
pub(super) fn record_new_human(tx: &mut Tx, h: &NewHuman, org_id: &str, user_id: String) -> Result<String> {
    const MSG: &str = "AddHumanUserRequest";
    let p = &h.profile;
    let embedded = |field| move |e| validate::embedded(MSG, field, e);
    validate::runes_between("SetHumanProfile", "GivenName", &p.given_name, 1, 200)
        .map_err(embedded("Profile"))?;
    validate::runes_between("SetHumanProfile", "FamilyName", &p.family_name, 1, 200)
        .map_err(embedded("Profile"))?;
    validate::runes_at_most("SetHumanProfile", "NickName", &p.nick_name, 200).map_err(embedded("Profile"))?;
    validate::runes_at_most("SetHumanProfile", "DisplayName", &p.display_name, 200)
        .map_err(embedded("Profile"))?;
    validate::runes_at_most("SetHumanProfile", "PreferredLanguage", &p.preferred_language, 10)
        .map_err(embedded("Profile"))?;
    validate::email("SetHumanEmail", "Email", &p.email).map_err(embedded("Email"))?;
    if let Some(id) = &h.user_id {
        validate::runes_between(MSG, "UserId", id, 1, 200)?;
    }
    if let Some(u) = &h.username {
        validate::runes_between(MSG, "Username", u, 1, 200)?;
    }
    let username = h.username.clone().unwrap_or_else(|| p.email.clone());
    let mut profile = p.clone();
    if profile.display_name.is_empty() {
        profile.display_name = profile.effective_display_name();
    }
    tx.record(
        AggregateKind::User,
        &user_id,
        org_id,
        Event::HumanAdded { username: username.clone(), profile },
    );
    tx.commit.claims.push(user_id_claim(&user_id));
    tx.commit.claims.push(username_claim(&username));
    Ok(user_id)
}

/// CreateUser with a machine, decided in the loaded organization.
fn decide_add_machine(
    caller: &Caller,
    org: &OrgView,
    m: &NewMachine,
    user_id: String,
    now: Timestamp,
) -> Result<Tx> {
    const MSG: &str = "CreateUserRequest";
    validate::runes_between("Machine", "Name", &m.profile.name, 1, 200)
        .map_err(|e| validate::embedded(MSG, "Machine", e))?;
    validate::runes_at_most("Machine", "Description", &m.profile.description, 500)
        .map_err(|e| validate::embedded(MSG, "Machine", e))?;
    if let Some(id) = &m.user_id {
        validate::runes_between(MSG, "UserId", id, 1, 200)?;
    }
    if let Some(u) = &m.username {
        validate::runes_between(MSG, "Username", u, 1, 200)?;
    }
    let username = m.username.clone().unwrap_or_else(|| user_id.clone());
    let mut tx = Tx::new(now, caller.user_id());
    let ev = Event::MachineAdded { username: username.clone(), profile: m.profile.clone() };
    tx.record(AggregateKind::User, &user_id, &org.id, ev);
    tx.commit.claims.push(user_id_claim(&user_id));
    tx.commit.claims.push(username_claim(&username));
    Ok(tx)
}

/// DeactivateUser / DeleteUser, decided on the loaded user (and for a deletion its passkeys,
/// which the deletion removes).
fn decide_state_change(
    caller: &Caller,
    user: &UserView,
    passkeys: Vec<PasskeyView>,
    permission: &str,
    event: Event,
    now: Timestamp,
) -> Result<Tx> {
    require_in(caller.memberships(), permission, &user.org_id, user_not_found)?;
    if matches!(event, Event::UserDeactivated {}) && user.state == UserState::Inactive {
        return Err(Error::new(Kind::FailedPrecondition, "COMMAND-5M0sd", "Errors.User.AlreadyInactive"));
    }
    let removed = matches!(event, Event::UserRemoved {});
    let mut tx = Tx::on_user(now, caller.user_id(), user);
    tx.load_passkeys(passkeys);
    tx.record_user(&user.id, event);
    if removed {
        // The username may be used again; the id stays taken.
        tx.commit.released.push(("username", user.username.to_lowercase()));
    }
    Ok(tx)
}

/// The id of a new user: the request's, or a fresh one.
fn new_user_id(app: &App, requested: Option<&String>) -> String {
    requested.cloned().unwrap_or_else(|| app.next_id())
}

impl App {
    /// Load the organization a new user goes to, after the caller's `user.write` checks.
    async fn target_org_for_new_user(&self, caller: &Caller, org_id: Option<&str>) -> Result<OrgView> {
        let ms = caller.memberships();
        require_somewhere(ms, perm::USER_WRITE)?;
        let org_id = org_id.filter(|o| !o.is_empty()).unwrap_or(&caller.context_org);
        require_in(ms, perm::USER_WRITE, org_id, org_not_found)?;
        self.deps.store.org(org_id).await?.ok_or_else(org_not_found)
    }

    /// AddHumanUser (v2beta, v2) and CreateUser with a human.
    pub async fn add_human(&self, caller: &Caller, h: NewHuman) -> Result<UserCreated> {
        let org = self.target_org_for_new_user(caller, h.org_id.as_deref()).await?;
        let mut tx = Tx::new(self.now(), caller.user_id());
        let user_id = record_new_human(&mut tx, &h, &org.id, new_user_id(self, h.user_id.as_ref()))?;
        let details = tx.details(AggregateKind::User, &user_id, true);
        self.deps.store.commit(tx.into_commit()).await?;
        Ok(UserCreated { user_id, details })
    }

    /// CreateUser with a machine.
    pub async fn add_machine(&self, caller: &Caller, m: NewMachine) -> Result<UserCreated> {
        validate::runes_between("CreateUserRequest", "OrganizationId", &m.org_id, 1, 200)?;
        let org = self.target_org_for_new_user(caller, Some(&m.org_id)).await?;
        let user_id = new_user_id(self, m.user_id.as_ref());
        let tx = decide_add_machine(caller, &org, &m, user_id.clone(), self.now())?;
        let details = tx.details(AggregateKind::User, &user_id, true);
        self.deps.store.commit(tx.into_commit()).await?;
        Ok(UserCreated { user_id, details })
    }

    /// GetUserByID: the user itself, or a caller with `user.read` in the user's organization.
    pub async fn get_user(&self, caller: &Caller, user_id: &str) -> Result<UserRead> {
        let ms = caller.memberships();
        let is_self = caller.user_id() == user_id;
        if !is_self {
            require_somewhere(ms, perm::USER_READ)?;
        }
        validate::runes_between("GetUserByIDRequest", "UserId", user_id, 1, 200)?;
        let user = self.visible_user(user_id).await?;
        if !is_self {
            require_in(ms, perm::USER_READ, &user.org_id, user_not_found)?;
        }
        let details = Details {
            sequence: user.sequence,
            change_date: user.changed_at,
            resource_owner: user.org_id.clone(),
            creation_date: Some(user.created_at),
        };
        Ok(UserRead { user, details })
    }

    /// DeactivateUser.
    pub async fn deactivate_user(&self, caller: &Caller, user_id: &str) -> Result<Details> {
        self.change_user_state(
            caller,
            user_id,
            perm::USER_WRITE,
            "DeactivateUserRequest",
            Event::UserDeactivated {},
        )
        .await
    }

    /// DeleteUser: the user, its tokens and its codes stop working at once.
    pub async fn delete_user(&self, caller: &Caller, user_id: &str) -> Result<Details> {
        self.change_user_state(caller, user_id, perm::USER_DELETE, "DeleteUserRequest", Event::UserRemoved {})
            .await
    }

    async fn change_user_state(
        &self,
        caller: &Caller,
        user_id: &str,
        permission: &str,
        msg: &str,
        event: Event,
    ) -> Result<Details> {
        require_somewhere(caller.memberships(), permission)?;
        validate::runes_between(msg, "UserId", user_id, 1, 200)?;
        let _lock = self.lock_aggregate(user_id).await;
        let details = retry!(self, async {
            let user = self.visible_user(user_id).await?;
            let passkeys = match event {
                Event::UserRemoved {} => self.deps.store.passkeys_of(user_id).await?,
                _ => Vec::new(),
            };
            let tx = decide_state_change(caller, &user, passkeys, permission, event.clone(), self.now())?;
            let details = tx.user_details(user_id);
            self.deps.store.commit(tx.into_commit()).await?;
            Ok(details)
        })?;
        self.forget_principals();
        Ok(details)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NOW, caller, human, org};
    use super::*;
    use crate::view::{Change, Scope};

    fn org_a() -> OrgView {
        OrgView { id: "A".into(), name: "a".into(), sequence: 1, created_at: NOW, changed_at: NOW }
    }

    #[test]
    fn a_new_human_gets_a_display_name_and_claims() {
        let mut tx = Tx::new(NOW, "caller");
        let h = NewHuman {
            profile: HumanProfile {
                given_name: "Ada".into(),
                family_name: "Lovelace".into(),
                email: "ada@example.com".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(record_new_human(&mut tx, &h, "A", "9".into()).unwrap(), "9");
        let c = tx.into_commit();
        assert!(matches!(&c.changes[..], [Change::User(u)] if u.username == "ada@example.com"
            && u.human().map(|h| h.display_name.as_str()) == Some("Ada Lovelace")));
        assert_eq!(
            c.claims.iter().map(|c| c.value.as_str()).collect::<Vec<_>>(),
            vec!["9", "ada@example.com"]
        );
        let mut tx = Tx::new(NOW, "caller");
        let bad = NewHuman { profile: HumanProfile { given_name: "Ada".into(), ..Default::default() }, ..h };
        assert_eq!(
            record_new_human(&mut tx, &bad, "A", "9".into()).err().map(|e| e.kind),
            Some(Kind::InvalidArgument)
        );
    }

    #[test]
    fn a_machine_defaults_its_username_to_its_id() {
        let m = NewMachine {
            org_id: "A".into(),
            profile: MachineProfile { name: "svc".into(), ..Default::default() },
            ..Default::default()
        };
        let c = decide_add_machine(&caller(Scope::Instance, "IAM_OWNER"), &org_a(), &m, "7".into(), NOW)
            .unwrap()
            .into_commit();
        assert!(
            matches!(&c.changes[..], [Change::User(u)] if u.id == "7" && u.username == "7" && u.org_id == "A")
        );
    }

    #[test]
    fn deactivate_and_delete() {
        let owner = caller(org("A"), "ORG_OWNER");
        let user = human("u", "A");
        let tx =
            decide_state_change(&owner, &user, Vec::new(), perm::USER_WRITE, Event::UserDeactivated {}, NOW)
                .unwrap();
        let c = tx.into_commit();
        let Some(Change::User(inactive)) = c.changes.first() else { panic!("no user change") };
        assert_eq!((inactive.state, inactive.sequence), (UserState::Inactive, 2));
        let again = decide_state_change(
            &owner,
            inactive,
            Vec::new(),
            perm::USER_WRITE,
            Event::UserDeactivated {},
            NOW,
        );
        assert_eq!(again.err().map(|e| e.id), Some("COMMAND-5M0sd"));
        let c = decide_state_change(&owner, &user, Vec::new(), perm::USER_DELETE, Event::UserRemoved {}, NOW)
            .unwrap()
            .into_commit();
        assert_eq!(c.released, vec![("username", "u@example.com".to_string())]);
        let other = caller(org("B"), "ORG_OWNER");
        let e = decide_state_change(&other, &user, Vec::new(), perm::USER_DELETE, Event::UserRemoved {}, NOW)
            .err();
        assert_eq!(e.map(|e| e.id), Some("COMMAND-M9dsd"));
    }
}
