// The user service handlers shared by zitadel.user.v2beta and zitadel.user.v2: included into each
// version's module, where `pb` (the user package) and `obj` (its object package) are in scope.
// Each handler is: extract, convert, call the core, convert back; errors map in `error.rs`.

use buffa::MessageField;
use connectrpc::{RequestContext, Response, ServiceResult};
use passlink_core::app::{App, Details, LinkMedium, NewHuman};
use passlink_core::event::HumanProfile;
use passlink_core::view::{UserKind, UserState, UserView};

use crate::auth::caller;
use crate::error::to_connect;
use crate::rpc::timestamp;

pub(super) fn details(d: &Details) -> obj::Details {
    obj::Details {
        sequence: d.sequence,
        change_date: timestamp(d.change_date).into(),
        resource_owner: d.resource_owner.clone(),
        creation_date: d.creation_date.map(timestamp).into(),
        ..Default::default()
    }
}

pub(super) async fn add_human_user(
    app: &App,
    ctx: RequestContext,
    req: pb::AddHumanUserRequest,
) -> ServiceResult<pb::AddHumanUserResponse> {
    let caller = caller(&ctx)?;
    let org_id = req.organization.as_option().and_then(|o| match &o.org {
        Some(obj::__buffa::oneof::organization::Org::OrgId(id)) => Some(id.clone()),
        Some(obj::__buffa::oneof::organization::Org::OrgDomain(d)) => Some(d.clone()),
        None => None,
    });
    let p = req.profile.as_option().cloned().unwrap_or_default();
    let e = req.email.as_option().cloned().unwrap_or_default();
    let phone = req.phone.as_option().cloned().unwrap_or_default();
    let email_verified = matches!(e.verification, Some(pb::__buffa::oneof::set_human_email::Verification::IsVerified(true)));
    let phone_verified =
        matches!(phone.verification, Some(pb::__buffa::oneof::set_human_phone::Verification::IsVerified(true)));
    if !req.profile.is_set() {
        return Err(to_connect(&passlink_core::validate::required("AddHumanUserRequest", "Profile")));
    }
    if !req.email.is_set() {
        return Err(to_connect(&passlink_core::validate::required("AddHumanUserRequest", "Email")));
    }
    // Passwords, IdP links and TOTP secrets are accepted for compatibility and discarded:
    // passlink enrolls passkeys and never stores a password.
    let human = NewHuman {
        user_id: req.user_id.clone(),
        username: req.username.clone(),
        org_id,
        profile: HumanProfile {
            given_name: p.given_name,
            family_name: p.family_name,
            nick_name: p.nick_name.unwrap_or_default(),
            display_name: p.display_name.unwrap_or_default(),
            preferred_language: p.preferred_language.unwrap_or_default(),
            gender: p.gender.map(|g| g.to_i32()).unwrap_or_default(),
            email: e.email,
            email_verified,
            phone: phone.phone,
            phone_verified,
        },
    };
    let created = app.add_human(&caller, human).await.map_err(|e| to_connect(&e))?;
    Response::ok(pb::AddHumanUserResponse {
        user_id: created.user_id,
        details: details(&created.details).into(),
        ..Default::default()
    })
}

fn user_state(s: UserState) -> pb::UserState {
    match s {
        UserState::Active => pb::UserState::USER_STATE_ACTIVE,
        UserState::Inactive => pb::UserState::USER_STATE_INACTIVE,
        UserState::Deleted => pb::UserState::USER_STATE_DELETED,
    }
}

fn user(u: &UserView, d: &Details) -> pb::User {
    let state = user_state(u.state);
    let login_names = vec![u.username.clone()];
    let kind = match &u.kind {
        UserKind::Human(h) => pb::__buffa::oneof::user::Type::Human(Box::new(pb::HumanUser {
            user_id: u.id.clone(),
            state: state.into(),
            username: u.username.clone(),
            login_names: login_names.clone(),
            preferred_login_name: u.username.clone(),
            profile: pb::HumanProfile {
                given_name: h.given_name.clone(),
                family_name: h.family_name.clone(),
                nick_name: Some(h.nick_name.clone()),
                display_name: Some(h.effective_display_name()),
                preferred_language: Some(h.preferred_language.clone()),
                gender: Some(h.gender.into()),
                ..Default::default()
            }
            .into(),
            email: pb::HumanEmail { email: h.email.clone(), is_verified: h.email_verified, ..Default::default() }
                .into(),
            phone: pb::HumanPhone { phone: h.phone.clone(), is_verified: h.phone_verified, ..Default::default() }
                .into(),
            ..Default::default()
        })),
        UserKind::Machine(m) => pb::__buffa::oneof::user::Type::Machine(Box::new(pb::MachineUser {
            name: m.name.clone(),
            description: m.description.clone(),
            access_token_type: m.access_token_type.into(),
            has_secret: !m.secret_hash.is_empty(),
            ..Default::default()
        })),
    };
    pb::User {
        user_id: u.id.clone(),
        details: details(d).into(),
        state: state.into(),
        username: u.username.clone(),
        login_names,
        preferred_login_name: u.username.clone(),
        r#type: Some(kind),
        ..Default::default()
    }
}

