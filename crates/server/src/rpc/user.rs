//! zitadel.user.v2beta.UserService and zitadel.user.v2.UserService.
//!
//! The RPCs both versions have are written once, in the `shared_rpcs!` macro, and expanded in
//! [`v2beta`] and [`v2`] (the two packages declare the same messages as distinct Rust types);
//! [`v2`] adds the RPCs only it has. Each handler converts the request ([`crate::convert`]),
//! calls the core and converts the answer back; errors stay core errors (each protocol maps them).

/// The handlers both versions share; expects `pb` (the user package), `obj` (its object package)
/// and `convert` (its conversions) in scope where it is expanded.
macro_rules! shared_rpcs {
    () => {
        use std::sync::Arc;

        use buffa::MessageField;
        use passlink_core::app::{App, Caller, LinkMedium, NewHuman, RegisterPasskey};
        use passlink_core::error::{Error, Result};
        use passlink_core::passkey::Attachment;
        use passlink_core::secret::Secret;
        use passlink_core::validate;

        pub async fn add_human_user(
            app: Arc<App>,
            caller: Caller,
            req: pb::AddHumanUserRequest,
        ) -> Result<pb::AddHumanUserResponse> {
            if !req.profile.is_set() {
                return Err(validate::required("AddHumanUserRequest", "Profile"));
            }
            if !req.email.is_set() {
                return Err(validate::required("AddHumanUserRequest", "Email"));
            }
            // Passwords, IdP links and TOTP secrets are accepted for compatibility and discarded:
            // passlink enrolls passkeys and never stores a password.
            let human = NewHuman {
                org_id: convert::org_id(req.organization.as_option()),
                profile: convert::human_profile(
                    req.profile.as_option(),
                    req.email.as_option(),
                    req.phone.as_option(),
                ),
                user_id: req.user_id,
                username: req.username,
            };
            let created = app.add_human(&caller, human).await?;
            Ok(pb::AddHumanUserResponse {
                user_id: created.user_id,
                details: convert::details(&created.details).into(),
                ..Default::default()
            })
        }

        pub async fn get_user_by_id(
            app: Arc<App>,
            caller: Caller,
            req: pb::GetUserByIDRequest,
        ) -> Result<pb::GetUserByIDResponse> {
            let read = app.get_user(&caller, &req.user_id).await?;
            Ok(pb::GetUserByIDResponse {
                details: convert::details(&read.details).into(),
                user: convert::user(&read.user, &read.details).into(),
                ..Default::default()
            })
        }

        pub async fn deactivate_user(
            app: Arc<App>,
            caller: Caller,
            req: pb::DeactivateUserRequest,
        ) -> Result<pb::DeactivateUserResponse> {
            let d = app.deactivate_user(&caller, &req.user_id).await?;
            Ok(pb::DeactivateUserResponse { details: convert::details(&d).into(), ..Default::default() })
        }

        pub async fn delete_user(
            app: Arc<App>,
            caller: Caller,
            req: pb::DeleteUserRequest,
        ) -> Result<pb::DeleteUserResponse> {
            let d = app.delete_user(&caller, &req.user_id).await?;
            Ok(pb::DeleteUserResponse { details: convert::details(&d).into(), ..Default::default() })
        }

        pub async fn create_passkey_registration_link(
            app: Arc<App>,
            caller: Caller,
            req: pb::CreatePasskeyRegistrationLinkRequest,
        ) -> Result<pb::CreatePasskeyRegistrationLinkResponse> {
            use pb::__buffa::oneof::create_passkey_registration_link_request::Medium;
            // Each oneof branch is a different core command; no medium means "send the default link".
            let medium = match req.medium {
                Some(Medium::ReturnCode(_)) => LinkMedium::Return,
                Some(Medium::SendLink(s)) => LinkMedium::Send { url_template: s.url_template.clone() },
                None => LinkMedium::Send { url_template: None },
            };
            let created = app.create_passkey_link(&caller, &req.user_id, medium).await?;
            let code = match created.code {
                Some((id, code)) => {
                    pb::PasskeyRegistrationCode { id, code: code.expose().to_string(), ..Default::default() }
                        .into()
                }
                None => MessageField::default(),
            };
            Ok(pb::CreatePasskeyRegistrationLinkResponse {
                details: convert::details(&created.details).into(),
                code,
                ..Default::default()
            })
        }

        /// Rate-limit targets of RegisterPasskey: the user and the code.
        pub fn register_passkey_targets(req: &pb::RegisterPasskeyRequest) -> Vec<String> {
            let code = req.code.as_option().map(|c| format!("code:{}", c.id));
            std::iter::once(format!("user:{}", req.user_id)).chain(code).collect()
        }

        /// Rate-limit targets of VerifyPasskeyRegistration: the user.
        pub fn verify_passkey_registration_targets(
            req: &pb::VerifyPasskeyRegistrationRequest,
        ) -> Vec<String> {
            vec![format!("user:{}", req.user_id)]
        }

        /// A registration code may authorize this RPC instead of a token.
        pub async fn register_passkey(
            app: Arc<App>,
            caller: Option<Caller>,
            req: pb::RegisterPasskeyRequest,
        ) -> Result<pb::RegisterPasskeyResponse> {
            let code = req.code.as_option().map(|c| (c.id.clone(), Secret::new(c.code.clone())));
            let attachment = match req.authenticator.as_known() {
                Some(pb::PasskeyAuthenticator::PASSKEY_AUTHENTICATOR_PLATFORM) => Some(Attachment::Platform),
                Some(pb::PasskeyAuthenticator::PASSKEY_AUTHENTICATOR_CROSS_PLATFORM) => {
                    Some(Attachment::CrossPlatform)
                }
                _ => None,
            };
            let register = RegisterPasskey { user_id: req.user_id, code, attachment, domain: req.domain };
            let started = app.register_passkey(caller.as_ref(), register).await?;
            let options: buffa_types::google::protobuf::Struct = serde_json::from_value(started.options)
                .map_err(|e| Error::internal(format!("options: {e}")))?;
            Ok(pb::RegisterPasskeyResponse {
                details: convert::details(&started.details).into(),
                passkey_id: started.passkey_id,
                public_key_credential_creation_options: options.into(),
                ..Default::default()
            })
        }

        /// A registration code may authorize this RPC instead of a token.
        pub async fn verify_passkey_registration(
            app: Arc<App>,
            caller: Option<Caller>,
            req: pb::VerifyPasskeyRegistrationRequest,
        ) -> Result<pb::VerifyPasskeyRegistrationResponse> {
            let credential = match req.public_key_credential.as_option() {
                Some(s) => {
                    serde_json::to_value(s).map_err(|e| Error::internal(format!("credential: {e}")))?
                }
                None => serde_json::Value::Null,
            };
            let d = app
                .verify_passkey(
                    caller.as_ref(),
                    &req.user_id,
                    &req.passkey_id,
                    &credential,
                    &req.passkey_name,
                )
                .await?;
            Ok(pb::VerifyPasskeyRegistrationResponse {
                details: convert::details(&d).into(),
                ..Default::default()
            })
        }
    };
}

