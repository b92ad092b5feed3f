//! Error mapping: the core's [`Error`] to each protocol's shape, in one place.
//!
//! - gRPC, gRPC-web, Connect: [`to_connect`] builds a `ConnectError` with ZITADEL's message
//!   (`"<text> (<id>)"`) and one `zitadel.v1.ErrorDetail{id, message}`; connectrpc renders it as
//!   grpc-status trailers or the Connect JSON error body.
//! - REST: [`rest_status`] renders a `ConnectError` as grpc-gateway's `google.rpc.Status` JSON.

use axum::http::StatusCode;
use base64::Engine as _;
use buffa::Message as _;
use connectrpc::{ConnectError, ErrorCode};
use passlink_core::error::{Error, Kind};
use passlink_wire::zitadel::v1::ErrorDetail;

const DETAIL_TYPE: &str = "zitadel.v1.ErrorDetail";

fn code(kind: Kind) -> ErrorCode {
    match kind {
        Kind::InvalidArgument => ErrorCode::InvalidArgument,
        Kind::FailedPrecondition => ErrorCode::FailedPrecondition,
        Kind::NotFound => ErrorCode::NotFound,
        Kind::AlreadyExists => ErrorCode::AlreadyExists,
        Kind::PermissionDenied => ErrorCode::PermissionDenied,
        Kind::Unauthenticated => ErrorCode::Unauthenticated,
        Kind::Aborted => ErrorCode::Aborted,
        Kind::ResourceExhausted => ErrorCode::ResourceExhausted,
        Kind::Unimplemented => ErrorCode::Unimplemented,
        Kind::Unavailable => ErrorCode::Unavailable,
        Kind::Internal => ErrorCode::Internal,
    }
}

/// The core error as a Connect/gRPC error. Logs the internal cause (never a secret).
pub fn to_connect(e: &Error) -> ConnectError {
    match e.kind {
        Kind::Internal | Kind::Unavailable => tracing::error!(id = e.id, error = %e, "request failed"),
        _ => tracing::debug!(id = e.id, error = %e, "request rejected"),
    }
    let err = ConnectError::new(code(e.kind), e.message());
    if e.id.is_empty() {
        return err; // request validation: no details, as protoc-gen-validate in ZITADEL
    }
    let detail = ErrorDetail { id: e.id.to_string(), message: e.text().into_owned(), ..Default::default() };
    err.with_detail(connectrpc::ErrorDetail::from_message(DETAIL_TYPE, &detail))
}

/// grpc-gateway's HTTP status for a gRPC code.
pub fn http_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidArgument | ErrorCode::FailedPrecondition | ErrorCode::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists | ErrorCode::Aborted => StatusCode::CONFLICT,
        ErrorCode::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        ErrorCode::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A `ConnectError` as grpc-gateway's `google.rpc.Status` JSON: `{code, message, details}` with
/// `details[].@type = type.googleapis.com/zitadel.v1.ErrorDetail`. Empty fields are omitted.
pub fn rest_status(err: &ConnectError) -> (StatusCode, serde_json::Value) {
    let mut body = serde_json::Map::new();
    body.insert("code".into(), err.code.grpc_code().into());
    if let Some(m) = err.message.as_deref().filter(|m| !m.is_empty()) {
        body.insert("message".into(), m.into());
    }
    let details: Vec<serde_json::Value> = err
        .details
        .iter()
        .filter(|d| d.type_url.trim_start_matches("type.googleapis.com/") == DETAIL_TYPE)
        .filter_map(|d| {
            let raw = d.value.as_deref()?;
            let bytes =
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw.trim_end_matches('=')).ok()?;
            let detail = ErrorDetail::decode_from_slice(&bytes).ok()?;
            Some(serde_json::json!({
                "@type": format!("type.googleapis.com/{DETAIL_TYPE}"),
                "id": detail.id,
                "message": detail.message,
            }))
        })
        .collect();
    if !details.is_empty() {
        body.insert("details".into(), details.into());
    }
    (http_status(err.code), serde_json::Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_rendering_of_a_domain_error() {
        let e = Error::new(Kind::NotFound, "COMMAND-M9dsd", "Errors.User.NotFound");
        let (status, json) = rest_status(&to_connect(&e));
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            json,
            serde_json::json!({
                "code": 5,
                "message": "User could not be found (COMMAND-M9dsd)",
                "details": [{
                    "@type": "type.googleapis.com/zitadel.v1.ErrorDetail",
                    "id": "COMMAND-M9dsd",
                    "message": "User could not be found"
                }]
            })
        );
    }

    #[test]
    fn validation_errors_have_no_details() {
        let e =
            Error::validation("invalid X.UserId: value length must be between 1 and 200 runes, inclusive");
        let (status, json) = rest_status(&to_connect(&e));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json.get("details"), None);
        assert_eq!(json["code"], 3);
    }

    #[test]
    fn status_table_matches_grpc_gateway() {
        let cases = [
            (Kind::InvalidArgument, 400),
            (Kind::FailedPrecondition, 400),
            (Kind::NotFound, 404),
            (Kind::PermissionDenied, 403),
            (Kind::Unauthenticated, 401),
            (Kind::AlreadyExists, 409),
            (Kind::Internal, 500),
            (Kind::Unavailable, 503),
        ];
        for (k, s) in cases {
            assert_eq!(http_status(code(k)).as_u16(), s, "{k:?}");
        }
    }
}
