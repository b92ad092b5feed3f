//! Every event serializes with its ZITADEL type name and reads back.

use super::*;

#[test]
fn serialized_type_matches_type_name() {
    let all = vec![
        Event::InstanceAdded { name: "i".into() },
        Event::OrgMemberAdded { user_id: "u".into(), roles: vec!["ORG_OWNER".into()] },
        Event::UserRemoved {},
        Event::PasskeyCodeRequested(CodeRequested {
            id: "1".into(),
            code_hash: "ab".into(),
            expiry_secs: 3600,
            url_template: None,
            code_returned: true,
            job_id: None,
            idempotency_key: None,
        }),
        Event::PasskeyCodeCheckSucceeded { id: "1".into() },
        Event::PasskeyCodeRevoked { id: "1".into(), reason: "r".into() },
        Event::PasskeyCodeExpired { id: "1".into() },
    ];
    for e in all {
        let v = serde_json::to_value(&e).unwrap_or_default();
        assert_eq!(v["type"], e.type_name());
        let back: Event = serde_json::from_value(v).unwrap_or(Event::UserDeactivated {});
        assert_eq!(back, e);
    }
}
