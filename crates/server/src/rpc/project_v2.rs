//! zitadel.project.v2.ProjectService: the projects that group an organization's applications
//! (Connect/gRPC only, as in ZITADEL). Each handler converts, calls the core's `oidc::apps` use
//! cases and renders ZITADEL's `Project`.

use std::sync::Arc;

use buffa::{EnumValue, MessageField};
use passlink_core::app::{App, Caller};
use passlink_core::error::{Error, Result};
use passlink_core::oidc::{ObjectState, ProjectSettings, ProjectView};
use passlink_wire::zitadel::project::v2 as project_pb;
use passlink_wire::zitadel::project::v2::__buffa::oneof::project_search_filter::Filter as ProjectFilter;

use super::apps_v2::{page, text_matches};
use crate::convert::timestamp;

fn project(p: &ProjectView) -> project_pb::Project {
    let state = match p.state {
        ObjectState::Active => project_pb::ProjectState::PROJECT_STATE_ACTIVE,
        _ => project_pb::ProjectState::PROJECT_STATE_INACTIVE,
    };
    project_pb::Project {
        project_id: p.id.clone(),
        organization_id: p.org_id.clone(),
        creation_date: MessageField::some(timestamp(p.created_at)),
        change_date: MessageField::some(timestamp(p.changed_at)),
        name: p.settings.name.clone(),
        state: state.into(),
        project_role_assertion: p.settings.role_assertion,
        authorization_required: p.settings.authorization_required,
        project_access_required: p.settings.project_access_required,
        private_labeling_setting: EnumValue::from(p.settings.private_labeling_setting),
        ..Default::default()
    }
}

pub async fn create_project(
    app: Arc<App>,
    caller: Caller,
    req: project_pb::CreateProjectRequest,
) -> Result<project_pb::CreateProjectResponse> {
    let settings = ProjectSettings {
        name: req.name.clone(),
        role_assertion: req.project_role_assertion,
        authorization_required: req.authorization_required,
        project_access_required: req.project_access_required,
        private_labeling_setting: req.private_labeling_setting.to_i32(),
    };
    let (id, at) =
        app.create_project(&caller, &req.organization_id, req.project_id.as_deref(), settings).await?;
    Ok(project_pb::CreateProjectResponse {
        project_id: id,
        creation_date: MessageField::some(timestamp(at)),
        ..Default::default()
    })
}

pub async fn update_project(
    app: Arc<App>,
    caller: Caller,
    req: project_pb::UpdateProjectRequest,
) -> Result<project_pb::UpdateProjectResponse> {
    let change = |s: &mut ProjectSettings| {
        if let Some(n) = &req.name {
            s.name = n.clone();
        }
        if let Some(v) = req.project_role_assertion {
            s.role_assertion = v;
        }
        if let Some(v) = req.authorization_required {
            s.authorization_required = v;
        }
        if let Some(v) = req.project_access_required {
            s.project_access_required = v;
        }
        if let Some(v) = &req.private_labeling_setting {
            s.private_labeling_setting = v.to_i32();
        }
    };
    let at = app.update_project(&caller, &req.project_id, &change).await?;
    Ok(project_pb::UpdateProjectResponse {
        change_date: MessageField::some(timestamp(at)),
        ..Default::default()
    })
}

pub async fn delete_project(
    app: Arc<App>,
    caller: Caller,
    req: project_pb::DeleteProjectRequest,
) -> Result<project_pb::DeleteProjectResponse> {
    let at = app.delete_project(&caller, &req.project_id).await?;
    Ok(project_pb::DeleteProjectResponse { deletion_date: at.map(timestamp).into(), ..Default::default() })
}

pub async fn get_project(
    app: Arc<App>,
    caller: Caller,
    req: project_pb::GetProjectRequest,
) -> Result<project_pb::GetProjectResponse> {
    let p = app.project(&caller, &req.project_id).await?;
    Ok(project_pb::GetProjectResponse { project: MessageField::some(project(&p)), ..Default::default() })
}

pub async fn deactivate_project(
    app: Arc<App>,
    caller: Caller,
    req: project_pb::DeactivateProjectRequest,
) -> Result<project_pb::DeactivateProjectResponse> {
    let at = app.set_project_active(&caller, &req.project_id, false).await?;
    Ok(project_pb::DeactivateProjectResponse {
        change_date: MessageField::some(timestamp(at)),
        ..Default::default()
    })
}

pub async fn activate_project(
    app: Arc<App>,
    caller: Caller,
    req: project_pb::ActivateProjectRequest,
) -> Result<project_pb::ActivateProjectResponse> {
    let at = app.set_project_active(&caller, &req.project_id, true).await?;
    Ok(project_pb::ActivateProjectResponse {
        change_date: MessageField::some(timestamp(at)),
        ..Default::default()
    })
}

pub async fn list_projects(
    app: Arc<App>,
    caller: Caller,
    req: project_pb::ListProjectsRequest,
) -> Result<project_pb::ListProjectsResponse> {
    let mut rows = app.projects(&caller).await?;
    for f in &req.filters {
        match f.filter.as_ref() {
            Some(ProjectFilter::ProjectNameFilter(n)) => {
                rows.retain(|p| text_matches(n.method.to_i32(), &p.settings.name, &n.project_name))
            }
            Some(ProjectFilter::InProjectIdsFilter(ids)) => rows.retain(|p| ids.ids.contains(&p.id)),
            Some(ProjectFilter::OrganizationIdFilter(o)) => rows.retain(|p| p.org_id == o.organization_id),
            None => return Err(Error::validation("invalid ProjectSearchFilter.Filter: value is required")),
        }
    }
    match req.sorting_column.as_ref().map(EnumValue::to_i32).unwrap_or(0) {
        4 => rows.sort_by(|a, b| a.settings.name.cmp(&b.settings.name)),
        1 => rows.sort_by(|a, b| a.id.cmp(&b.id)),
        3 => rows.sort_by_key(|p| p.changed_at),
        _ => {}
    }
    let (rows, pagination) = page(rows, req.pagination.as_option());
    Ok(project_pb::ListProjectsResponse {
        pagination: MessageField::some(pagination),
        projects: rows.iter().map(project).collect(),
        ..Default::default()
    })
}
