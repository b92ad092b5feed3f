//! Error mapping: the core's [`Error`] to each protocol's shape, directly, once per protocol.
//!
//! - gRPC, gRPC-web, Connect: [`to_connect`] builds a `ConnectError` with ZITADEL's message
//!   (`"<text> (<id>)"`) and one `zitadel.v1.ErrorDetail{id, message}`; connectrpc renders it as
//!   grpc-status trailers or the Connect JSON error body.
//! - REST: [`to_rest`] renders the same error as grpc-gateway's `google.rpc.Status` JSON with
//!   grpc-gateway's HTTP status ([`http_status`]).
//!
//! [`rest_rejection`] gives a request axum turned down before any RPC the same REST shape.
//! A rate-limited request ([`Error::rate_limited`]) carries when to try again: REST answers it
//! as `Retry-After` ([`rest_response`]), gRPC, gRPC-web and Connect as a `retry-after` response
//! header (whole seconds, rounded up).
//!
//! Both take the core error itself (no protocol error is decoded again), and both log it the same
//! way ([`log`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use connectrpc::{ConnectError, ErrorCode};
use passlink_core::error::{Error, Kind};
use passlink_wire::zitadel::v1::ErrorDetail;

const DETAIL_TYPE: &str = "zitadel.v1.ErrorDetail";

/// The gRPC status code of an error kind.
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

/// The gRPC status code number of an error kind (the request metrics' status of a REST call).
pub fn grpc_code(kind: Kind) -> u32 {
    code(kind).grpc_code()
}

