//! passlink.enrollment.v1.EnrollmentService/CreateRegistrationLinks: registration links for many
//! users in one call (bulk enrollment), with a result per user (the core's `bulk` use case).

use std::sync::Arc;

use passlink_core::app::{App, BulkOutcome, BulkRequest, BulkSelection, Caller, LinkMedium};
use passlink_core::error::{Error, Result};
use passlink_wire::passlink::enrollment::v1 as pb;
use passlink_wire::zitadel::user::v2 as user_pb;

use pb::__buffa::oneof::create_registration_links_request::Medium;
use pb::__buffa::oneof::registration_link_result::Result as Outcome;

/// The selection of the request: exactly one of `userIds` and `organization`; a page token only
/// with an organization.
fn selection(req: &pb::CreateRegistrationLinksRequest) -> Result<BulkSelection> {
    let bad = |cause: &str| Error::validation(format!("invalid CreateRegistrationLinksRequest: {cause}"));
    match (req.user_ids.is_empty(), req.organization.as_option()) {
        (false, Some(_)) => Err(bad("give either userIds or organization, not both")),
        (true, None) => Err(bad("give userIds or organization")),
        (false, None) if !req.page_token.is_empty() => {
            Err(bad("pageToken pages an organization; userIds are not paged"))
        }
        (false, None) => Ok(BulkSelection::Users(req.user_ids.clone())),
        (true, Some(org)) => Ok(BulkSelection::Org {
            org_id: org.org_id.clone(),
            only_without_passkey: org.only_without_passkey,
            page_size: req.page_size as usize,
            page_token: req.page_token.clone(),
        }),
    }
}

/// CreateRegistrationLinks: one page of links, each user's result, and the counts.
pub async fn create_registration_links(
    app: Arc<App>,
    caller: Caller,
    req: pb::CreateRegistrationLinksRequest,
) -> Result<pb::CreateRegistrationLinksResponse> {
    let medium = match &req.medium {
        Some(Medium::ReturnCode(_)) => LinkMedium::Return,
        Some(Medium::SendLink(s)) => LinkMedium::Send { url_template: s.url_template.clone() },
        None => LinkMedium::Send { url_template: None },
    };
    let request =
        BulkRequest { selection: selection(&req)?, medium, idempotency_key: req.idempotency_key.clone() };
    let created = app.create_registration_links(&caller, request).await?;
    let mut summary = pb::RegistrationLinksSummary { skipped: created.skipped, ..Default::default() };
    let results = created
        .results
        .into_iter()
        .map(|r| {
            let mut out = pb::RegistrationLinkResult { user_id: r.user_id, ..Default::default() };
            out.result = Some(match r.outcome {
                Ok(BulkOutcome::Code { code_id, code }) => {
                    summary.created += 1;
                    Outcome::from(user_pb::PasskeyRegistrationCode {
                        id: code_id,
                        code: code.expose().to_string(),
                        ..Default::default()
                    })
                }
                Ok(BulkOutcome::Delivery { code_id, job_id }) => {
                    summary.delivered += 1;
                    Outcome::from(pb::RegistrationLinkDelivery { code_id, job_id, ..Default::default() })
                }
                Ok(BulkOutcome::Replayed { code_id, delivered, job_id }) => {
                    summary.replayed += 1;
                    out.replayed = true;
                    if delivered {
                        let job_id = job_id.unwrap_or_default();
                        Outcome::from(pb::RegistrationLinkDelivery { code_id, job_id, ..Default::default() })
                    } else {
                        Outcome::from(user_pb::PasskeyRegistrationCode { id: code_id, ..Default::default() })
                    }
                }
                Err(e) => {
                    summary.failed += 1;
                    Outcome::from(pb::RegistrationLinkError {
                        code: crate::error::grpc_code(e.kind) as i32,
                        message: e.message(),
                        id: e.id.to_string(),
                        ..Default::default()
                    })
                }
            });
            out
        })
        .collect();
    Ok(pb::CreateRegistrationLinksResponse {
        results,
        next_page_token: created.next_page_token.unwrap_or_default(),
        summary: summary.into(),
        ..Default::default()
    })
}
