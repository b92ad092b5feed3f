//! zitadel.oidc.v2.OIDCService: GetAuthRequest and CreateCallback, what a custom login UI
//! (ZITADEL's TypeScript login, or your own) calls to finish an authorization request. The
//! device flow RPCs are not served (see [`super::NOT_SERVED`]).

use std::sync::Arc;

use buffa::{EnumValue, MessageField};
use buffa_types::google::protobuf::Duration;
use passlink_core::app::{App, Callback, Caller};
use passlink_core::error::{Error, Result};
use passlink_core::oidc::AuthRequestView;
use passlink_core::secret::Secret;
use passlink_core::validate;
use passlink_wire::zitadel::oidc::v2 as pb;
use passlink_wire::zitadel::oidc::v2::__buffa::oneof::create_callback_request::CallbackKind;

use crate::convert::timestamp;
use crate::convert::user_v2::details;

fn auth_request(r: &AuthRequestView) -> pb::AuthRequest {
    pb::AuthRequest {
        id: r.id.clone(),
        creation_date: MessageField::some(timestamp(r.created_at)),
        client_id: r.request.client_id.clone(),
        scope: r.request.scope.clone(),
        redirect_uri: r.request.redirect_uri.clone(),
        prompt: r.request.prompt.iter().map(|p| EnumValue::from(*p as i32)).collect(),
        ui_locales: r.request.ui_locales.clone(),
        login_hint: r.request.login_hint.clone(),
        max_age: r
            .request
            .max_age
            .map(|s| Duration { seconds: i64::try_from(s).unwrap_or(i64::MAX), ..Default::default() })
            .into(),
        hint_user_id: None,
        ..Default::default()
    }
}

pub async fn get_auth_request(
    app: Arc<App>,
    caller: Caller,
    req: pb::GetAuthRequestRequest,
) -> Result<pb::GetAuthRequestResponse> {
    let r = app.get_auth_request(&caller, &req.auth_request_id).await?;
    Ok(pb::GetAuthRequestResponse {
        auth_request: MessageField::some(auth_request(&r)),
        ..Default::default()
    })
}

/// ZITADEL's `ErrorReason` → the OAuth `error` code of the callback.
fn error_code(reason: i32) -> &'static str {
    match reason {
        1 => "invalid_request",
        2 => "unauthorized_client",
        3 => "access_denied",
        4 => "unsupported_response_type",
        5 => "invalid_scope",
        7 => "temporarily_unavailable",
        8 => "interaction_required",
        9 => "login_required",
        10 => "account_selection_required",
        11 => "consent_required",
        12 => "invalid_request_uri",
        13 => "invalid_request_object",
        14 => "request_not_supported",
        15 => "request_uri_not_supported",
        16 => "registration_not_supported",
        _ => "server_error",
    }
}

pub async fn create_callback(
    app: Arc<App>,
    caller: Caller,
    req: pb::CreateCallbackRequest,
) -> Result<pb::CreateCallbackResponse> {
    let callback = match req.callback_kind.as_ref() {
        Some(CallbackKind::Session(s)) => {
            validate::runes_between("Session", "SessionToken", &s.session_token, 1, 500)?;
            Callback::Session {
                session_id: s.session_id.clone(),
                token: Secret::new(s.session_token.clone()),
            }
        }
        Some(CallbackKind::Error(e)) => Callback::Error {
            error: error_code(e.error.to_i32()),
            description: e.error_description.clone(),
            uri: e.error_uri.clone(),
        },
        None => {
            return Err(Error::validation("invalid CreateCallbackRequest.CallbackKind: value is required"));
        }
    };
    let (d, url) = app.create_callback(&caller, &req.auth_request_id, callback).await?;
    Ok(pb::CreateCallbackResponse { details: details(&d).into(), callback_url: url, ..Default::default() })
}
