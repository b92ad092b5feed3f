//! zitadel.application.v2.ApplicationService (OIDC and API applications; projects are in
//! [`super::project_v2`]): Connect/gRPC only, as in ZITADEL (no REST bindings). Each handler
//! converts, calls the core's `oidc::apps` use cases and renders ZITADEL's messages
//! (enums whose 0 is a real value, like `OIDC_APP_TYPE_WEB`, are left out of JSON as ZITADEL's
//! protojson does).

use std::sync::Arc;

use buffa::{EnumValue, MessageField};
use buffa_types::google::protobuf::Duration;
use passlink_core::app::{App, Caller, NewApp};
use passlink_core::error::{Error, Kind, Result};
use passlink_core::oidc::{AppSettings, AppView, ObjectState, OidcConfig};
use passlink_wire::zitadel::application::v2 as app_pb;
use passlink_wire::zitadel::application::v2::__buffa::oneof::application::Configuration;
use passlink_wire::zitadel::application::v2::__buffa::oneof::application_search_filter::Filter as AppFilter;
use passlink_wire::zitadel::application::v2::__buffa::oneof::create_application_request::ApplicationType as NewType;
use passlink_wire::zitadel::application::v2::__buffa::oneof::create_application_response::ApplicationType as CreatedType;
use passlink_wire::zitadel::application::v2::__buffa::oneof::login_version::Version;
use passlink_wire::zitadel::application::v2::__buffa::oneof::update_application_request::ApplicationType as UpdateType;
use passlink_wire::zitadel::filter::v2 as filter;

use crate::convert::timestamp;

fn enums<E: buffa::Enumeration>(v: &[EnumValue<E>]) -> Vec<i32> {
    v.iter().map(EnumValue::to_i32).collect()
}

fn duration_ms(d: Option<&Duration>) -> u64 {
    d.map_or(0, |d| {
        u64::try_from(d.seconds).unwrap_or(0).saturating_mul(1000)
            + u64::try_from(d.nanos / 1_000_000).unwrap_or(0)
    })
}

fn login_base(v: Option<&app_pb::LoginVersion>) -> (bool, Option<String>) {
    match v.and_then(|v| v.version.as_ref()) {
        Some(Version::LoginV2(v2)) => (true, v2.base_uri.clone().filter(|b| !b.is_empty())),
        _ => (false, None),
    }
}

pub(super) fn text_matches(method: i32, value: &str, wanted: &str) -> bool {
    let (v, w) = (value.to_lowercase(), wanted.to_lowercase());
    match method {
        0 => value == wanted,
        1 => v == w,
        2 => value.starts_with(wanted),
        3 => v.starts_with(&w),
        4 => value.contains(wanted),
        5 => v.contains(&w),
        6 => value.ends_with(wanted),
        7 => v.ends_with(&w),
        _ => false,
    }
}

pub(super) fn page<T>(
    items: Vec<T>,
    p: Option<&filter::PaginationRequest>,
) -> (Vec<T>, filter::PaginationResponse) {
    let total = items.len() as u64;
    let (offset, limit, asc) =
        p.map_or((0, 100, false), |p| (p.offset, if p.limit == 0 { 100 } else { p.limit }, p.asc));
    let mut items = items;
    if !asc {
        items.reverse();
    }
    let out: Vec<T> =
        items.into_iter().skip(usize::try_from(offset).unwrap_or(usize::MAX)).take(limit as usize).collect();
    (
        out,
        filter::PaginationResponse {
            total_result: total,
            applied_limit: u64::from(limit),
            ..Default::default()
        },
    )
}

// ---- ApplicationService ------------------------------------------------------------------------

fn oidc_config(o: &app_pb::CreateOIDCApplicationRequest) -> OidcConfig {
    let (login_v2, login_base_uri) = login_base(o.login_version.as_option());
    OidcConfig {
        redirect_uris: o.redirect_uris.clone(),
        response_types: enums(&o.response_types),
        grant_types: enums(&o.grant_types),
        app_type: o.application_type.to_i32(),
        auth_method: o.auth_method_type.to_i32(),
        post_logout_redirect_uris: o.post_logout_redirect_uris.clone(),
        dev_mode: o.development_mode,
        access_token_type: o.access_token_type.to_i32(),
        access_token_role_assertion: o.access_token_role_assertion,
        id_token_role_assertion: o.id_token_role_assertion,
        id_token_userinfo_assertion: o.id_token_userinfo_assertion,
        clock_skew_ms: duration_ms(o.clock_skew.as_option()),
        additional_origins: o.additional_origins.clone(),
        skip_native_app_success_page: o.skip_native_app_success_page,
        back_channel_logout_uri: o.back_channel_logout_uri.clone(),
        login_base_uri,
        login_v2,
    }
}

