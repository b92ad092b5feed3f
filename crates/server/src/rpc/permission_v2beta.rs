//! zitadel.internal_permission.v2beta.InternalPermissionService.

use std::sync::Arc;

use connectrpc::{RequestContext, Response, ServiceRequest, ServiceResult};
use passlink_core::app::App;
use passlink_core::error::{Error, Kind};
use passlink_core::view::Scope;
use passlink_wire::zitadel::internal_permission::v2beta as pb;
use passlink_wire::zitadel::internal_permission::v2beta::__buffa::oneof::resource_type::Resource;

use crate::auth::caller;
use crate::error::to_connect;
use crate::rpc::timestamp;

pub struct InternalPermissionService(pub Arc<App>);

#[allow(refining_impl_trait)]
impl pb::InternalPermissionService for InternalPermissionService {
    async fn create_administrator(
        &self,
        ctx: RequestContext,
        req: ServiceRequest<'_, pb::CreateAdministratorRequest>,
    ) -> ServiceResult<pb::CreateAdministratorResponse> {
        let caller = caller(&ctx)?;
        let req = req.to_owned_message();
        let scope = match req.resource.as_option().and_then(|r| r.resource.as_ref()) {
            Some(Resource::Instance(true)) => Scope::Instance,
            Some(Resource::OrganizationId(id)) if !id.is_empty() => Scope::Org(id.clone()),
            Some(Resource::ProjectId(_) | Resource::ProjectGrant(_)) => {
                return Err(to_connect(&Error::new(
                    Kind::Unimplemented,
                    "PERM-pr0j1",
                    "projects are not part of passlink; grant roles on the instance or an organization",
                )));
            }
            _ => {
                return Err(to_connect(&passlink_core::validate::required(
                    "CreateAdministratorRequest",
                    "Resource",
                )));
            }
        };
        let at = self
            .0
            .create_administrator(&caller, &req.user_id, scope, req.roles)
            .await
            .map_err(|e| to_connect(&e))?;
        Response::ok(pb::CreateAdministratorResponse {
            creation_date: timestamp(at).into(),
            ..Default::default()
        })
    }
}
