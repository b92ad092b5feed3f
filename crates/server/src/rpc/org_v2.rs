//! zitadel.org.v2.OrganizationService.

use std::sync::Arc;

use connectrpc::{RequestContext, Response, ServiceRequest, ServiceResult};
use passlink_core::app::{App, NewHuman, OrgAdmin};
use passlink_core::event::HumanProfile;
use passlink_wire::zitadel::org::v2 as pb;
use passlink_wire::zitadel::org::v2::__buffa::oneof::add_organization_request::admin::UserType;
use passlink_wire::zitadel::user::v2 as user_pb;

use crate::auth::caller;
use crate::error::to_connect;
use crate::rpc::timestamp;

pub struct OrganizationService(pub Arc<App>);

fn new_human(h: &user_pb::AddHumanUserRequest) -> NewHuman {
    let p = h.profile.as_option().cloned().unwrap_or_default();
    let e = h.email.as_option().cloned().unwrap_or_default();
    NewHuman {
        user_id: h.user_id.clone(),
        username: h.username.clone(),
        org_id: None,
        profile: HumanProfile {
            given_name: p.given_name,
            family_name: p.family_name,
            nick_name: p.nick_name.unwrap_or_default(),
            display_name: p.display_name.unwrap_or_default(),
            preferred_language: p.preferred_language.unwrap_or_default(),
            gender: p.gender.map(|g| g.to_i32()).unwrap_or_default(),
            email_verified: matches!(
                e.verification,
                Some(user_pb::__buffa::oneof::set_human_email::Verification::IsVerified(true))
            ),
            email: e.email,
            ..Default::default()
        },
    }
}

#[allow(refining_impl_trait)]
impl pb::OrganizationService for OrganizationService {
    async fn add_organization(
        &self,
        ctx: RequestContext,
        req: ServiceRequest<'_, pb::AddOrganizationRequest>,
    ) -> ServiceResult<pb::AddOrganizationResponse> {
        let caller = caller(&ctx)?;
        let req = req.to_owned_message();
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
        let created = self
            .0
            .add_org(&caller, &req.name, req.org_id.as_deref(), admins)
            .await
            .map_err(|e| to_connect(&e))?;
        let d = &created.details;
        Response::ok(pb::AddOrganizationResponse {
            details: passlink_wire::zitadel::object::v2::Details {
                sequence: d.sequence,
                change_date: timestamp(d.change_date).into(),
                resource_owner: d.resource_owner.clone(),
                creation_date: d.creation_date.map(timestamp).into(),
                ..Default::default()
            }
            .into(),
            organization_id: created.org_id,
            created_admins: created
                .admin_ids
                .into_iter()
                .map(|user_id| pb::add_organization_response::CreatedAdmin { user_id, ..Default::default() })
                .collect(),
            ..Default::default()
        })
    }
}
