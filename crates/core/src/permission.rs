//! Roles, permissions and the authorization rule (DESIGN section 2.2).
//!
//! Roles map to permissions as in ZITADEL's defaults. A permission is checked **in the target's
//! organization** (or instance-wide): a caller who holds it nowhere gets 403; a caller who holds it
//! only in other organizations gets 404, because the target is not visible to them.

use crate::error::{Error, Kind};
use crate::view::{Membership, Scope};

pub const USER_PASSKEY_WRITE: &str = "user.passkey.write";
pub const USER_CREDENTIAL_WRITE: &str = "user.credential.write";
pub const USER_WRITE: &str = "user.write";
pub const USER_READ: &str = "user.read";
pub const USER_DELETE: &str = "user.delete";
pub const ORG_CREATE: &str = "org.create";
pub const ORG_MEMBER_WRITE: &str = "org.member.write";
pub const IAM_MEMBER_WRITE: &str = "iam.member.write";
pub const SESSION_READ: &str = "session.read";
pub const SESSION_WRITE: &str = "session.write";
pub const SESSION_DELETE: &str = "session.delete";
pub const ORG_READ: &str = "org.read";
pub const POLICY_READ: &str = "policy.read";
pub const IAM_POLICY_READ: &str = "iam.policy.read";
/// Read the instance itself (ZITADEL: IAM_OWNER and IAM_OWNER_VIEWER); passlink's GetStatus.
pub const IAM_READ: &str = "iam.read";
pub const PROJECT_CREATE: &str = "project.create";
pub const PROJECT_WRITE: &str = "project.write";
pub const PROJECT_READ: &str = "project.read";
pub const PROJECT_DELETE: &str = "project.delete";
pub const PROJECT_APP_WRITE: &str = "project.app.write";
pub const PROJECT_APP_READ: &str = "project.app.read";
pub const PROJECT_APP_DELETE: &str = "project.app.delete";
/// Finish an OIDC authorization request with a session (OIDCService CreateCallback).
pub const SESSION_LINK: &str = "session.link";

/// Roles that can be granted on the instance.
pub const INSTANCE_ROLES: &[&str] =
    &["IAM_OWNER", "IAM_OWNER_VIEWER", "IAM_ORG_MANAGER", "IAM_USER_MANAGER", "IAM_LOGIN_CLIENT"];

/// Roles that can be granted on an organization.
pub const ORG_ROLES: &[&str] = &["ORG_OWNER", "ORG_OWNER_VIEWER", "ORG_USER_MANAGER"];

/// The permissions a role grants.
pub fn permissions_of(role: &str) -> &'static [&'static str] {
    match role {
        "IAM_OWNER" => &[
            USER_PASSKEY_WRITE,
            USER_CREDENTIAL_WRITE,
            USER_WRITE,
            USER_READ,
            USER_DELETE,
            ORG_CREATE,
            ORG_MEMBER_WRITE,
            IAM_MEMBER_WRITE,
            IAM_READ,
            SESSION_READ,
            SESSION_WRITE,
            SESSION_DELETE,
            SESSION_LINK,
            ORG_READ,
            POLICY_READ,
            IAM_POLICY_READ,
            PROJECT_CREATE,
            PROJECT_WRITE,
            PROJECT_READ,
            PROJECT_DELETE,
            PROJECT_APP_WRITE,
            PROJECT_APP_READ,
            PROJECT_APP_DELETE,
        ],
        "IAM_ORG_MANAGER" => &[
            USER_PASSKEY_WRITE,
            USER_CREDENTIAL_WRITE,
            USER_WRITE,
            USER_READ,
            USER_DELETE,
            ORG_CREATE,
            ORG_MEMBER_WRITE,
            ORG_READ,
            POLICY_READ,
        ],
        "IAM_USER_MANAGER" => &[USER_PASSKEY_WRITE, USER_WRITE, USER_READ, USER_DELETE, ORG_READ],
        "IAM_LOGIN_CLIENT" => &[
            USER_PASSKEY_WRITE,
            USER_CREDENTIAL_WRITE,
            USER_WRITE,
            USER_READ,
            SESSION_READ,
            SESSION_WRITE,
            SESSION_DELETE,
            SESSION_LINK,
            ORG_READ,
            POLICY_READ,
            IAM_POLICY_READ,
        ],
        "IAM_OWNER_VIEWER" => {
            &[USER_READ, ORG_READ, POLICY_READ, IAM_POLICY_READ, IAM_READ, PROJECT_READ, PROJECT_APP_READ]
        }
        "ORG_OWNER_VIEWER" => &[USER_READ, ORG_READ, POLICY_READ, PROJECT_READ, PROJECT_APP_READ],
        "ORG_OWNER" => &[
            USER_PASSKEY_WRITE,
            USER_CREDENTIAL_WRITE,
            USER_WRITE,
            USER_READ,
            USER_DELETE,
            ORG_MEMBER_WRITE,
            ORG_READ,
            POLICY_READ,
            PROJECT_CREATE,
            PROJECT_WRITE,
            PROJECT_READ,
            PROJECT_DELETE,
            PROJECT_APP_WRITE,
            PROJECT_APP_READ,
            PROJECT_APP_DELETE,
        ],
        "ORG_USER_MANAGER" => &[USER_WRITE, USER_READ, USER_DELETE, ORG_READ, POLICY_READ],
        _ => &[],
    }
}

