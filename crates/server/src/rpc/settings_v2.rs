//! zitadel.settings.v2.SettingsService: the four reads a login UI makes (login, branding and
//! security settings, active identity providers), answered with what passlink is: passkeys
//! only ([`LOGIN_FACTS`]), no external identity providers, nothing embedded or impersonated.
//! The settings are instance-wide (`resourceOwnerType` INSTANCE, `details` the instance's).
//!
//! Permissions as in ZITADEL: `policy.read` (login, branding, identity providers) in the asked
//! organization (`ctx.orgId`, else the caller's), `iam.policy.read` (security).

use std::sync::Arc;

use buffa_types::google::protobuf::Duration;
use passlink_core::app::{App, Caller, LOGIN_FACTS, SettingsContext};
use passlink_core::error::Result;
use passlink_core::permission as perm;
use passlink_wire::zitadel::object::v2 as obj;
use passlink_wire::zitadel::settings::v2 as pb;

use crate::convert::user_v2::details;

fn context(ctx: Option<&obj::RequestContext>) -> SettingsContext {
    use obj::__buffa::oneof::request_context::ResourceOwner;
    match ctx.and_then(|c| c.resource_owner.as_ref()) {
        Some(ResourceOwner::OrgId(o)) if !o.is_empty() => SettingsContext::Org(o.clone()),
        Some(ResourceOwner::Instance(true)) => SettingsContext::Instance,
        _ => SettingsContext::Caller,
    }
}

/// passlink's login settings as ZITADEL's `LoginSettings`.
pub fn login_settings() -> pb::LoginSettings {
    let f = LOGIN_FACTS;
    let passkeys = if f.passkeys_allowed {
        pb::PasskeysType::PASSKEYS_TYPE_ALLOWED
    } else {
        pb::PasskeysType::PASSKEYS_TYPE_NOT_ALLOWED
    };
    pb::LoginSettings {
        allow_username_password: f.allow_username_password,
        allow_register: f.allow_register,
        allow_external_idp: f.allow_external_idp,
        force_mfa: f.force_mfa,
        passkeys_type: passkeys.into(),
        hide_password_reset: f.hide_password_reset,
        ignore_unknown_usernames: f.ignore_unknown_usernames,
        password_check_lifetime: Duration::from_secs(f.password_check_lifetime_secs).into(),
        external_login_check_lifetime: Duration::from_secs(f.external_login_check_lifetime_secs).into(),
        mfa_init_skip_lifetime: Duration::from_secs(f.mfa_init_skip_lifetime_secs).into(),
        second_factor_check_lifetime: Duration::from_secs(f.second_factor_check_lifetime_secs).into(),
        multi_factor_check_lifetime: Duration::from_secs(f.multi_factor_check_lifetime_secs).into(),
        allow_domain_discovery: f.allow_domain_discovery,
        disable_login_with_email: f.disable_login_with_email,
        disable_login_with_phone: f.disable_login_with_phone,
        resource_owner_type: pb::ResourceOwnerType::RESOURCE_OWNER_TYPE_INSTANCE.into(),
        ..Default::default()
    }
}

pub async fn get_login_settings(
    app: Arc<App>,
    caller: Caller,
    req: pb::GetLoginSettingsRequest,
) -> Result<pb::GetLoginSettingsResponse> {
    let d = app.settings(&caller, &context(req.ctx.as_option()), perm::POLICY_READ).await?;
    Ok(pb::GetLoginSettingsResponse {
        details: details(&d).into(),
        settings: login_settings().into(),
        ..Default::default()
    })
}

pub async fn get_branding_settings(
    app: Arc<App>,
    caller: Caller,
    req: pb::GetBrandingSettingsRequest,
) -> Result<pb::GetBrandingSettingsResponse> {
    let d = app.settings(&caller, &context(req.ctx.as_option()), perm::POLICY_READ).await?;
    // No custom branding: the login UI's own defaults apply. Login names carry no org suffix.
    let settings = pb::BrandingSettings {
        hide_login_name_suffix: true,
        resource_owner_type: pb::ResourceOwnerType::RESOURCE_OWNER_TYPE_INSTANCE.into(),
        theme_mode: pb::ThemeMode::THEME_MODE_AUTO.into(),
        ..Default::default()
    };
    Ok(pb::GetBrandingSettingsResponse {
        details: details(&d).into(),
        settings: settings.into(),
        ..Default::default()
    })
}

