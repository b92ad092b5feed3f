//! zitadel.application.v2.ApplicationService's application keys (`private_key_jwt` clients):
//! create (the private half is returned once), get, list, delete.

use std::sync::Arc;

use buffa::MessageField;
use passlink_core::app::{App, Caller};
use passlink_core::error::{Error, Kind, Result};
use passlink_core::oidc::AppView;
use passlink_wire::zitadel::application::v2 as app_pb;

use super::apps_v2::page;
use crate::convert::timestamp;

fn app_key(a: &AppView, k: &passlink_core::oidc::AppKey) -> app_pb::ApplicationKey {
    app_pb::ApplicationKey {
        key_id: k.id.clone(),
        application_id: a.id.clone(),
        project_id: a.settings.project_id.clone(),
        creation_date: MessageField::some(timestamp(k.created_at)),
        organization_id: a.org_id.clone(),
        expiration_date: MessageField::some(timestamp(k.expiration)),
        ..Default::default()
    }
}

pub async fn create_application_key(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::CreateApplicationKeyRequest,
) -> Result<app_pb::CreateApplicationKeyResponse> {
    let expiration = req.expiration_date.as_option().map(crate::convert::from_timestamp);
    let (key_id, at, file) =
        app.add_app_key(&caller, &req.project_id, &req.application_id, expiration).await?;
    Ok(app_pb::CreateApplicationKeyResponse {
        key_id,
        creation_date: MessageField::some(timestamp(at)),
        key_details: file.expose().as_bytes().to_vec(),
        ..Default::default()
    })
}

pub async fn delete_application_key(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::DeleteApplicationKeyRequest,
) -> Result<app_pb::DeleteApplicationKeyResponse> {
    let at = app.remove_app_key(&caller, &req.project_id, &req.application_id, &req.key_id).await?;
    Ok(app_pb::DeleteApplicationKeyResponse {
        deletion_date: MessageField::some(timestamp(at)),
        ..Default::default()
    })
}

pub async fn get_application_key(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::GetApplicationKeyRequest,
) -> Result<app_pb::GetApplicationKeyResponse> {
    let keys = app.app_keys(&caller).await?;
    let (_, k) = keys
        .iter()
        .find(|(_, k)| k.id == req.key_id)
        .ok_or_else(|| Error::new(Kind::NotFound, "QUERY-SDf32", "Errors.Project.App.Key.NotFound"))?;
    Ok(app_pb::GetApplicationKeyResponse {
        key_id: k.id.clone(),
        creation_date: MessageField::some(timestamp(k.created_at)),
        expiration_date: MessageField::some(timestamp(k.expiration)),
        ..Default::default()
    })
}

pub async fn list_application_keys(
    app: Arc<App>,
    caller: Caller,
    req: app_pb::ListApplicationKeysRequest,
) -> Result<app_pb::ListApplicationKeysResponse> {
    use passlink_wire::zitadel::application::v2::__buffa::oneof::application_key_search_filter::Filter as KeyFilter;
    let mut rows = app.app_keys(&caller).await?;
    for f in &req.filters {
        match f.filter.as_ref() {
            Some(KeyFilter::ApplicationIdFilter(x)) => rows.retain(|(a, _)| a.id == x.application_id),
            Some(KeyFilter::ProjectIdFilter(x)) => {
                rows.retain(|(a, _)| a.settings.project_id == x.project_id)
            }
            Some(KeyFilter::OrganizationIdFilter(x)) => rows.retain(|(a, _)| a.org_id == x.organization_id),
            None => {
                return Err(Error::validation(
                    "invalid ApplicationKeySearchFilter.Filter: value is required",
                ));
            }
        }
    }
    rows.sort_by(|a, b| (a.1.created_at, &a.1.id).cmp(&(b.1.created_at, &b.1.id)));
    let (rows, pagination) = page(rows, req.pagination.as_option());
    Ok(app_pb::ListApplicationKeysResponse {
        keys: rows.iter().map(|(a, k)| app_key(a, k)).collect(),
        pagination: MessageField::some(pagination),
        ..Default::default()
    })
}
