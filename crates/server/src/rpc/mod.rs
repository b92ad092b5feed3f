//! The service implementations: ONE per ZITADEL service, served over every protocol.
//!
//! - `user_v2beta` / `user_v2`: zitadel.user.{v2beta,v2}.UserService (shared handlers in
//!   `user_common.rs`, compiled once per package);
//! - [`org_v2`] serves zitadel.org.v2.OrganizationService;
//! - [`permission_v2beta`] serves zitadel.internal_permission.v2beta.InternalPermissionService.

use std::sync::Arc;

use buffa_types::google::protobuf::Timestamp as PbTimestamp;
use connectrpc::{Chain, RequestContext, ServiceRequest, ServiceResult};
use passlink_core::app::App;
use passlink_core::time::Timestamp;

pub mod org_v2;
pub mod permission_v2beta;

pub(crate) fn timestamp(t: Timestamp) -> PbTimestamp {
    let (s, n) = t.secs_nanos();
    PbTimestamp::from_unix(s, n)
}

pub(crate) fn from_timestamp(t: &PbTimestamp) -> Timestamp {
    Timestamp(t.seconds.saturating_mul(1_000_000_000).saturating_add(i64::from(t.nanos)))
}

pub mod user_v2beta {
    use super::*;
    use passlink_wire::zitadel::object::v2beta as obj;
    use passlink_wire::zitadel::user::v2beta as pb;

    mod common {
        use super::{obj, pb};
        include!("user_common.rs");
    }

    pub struct UserService(pub Arc<App>);

    #[allow(refining_impl_trait)]
    impl pb::UserService for UserService {
        async fn add_human_user(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::AddHumanUserRequest>,
        ) -> ServiceResult<pb::AddHumanUserResponse> {
            common::add_human_user(&self.0, ctx, req.to_owned_message()).await
        }
        async fn get_user_by_id(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::GetUserByIDRequest>,
        ) -> ServiceResult<pb::GetUserByIDResponse> {
            common::get_user_by_id(&self.0, ctx, req.to_owned_message()).await
        }
        async fn deactivate_user(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::DeactivateUserRequest>,
        ) -> ServiceResult<pb::DeactivateUserResponse> {
            common::deactivate_user(&self.0, ctx, req.to_owned_message()).await
        }
        async fn delete_user(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::DeleteUserRequest>,
        ) -> ServiceResult<pb::DeleteUserResponse> {
            common::delete_user(&self.0, ctx, req.to_owned_message()).await
        }
        async fn register_passkey(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::RegisterPasskeyRequest>,
        ) -> ServiceResult<pb::RegisterPasskeyResponse> {
            common::register_passkey(&self.0, ctx, req.to_owned_message()).await
        }
        async fn verify_passkey_registration(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::VerifyPasskeyRegistrationRequest>,
        ) -> ServiceResult<pb::VerifyPasskeyRegistrationResponse> {
            common::verify_passkey_registration(&self.0, ctx, req.to_owned_message()).await
        }
        async fn create_passkey_registration_link(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::CreatePasskeyRegistrationLinkRequest>,
        ) -> ServiceResult<pb::CreatePasskeyRegistrationLinkResponse> {
            common::create_passkey_registration_link(&self.0, ctx, req.to_owned_message()).await
        }
    }
}

pub mod user_v2 {
    use super::*;
    use connectrpc::Response;
    use passlink_core::app::{NewHuman, NewMachine};
    use passlink_core::event::{HumanProfile, MachineProfile};
    use passlink_wire::zitadel::object::v2 as obj;
    use passlink_wire::zitadel::user::v2 as pb;

    use crate::auth::caller;
    use crate::error::to_connect;

    mod common {
        use super::{obj, pb};
        include!("user_common.rs");
    }

    pub struct UserService(pub Arc<App>);

