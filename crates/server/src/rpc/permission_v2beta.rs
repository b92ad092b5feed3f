//! zitadel.internal_permission.v2beta.InternalPermissionService.

use std::sync::Arc;

use passlink_core::app::{App, Caller};
use passlink_core::error::{Error, Kind, Result};
use passlink_core::view::Scope;
use passlink_wire::zitadel::internal_permission::v2beta as pb;
use passlink_wire::zitadel::internal_permission::v2beta::__buffa::oneof::resource_type::Resource;

use crate::convert::timestamp;

pub async fn create_administrator(
    app: Arc<App>,
    caller: Caller,
    req: pb::CreateAdministratorRequest,
) -> Result<pb::CreateAdministratorResponse> {
    let scope = match req.resource.as_option().and_then(|r| r.resource.as_ref()) {
        Some(Resource::Instance(true)) => Scope::Instance,
        Some(Resource::OrganizationId(id)) if !id.is_empty() => Scope::Org(id.clone()),
        Some(Resource::ProjectId(_) | Resource::ProjectGrant(_)) => {
            return Err(Error::new(
                Kind::Unimplemented,
                "PERM-pr0j1",
                "projects are not part of passlink; grant roles on the instance or an organization",
            ));
        }
        _ => return Err(passlink_core::validate::required("CreateAdministratorRequest", "Resource")),
    };
    let at = app.create_administrator(&caller, &req.user_id, scope, req.roles).await?;
    Ok(pb::CreateAdministratorResponse { creation_date: timestamp(at).into(), ..Default::default() })
}