/// UpdateOIDCApplicationConfigurationRequest: unset = unchanged.
fn patch_oidc(o: &mut OidcConfig, u: &app_pb::UpdateOIDCApplicationConfigurationRequest) {
    if !u.redirect_uris.is_empty() {
        o.redirect_uris = u.redirect_uris.clone();
    }
    if !u.response_types.is_empty() {
        o.response_types = enums(&u.response_types);
    }
    if !u.grant_types.is_empty() {
        o.grant_types = enums(&u.grant_types);
    }
    if let Some(v) = &u.application_type {
        o.app_type = v.to_i32();
    }
    if let Some(v) = &u.auth_method_type {
        o.auth_method = v.to_i32();
    }
    if !u.post_logout_redirect_uris.is_empty() {
        o.post_logout_redirect_uris = u.post_logout_redirect_uris.clone();
    }
    if let Some(v) = u.development_mode {
        o.dev_mode = v;
    }
    if let Some(v) = &u.access_token_type {
        o.access_token_type = v.to_i32();
    }
    if let Some(v) = u.access_token_role_assertion {
        o.access_token_role_assertion = v;
    }
    if let Some(v) = u.id_token_role_assertion {
        o.id_token_role_assertion = v;
    }
    if let Some(v) = u.id_token_userinfo_assertion {
        o.id_token_userinfo_assertion = v;
    }
    if u.clock_skew.is_set() {
        o.clock_skew_ms = duration_ms(u.clock_skew.as_option());
    }
    if !u.additional_origins.is_empty() {
        o.additional_origins = u.additional_origins.clone();
    }
    if let Some(v) = u.skip_native_app_success_page {
        o.skip_native_app_success_page = v;
    }
    if let Some(v) = &u.back_channel_logout_uri {
        o.back_channel_logout_uri = v.clone();
    }
    if u.login_version.is_set() {
        (o.login_v2, o.login_base_uri) = login_base(u.login_version.as_option());
    }
}

fn compliance(o: &OidcConfig) -> Vec<app_pb::OIDCLocalizedMessage> {
    o.compliance_problems()
        .into_iter()
        .map(|k| app_pb::OIDCLocalizedMessage {
            key: k.to_string(),
            localized_message: k.to_string(),
            ..Default::default()
        })
        .collect()
}

fn oidc_configuration(a: &AppView, o: &OidcConfig) -> app_pb::OIDCConfiguration {
    let login_version = if o.login_v2 {
        MessageField::some(app_pb::LoginVersion {
            version: Some(Version::LoginV2(Box::new(app_pb::LoginV2 {
                base_uri: o.login_base_uri.clone(),
                ..Default::default()
            }))),
            ..Default::default()
        })
    } else {
        MessageField::none()
    };
    let problems = compliance(o);
    app_pb::OIDCConfiguration {
        redirect_uris: o.redirect_uris.clone(),
        response_types: o.response_types.iter().map(|v| EnumValue::from(*v)).collect(),
        grant_types: o.grant_types.iter().map(|v| EnumValue::from(*v)).collect(),
        application_type: EnumValue::from(o.app_type),
        client_id: a.client_id().to_string(),
        auth_method_type: EnumValue::from(o.auth_method),
        post_logout_redirect_uris: o.post_logout_redirect_uris.clone(),
        non_compliant: !problems.is_empty(),
        compliance_problems: problems,
        development_mode: o.dev_mode,
        access_token_type: EnumValue::from(o.access_token_type),
        access_token_role_assertion: o.access_token_role_assertion,
        id_token_role_assertion: o.id_token_role_assertion,
        id_token_userinfo_assertion: o.id_token_userinfo_assertion,
        // Always set, as ZITADEL's ("0s" when none).
        clock_skew: MessageField::some(Duration {
            seconds: i64::try_from(o.clock_skew_ms / 1000).unwrap_or(0),
            nanos: i32::try_from((o.clock_skew_ms % 1000) * 1_000_000).unwrap_or(0),
            ..Default::default()
        }),
        additional_origins: o.additional_origins.clone(),
        allowed_origins: allowed_origins(o),
        skip_native_app_success_page: o.skip_native_app_success_page,
        back_channel_logout_uri: o.back_channel_logout_uri.clone(),
        login_version,
        ..Default::default()
    }
}

