//! The generated `PathParams` impls: each path parameter of a REST route sets the request field
//! of the same name; other names change nothing.
#![allow(clippy::unwrap_used)]

use passlink_wire::PathParams;
use passlink_wire::zitadel::user::{v2, v2beta};

#[test]
fn path_parameters_set_their_fields() {
    let mut r = v2::RemovePasskeyRequest::default();
    r.set_path_param("user_id", "1".into());
    r.set_path_param("passkey_id", "2".into());
    r.set_path_param("other", "3".into());
    assert_eq!((r.user_id.as_str(), r.passkey_id.as_str()), ("1", "2"));

    let mut r = v2beta::CreatePasskeyRegistrationLinkRequest::default();
    r.set_path_param("user_id", "7".into());
    assert_eq!(r.user_id, "7");

    // An RPC without a REST binding has an impl that ignores everything.
    let mut r = v2::AddKeyRequest::default();
    r.set_path_param("user_id", "9".into());
    assert_eq!(r, v2::AddKeyRequest::default());
}

#[test]
fn every_route_has_its_parameters_in_braces() {
    for (method, path, rpc, success) in passlink_wire::REST_ROUTES {
        assert!(path.starts_with('/'), "{path}");
        assert!(["GET", "POST", "DELETE", "PUT", "PATCH"].contains(method), "{method}");
        assert!(rpc.contains('/') && !rpc.starts_with('/'), "{rpc}");
        assert!(*success == 200 || *success == 201, "{rpc}: {success}");
    }
}
