//! passlink.enrollment.v1.EnrollmentService: passlink's own RPCs beside ZITADEL's (what ZITADEL's
//! messages have no field for).

use std::sync::Arc;

use passlink_core::aaguid::Provider;
use passlink_core::app::{App, Caller};
use passlink_core::error::Result;
use passlink_wire::passlink::enrollment::v1 as pb;

use crate::convert::{timestamp, user_v2 as convert};

/// ListPasskeys: the user's READY passkeys with their registration and last use, rp id, backup
/// flags, signature counter and authenticator (AAGUID, provider name and icons) (the same
/// passkeys and permission as the v2 ListPasskeys).
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
            .map(|p| {
                let provider = p.provider.unwrap_or_else(|| Provider {
                    name: String::new(),
                    icon_dark: None,
                    icon_light: None,
                });
                pb::Passkey {
                    id: p.id,
                    name: p.name,
                    creation_date: timestamp(p.created_at).into(),
                    last_used: p.last_used.map(timestamp).into(),
                    rp_id: p.rp_id,
                    backup_eligible: p.backup_eligible,
                    backed_up: p.backup_state,
                    sign_count: p.sign_count,
                    aaguid: p.aaguid.unwrap_or_default(),
                    provider_name: provider.name,
                    provider_icon_light: provider.icon_light.unwrap_or_default(),
                    provider_icon_dark: provider.icon_dark.unwrap_or_default(),
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    })
}

/// RevokeRegistrationCodes: the user's outstanding codes (or the one named) stop working, and
/// their unsent deliveries are cancelled (permission as CreatePasskeyRegistrationLink).
pub async fn revoke_registration_codes(
    app: Arc<App>,
    caller: Caller,
    req: pb::RevokeRegistrationCodesRequest,
) -> Result<pb::RevokeRegistrationCodesResponse> {
    let revoked = app.revoke_codes(&caller, &req.user_id, req.code_id.as_deref()).await?;
    Ok(pb::RevokeRegistrationCodesResponse {
        details: convert::details(&revoked.details).into(),
        revoked_code_ids: revoked.code_ids,
        cancelled_deliveries: revoked.cancelled_deliveries,
        ..Default::default()
    })
}
