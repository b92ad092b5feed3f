//! passlink.admin.v1.AdminService: the operator's view of a running server (`passlink status`).

use std::sync::Arc;

use buffa_types::google::protobuf::Duration;
use passlink_core::app::{App, Caller};
use passlink_core::error::Result;
use passlink_wire::passlink::admin::v1 as pb;

use crate::convert::timestamp;

/// GetStatus: version, store, readiness, uptime, outbox depth, events backlog (instance-wide
/// `iam.read`).
pub async fn get_status(
    app: Arc<App>,
    caller: Caller,
    _req: pb::GetStatusRequest,
) -> Result<pb::GetStatusResponse> {
    let s = app.status(&caller).await?;
    let uptime_secs = (s.now.0 - s.started_at.0).max(0) / 1_000_000_000;
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(pb::GetStatusResponse {
        version: s.version.to_string(),
        store: s.store_kind.to_string(),
        store_ready: s.store_ready,
        start_time: timestamp(s.started_at).into(),
        uptime: Duration::from_secs(uptime_secs).into(),
        outbox: pb::OutboxDepth {
            pending: count(s.outbox.pending),
            in_flight: count(s.outbox.in_flight),
            failed: count(s.outbox.failed),
            ..Default::default()
        }
        .into(),
        events_backlog: count(s.events_backlog),
        ..Default::default()
    })
}