/// The origins of the redirect URIs plus the additional origins (ZITADEL's derived field).
fn allowed_origins(o: &OidcConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in o.redirect_uris.iter().chain(&o.additional_origins) {
        if let Ok(url) = url::Url::parse(u) {
            let origin = url.origin().ascii_serialization();
            if origin != "null" && !out.contains(&origin) {
                out.push(origin);
            }
        }
    }
    out
}

fn application(a: &AppView) -> app_pb::Application {
    let state = match a.state {
        ObjectState::Active => app_pb::ApplicationState::APPLICATION_STATE_ACTIVE,
        ObjectState::Inactive => app_pb::ApplicationState::APPLICATION_STATE_INACTIVE,
        ObjectState::Removed => app_pb::ApplicationState::APPLICATION_STATE_REMOVED,
    };
    let configuration = match &a.settings.oidc {
        Some(o) => Configuration::OidcConfiguration(Box::new(oidc_configuration(a, o))),
        None => Configuration::ApiConfiguration(Box::new(app_pb::APIConfiguration {
            client_id: a.client_id().to_string(),
            auth_method_type: EnumValue::from(a.settings.api_auth_method),
            ..Default::default()
        })),
    };
    app_pb::Application {
        application_id: a.id.clone(),
        creation_date: MessageField::some(timestamp(a.created_at)),
        change_date: MessageField::some(timestamp(a.changed_at)),
        state: state.into(),
        name: a.settings.name.clone(),
        project_id: a.settings.project_id.clone(),
        configuration: Some(configuration),
        ..Default::default()
    }
}

fn saml_unsupported() -> Error {
    Error::new(Kind::InvalidArgument, "APP-s4mlx", "Errors.Project.App.SAMLNotSupported")
}

pub async fn create_application(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::CreateApplicationRequest,
) -> Result<app_pb::CreateApplicationResponse> {
    let (oidc, api_auth_method) = match req.application_type.as_ref() {
        Some(NewType::OidcConfiguration(o)) => (Some(oidc_config(o)), 0),
        Some(NewType::ApiConfiguration(a)) => (None, a.auth_method_type.to_i32()),
        Some(NewType::SamlConfiguration(_)) => return Err(saml_unsupported()),
        None => {
            return Err(Error::validation(
                "invalid CreateApplicationRequest.ApplicationType: value is required",
            ));
        }
    };
    let new = NewApp {
        project_id: req.project_id.clone(),
        app_id: req.application_id.clone(),
        name: req.name.clone(),
        oidc,
        api_auth_method,
    };
    let created = app.create_app(&caller, new).await?;
    let a = &created.app;
    let secret = created.secret.as_ref().map(|s| s.expose().to_string()).unwrap_or_default();
    let kind = match &a.settings.oidc {
        Some(o) => {
            let problems = compliance(o);
            CreatedType::OidcConfiguration(Box::new(app_pb::CreateOIDCApplicationResponse {
                client_id: a.client_id().to_string(),
                client_secret: secret,
                non_compliant: !problems.is_empty(),
                compliance_problems: problems,
                ..Default::default()
            }))
        }
        None => CreatedType::ApiConfiguration(Box::new(app_pb::CreateAPIApplicationResponse {
            client_id: a.client_id().to_string(),
            client_secret: secret,
            ..Default::default()
        })),
    };
    Ok(app_pb::CreateApplicationResponse {
        application_id: a.id.clone(),
        creation_date: MessageField::some(timestamp(a.created_at)),
        application_type: Some(kind),
        ..Default::default()
    })
}

