//! Unit tests of `passkeys` (pure, no store).

use super::super::testing::{NOW, human, machine};
use super::*;
use crate::code::CodeState;
use crate::event::{AggregateKind, CodeRequested, Recorded};
use crate::view::Change;

fn passkey(id: &str, state: PasskeyState, code_id: Option<&str>, cred: Option<&str>) -> PasskeyView {
    PasskeyView {
        id: id.into(),
        user_id: "u".into(),
        state,
        name: String::new(),
        rp_id: "localhost".into(),
        code_id: code_id.map(str::to_string),
        registration_state: "{}".into(),
        credential: None,
        cred_id: cred.map(str::to_string),
        created_at: NOW,
        sign_count: 0,
        backup_eligible: false,
        backup_state: false,
        last_used: None,
        aaguid: None,
    }
}

#[test]
fn registering_replaces_the_pending_registration_of_the_same_code() {
    let keys = vec![
        passkey("p1", PasskeyState::NotReady, Some("c1"), None),
        passkey("p2", PasskeyState::NotReady, Some("c2"), None),
        passkey("p3", PasskeyState::Ready, None, Some("cred3")),
    ];
    assert_eq!(ready_credentials(&keys), vec!["cred3"]);
    let c =
        decide_register(&human("u", "A"), &keys, Some("c1".into()), ("p4", "localhost", "s".into()), "", NOW)
            .into_commit();
    let types: Vec<_> = c.events.iter().map(|r| (r.sequence, r.event.type_name())).collect();
    assert_eq!(
        types,
        vec![(2, "user.human.passwordless.token.removed"), (3, "user.human.passwordless.token.added")]
    );
    let c = decide_register(&human("u", "A"), &keys, None, ("p4", "localhost", "s".into()), "u", NOW)
        .into_commit();
    assert_eq!(c.events.len(), 1);
}

#[test]
fn only_active_humans_register() {
    assert!(registrant(&human("u", "A")).is_ok());
    assert_eq!(registrant(&machine("m", "A")).err().map(|e| e.id), Some("COMMAND-xu3Ag"));
    let mut inactive = human("u", "A");
    inactive.state = UserState::Inactive;
    assert_eq!(registrant(&inactive).err().map(|e| e.id), Some("COMMAND-Nd7ah"));
}

#[test]
fn verifying_with_a_code_consumes_it_and_claims_the_credential() {
    let c = CodeRequested {
        id: "c1".into(),
        code_hash: "h".into(),
        expiry_secs: 60,
        url_template: None,
        code_returned: true,
        job_id: None,
        idempotency_key: None,
    };
    let r = Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: "u".into(),
        sequence: 2,
        created_at: NOW,
        resource_owner: "A".into(),
        creator: String::new(),
        event: Event::PasskeyCodeRequested(c.clone()),
    };
    let code = CodeView::requested(&r, &c);
    let p = passkey("p1", PasskeyState::NotReady, Some("c1"), None);
    let verified = Verified {
        cred_id: "cred".into(),
        credential: "{}".into(),
        backup_eligible: false,
        backup_state: false,
        aaguid: Some("cb69481e-8ff7-4039-93ec-0a2729a154a8".into()),
    };
    let rule = Rule::default();
    let commit = decide_verify(&human("u", "A"), &p, Some(code), verified, &rule, "key", "", NOW)
        .unwrap()
        .into_commit();
    assert_eq!(commit.events.len(), 2);
    assert!(commit.changes.iter().any(|ch| matches!(ch, Change::Code(c) if c.state == CodeState::Consumed)));
    assert_eq!(commit.claims[0].value, "cred");
    assert!(pending(vec![passkey("p1", PasskeyState::Ready, None, None)], "p1").is_err());
}

#[test]
fn the_policy_of_the_users_organization_refuses_an_authenticator_and_records_nothing() {
    let yubikey = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
    let policy = crate::policy::Policy::parse(&format!(
        r#"{{"deny": ["{yubikey}"], "organizations": {{"B": {{"allow": ["{yubikey}"]}}}}}}"#
    ))
    .unwrap();
    let verified = |aaguid: Option<&str>| Verified {
        cred_id: "cred".into(),
        credential: "{}".into(),
        backup_eligible: false,
        backup_state: false,
        aaguid: aaguid.map(str::to_string),
    };
    let p = passkey("p1", PasskeyState::NotReady, Some("c1"), None);
    let verify = |org: &str, aaguid: Option<&str>| {
        let user = human("u", org);
        decide_verify(&user, &p, None, verified(aaguid), policy.rule(&user.org_id), "key", "", NOW)
    };
    // Instance: a deny-list.
    let e = verify("A", Some(yubikey)).err().unwrap();
    assert_eq!((e.kind, e.id), (Kind::FailedPrecondition, "PASSKEY-Pol01"));
    assert_eq!(verify("A", None).unwrap().into_commit().events.len(), 1, "no AAGUID passes a deny-list");
    // Organization B: an allow-list of the same AAGUID.
    assert_eq!(verify("B", Some(yubikey)).unwrap().into_commit().events.len(), 1);
    assert_eq!(verify("B", None).err().map(|e| e.id), Some("PASSKEY-Pol01"), "zero AAGUID, allow-list");
    assert_eq!(
        verify("B", Some("01020304-0506-0708-0102-030405060708")).err().map(|e| e.id),
        Some("PASSKEY-Pol01")
    );
}

#[test]
fn removing_releases_the_credential() {
    let keys = vec![passkey("p1", PasskeyState::Ready, None, Some("cred"))];
    let c = decide_remove(&human("u", "A"), keys.clone(), "p1", "u", NOW).unwrap().into_commit();
    assert_eq!(c.released, vec![("webauthn_credential", "cred".to_string())]);
    assert_eq!(
        decide_remove(&human("u", "A"), keys, "p9", "u", NOW).err().map(|e| e.id),
        Some("COMMAND-mKGo3")
    );
}
