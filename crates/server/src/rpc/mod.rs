//! The RPC handlers, one async function per RPC: `(app, caller, request) → Result<response>`,
//! and [`table`], the one list of every RPC served (over REST where the protos bind it, and over
//! gRPC, gRPC-web and Connect).
//!
//! - [`user`] serves zitadel.user.{v2beta,v2}.UserService (the shared RPCs written once);
//! - [`org_v2`] serves zitadel.org.v2.OrganizationService;
//! - [`session_v2`] serves zitadel.session.v2.SessionService (sign-in sessions);
//! - [`permission_v2beta`] serves zitadel.internal_permission.v2beta.InternalPermissionService;
//! - [`lookups`] serves the list RPCs a login UI calls (ListUsers, ListAuthenticationMethodTypes,
//!   ListOrganizations); [`settings_v2`] serves zitadel.settings.v2.SettingsService;
//! - [`project_v2`] serves zitadel.project.v2.ProjectService and [`apps_v2`]
//!   zitadel.application.v2.ApplicationService, its keys in [`app_keys_v2`] (Connect/gRPC only,
//!   as ZITADEL);
//! - [`oidc_v2`] serves zitadel.oidc.v2.OIDCService (custom login UIs);
//! - [`enrollment_v1`] serves passlink.enrollment.v1.EnrollmentService, passlink's own RPCs;
//!   [`enrollment_bulk`] its CreateRegistrationLinks (bulk enrollment);
//!   [`admin_v1`] serves passlink.admin.v1.AdminService (GetStatus, for operators).

use std::sync::Arc;

use crate::api::{Method, limited, rpc};

pub mod admin_v1;
pub mod app_keys_v2;
pub mod apps_v2;
pub mod enrollment_v1;
// Bulk enrollment (CreateRegistrationLinks), beside enrollment_v1.
pub mod enrollment_bulk;
pub mod lookups;
pub mod oidc_v2;
pub mod org_v2;
pub mod permission_v2beta;
pub mod project_v2;
pub mod session_v2;
pub mod settings_v2;
pub mod user;

