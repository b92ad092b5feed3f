//! Golden protojson: buffa's serde-based JSON must render what grpc-gateway/protojson render,
//! because ZITADEL's REST clients parse it. Guards the pre-1.0 codegen against drift.
#![allow(clippy::unwrap_used)]

use buffa_types::google::protobuf::Timestamp;
use passlink_wire::zitadel::object::v2beta::Details;
use passlink_wire::zitadel::user::v2beta as pb;
use serde_json::json;

fn details(secs: i64, nanos: i32) -> serde_json::Value {
    let d = Details {
        sequence: 3,
        change_date: Timestamp::from_unix(secs, nanos).into(),
        resource_owner: "258123456789012345".into(),
        ..Default::default()
    };
    serde_json::to_value(&d).unwrap()
}

#[test]
fn timestamps_are_rfc3339_utc_trimmed_to_0_3_6_or_9_digits() {
    let t = 1_735_725_600; // 2025-01-01T10:00:00Z
    assert_eq!(details(t, 0)["changeDate"], "2025-01-01T10:00:00Z");
    assert_eq!(details(t, 123_000_000)["changeDate"], "2025-01-01T10:00:00.123Z");
    assert_eq!(details(t, 123_456_000)["changeDate"], "2025-01-01T10:00:00.123456Z");
    assert_eq!(details(t, 123_456_789)["changeDate"], "2025-01-01T10:00:00.123456789Z");
}

#[test]
fn uint64_is_a_string_and_empty_fields_are_omitted() {
    let v = details(1_735_725_600, 123_456_000);
    assert_eq!(
        v,
        json!({"sequence": "3", "changeDate": "2025-01-01T10:00:00.123456Z", "resourceOwner": "258123456789012345"})
    );
    let empty = serde_json::to_value(Details::default()).unwrap();
    assert_eq!(empty, json!({}));
}

#[test]
fn create_link_response_matches_the_documented_example() {
    let r = pb::CreatePasskeyRegistrationLinkResponse {
        details: Details {
            sequence: 3,
            change_date: Timestamp::from_unix(1_735_725_600, 123_456_000).into(),
            resource_owner: "258123456789012345".into(),
            ..Default::default()
        }
        .into(),
        code: pb::PasskeyRegistrationCode {
            id: "258123456789012399".into(),
            code: "2KEpIeQGSBBd".into(),
            ..Default::default()
        }
        .into(),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"details":{"sequence":"3","changeDate":"2025-01-01T10:00:00.123456Z","resourceOwner":"258123456789012345"},"code":{"id":"258123456789012399","code":"2KEpIeQGSBBd"}}"#
    );
}

#[test]
fn oneof_and_names_on_input() {
    use pb::__buffa::oneof::create_passkey_registration_link_request::Medium;
    let camel: pb::CreatePasskeyRegistrationLinkRequest =
        serde_json::from_str(r#"{"userId":"1","sendLink":{"urlTemplate":"x"}}"#).unwrap();
    let snake: pb::CreatePasskeyRegistrationLinkRequest =
        serde_json::from_str(r#"{"user_id":"1","send_link":{"url_template":"x"},"unknownField":1}"#).unwrap();
    assert_eq!(camel, snake);
    assert!(matches!(camel.medium, Some(Medium::SendLink(ref s)) if s.url_template.as_deref() == Some("x")));
    let ret: pb::CreatePasskeyRegistrationLinkRequest =
        serde_json::from_str(r#"{"userId":"1","returnCode":{}}"#).unwrap();
    assert!(matches!(ret.medium, Some(Medium::ReturnCode(_))));
    let both = serde_json::from_str::<pb::CreatePasskeyRegistrationLinkRequest>(
        r#"{"userId":"1","sendLink":{},"returnCode":{}}"#,
    );
    assert!(both.is_err());
}

#[test]
fn enums_render_by_name() {
    let u = pb::User { state: pb::UserState::USER_STATE_ACTIVE.into(), ..Default::default() };
    assert_eq!(serde_json::to_value(&u).unwrap(), json!({"state": "USER_STATE_ACTIVE"}));
}

#[test]
fn rest_routes_come_from_the_protos() {
    let link = passlink_wire::REST_ROUTES
        .iter()
        .find(|r| r.2 == "zitadel.user.v2beta.UserService/CreatePasskeyRegistrationLink")
        .unwrap();
    assert_eq!((link.0, link.1, link.3), ("POST", "/v2beta/users/{user_id}/passkeys/registration_link", 200));
    let add = passlink_wire::REST_ROUTES
        .iter()
        .find(|r| r.2 == "zitadel.user.v2beta.UserService/AddHumanUser")
        .unwrap();
    assert_eq!(add.3, 201);
    assert!(!passlink_wire::REST_ROUTES.iter().any(|r| r.2.ends_with("/CreateUser")));
}