pub async fn get_security_settings(
    app: Arc<App>,
    caller: Caller,
    _req: pb::GetSecuritySettingsRequest,
) -> Result<pb::GetSecuritySettingsResponse> {
    let d = app.settings(&caller, &SettingsContext::Instance, perm::IAM_POLICY_READ).await?;
    let settings = pb::SecuritySettings {
        embedded_iframe: pb::EmbeddedIframeSettings::default().into(),
        enable_impersonation: false,
        ..Default::default()
    };
    Ok(pb::GetSecuritySettingsResponse {
        details: details(&d).into(),
        settings: settings.into(),
        ..Default::default()
    })
}

/// passlink signs in with passkeys only: no identity provider is ever active.
pub async fn get_active_identity_providers(
    app: Arc<App>,
    caller: Caller,
    req: pb::GetActiveIdentityProvidersRequest,
) -> Result<pb::GetActiveIdentityProvidersResponse> {
    app.settings(&caller, &context(req.ctx.as_option()), perm::POLICY_READ).await?;
    Ok(pb::GetActiveIdentityProvidersResponse {
        details: obj::ListDetails {
            total_result: 0,
            timestamp: crate::convert::timestamp(app.now()).into(),
            ..Default::default()
        }
        .into(),
        identity_providers: Vec::new(),
        ..Default::default()
    })
}

/// passlink keeps no custom texts for a hosted login: an empty set for every level and locale
/// (ZITADEL's TypeScript login then uses its own texts). The organization must be readable.
pub async fn get_hosted_login_translation(
    app: Arc<App>,
    caller: Caller,
    req: pb::GetHostedLoginTranslationRequest,
) -> Result<pb::GetHostedLoginTranslationResponse> {
    use passlink_wire::zitadel::settings::v2::__buffa::oneof::get_hosted_login_translation_request::Level;
    match req.level.as_ref() {
        Some(Level::OrganizationId(org)) => {
            app.settings(&caller, &SettingsContext::Org(org.clone()), perm::POLICY_READ).await?;
        }
        _ => {
            app.settings(&caller, &SettingsContext::Instance, perm::IAM_POLICY_READ).await?;
        }
    }
    Ok(pb::GetHostedLoginTranslationResponse {
        translations: buffa::MessageField::some(buffa_types::google::protobuf::Struct::default()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_settings_json_says_passkeys_only() {
        let json = serde_json::to_value(login_settings()).unwrap();
        assert_eq!(json["passkeysType"], "PASSKEYS_TYPE_ALLOWED");
        assert_eq!(json["hidePasswordReset"], true);
        assert_eq!(json["multiFactorCheckLifetime"], "43200s");
        assert_eq!(json["resourceOwnerType"], "RESOURCE_OWNER_TYPE_INSTANCE");
        for absent in
            ["allowUsernamePassword", "allowRegister", "allowExternalIdp", "secondFactors", "multiFactors"]
        {
            assert!(json.get(absent).is_none(), "{absent} in {json}");
        }
    }

    #[test]
    fn the_context_names_an_org_the_instance_or_nobody() {
        use obj::__buffa::oneof::request_context::ResourceOwner;
        let ctx = |r| obj::RequestContext { resource_owner: Some(r), ..Default::default() };
        assert_eq!(context(Some(&ctx(ResourceOwner::OrgId("7".into())))), SettingsContext::Org("7".into()));
        assert_eq!(context(Some(&ctx(ResourceOwner::Instance(true)))), SettingsContext::Instance);
        assert_eq!(context(None), SettingsContext::Caller);
    }
}