/// zitadel.user.v2beta.UserService.
pub mod v2beta {
    use crate::convert::user_v2beta as convert;
    use passlink_wire::zitadel::user::v2beta as pb;
    shared_rpcs!();
}

/// zitadel.user.v2.UserService: the shared RPCs and those only v2 has.
pub mod v2 {
    use crate::convert::user_v2 as convert;
    use crate::convert::{from_timestamp, timestamp};
    use passlink_core::app::NewMachine;
    use passlink_core::event::MachineProfile;
    use passlink_wire::zitadel::user::v2 as pb;
    shared_rpcs!();

    pub async fn create_user(
        app: Arc<App>,
        caller: Caller,
        req: pb::CreateUserRequest,
    ) -> Result<pb::CreateUserResponse> {
        use pb::__buffa::oneof::create_user_request::UserType;
        let created = match req.user_type {
            Some(UserType::Human(h)) => {
                if !h.profile.is_set() || !h.email.is_set() {
                    let field = if h.profile.is_set() { "Email" } else { "Profile" };
                    return Err(validate::required("CreateUserRequest.Human", field));
                }
                let human = NewHuman {
                    user_id: req.user_id,
                    username: req.username,
                    org_id: Some(req.organization_id).filter(|o| !o.is_empty()),
                    profile: convert::human_profile(
                        h.profile.as_option(),
                        h.email.as_option(),
                        h.phone.as_option(),
                    ),
                };
                if human.org_id.is_none() {
                    return Err(validate::required("CreateUserRequest", "OrganizationId"));
                }
                app.add_human(&caller, human).await?
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
                app.add_machine(&caller, machine).await?
            }
            None => return Err(validate::required("CreateUserRequest", "UserType")),
        };
        Ok(pb::CreateUserResponse {
            id: created.user_id,
            creation_date: created.details.creation_date.map(timestamp).into(),
            ..Default::default()
        })
    }

    pub async fn add_personal_access_token(
        app: Arc<App>,
        caller: Caller,
        req: pb::AddPersonalAccessTokenRequest,
    ) -> Result<pb::AddPersonalAccessTokenResponse> {
        let exp = req.expiration_date.as_option().map(from_timestamp);
        let pat = app.add_pat(&caller, &req.user_id, exp).await?;
        Ok(pb::AddPersonalAccessTokenResponse {
            creation_date: timestamp(pat.creation_date).into(),
            token_id: pat.token_id,
            token: pat.token.expose().to_string(),
            ..Default::default()
        })
    }

    pub async fn list_passkeys(
        app: Arc<App>,
        caller: Caller,
        req: pb::ListPasskeysRequest,
    ) -> Result<pb::ListPasskeysResponse> {
        let (listed, seq) = app.list_passkeys(Some(&caller), &req.user_id).await?;
        Ok(pb::ListPasskeysResponse {
            details: convert::list_details(listed.len(), seq, app.now()).into(),
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

    pub async fn remove_passkey(
        app: Arc<App>,
        caller: Caller,
        req: pb::RemovePasskeyRequest,
    ) -> Result<pb::RemovePasskeyResponse> {
        let d = app.remove_passkey(Some(&caller), &req.user_id, &req.passkey_id).await?;
        Ok(pb::RemovePasskeyResponse { details: convert::details(&d).into(), ..Default::default() })
    }

    pub async fn add_secret(
        app: Arc<App>,
        caller: Caller,
        req: pb::AddSecretRequest,
    ) -> Result<pb::AddSecretResponse> {
        let (secret, at) = app.add_secret(&caller, &req.user_id).await?;
        Ok(pb::AddSecretResponse {
            creation_date: timestamp(at).into(),
            client_secret: secret.expose().to_string(),
            ..Default::default()
        })
    }

    pub async fn add_key(
        app: Arc<App>,
        caller: Caller,
        req: pb::AddKeyRequest,
    ) -> Result<pb::AddKeyResponse> {
        let exp = req.expiration_date.as_option().map(from_timestamp);
        let k = app.add_key(&caller, &req.user_id, exp, &req.public_key).await?;
        Ok(pb::AddKeyResponse {
            creation_date: timestamp(k.creation_date).into(),
            key_id: k.key_id,
            key_content: k.key_content,
            ..Default::default()
        })
    }
}