fn grants(m: &Membership, permission: &str) -> bool {
    m.roles.iter().any(|r| permissions_of(r).contains(&permission))
}

/// Does any membership grant `permission`, anywhere?
pub fn holds_anywhere(memberships: &[Membership], permission: &str) -> bool {
    memberships.iter().any(|m| grants(m, permission))
}

/// Does a membership grant `permission` instance-wide or in `org_id`?
pub fn holds_in(memberships: &[Membership], permission: &str, org_id: &str) -> bool {
    memberships.iter().any(|m| {
        grants(m, permission)
            && match &m.scope {
                Scope::Instance => true,
                Scope::Org(o) => o == org_id,
            }
    })
}

/// Does a membership on the instance itself grant `permission`?
pub fn holds_instance_wide(memberships: &[Membership], permission: &str) -> bool {
    memberships.iter().any(|m| m.scope == Scope::Instance && grants(m, permission))
}

/// The caller holds `permission` nowhere: 403.
pub fn denied() -> Error {
    Error::new(Kind::PermissionDenied, "AUTH-5mWD2", "Errors.Permission.Missing")
}

/// First gate, before the request is looked at: 403 unless the permission is held somewhere.
pub fn require_somewhere(memberships: &[Membership], permission: &str) -> Result<(), Error> {
    if holds_anywhere(memberships, permission) { Ok(()) } else { Err(denied()) }
}

