//! passlink.enrollment.v1.EnrollmentService: passlink's own RPCs beside ZITADEL's (what ZITADEL's
//! messages have no field for).

use std::sync::Arc;

use passlink_core::app::{App, Caller};
use passlink_core::error::Result;
use passlink_wire::passlink::enrollment::v1 as pb;

use crate::convert::{timestamp, user_v2 as convert};

/// ListPasskeys: the user's READY passkeys with their registration and last use, rp id, backup
/// flags and signature counter (the same passkeys and permission as the v2 ListPasskeys).
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
                name: p.name,
                creation_date: timestamp(p.created_at).into(),
                last_used: p.last_used.map(timestamp).into(),
                rp_id: p.rp_id,
                backup_eligible: p.backup_eligible,
                backed_up: p.backup_state,
                sign_count: p.sign_count,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}