pub(super) async fn get_user_by_id(
    app: &App,
    ctx: RequestContext,
    req: pb::GetUserByIDRequest,
) -> ServiceResult<pb::GetUserByIDResponse> {
    let caller = caller(&ctx)?;
    let read = app.get_user(&caller, &req.user_id).await.map_err(|e| to_connect(&e))?;
    Response::ok(pb::GetUserByIDResponse {
        details: details(&read.details).into(),
        user: user(&read.user, &read.details).into(),
        ..Default::default()
    })
}

pub(super) async fn deactivate_user(
    app: &App,
    ctx: RequestContext,
    req: pb::DeactivateUserRequest,
) -> ServiceResult<pb::DeactivateUserResponse> {
    let caller = caller(&ctx)?;
    let d = app.deactivate_user(&caller, &req.user_id).await.map_err(|e| to_connect(&e))?;
    Response::ok(pb::DeactivateUserResponse { details: details(&d).into(), ..Default::default() })
}

pub(super) async fn delete_user(
    app: &App,
    ctx: RequestContext,
    req: pb::DeleteUserRequest,
) -> ServiceResult<pb::DeleteUserResponse> {
    let caller = caller(&ctx)?;
    let d = app.delete_user(&caller, &req.user_id).await.map_err(|e| to_connect(&e))?;
    Response::ok(pb::DeleteUserResponse { details: details(&d).into(), ..Default::default() })
}

pub(super) async fn create_passkey_registration_link(
    app: &App,
    ctx: RequestContext,
    req: pb::CreatePasskeyRegistrationLinkRequest,
) -> ServiceResult<pb::CreatePasskeyRegistrationLinkResponse> {
    use pb::__buffa::oneof::create_passkey_registration_link_request::Medium;
    let caller = caller(&ctx)?;
    // Each oneof branch is a different core command; no medium means "send the default link".
    let medium = match req.medium {
        Some(Medium::ReturnCode(_)) => LinkMedium::Return,
        Some(Medium::SendLink(s)) => LinkMedium::Send { url_template: s.url_template.clone() },
        None => LinkMedium::Send { url_template: None },
    };
    let created = app.create_passkey_link(&caller, &req.user_id, medium).await.map_err(|e| to_connect(&e))?;
    let code = match created.code {
        Some((id, code)) => {
            pb::PasskeyRegistrationCode { id, code: code.expose().to_string(), ..Default::default() }.into()
        }
        None => MessageField::default(),
    };
    Response::ok(pb::CreatePasskeyRegistrationLinkResponse {
        details: details(&created.details).into(),
        code,
        ..Default::default()
    })
}

fn caller_opt(ctx: &RequestContext) -> Option<passlink_core::app::Caller> {
    crate::auth::optional_caller(ctx)
}

pub(super) async fn register_passkey(
    app: &App,
    ctx: RequestContext,
    req: pb::RegisterPasskeyRequest,
) -> ServiceResult<pb::RegisterPasskeyResponse> {
    use passlink_core::passkey::Attachment;
    let caller = caller_opt(&ctx);
    let code = req.code.as_option().map(|c| (c.id.clone(), passlink_core::secret::Secret::new(c.code.clone())));
    let attachment = match req.authenticator.as_known() {
        Some(pb::PasskeyAuthenticator::PASSKEY_AUTHENTICATOR_PLATFORM) => Some(Attachment::Platform),
        Some(pb::PasskeyAuthenticator::PASSKEY_AUTHENTICATOR_CROSS_PLATFORM) => Some(Attachment::CrossPlatform),
        _ => None,
    };
    let started = app
        .register_passkey(
            caller.as_ref(),
            passlink_core::app::RegisterPasskey { user_id: req.user_id.clone(), code, attachment, domain: req.domain.clone() },
        )
        .await
        .map_err(|e| to_connect(&e))?;
    let options: buffa_types::google::protobuf::Struct = serde_json::from_value(started.options)
        .map_err(|e| to_connect(&passlink_core::Error::internal(format!("options: {e}"))))?;
    Response::ok(pb::RegisterPasskeyResponse {
        details: details(&started.details).into(),
        passkey_id: started.passkey_id,
        public_key_credential_creation_options: options.into(),
        ..Default::default()
    })
}

pub(super) async fn verify_passkey_registration(
    app: &App,
    ctx: RequestContext,
    req: pb::VerifyPasskeyRegistrationRequest,
) -> ServiceResult<pb::VerifyPasskeyRegistrationResponse> {
    let caller = caller_opt(&ctx);
    let credential = match req.public_key_credential.as_option() {
        Some(s) => serde_json::to_value(s)
            .map_err(|e| to_connect(&passlink_core::Error::internal(format!("credential: {e}"))))?,
        None => serde_json::Value::Null,
    };
    let d = app
        .verify_passkey(caller.as_ref(), &req.user_id, &req.passkey_id, &credential, &req.passkey_name)
        .await
        .map_err(|e| to_connect(&e))?;
    Response::ok(pb::VerifyPasskeyRegistrationResponse { details: details(&d).into(), ..Default::default() })
}
