//! REST/JSON (grpc-gateway style) decoding and encoding: a request body (and a GET's query
//! string) decoded once into the typed request ([`decode_body`], [`decode_request`]), JSON
//! responses, and the OpenAPI document of the routes served ([`openapi_document`]). The routes themselves, one per `google.api.http` binding, are built from the RPC
//! table by [`Api::rest_routes`](crate::api::Api::rest_routes), which calls these functions; this
//! module imports nothing of the crate.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use connectrpc::JsonDeserialize;
use passlink_core::error::{Error, Result};

pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A request body as the request message, decoded once with protojson's rules as buffa
/// implements them (lowerCamelCase and proto field names, unknown fields ignored). An empty body
/// is an empty object; malformed JSON or a body that is not an object is a 400.
pub fn decode_body<Req: JsonDeserialize + Default>(body: &[u8]) -> Result<Req> {
    let text = body.trim_ascii_start();
    if text.is_empty() {
        return Ok(Req::default());
    }
    if !text.starts_with(b"{") {
        // Not an object: tell a JSON value from garbage (only on this error path).
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(text) {
            Ok(_) => Error::validation("request body must be a JSON object"),
            Err(e) => malformed(&e),
        });
    }
    serde_json::from_slice(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Error::validation(format!("failed to decode JSON: {e}")),
        _ => malformed(&e),
    })
}

