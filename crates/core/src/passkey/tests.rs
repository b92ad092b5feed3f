//! Unit tests of `passkey` (pure, no store).

use super::*;
use crate::event::AggregateKind;

fn rec(seq: u64, event: Event) -> Recorded {
    Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: "u".into(),
        sequence: seq,
        created_at: Timestamp(seq as i64),
        resource_owner: "o".into(),
        creator: String::new(),
        event,
    }
}

#[test]
fn fold_tracks_each_passkey() {
    let added = |id: &str| Event::PasskeyAdded {
        id: id.into(),
        rp_id: "localhost".into(),
        code_id: Some("c".into()),
        registration_state: "{}".into(),
    };
    let events = vec![
        rec(1, added("p1")),
        rec(2, added("p2")),
        rec(
            3,
            Event::PasskeyVerified {
                id: "p1".into(),
                name: "key".into(),
                cred_id: "AA".into(),
                credential: "{}".into(),
                backup_eligible: true,
                backup_state: false,
            },
        ),
        rec(4, Event::PasskeyRemoved { id: "p2".into() }),
    ];
    let v = fold(&events);
    assert_eq!(v.len(), 2);
    assert_eq!((v[0].state, v[0].name.as_str()), (PasskeyState::Ready, "key"));
    assert_eq!(v[1].state, PasskeyState::Removed);
    let v = fold(&[events, vec![rec(5, Event::UserRemoved {})]].concat());
    assert!(v.iter().all(|p| p.state == PasskeyState::Removed));
}

#[test]
fn rp_ids_come_from_the_configured_origins() {
    let c = Ceremony::new("passlink", "https://login.example.com:8443", &["https://app.example.org".into()])
        .unwrap();
    assert_eq!(c.rp_id("").ok().as_deref(), Some("login.example.com"));
    assert_eq!(c.rp_id("app.example.org").ok().as_deref(), Some("app.example.org"));
    assert_eq!(c.rp_id("evil.example").err().map(|e| e.kind), Some(Kind::InvalidArgument));
}

#[test]
fn options_require_discoverable_credentials_and_user_verification() {
    let c = Ceremony::new("passlink", "http://localhost:8080", &[]).unwrap();
    let (o, state) =
        c.start("localhost", &[7; 32], "ada", "Ada", vec![], Some(Attachment::Platform)).unwrap();
    let pk = &o["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["authenticatorSelection"]["requireResidentKey"], true);
    assert_eq!(pk["authenticatorSelection"]["authenticatorAttachment"], "platform");
    assert_eq!(pk["attestation"], "none");
    assert!(pk["challenge"].as_str().is_some_and(|s| s.len() >= 43));
    assert!(!state.is_empty());
    let bad = c.finish("localhost", &serde_json::json!({"foo": "bar"}), &state);
    assert_eq!(bad.err().map(|e| e.id), Some("WEBAUTHN-p4rs3"));
}
