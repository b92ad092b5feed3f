//! The passkey initialization code: a closed state machine (DESIGN section 2.4).
//!
//! ```text
//! requested ──sent──▶ active ──check.succeeded──▶ consumed
//!     │ (returned)      │ ──3 × check.failed──▶ locked
//!     └──────────────▶  └── user.removed, code.revoked ──▶ revoked   (also expiry by time)
//! ```
//!
//! A code is consumed when a passkey is verified with it, not when registration starts; wrong
//! checks are counted and lock the code at [`MAX_FAILED_CHECKS`]. Every rejection looks the same
//! to the client (`COMMAND-Eeb2a` "Code is invalid"); the precise [`Rejection`] goes to the log.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind};
use crate::event::{CodeRequested, Event, Recorded};
use crate::time::Timestamp;

pub const MAX_FAILED_CHECKS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CodeState {
    /// Waiting for delivery; not usable yet.
    Requested,
    /// Usable.
    Active,
    Consumed,
    Locked,
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeView {
    pub id: String,
    pub user_id: String,
    pub org_id: String,
    /// Hex of the keyed hash (see [`crate::keys::ServerKeys::hash_code`]).
    pub code_hash: String,
    pub state: CodeState,
    pub failed_checks: u32,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub url_template: Option<String>,
    pub returned: bool,
    /// The outbox job delivering a sent code (none for returned codes and older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// Why a code was refused. Internal only: the client always sees "Code is invalid".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Unknown,
    OtherUser,
    NotDelivered,
    Expired,
    Consumed,
    Locked,
    Revoked,
    Wrong,
}

impl CodeView {
    pub fn requested(r: &Recorded, c: &CodeRequested) -> CodeView {
        CodeView {
            id: c.id.clone(),
            user_id: r.aggregate_id.clone(),
            org_id: r.resource_owner.clone(),
            code_hash: c.code_hash.clone(),
            // A returned code is in the caller's hands already; a sent one waits for delivery.
            state: if c.code_returned { CodeState::Active } else { CodeState::Requested },
            failed_checks: 0,
            created_at: r.created_at,
            expires_at: r.created_at.plus(std::time::Duration::from_secs(c.expiry_secs)),
            url_template: c.url_template.clone(),
            returned: c.code_returned,
            job_id: c.job_id.clone(),
        }
    }

    /// Fold one event of the owning user's aggregate onto the code.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::PasskeyCodeSent { id } if *id == self.id && self.state == CodeState::Requested => {
                self.state = CodeState::Active;
            }
            Event::PasskeyCodeCheckFailed { id } if *id == self.id => {
                self.failed_checks += 1;
                if self.failed_checks >= MAX_FAILED_CHECKS && self.state == CodeState::Active {
                    self.state = CodeState::Locked;
                }
            }
            Event::PasskeyCodeCheckSucceeded { id } if *id == self.id => {
                self.state = CodeState::Consumed;
            }
            Event::PasskeyCodeRevoked { id, .. } if *id == self.id => self.state = CodeState::Revoked,
            Event::UserRemoved {} => self.state = CodeState::Revoked,
            _ => {}
        }
    }

    /// Is the code outstanding at `now`: requested or usable, not redeemed, locked, revoked or
    /// expired (what RevokeRegistrationCodes revokes)?
    pub fn outstanding(&self, now: Timestamp) -> bool {
        matches!(self.state, CodeState::Requested | CodeState::Active) && now < self.expires_at
    }

    /// May this code be used by `user_id` at `now`, given whether the presented value matched?
    pub fn check(&self, user_id: &str, now: Timestamp, value_matches: bool) -> Result<(), Rejection> {
        if self.user_id != user_id {
            return Err(Rejection::OtherUser);
        }
        match self.state {
            CodeState::Requested => return Err(Rejection::NotDelivered),
            CodeState::Consumed => return Err(Rejection::Consumed),
            CodeState::Locked => return Err(Rejection::Locked),
            CodeState::Revoked => return Err(Rejection::Revoked),
            CodeState::Active => {}
        }
        if now >= self.expires_at {
            return Err(Rejection::Expired);
        }
        if !value_matches {
            return Err(Rejection::Wrong);
        }
        Ok(())
    }
}