/// A request from its body and its query string, grpc-gateway style: each query parameter sets
/// the request field its name is the path of (`sessionToken`, `session_token`,
/// `domainQuery.includeWithoutDomain`: lowerCamel or proto names, dotted for nested messages; a
/// repeated key gives a repeated field). Query fields win over the body's. Values arrive as
/// strings; protojson accepts strings for numbers and enum names, and `true`/`false` are tried
/// as booleans first. An unknown parameter is ignored like an unknown JSON field.
pub fn decode_request<Req: JsonDeserialize + Default>(body: &[u8], query: Option<&str>) -> Result<Req> {
    let query = query.unwrap_or_default();
    if query.is_empty() {
        return decode_body(body);
    }
    let base = if body.trim_ascii_start().is_empty() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        // Checks the body's shape with the usual errors first.
        decode_body::<Req>(body)?;
        serde_json::from_slice(body).map_err(|e| malformed(&e))?
    };
    let mut fields: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match fields.iter_mut().find(|(name, _)| *name == k) {
            Some((_, values)) => values.push(v.into_owned()),
            None => fields.push((k.into_owned(), vec![v.into_owned()])),
        }
    }
    // Attempts, in order: booleans recognised; plain strings; every value as a list.
    let mut first_error = None;
    for (bools, lists) in [(true, false), (false, false), (true, true)] {
        let mut candidate = base.clone();
        for (path, values) in &fields {
            let leaf = |v: &String| match v.as_str() {
                "true" if bools => serde_json::Value::Bool(true),
                "false" if bools => serde_json::Value::Bool(false),
                _ => serde_json::Value::String(v.clone()),
            };
            let value = if values.len() > 1 || lists {
                serde_json::Value::Array(values.iter().map(leaf).collect())
            } else {
                leaf(&values[0])
            };
            set_path(&mut candidate, path, value);
        }
        match serde_json::from_value::<Req>(candidate) {
            Ok(r) => return Ok(r),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(Error::validation(format!(
        "failed to decode the query string: {}",
        first_error.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// The generated OpenAPI document ([`passlink_wire::OPENAPI_JSON`]) reduced to the operations
/// whose RPC (`x-rpc`) is `served`: a binding without a handler is not routed, so it is not
/// documented either.
pub fn openapi_document(served: impl Fn(&str) -> bool) -> Bytes {
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(passlink_wire::OPENAPI_JSON) else {
        return Bytes::from_static(passlink_wire::OPENAPI_JSON.as_bytes());
    };
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for operations in paths.values_mut() {
            if let Some(operations) = operations.as_object_mut() {
                operations.retain(|_, op| op.get("x-rpc").and_then(|r| r.as_str()).is_some_and(&served));
            }
        }
        paths.retain(|_, operations| operations.as_object().is_some_and(|o| !o.is_empty()));
    }
    Bytes::from(doc.to_string())
}

/// Set `value` at the dotted `path` of a JSON object, creating objects on the way.
fn set_path(root: &mut serde_json::Value, path: &str, value: serde_json::Value) {
    let mut node = root;
    let mut parts = path.split('.').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        if !node.is_object() {
            *node = serde_json::Value::Object(serde_json::Map::new());
        }
        let serde_json::Value::Object(map) = node else { return };
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        node =
            map.entry(part.to_string()).or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    }
}

fn malformed(e: &serde_json::Error) -> Error {
    Error::validation(format!("malformed JSON in request body: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use passlink_core::error::Kind;
    use passlink_wire::PathParams;
    use passlink_wire::zitadel::user::v2 as pb;
    use passlink_wire::zitadel::user::v2beta;

    use super::*;

    type Link = v2beta::CreatePasskeyRegistrationLinkRequest;

    fn message(e: Error) -> String {
        assert_eq!(e.kind, Kind::InvalidArgument);
        assert_eq!(e.id, "", "request errors carry no details");
        e.message()
    }

    #[test]
    fn path_params_override_the_body() {
        let mut r: Link = decode_body(br#"{"user_id":"1","userId":"2","returnCode":{}}"#).unwrap();
        r.set_path_param("user_id", "42".into());
        assert_eq!(r.user_id, "42");
        assert!(r.medium.is_some());
        let mut v: pb::VerifyPasskeyRegistrationRequest = decode_body(b"").unwrap();
        v.set_path_param("user_id", "1".into());
        v.set_path_param("passkey_id", "2".into());
        v.set_path_param("unknown", "3".into());
        assert_eq!((v.user_id.as_str(), v.passkey_id.as_str()), ("1", "2"));
    }

    #[test]
    fn snake_case_and_unknown_fields_are_accepted() {
        let r: Link =
            decode_body(br#"{"user_id":"7","send_link":{"url_template":"https://x"},"nope":1}"#).unwrap();
        assert_eq!(r.user_id, "7");
        let r: pb::AddHumanUserRequest =
            decode_body(br#"{"profile":{"given_name":"A","familyName":"B"},"extra":{"deep":[1]}}"#).unwrap();
        assert_eq!(r.profile.as_option().map(|p| p.given_name.as_str()), Some("A"));
    }

    #[test]
    fn an_empty_body_is_an_empty_object() {
        assert_eq!(decode_body::<Link>(b"").unwrap(), Link::default());
        assert_eq!(decode_body::<Link>(b" \n ").unwrap(), Link::default());
        assert_eq!(decode_body::<Link>(b"{}").unwrap(), Link::default());
    }

    #[test]
    fn malformed_json_is_a_clear_400() {
        let m = message(decode_body::<Link>(b"{nope").unwrap_err());
        assert!(m.contains("malformed JSON"), "{m}");
        let m = message(decode_body::<Link>(br#"{"userId": "#).unwrap_err());
        assert!(m.contains("malformed JSON"), "{m}");
        let m = message(decode_body::<Link>(b"nope").unwrap_err());
        assert!(m.contains("malformed JSON"), "{m}");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_a_400() {
        for body in [&b"[]"[..], b"\"x\"", b"5", b"null"] {
            assert_eq!(message(decode_body::<Link>(body).unwrap_err()), "request body must be a JSON object");
        }
    }

    #[test]
    fn the_query_string_sets_request_fields() {
        use passlink_wire::zitadel::session::v2 as session;
        let r: session::GetSessionRequest = decode_request(b"", Some("sessionToken=a%2Bb&nope=1")).unwrap();
        assert_eq!(r.session_token.as_deref(), Some("a+b"));
        let r: session::GetSessionRequest = decode_request(b"", Some("session_token=t")).unwrap();
        assert_eq!(r.session_token.as_deref(), Some("t"));
        // "true" stays a string where the field is one
        let r: session::GetSessionRequest = decode_request(b"", Some("sessionToken=true")).unwrap();
        assert_eq!(r.session_token.as_deref(), Some("true"));
        // dotted paths, numbers as strings, repeated keys, and over a body
        let r: session::ListSessionsRequest = decode_request(
            br#"{"query":{"limit":5}}"#,
            Some("query.offset=3&query.asc=true&sorting_column=SESSION_FIELD_NAME_CREATION_DATE"),
        )
        .unwrap();
        let q = r.query.as_option().unwrap();
        assert_eq!((q.offset, q.limit, q.asc), (3, 5, true));
        assert_eq!(r.sorting_column.to_i32(), 1);
        let r: session::IDsQuery = decode_request(b"", Some("ids=a&ids=b")).unwrap();
        assert_eq!(r.ids, ["a", "b"]);
        let r: session::IDsQuery = decode_request(b"", Some("ids=a")).unwrap();
        assert_eq!(r.ids, ["a"]);
        let e = decode_request::<session::ListSessionsRequest>(b"", Some("query.limit=x")).unwrap_err();
        assert!(message(e).starts_with("failed to decode the query string"));
    }

    #[test]
    fn wrong_types_and_both_oneof_members_are_400s() {
        let m = message(decode_body::<Link>(br#"{"userId":5}"#).unwrap_err());
        assert!(m.starts_with("failed to decode JSON"), "{m}");
        let both = br#"{"userId":"1","sendLink":{},"returnCode":{}}"#;
        assert!(decode_body::<Link>(both).is_err());
    }
}