/// Second gate, once the target's organization is known: `Err(hidden)` (the target's own
/// not-found error) unless the permission is held there or instance-wide.
pub fn require_in(
    memberships: &[Membership],
    permission: &str,
    org_id: &str,
    hidden: impl FnOnce() -> Error,
) -> Result<(), Error> {
    if holds_in(memberships, permission, org_id) { Ok(()) } else { Err(hidden()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn m(scope: Scope, role: &str) -> Membership {
        Membership { user_id: "caller".into(), scope, roles: vec![role.into()], created_at: Timestamp(0) }
    }

    fn org(id: &str) -> Scope {
        Scope::Org(id.into())
    }

    /// The matrix of DESIGN 2.2 for `user.passkey.write`, target user in org "A".
    #[test]
    fn passkey_write_matrix() {
        // (memberships, expected: Ok / 403 / 404)
        let cases: Vec<(&str, Vec<Membership>, Option<Kind>)> = vec![
            ("IAM_OWNER instance-wide", vec![m(Scope::Instance, "IAM_OWNER")], None),
            ("IAM_ORG_MANAGER", vec![m(Scope::Instance, "IAM_ORG_MANAGER")], None),
            ("IAM_USER_MANAGER", vec![m(Scope::Instance, "IAM_USER_MANAGER")], None),
            ("IAM_LOGIN_CLIENT", vec![m(Scope::Instance, "IAM_LOGIN_CLIENT")], None),
            ("ORG_OWNER own org", vec![m(org("A"), "ORG_OWNER")], None),
            ("ORG_OWNER other org", vec![m(org("B"), "ORG_OWNER")], Some(Kind::NotFound)),
            ("ORG_USER_MANAGER own org", vec![m(org("A"), "ORG_USER_MANAGER")], Some(Kind::PermissionDenied)),
            ("IAM_OWNER_VIEWER", vec![m(Scope::Instance, "IAM_OWNER_VIEWER")], Some(Kind::PermissionDenied)),
            ("no memberships", vec![], Some(Kind::PermissionDenied)),
            ("unknown role", vec![m(org("A"), "PROJECT_OWNER")], Some(Kind::PermissionDenied)),
            (
                "ORG_OWNER elsewhere + ORG_USER_MANAGER here",
                vec![m(org("B"), "ORG_OWNER"), m(org("A"), "ORG_USER_MANAGER")],
                Some(Kind::NotFound),
            ),
        ];
        for (name, ms, want) in cases {
            let got = require_somewhere(&ms, USER_PASSKEY_WRITE).and_then(|()| {
                require_in(&ms, USER_PASSKEY_WRITE, "A", || {
                    Error::new(Kind::NotFound, "COMMAND-M9dsd", "Errors.User.NotFound")
                })
            });
            assert_eq!(got.err().map(|e| e.kind), want, "{name}");
        }
    }

    /// The read permissions of the lookup RPCs, as ZITADEL's default role mappings give them.
    #[test]
    fn lookup_read_permissions_follow_zitadels_defaults() {
        let holds = |role: &str, p: &str| permissions_of(role).contains(&p);
        for role in INSTANCE_ROLES.iter().chain(ORG_ROLES) {
            assert!(holds(role, USER_READ) && holds(role, ORG_READ), "{role}");
        }
        for role in ["IAM_OWNER", "IAM_OWNER_VIEWER", "IAM_LOGIN_CLIENT"] {
            assert!(holds(role, IAM_POLICY_READ) && holds(role, POLICY_READ), "{role}");
        }
        for role in ["IAM_ORG_MANAGER", "ORG_OWNER", "ORG_OWNER_VIEWER", "ORG_USER_MANAGER"] {
            assert!(holds(role, POLICY_READ) && !holds(role, IAM_POLICY_READ), "{role}");
        }
        assert!(!holds("IAM_USER_MANAGER", POLICY_READ), "ZITADEL gives IAM_USER_MANAGER no policy.read");
    }

    /// `iam.read` (GetStatus): the instance owners and viewers only, as in ZITADEL.
    #[test]
    fn iam_read_is_held_by_instance_owners_and_viewers_only() {
        for role in INSTANCE_ROLES.iter().chain(ORG_ROLES) {
            let expected = matches!(*role, "IAM_OWNER" | "IAM_OWNER_VIEWER");
            assert_eq!(permissions_of(role).contains(&IAM_READ), expected, "{role}");
        }
    }

    #[test]
    fn denied_is_zitadels_error() {
        assert_eq!(denied().message(), "No matching permissions found (AUTH-5mWD2)");
    }

    #[test]
    fn org_user_manager_can_write_users_but_not_passkeys() {
        let ms = vec![m(org("A"), "ORG_USER_MANAGER")];
        assert!(holds_in(&ms, USER_WRITE, "A"));
        assert!(!holds_in(&ms, USER_WRITE, "B"));
        assert!(!holds_anywhere(&ms, USER_PASSKEY_WRITE));
    }

    #[test]
    fn instance_wide_means_a_membership_on_the_instance() {
        assert!(holds_instance_wide(&[m(Scope::Instance, "IAM_ORG_MANAGER")], ORG_CREATE));
        assert!(!holds_instance_wide(&[m(org("A"), "ORG_OWNER")], ORG_MEMBER_WRITE));
        assert!(!holds_instance_wide(&[m(Scope::Instance, "IAM_USER_MANAGER")], ORG_CREATE));
    }
}