/// The one error every code rejection produces on the wire.
pub fn invalid_code_error(reason: Rejection) -> Error {
    Error::new(Kind::InvalidArgument, "COMMAND-Eeb2a", "Errors.User.Code.Invalid")
        .with_cause(format!("{reason:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AggregateKind;
    use std::time::Duration;

    const T0: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

    fn requested(returned: bool) -> CodeView {
        let c = CodeRequested {
            id: "c1".into(),
            code_hash: "h".into(),
            expiry_secs: 3600,
            url_template: None,
            code_returned: returned,
            job_id: None,
            idempotency_key: None,
        };
        let r = Recorded {
            aggregate_kind: AggregateKind::User,
            aggregate_id: "u1".into(),
            sequence: 2,
            created_at: T0,
            resource_owner: "o1".into(),
            creator: "admin".into(),
            event: Event::PasskeyCodeRequested(c.clone()),
        };
        CodeView::requested(&r, &c)
    }

    #[test]
    fn returned_code_is_usable_at_once() {
        let v = requested(true);
        assert_eq!(v.state, CodeState::Active);
        assert_eq!(v.check("u1", T0, true), Ok(()));
    }

    #[test]
    fn sent_code_is_usable_only_after_delivery() {
        let mut v = requested(false);
        assert_eq!(v.check("u1", T0, true), Err(Rejection::NotDelivered));
        v.apply(&Event::PasskeyCodeSent { id: "c1".into() });
        assert_eq!(v.check("u1", T0, true), Ok(()));
    }

    #[test]
    fn events_for_other_codes_are_ignored() {
        let mut v = requested(false);
        v.apply(&Event::PasskeyCodeSent { id: "c2".into() });
        assert_eq!(v.state, CodeState::Requested);
    }

    #[test]
    fn expires_after_its_lifetime() {
        let v = requested(true);
        let later = T0.plus(Duration::from_secs(3599));
        assert_eq!(v.check("u1", later, true), Ok(()));
        assert_eq!(v.check("u1", T0.plus(Duration::from_secs(3600)), true), Err(Rejection::Expired));
    }

    #[test]
    fn three_failed_checks_lock_it() {
        let mut v = requested(true);
        for i in 1..=3 {
            assert_eq!(v.check("u1", T0, false), Err(Rejection::Wrong));
            v.apply(&Event::PasskeyCodeCheckFailed { id: "c1".into() });
            assert_eq!(v.failed_checks, i);
        }
        assert_eq!(v.state, CodeState::Locked);
        assert_eq!(v.check("u1", T0, true), Err(Rejection::Locked));
    }

    #[test]
    fn success_consumes_it_and_user_removal_revokes_it() {
        let mut v = requested(true);
        v.apply(&Event::PasskeyCodeCheckSucceeded { id: "c1".into() });
        assert_eq!(v.check("u1", T0, true), Err(Rejection::Consumed));
        let mut w = requested(true);
        w.apply(&Event::UserRemoved {});
        assert_eq!(w.check("u1", T0, true), Err(Rejection::Revoked));
    }

    #[test]
    fn a_revoked_code_is_refused_and_no_longer_outstanding() {
        let mut v = requested(false);
        assert!(v.outstanding(T0));
        v.apply(&Event::PasskeyCodeRevoked { id: "c2".into(), reason: "r".into() });
        assert_eq!(v.state, CodeState::Requested, "another code's revocation");
        v.apply(&Event::PasskeyCodeRevoked { id: "c1".into(), reason: "r".into() });
        assert_eq!(v.check("u1", T0, true), Err(Rejection::Revoked));
        assert!(!v.outstanding(T0));
        let w = requested(true);
        assert!(!w.outstanding(T0.plus(Duration::from_secs(3600))), "expired");
    }

    #[test]
    fn another_users_code_is_refused() {
        assert_eq!(requested(true).check("u2", T0, true), Err(Rejection::OtherUser));
    }

    #[test]
    fn every_rejection_is_the_same_error_on_the_wire() {
        for r in [Rejection::Unknown, Rejection::Expired, Rejection::Locked, Rejection::Wrong] {
            let e = invalid_code_error(r);
            assert_eq!(e.message(), "Code is invalid (COMMAND-Eeb2a)");
            assert_eq!(e.kind, Kind::InvalidArgument);
        }
    }
}
