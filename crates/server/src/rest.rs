//! REST/JSON (grpc-gateway style) routes, one per `google.api.http` binding in the protos
//! ([`passlink_wire::REST_ROUTES`]). Each route merges its path parameters into the JSON body and
//! calls the same authenticated dispatcher as the RPC protocols, then renders errors as
//! `google.rpc.Status` JSON.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use connectrpc::{CodecFormat, ConnectError, Dispatcher, Payload, RequestContext};

use crate::error::rest_status;

/// `user_id` → `userId`.
fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut up = false;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error_response(err: &ConnectError) -> Response {
    let (status, json) = rest_status(err);
    json_response(status, Bytes::from(json.to_string()))
}

/// The request body as a JSON object with the path parameters set (path wins, as in the gateway).
fn merge_body(body: &[u8], params: HashMap<String, String>) -> Result<Bytes, ConnectError> {
    let mut obj = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => return Err(ConnectError::invalid_argument("request body must be a JSON object")),
            Err(e) => {
                return Err(ConnectError::invalid_argument(format!("malformed JSON in request body: {e}")));
            }
        }
    };
    for (k, v) in params {
        obj.remove(&k);
        obj.insert(lower_camel(&k), serde_json::Value::String(v));
    }
    serde_json::to_vec(&obj).map(Bytes::from).map_err(|e| ConnectError::internal(e.to_string()))
}

/// The REST routes, each calling `dispatcher` (the authenticated service chain).
pub fn routes<D: Dispatcher>(dispatcher: Arc<D>) -> Router {
    let mut router = Router::new();
    for &(method, path, rpc, success) in passlink_wire::REST_ROUTES {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "DELETE" => MethodFilter::DELETE,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            _ => MethodFilter::POST,
        };
        let d = dispatcher.clone();
        let success = StatusCode::from_u16(success).unwrap_or(StatusCode::OK);
        let handler = move |Path(params): Path<HashMap<String, String>>, headers: HeaderMap, body: Bytes| {
            let d = d.clone();
            async move {
                let json = match merge_body(&body, params) {
                    Ok(j) => j,
                    Err(e) => return error_response(&e),
                };
                let ctx = RequestContext::new(headers).with_path(rpc);
                match d.call_unary(rpc, ctx, Payload::new(json, CodecFormat::Json), CodecFormat::Json).await {
                    Ok(resp) => json_response(success, resp.body.into_contiguous()),
                    Err(e) => error_response(&e),
                }
            }
        };
        router = router.route(path, on(filter, handler));
    }
    // A known path with another method: grpc-gateway answers 405 with code 12 (Unimplemented).
    router.method_not_allowed_fallback(|| async {
        let body = serde_json::json!({"code": 12, "message": "Method Not Allowed"}).to_string();
        json_response(StatusCode::METHOD_NOT_ALLOWED, Bytes::from(body))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case() {
        assert_eq!(lower_camel("user_id"), "userId");
        assert_eq!(lower_camel("passkey_id"), "passkeyId");
    }

    #[test]
    fn path_params_override_body() {
        let p = HashMap::from([("user_id".to_string(), "42".to_string())]);
        let b = merge_body(br#"{"user_id":"1","userId":"2","returnCode":{}}"#, p).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v, serde_json::json!({"returnCode":{}, "userId":"42"}));
    }

    #[test]
    fn malformed_json_is_a_clear_400() {
        let e = merge_body(b"{nope", HashMap::new()).unwrap_err();
        assert_eq!(e.code, connectrpc::ErrorCode::InvalidArgument);
        assert!(e.message.unwrap_or_default().contains("malformed JSON"));
    }
}