pub async fn update_application(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::UpdateApplicationRequest,
) -> Result<app_pb::UpdateApplicationResponse> {
    if matches!(req.application_type, Some(UpdateType::SamlConfiguration(_))) {
        return Err(saml_unsupported());
    }
    let change = |s: &mut AppSettings| {
        if !req.name.is_empty() {
            s.name = req.name.clone();
        }
        match (&req.application_type, s.oidc.as_mut()) {
            (Some(UpdateType::OidcConfiguration(u)), Some(o)) => patch_oidc(o, u),
            (Some(UpdateType::ApiConfiguration(u)), None) => {
                s.api_auth_method = u.auth_method_type.to_i32();
            }
            _ => {}
        }
    };
    let at = app.update_app(&caller, &req.project_id, &req.application_id, &change).await?;
    Ok(app_pb::UpdateApplicationResponse {
        change_date: MessageField::some(timestamp(at)),
        ..Default::default()
    })
}

pub async fn get_application(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::GetApplicationRequest,
) -> Result<app_pb::GetApplicationResponse> {
    let a = app.app(&caller, &req.application_id).await?;
    Ok(app_pb::GetApplicationResponse {
        application: MessageField::some(application(&a)),
        ..Default::default()
    })
}

pub async fn delete_application(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::DeleteApplicationRequest,
) -> Result<app_pb::DeleteApplicationResponse> {
    let at = app.delete_app(&caller, &req.project_id, &req.application_id).await?;
    Ok(app_pb::DeleteApplicationResponse {
        deletion_date: MessageField::some(timestamp(at)),
        ..Default::default()
    })
}

pub async fn deactivate_application(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::DeactivateApplicationRequest,
) -> Result<app_pb::DeactivateApplicationResponse> {
    let at = app.set_app_active(&caller, &req.project_id, &req.application_id, false).await?;
    Ok(app_pb::DeactivateApplicationResponse {
        deactivation_date: MessageField::some(timestamp(at)),
        ..Default::default()
    })
}

pub async fn reactivate_application(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::ReactivateApplicationRequest,
) -> Result<app_pb::ReactivateApplicationResponse> {
    let at = app.set_app_active(&caller, &req.project_id, &req.application_id, true).await?;
    Ok(app_pb::ReactivateApplicationResponse {
        reactivation_date: MessageField::some(timestamp(at)),
        ..Default::default()
    })
}

pub async fn generate_client_secret(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::GenerateClientSecretRequest,
) -> Result<app_pb::GenerateClientSecretResponse> {
    let (secret, at) = app.generate_client_secret(&caller, &req.project_id, &req.application_id).await?;
    Ok(app_pb::GenerateClientSecretResponse {
        client_secret: secret.expose().to_string(),
        creation_date: MessageField::some(timestamp(at)),
        ..Default::default()
    })
}

pub async fn list_applications(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::ListApplicationsRequest,
) -> Result<app_pb::ListApplicationsResponse> {
    let mut rows = app.apps(&caller).await?;
    for f in &req.filters {
        match f.filter.as_ref() {
            Some(AppFilter::ProjectIdFilter(p)) => rows.retain(|a| a.settings.project_id == p.project_id),
            Some(AppFilter::NameFilter(n)) => {
                rows.retain(|a| text_matches(n.method.to_i32(), &a.settings.name, &n.name))
            }
            Some(AppFilter::StateFilter(s)) => {
                let wanted = match s.to_i32() {
                    1 => Some(ObjectState::Active),
                    2 => Some(ObjectState::Inactive),
                    3 => Some(ObjectState::Removed),
                    _ => None,
                };
                rows.retain(|a| wanted.is_none_or(|w| a.state == w));
            }
            Some(AppFilter::TypeFilter(t)) => match t.to_i32() {
                1 => rows.retain(|a| a.settings.oidc.is_some()),
                2 => rows.retain(|a| a.settings.oidc.is_none()),
                _ => rows.clear(),
            },
            Some(AppFilter::ClientIdFilter(c)) => rows.retain(|a| a.client_id() == c.client_id),
            Some(AppFilter::EntityIdFilter(_)) => rows.clear(),
            None => {
                return Err(Error::validation("invalid ApplicationSearchFilter.Filter: value is required"));
            }
        }
    }
    match req.sorting_column.to_i32() {
        1 => rows.sort_by(|a, b| a.settings.name.cmp(&b.settings.name)),
        0 => rows.sort_by(|a, b| a.id.cmp(&b.id)),
        4 => rows.sort_by_key(|a| a.changed_at),
        _ => {}
    }
    let (rows, pagination) = page(rows, req.pagination.as_option());
    Ok(app_pb::ListApplicationsResponse {
        applications: rows.iter().map(application).collect(),
        pagination: MessageField::some(pagination),
        ..Default::default()
    })
}