/// Every RPC: its path and its handler (whose caller type says whether it needs a token); code
/// redemption and session checks are rate limited on the targets they name ([`limited`]).
pub fn table() -> Vec<(&'static str, Arc<dyn Method>)> {
    use user::{v2, v2beta};
    vec![
        rpc("zitadel.user.v2beta.UserService/AddHumanUser", v2beta::add_human_user),
        rpc("zitadel.user.v2beta.UserService/GetUserByID", v2beta::get_user_by_id),
        rpc("zitadel.user.v2beta.UserService/DeactivateUser", v2beta::deactivate_user),
        rpc("zitadel.user.v2beta.UserService/DeleteUser", v2beta::delete_user),
        rpc(
            "zitadel.user.v2beta.UserService/CreatePasskeyRegistrationLink",
            v2beta::create_passkey_registration_link,
        ),
        limited(
            "zitadel.user.v2beta.UserService/RegisterPasskey",
            v2beta::register_passkey,
            v2beta::register_passkey_targets,
        ),
        limited(
            "zitadel.user.v2beta.UserService/VerifyPasskeyRegistration",
            v2beta::verify_passkey_registration,
            v2beta::verify_passkey_registration_targets,
        ),
        rpc("zitadel.user.v2.UserService/AddHumanUser", v2::add_human_user),
        rpc("zitadel.user.v2.UserService/CreateUser", v2::create_user),
        rpc("zitadel.user.v2.UserService/GetUserByID", v2::get_user_by_id),
        rpc("zitadel.user.v2.UserService/DeactivateUser", v2::deactivate_user),
        rpc("zitadel.user.v2.UserService/DeleteUser", v2::delete_user),
        rpc("zitadel.user.v2.UserService/AddPersonalAccessToken", v2::add_personal_access_token),
        rpc(
            "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink",
            v2::create_passkey_registration_link,
        ),
        limited(
            "zitadel.user.v2.UserService/RegisterPasskey",
            v2::register_passkey,
            v2::register_passkey_targets,
        ),
        limited(
            "zitadel.user.v2.UserService/VerifyPasskeyRegistration",
            v2::verify_passkey_registration,
            v2::verify_passkey_registration_targets,
        ),
        rpc("zitadel.user.v2.UserService/ListPasskeys", v2::list_passkeys),
        rpc("zitadel.user.v2.UserService/RemovePasskey", v2::remove_passkey),
        rpc("passlink.enrollment.v1.EnrollmentService/ListPasskeys", enrollment_v1::list_passkeys),
        rpc(
            "passlink.enrollment.v1.EnrollmentService/RevokeRegistrationCodes",
            enrollment_v1::revoke_registration_codes,
        ),
        // Bulk enrollment.
        rpc(
            "passlink.enrollment.v1.EnrollmentService/CreateRegistrationLinks",
            enrollment_bulk::create_registration_links,
        ),
        rpc("passlink.admin.v1.AdminService/GetStatus", admin_v1::get_status),
        rpc("zitadel.user.v2.UserService/AddSecret", v2::add_secret),
        rpc("zitadel.user.v2.UserService/AddKey", v2::add_key),
        rpc("zitadel.org.v2.OrganizationService/AddOrganization", org_v2::add_organization),
        rpc(
            "zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
            permission_v2beta::create_administrator,
        ),
        limited(
            "zitadel.session.v2.SessionService/CreateSession",
            session_v2::create_session,
            session_v2::create_session_targets,
        ),
        limited(
            "zitadel.session.v2.SessionService/SetSession",
            session_v2::set_session,
            session_v2::set_session_targets,
        ),
        rpc("zitadel.session.v2.SessionService/GetSession", session_v2::get_session),
        rpc("zitadel.session.v2.SessionService/ListSessions", session_v2::list_sessions),
        rpc("zitadel.session.v2.SessionService/DeleteSession", session_v2::delete_session),
        // Lookups a login UI makes before a sign-in.
        rpc("zitadel.user.v2.UserService/ListUsers", lookups::list_users),
        rpc(
            "zitadel.user.v2.UserService/ListAuthenticationMethodTypes",
            lookups::list_authentication_method_types,
        ),
        rpc("zitadel.org.v2.OrganizationService/ListOrganizations", lookups::list_organizations),
        rpc("zitadel.settings.v2.SettingsService/GetLoginSettings", settings_v2::get_login_settings),
        rpc("zitadel.settings.v2.SettingsService/GetBrandingSettings", settings_v2::get_branding_settings),
        rpc("zitadel.settings.v2.SettingsService/GetSecuritySettings", settings_v2::get_security_settings),
        rpc(
            "zitadel.settings.v2.SettingsService/GetActiveIdentityProviders",
            settings_v2::get_active_identity_providers,
        ),
        rpc(
            "zitadel.settings.v2.SettingsService/GetHostedLoginTranslation",
            settings_v2::get_hosted_login_translation,
        ),
        // OpenID Connect: projects, applications, and finishing authorization requests.
        rpc("zitadel.project.v2.ProjectService/CreateProject", project_v2::create_project),
        rpc("zitadel.project.v2.ProjectService/UpdateProject", project_v2::update_project),
        rpc("zitadel.project.v2.ProjectService/DeleteProject", project_v2::delete_project),
        rpc("zitadel.project.v2.ProjectService/GetProject", project_v2::get_project),
        rpc("zitadel.project.v2.ProjectService/ListProjects", project_v2::list_projects),
        rpc("zitadel.project.v2.ProjectService/DeactivateProject", project_v2::deactivate_project),
        rpc("zitadel.project.v2.ProjectService/ActivateProject", project_v2::activate_project),
        rpc("zitadel.application.v2.ApplicationService/CreateApplication", apps_v2::create_application),
        rpc("zitadel.application.v2.ApplicationService/UpdateApplication", apps_v2::update_application),
        rpc("zitadel.application.v2.ApplicationService/GetApplication", apps_v2::get_application),
        rpc("zitadel.application.v2.ApplicationService/DeleteApplication", apps_v2::delete_application),
        rpc(
            "zitadel.application.v2.ApplicationService/DeactivateApplication",
            apps_v2::deactivate_application,
        ),
        rpc(
            "zitadel.application.v2.ApplicationService/ReactivateApplication",
            apps_v2::reactivate_application,
        ),
        rpc(
            "zitadel.application.v2.ApplicationService/GenerateClientSecret",
            apps_v2::generate_client_secret,
        ),
        rpc("zitadel.application.v2.ApplicationService/ListApplications", apps_v2::list_applications),
        rpc(
            "zitadel.application.v2.ApplicationService/CreateApplicationKey",
            app_keys_v2::create_application_key,
        ),
        rpc(
            "zitadel.application.v2.ApplicationService/DeleteApplicationKey",
            app_keys_v2::delete_application_key,
        ),
        rpc("zitadel.application.v2.ApplicationService/GetApplicationKey", app_keys_v2::get_application_key),
        rpc(
            "zitadel.application.v2.ApplicationService/ListApplicationKeys",
            app_keys_v2::list_application_keys,
        ),
        rpc("zitadel.oidc.v2.OIDCService/GetAuthRequest", oidc_v2::get_auth_request),
        rpc("zitadel.oidc.v2.OIDCService/CreateCallback", oidc_v2::create_callback),
    ]
}

/// RPCs of the vendored services passlink does not serve (Connect/gRPC answer Unimplemented,
/// REST 404): the device authorization flow, custom hosted-login texts.
pub const NOT_SERVED: &[&str] = &[
    "zitadel.settings.v2.SettingsService/SetHostedLoginTranslation",
    "zitadel.oidc.v2.OIDCService/GetDeviceAuthorizationRequest",
    "zitadel.oidc.v2.OIDCService/AuthorizeOrDenyDeviceAuthorization",
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_rest_binding_has_a_handler_and_every_path_is_listed_once() {
        let table = table();
        let paths: HashSet<&str> = table.iter().map(|(p, _)| *p).collect();
        assert_eq!(paths.len(), table.len(), "a path is listed twice");
        for (_, _, rpc, _) in passlink_wire::REST_ROUTES {
            assert!(
                paths.contains(rpc) || NOT_SERVED.contains(rpc),
                "{rpc} is bound to REST but has no handler"
            );
        }
    }
}