/// grpc-gateway's HTTP status for an error kind (its table for the gRPC code of the kind).
pub fn http_status(kind: Kind) -> StatusCode {
    match kind {
        Kind::InvalidArgument | Kind::FailedPrecondition => StatusCode::BAD_REQUEST,
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::PermissionDenied => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::AlreadyExists | Kind::Aborted => StatusCode::CONFLICT,
        Kind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Kind::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Log a failed request: the internal cause of server-side failures as errors, rejections at
/// debug level (never a secret: the core keeps secrets out of errors).
fn log(e: &Error) {
    match e.kind {
        Kind::Internal | Kind::Unavailable => tracing::error!(id = e.id, error = %e, "request failed"),
        _ => tracing::debug!(id = e.id, error = %e, "request rejected"),
    }
}

/// `Retry-After` of a rate-limited error: whole seconds, rounded up, at least 1.
pub fn retry_after(e: &Error) -> Option<HeaderValue> {
    let after = e.retry_after?;
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    Some(HeaderValue::from(secs.max(1)))
}

/// The core error as a Connect/gRPC error.
pub fn to_connect(e: &Error) -> ConnectError {
    log(e);
    let mut err = ConnectError::new(code(e.kind), e.message());
    if let Some(after) = retry_after(e) {
        err.response_headers_mut().insert(header::RETRY_AFTER, after);
    }
    if e.id.is_empty() {
        return err; // request validation: no details, as protoc-gen-validate in ZITADEL
    }
    let detail = ErrorDetail { id: e.id.to_string(), message: e.text().into_owned(), ..Default::default() };
    err.with_detail(connectrpc::ErrorDetail::from_message(DETAIL_TYPE, &detail))
}

/// The core error as grpc-gateway's `google.rpc.Status` JSON and HTTP status: `{code, message,
/// details}` with `details[].@type = type.googleapis.com/zitadel.v1.ErrorDetail`; an empty
/// message and a validation error's (absent) details are omitted.
pub fn to_rest(e: &Error) -> (StatusCode, serde_json::Value) {
    log(e);
    let mut body = serde_json::Map::new();
    body.insert("code".into(), code(e.kind).grpc_code().into());
    let message = e.message();
    if !message.is_empty() {
        body.insert("message".into(), message.into());
    }
    if !e.id.is_empty() {
        let detail = serde_json::json!({
            "@type": format!("type.googleapis.com/{DETAIL_TYPE}"),
            "id": e.id,
            "message": e.text(),
        });
        body.insert("details".into(), vec![detail].into());
    }
    (http_status(e.kind), serde_json::Value::Object(body))
}

/// The core error as a REST response: [`to_rest`]'s status and JSON, and `Retry-After` when the
/// error says when to try again.
pub fn rest_response(e: &Error) -> Response {
    let (status, json) = to_rest(e);
    let mut r = crate::rest::json_response(status, Bytes::from(json.to_string()));
    if let Some(after) = retry_after(e) {
        r.headers_mut().insert(header::RETRY_AFTER, after);
    }
    r
}

/// A REST request axum turned down before it reached an RPC (a path parameter that is not
/// UTF-8, a body over the size limit): the rejection's HTTP status with grpc-gateway's status
/// JSON, so every REST answer has one error shape. Not logged: nothing reached passlink.
pub fn rest_rejection(status: StatusCode, message: String) -> (StatusCode, serde_json::Value) {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::ResourceExhausted,
        _ => ErrorCode::InvalidArgument,
    };
    (status, serde_json::json!({"code": code.grpc_code(), "message": message}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use base64::Engine as _;
    use buffa::Message as _;

    #[test]
    fn rest_rendering_of_a_domain_error() {
        let e = Error::new(Kind::NotFound, "COMMAND-M9dsd", "Errors.User.NotFound");
        let (status, json) = to_rest(&e);
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
        // Byte for byte what REST answered before (keys in insertion order).
        assert_eq!(
            json.to_string(),
            r#"{"code":5,"message":"User could not be found (COMMAND-M9dsd)","details":[{"@type":"type.googleapis.com/zitadel.v1.ErrorDetail","id":"COMMAND-M9dsd","message":"User could not be found"}]}"#
        );
    }

    #[test]
    fn validation_errors_have_no_details() {
        let e =
            Error::validation("invalid X.UserId: value length must be between 1 and 200 runes, inclusive");
        let (status, json) = to_rest(&e);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json.get("details"), None);
        assert_eq!(json["code"], 3);
        let c = to_connect(&e);
        assert_eq!(c.code, ErrorCode::InvalidArgument);
        assert!(c.details.is_empty());
    }

    #[test]
    fn connect_error_carries_message_and_detail() {
        let e = Error::new(Kind::PermissionDenied, "AUTH-5mWD2", "Errors.Permission.Missing");
        let c = to_connect(&e);
        assert_eq!(c.code, ErrorCode::PermissionDenied);
        assert_eq!(c.message.as_deref(), Some("No matching permissions found (AUTH-5mWD2)"));
        assert_eq!(c.details.len(), 1);
        assert_eq!(c.details[0].type_url.trim_start_matches("type.googleapis.com/"), DETAIL_TYPE);
        let raw = c.details[0].value.as_deref().unwrap();
        let bytes =
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw.trim_end_matches('=')).unwrap();
        let detail = ErrorDetail::decode_from_slice(&bytes).unwrap();
        assert_eq!(
            (detail.id.as_str(), detail.message.as_str()),
            ("AUTH-5mWD2", "No matching permissions found")
        );
    }

    #[test]
    fn a_rate_limited_error_says_when_to_retry_on_every_protocol() {
        let e = Error::rate_limited(std::time::Duration::from_millis(4_200));
        let r = rest_response(&e);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "5");
        let c = to_connect(&e);
        assert_eq!(c.code, ErrorCode::ResourceExhausted);
        assert_eq!(c.response_headers()[header::RETRY_AFTER], "5");
        assert_eq!(c.message.as_deref(), Some("Too many attempts, try again later (LIMIT-Rate1)"));
        let (_, json) = to_rest(&e);
        assert_eq!(json["code"], 8);
        let short = Error::rate_limited(std::time::Duration::from_millis(10));
        assert_eq!(retry_after(&short).unwrap(), "1");
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
            (Kind::Aborted, 409),
            (Kind::ResourceExhausted, 429),
            (Kind::Unimplemented, 501),
            (Kind::Internal, 500),
            (Kind::Unavailable, 503),
        ];
        for (k, s) in cases {
            assert_eq!(http_status(k).as_u16(), s, "{k:?}");
        }
    }
}
