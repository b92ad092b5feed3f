//! zitadel.org.v2.OrganizationService.

use std::sync::Arc;

use passlink_core::app::{App, Caller, NewHuman, OrgAdmin};
use passlink_core::error::Result;
use passlink_wire::zitadel::org::v2 as pb;
use passlink_wire::zitadel::org::v2::__buffa::oneof::add_organization_request::admin::UserType;
use passlink_wire::zitadel::user::v2 as user_pb;

use crate::convert::user_v2 as convert;

/// A new admin user: a user v2 AddHumanUserRequest (its organization is the new one).
fn new_human(h: &user_pb::AddHumanUserRequest) -> NewHuman {
    NewHuman {
        user_id: h.user_id.clone(),
        username: h.username.clone(),
        org_id: None,
        profile: convert::human_profile(h.profile.as_option(), h.email.as_option(), h.phone.as_option()),
    }
}

pub async fn add_organization(
    app: Arc<App>,
    caller: Caller,
    req: pb::AddOrganizationRequest,
) -> Result<pb::AddOrganizationResponse> {
    let admins = req
        .admins
        .iter()
        .filter_map(|a| match &a.user_type {
            Some(UserType::UserId(id)) => {
                Some(OrgAdmin::Existing { user_id: id.clone(), roles: a.roles.clone() })
            }
            Some(UserType::Human(h)) => {
                Some(OrgAdmin::New { human: Box::new(new_human(h)), roles: a.roles.clone() })
            }
            None => None,
        })
        .collect();
    let created = app.add_org(&caller, &req.name, req.org_id.as_deref(), admins).await?;
    Ok(pb::AddOrganizationResponse {
        details: convert::details(&created.details).into(),
        organization_id: created.org_id,
        created_admins: created
            .admin_ids
            .into_iter()
            .map(|user_id| pb::add_organization_response::CreatedAdmin { user_id, ..Default::default() })
            .collect(),
        ..Default::default()
    })
}
