//! Registration codes presented back: the check every use of a code goes through (a wrong value
//! is recorded, three lock the code), and the hosted page's "who is enrolling" look-up.
//!
//! Every refusal answers `COMMAND-Eeb2a` (DESIGN 2.4); the precise reason goes to the log.

use super::tx::Tx;
use super::{App, Caller, unauthenticated, user_not_found};
use crate::code::{CodeView, Rejection, invalid_code_error};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::permission::{require_in, require_somewhere};
use crate::secret::Secret;
use crate::time::Timestamp;
use crate::validate;
use crate::view::UserView;

/// Who a registration link enrolls (for the hosted page).
#[derive(Debug, Clone)]
pub struct RegistrationInfo {
    pub display_name: String,
    pub login_name: String,
    /// The profile's `preferredLanguage` (a language tag, or empty), for the page's language.
    pub preferred_language: String,
}

/// A refused code: the error, and for a wrong value the `check.failed` to record first.
#[derive(Debug)]
pub(super) struct Refused {
    pub error: Error,
    pub record: Option<Tx>,
}

/// Check a presented code (`matches`: did its value match the stored hash) for `user` at `now`.
pub(super) fn decide_check(
    user: &UserView,
    code: Option<CodeView>,
    matches: bool,
    now: Timestamp,
) -> std::result::Result<CodeView, Box<Refused>> {
    let Some(code) = code else {
        return Err(Box::new(Refused { error: invalid_code_error(Rejection::Unknown), record: None }));
    };
    match code.check(&user.id, now, matches) {
        Ok(()) => Ok(code),
        Err(reason) => {
            let record = (reason == Rejection::Wrong).then(|| {
                let mut tx = Tx::on_user(now, "", user);
                let id = code.id.clone();
                tx.load_code(code);
                tx.record_user(&user.id, Event::PasskeyCodeCheckFailed { id });
                tx
            });
            Err(Box::new(Refused { error: invalid_code_error(reason), record }))
        }
    }
}

/// Self-service, or `permission` in the user's organization (else 403/404 by the rule).
pub(super) fn authorize_on_user(caller: Option<&Caller>, user: &UserView, permission: &str) -> Result<()> {
    let caller = caller.ok_or_else(unauthenticated)?;
    if caller.user_id() == user.id {
        return Ok(());
    }
    require_somewhere(caller.memberships(), permission)?;
    require_in(caller.memberships(), permission, &user.org_id, user_not_found)
}

impl App {
    /// Check a presented code for `user`. A wrong value for this user's code is recorded
    /// (`check.failed`, three lock the code); every refusal answers `COMMAND-Eeb2a`.
    pub(super) async fn check_code(&self, user: &UserView, code_id: &str, code: &Secret) -> Result<CodeView> {
        let view = self.deps.store.code(code_id).await?;
        let matches = view
            .as_ref()
            .is_some_and(|v| self.deps.keys.code_matches(code_id, code, &crate::hex::decode(&v.code_hash)));
        match decide_check(user, view, matches, self.now()) {
            Ok(view) => Ok(view),
            Err(refused) => {
                let Refused { error, record } = *refused;
                if let Some(tx) = record {
                    self.deps.store.commit(tx.into_commit()).await?;
                }
                Err(error)
            }
        }
    }

    /// The hosted page's look-up: who does this link enroll? Checks (and counts) the code.
    pub async fn registration_info(
        &self,
        user_id: &str,
        code_id: &str,
        code: &Secret,
    ) -> Result<RegistrationInfo> {
        validate::runes_between("RegistrationInfo", "UserId", user_id, 1, 200)?;
        let _lock = self.lock_aggregate(user_id).await;
        let user = self.visible_user(user_id).await?;
        self.check_code(&user, code_id, code).await?;
        let human = user.human().ok_or_else(user_not_found)?;
        Ok(RegistrationInfo {
            display_name: human.effective_display_name(),
            login_name: user.username.clone(),
            preferred_language: human.preferred_language.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{self, NOW, caller, human, org};
    use super::*;
    use crate::code::CodeState;
    use crate::permission as perm;
    use crate::view::{Change, Scope};

    fn code(user: &str, state: CodeState, failed: u32) -> CodeView {
        CodeView { state, failed_checks: failed, ..testing::code("c1", user, None) }
    }

    #[test]
    fn a_matching_active_code_passes() {
        let v = decide_check(&human("u", "A"), Some(code("u", CodeState::Active, 0)), true, NOW);
        assert_eq!(v.ok().map(|c| c.id), Some("c1".into()));
    }

    #[test]
    fn a_wrong_value_is_recorded_and_the_third_locks() {
        let Err(r) = decide_check(&human("u", "A"), Some(code("u", CodeState::Active, 2)), false, NOW) else {
            panic!("accepted a wrong code")
        };
        assert_eq!(r.error.id, "COMMAND-Eeb2a");
        let c = r.record.unwrap().into_commit();
        assert_eq!(c.events[0].event, Event::PasskeyCodeCheckFailed { id: "c1".into() });
        assert!(c.changes.iter().any(|ch| matches!(ch, Change::Code(c) if c.state == CodeState::Locked)));
    }

    #[test]
    fn other_refusals_record_nothing() {
        let u = human("u", "A");
        for (view, matches) in [
            (None, true),
            (Some(code("v", CodeState::Active, 0)), true),
            (Some(code("u", CodeState::Requested, 0)), true),
            (Some(code("u", CodeState::Consumed, 0)), true),
        ] {
            let Err(r) = decide_check(&u, view, matches, NOW) else { panic!("accepted") };
            assert_eq!(r.error.id, "COMMAND-Eeb2a");
            assert!(r.record.is_none());
        }
        let expired = decide_check(
            &u,
            Some(code("u", CodeState::Active, 0)),
            true,
            NOW.plus(std::time::Duration::from_secs(3600)),
        );
        assert!(expired.is_err());
    }

    #[test]
    fn self_service_or_permission_in_the_users_org() {
        let u = human("caller", "A");
        assert!(authorize_on_user(Some(&caller(Scope::Instance, "")), &u, perm::USER_READ).is_ok());
        let other = human("u", "A");
        assert_eq!(authorize_on_user(None, &other, perm::USER_READ).err().map(|e| e.id), Some("AUTH-7fs1e"));
        let e = authorize_on_user(Some(&caller(org("B"), "ORG_OWNER")), &other, perm::USER_READ).err();
        assert_eq!(e.map(|e| e.id), Some("COMMAND-M9dsd"));
        let e = authorize_on_user(Some(&caller(Scope::Instance, "")), &other, perm::USER_READ).err();
        assert_eq!(e.map(|e| e.id), Some("AUTH-5mWD2"));
    }
}