    #[allow(refining_impl_trait)]
    impl pb::UserService for UserService {
        async fn add_human_user(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::AddHumanUserRequest>,
        ) -> ServiceResult<pb::AddHumanUserResponse> {
            common::add_human_user(&self.0, ctx, req.to_owned_message()).await
        }
        async fn create_user(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::CreateUserRequest>,
        ) -> ServiceResult<pb::CreateUserResponse> {
            use pb::__buffa::oneof::create_user_request::UserType;
            let caller = caller(&ctx)?;
            let req = req.to_owned_message();
            let created = match req.user_type {
                Some(UserType::Human(h)) => {
                    let p = h.profile.as_option().cloned().unwrap_or_default();
                    let e = h.email.as_option().cloned().unwrap_or_default();
                    let phone = h.phone.as_option().cloned().unwrap_or_default();
                    if !h.profile.is_set() || !h.email.is_set() {
                        let field = if h.profile.is_set() { "Email" } else { "Profile" };
                        return Err(to_connect(&passlink_core::validate::required(
                            "CreateUserRequest.Human",
                            field,
                        )));
                    }
                    let verified = matches!(
                        e.verification,
                        Some(pb::__buffa::oneof::set_human_email::Verification::IsVerified(true))
                    );
                    let human = NewHuman {
                        user_id: req.user_id,
                        username: req.username,
                        org_id: Some(req.organization_id).filter(|o| !o.is_empty()),
                        profile: HumanProfile {
                            given_name: p.given_name,
                            family_name: p.family_name,
                            nick_name: p.nick_name.unwrap_or_default(),
                            display_name: p.display_name.unwrap_or_default(),
                            preferred_language: p.preferred_language.unwrap_or_default(),
                            gender: p.gender.map(|g| g.to_i32()).unwrap_or_default(),
                            email: e.email,
                            email_verified: verified,
                            phone: phone.phone,
                            phone_verified: false,
                        },
                    };
                    if human.org_id.is_none() {
                        return Err(to_connect(&passlink_core::validate::required(
                            "CreateUserRequest",
                            "OrganizationId",
                        )));
                    }
                    self.0.add_human(&caller, human).await
                }
                Some(UserType::Machine(m)) => {
                    let machine = NewMachine {
                        user_id: req.user_id,
                        username: req.username,
                        org_id: req.organization_id,
                        profile: MachineProfile {
                            name: m.name.clone(),
                            description: m.description.clone().unwrap_or_default(),
                            access_token_type: 0,
                            ..MachineProfile::default()
                        },
                    };
                    self.0.add_machine(&caller, machine).await
                }
                None => {
                    return Err(to_connect(&passlink_core::validate::required(
                        "CreateUserRequest",
                        "UserType",
                    )));
                }
            }
            .map_err(|e| to_connect(&e))?;
            Response::ok(pb::CreateUserResponse {
                id: created.user_id,
                creation_date: created.details.creation_date.map(timestamp).into(),
                ..Default::default()
            })
        }
        async fn get_user_by_id(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::GetUserByIDRequest>,
        ) -> ServiceResult<pb::GetUserByIDResponse> {
            common::get_user_by_id(&self.0, ctx, req.to_owned_message()).await
        }
        async fn deactivate_user(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::DeactivateUserRequest>,
        ) -> ServiceResult<pb::DeactivateUserResponse> {
            common::deactivate_user(&self.0, ctx, req.to_owned_message()).await
        }
        async fn delete_user(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::DeleteUserRequest>,
        ) -> ServiceResult<pb::DeleteUserResponse> {
            common::delete_user(&self.0, ctx, req.to_owned_message()).await
        }
        async fn add_personal_access_token(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::AddPersonalAccessTokenRequest>,
        ) -> ServiceResult<pb::AddPersonalAccessTokenResponse> {
            let caller = caller(&ctx)?;
            let req = req.to_owned_message();
            let exp = req.expiration_date.as_option().map(from_timestamp);
            let pat = self.0.add_pat(&caller, &req.user_id, exp).await.map_err(|e| to_connect(&e))?;
            Response::ok(pb::AddPersonalAccessTokenResponse {
                creation_date: timestamp(pat.creation_date).into(),
                token_id: pat.token_id,
                token: pat.token.expose().to_string(),
                ..Default::default()
            })
        }
        async fn register_passkey(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::RegisterPasskeyRequest>,
        ) -> ServiceResult<pb::RegisterPasskeyResponse> {
            common::register_passkey(&self.0, ctx, req.to_owned_message()).await
        }
        async fn verify_passkey_registration(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::VerifyPasskeyRegistrationRequest>,
        ) -> ServiceResult<pb::VerifyPasskeyRegistrationResponse> {
            common::verify_passkey_registration(&self.0, ctx, req.to_owned_message()).await
        }
        async fn list_passkeys(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::ListPasskeysRequest>,
        ) -> ServiceResult<pb::ListPasskeysResponse> {
            let req = req.to_owned_message();
            let caller = crate::auth::optional_caller(&ctx);
            let (listed, seq) =
                self.0.list_passkeys(caller.as_ref(), &req.user_id).await.map_err(|e| to_connect(&e))?;
            Response::ok(pb::ListPasskeysResponse {
                details: obj::ListDetails {
                    total_result: listed.len() as u64,
                    processed_sequence: seq,
                    timestamp: timestamp(self.0.now()).into(),
                    ..Default::default()
                }
                .into(),
                result: listed
                    .into_iter()
                    .map(|p| pb::Passkey {
                        id: p.id,
                        state: pb::AuthFactorState::AUTH_FACTOR_STATE_READY.into(),
                        name: p.name,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        }
        async fn remove_passkey(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::RemovePasskeyRequest>,
        ) -> ServiceResult<pb::RemovePasskeyResponse> {
            let req = req.to_owned_message();
            let caller = crate::auth::optional_caller(&ctx);
            let d = self
                .0
                .remove_passkey(caller.as_ref(), &req.user_id, &req.passkey_id)
                .await
                .map_err(|e| to_connect(&e))?;
            Response::ok(pb::RemovePasskeyResponse {
                details: common::details(&d).into(),
                ..Default::default()
            })
        }
        async fn add_secret(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::AddSecretRequest>,
        ) -> ServiceResult<pb::AddSecretResponse> {
            let caller = caller(&ctx)?;
            let req = req.to_owned_message();
            let (secret, at) = self.0.add_secret(&caller, &req.user_id).await.map_err(|e| to_connect(&e))?;
            Response::ok(pb::AddSecretResponse {
                creation_date: timestamp(at).into(),
                client_secret: secret.expose().to_string(),
                ..Default::default()
            })
        }
        async fn add_key(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::AddKeyRequest>,
        ) -> ServiceResult<pb::AddKeyResponse> {
            let caller = caller(&ctx)?;
            let req = req.to_owned_message();
            let exp = req.expiration_date.as_option().map(from_timestamp);
            let k = self
                .0
                .add_key(&caller, &req.user_id, exp, &req.public_key)
                .await
                .map_err(|e| to_connect(&e))?;
            Response::ok(pb::AddKeyResponse {
                creation_date: timestamp(k.creation_date).into(),
                key_id: k.key_id,
                key_content: k.key_content,
                ..Default::default()
            })
        }
        async fn create_passkey_registration_link(
            &self,
            ctx: RequestContext,
            req: ServiceRequest<'_, pb::CreatePasskeyRegistrationLinkRequest>,
        ) -> ServiceResult<pb::CreatePasskeyRegistrationLinkResponse> {
            common::create_passkey_registration_link(&self.0, ctx, req.to_owned_message()).await
        }
    }
}

/// Every service, chained into one dispatcher.
pub type Services = Chain<
    passlink_wire::zitadel::user::v2beta::UserServiceServer<user_v2beta::UserService>,
    Chain<
        passlink_wire::zitadel::user::v2::UserServiceServer<user_v2::UserService>,
        Chain<
            passlink_wire::zitadel::org::v2::OrganizationServiceServer<org_v2::OrganizationService>,
            passlink_wire::zitadel::internal_permission::v2beta::InternalPermissionServiceServer<
                permission_v2beta::InternalPermissionService,
            >,
        >,
    >,
>;

pub fn services(app: Arc<App>) -> Services {
    Chain(
        passlink_wire::zitadel::user::v2beta::UserServiceServer::new(user_v2beta::UserService(app.clone())),
        Chain(
            passlink_wire::zitadel::user::v2::UserServiceServer::new(user_v2::UserService(app.clone())),
            Chain(
                passlink_wire::zitadel::org::v2::OrganizationServiceServer::new(org_v2::OrganizationService(
                    app.clone(),
                )),
                passlink_wire::zitadel::internal_permission::v2beta::InternalPermissionServiceServer::new(
                    permission_v2beta::InternalPermissionService(app),
                ),
            ),
        ),
    )
}
