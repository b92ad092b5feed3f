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
                aaguid: None,
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

#[test]
fn events_of_other_passkeys_leave_a_passkey_unchanged_and_verification_drops_the_ceremony_state() {
    let added = rec(
        1,
        Event::PasskeyAdded {
            id: "p1".into(),
            rp_id: "localhost".into(),
            code_id: None,
            registration_state: "{\"challenge\":1}".into(),
        },
    );
    let mut p = PasskeyView::created(&added).unwrap();
    assert_eq!((p.user_id.as_str(), p.state), ("u", PasskeyState::NotReady));
    let before = p.clone();
    let other = Event::PasskeyRemoved { id: "p2".into() };
    assert!(!p.changed_by(&other));
    p.apply(&rec(2, other));
    assert_eq!(p, before);
    let verified = Event::PasskeyVerified {
        id: "p1".into(),
        name: "key".into(),
        cred_id: "AA".into(),
        credential: "{}".into(),
        backup_eligible: false,
        backup_state: false,
        aaguid: None,
    };
    p.apply(&rec(3, verified));
    assert_eq!(p.state, PasskeyState::Ready);
    assert!(p.registration_state.is_empty(), "the ceremony state is not kept once the passkey is READY");
    p.apply(&rec(
        4,
        Event::PasskeyCheckSucceeded { id: "p1".into(), session_id: "s".into(), user_verified: true },
    ));
    assert_eq!(p.last_used, Some(Timestamp(4)));
}

// ------------------------------------------------------------------ sign-in assertions

mod assertions {
    use super::*;
    use passlink_testkit::authenticator::{BE, BS, Passkey, UP, UV};
    use webauthn_rs_core::proto::AuthenticationState;

    const ORIGIN: &str = "http://localhost:8080";

    fn ceremony() -> Ceremony {
        Ceremony::new("passlink", ORIGIN, &[]).unwrap()
    }

    /// A passkey registered through the ceremony with `flags` (plus AT), as the store keeps it.
    fn enrolled(c: &Ceremony, flags: u8) -> (Passkey, PasskeyView) {
        let (options, state) = c.start("localhost", &[7; 32], "ada", "Ada", vec![], None).unwrap();
        let mut key = Passkey::new().unwrap();
        key.flags = flags;
        let credential = key.register(&options, ORIGIN).unwrap();
        let v = c.finish("localhost", &credential, &state).unwrap();
        let view = PasskeyView {
            id: "p1".into(),
            user_id: "u".into(),
            state: PasskeyState::Ready,
            name: "key".into(),
            rp_id: "localhost".into(),
            code_id: None,
            registration_state: String::new(),
            credential: Some(v.credential),
            cred_id: Some(v.cred_id),
            created_at: Timestamp(1),
            sign_count: 0,
            backup_eligible: v.backup_eligible,
            backup_state: v.backup_state,
            last_used: None,
            aaguid: None,
        };
        key.flags = UP | UV;
        (key, view)
    }

    /// A fresh challenge answered by `key` (after `tweak` on the JSON), checked by passlink and,
    /// for comparison, by webauthn-rs's own `authenticate_single_credential`.
    fn sign_in(
        c: &Ceremony,
        key: &mut Passkey,
        passkey: &PasskeyView,
        tweak: impl FnOnce(&mut serde_json::Value),
    ) -> (Result<Asserted, AssertionRefused>, bool) {
        let (options, state) = c.start_sign_in("localhost", &[]).unwrap();
        let mut assertion = key.assert(&options, ORIGIN).unwrap();
        tweak(&mut assertion);
        let ours = c.finish_sign_in("localhost", &assertion, &state, passkey).unwrap();
        let pkc = parse_assertion(&assertion).unwrap();
        let st: AuthenticationState = serde_json::from_str(&state.0).unwrap();
        let mut cred: Credential = serde_json::from_str(passkey.credential.as_deref().unwrap()).unwrap();
        cred.counter = passkey.sign_count;
        let theirs = c.party("localhost").unwrap().authenticate_single_credential(&pkc, &st, &cred).is_ok();
        (ours, theirs)
    }

    /// A change to the assertion's JSON before it is checked.
    type Tweak = Box<dyn FnOnce(&mut serde_json::Value)>;

    fn reason(r: Result<Asserted, AssertionRefused>) -> String {
        match r {
            Err(AssertionRefused::Invalid(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn set_b64(v: &mut serde_json::Value, field: &str, f: impl FnOnce(Vec<u8>) -> Vec<u8>) {
        let s = v["response"][field].as_str().unwrap();
        let bytes = f(URL_SAFE_NO_PAD.decode(s).unwrap());
        v["response"][field] = serde_json::json!(URL_SAFE_NO_PAD.encode(bytes));
    }

    #[test]
    fn a_valid_assertion_verifies_with_its_counter_and_flags() {
        let c = ceremony();
        let (mut key, pk) = enrolled(&c, UP | UV | BE);
        key.flags = UP | UV | BE | BS;
        let (ours, theirs) = sign_in(&c, &mut key, &pk, |_| {});
        assert_eq!(
            ours,
            Ok(Asserted { user_verified: true, sign_count: 1, backup_eligible: true, backup_state: true })
        );
        assert!(theirs, "webauthn-rs accepts it too");
    }

    #[test]
    fn refusals_match_webauthn_rs() {
        let c = ceremony();
        let (mut key, pk) = enrolled(&c, UP | UV);
        let cases: Vec<(&str, u8, Tweak)> = vec![
            ("not verified", UP, Box::new(|_| {})),
            ("not present", UV, Box::new(|_| {})),
            ("eligibility changed", UP | UV | BE, Box::new(|_| {})),
            ("not backup eligible", UP | UV | BS, Box::new(|_| {})),
            (
                "does not verify",
                UP | UV,
                Box::new(|a| {
                    set_b64(a, "signature", |mut s| {
                        let last = s.len() - 1;
                        s[last] ^= 1;
                        s
                    })
                }),
            ),
            (
                "another challenge",
                UP | UV,
                Box::new(|a| {
                    set_b64(a, "clientDataJSON", |d| {
                        let text = String::from_utf8(d).unwrap();
                        let challenge =
                            serde_json::from_str::<serde_json::Value>(&text).unwrap()["challenge"]
                                .as_str()
                                .unwrap()
                                .to_string();
                        text.replace(&challenge, &URL_SAFE_NO_PAD.encode([1u8; 32])).into_bytes()
                    })
                }),
            ),
            (
                "not webauthn.get",
                UP | UV,
                Box::new(|a| {
                    set_b64(a, "clientDataJSON", |d| {
                        String::from_utf8(d).unwrap().replace("webauthn.get", "webauthn.create").into_bytes()
                    })
                }),
            ),
            (
                "origin",
                UP | UV,
                Box::new(|a| {
                    set_b64(a, "clientDataJSON", |d| {
                        String::from_utf8(d).unwrap().replace(ORIGIN, "http://evil.example:8080").into_bytes()
                    })
                }),
            ),
            (
                "not for the relying party",
                UP | UV,
                Box::new(|a| {
                    set_b64(a, "authenticatorData", |mut d| {
                        d[0] ^= 1;
                        d
                    })
                }),
            ),
            ("fewer than 37", UP | UV, Box::new(|a| set_b64(a, "authenticatorData", |d| d[..36].to_vec()))),
        ];
        for (expected, flags, tweak) in cases {
            key.flags = flags;
            let (ours, theirs) = sign_in(&c, &mut key, &pk, tweak);
            let why = reason(ours);
            assert!(why.contains(expected), "{expected}: {why}");
            assert!(!theirs, "{expected}: webauthn-rs refuses it too");
        }
    }

    #[test]
    fn a_counter_that_does_not_grow_is_a_possible_clone_and_zero_means_no_counter() {
        let c = ceremony();
        let (mut key, mut pk) = enrolled(&c, UP | UV);
        pk.sign_count = 5;
        key.set_next_counter(5);
        let (ours, theirs) = sign_in(&c, &mut key, &pk, |_| {});
        assert_eq!(ours, Err(AssertionRefused::Cloned { stored: 5, presented: 5 }));
        assert!(!theirs);
        key.set_next_counter(6);
        assert_eq!(sign_in(&c, &mut key, &pk, |_| {}).0.map(|a| a.sign_count), Ok(6));
        // An authenticator without a counter reports 0 every time: accepted while 0 is stored.
        pk.sign_count = 0;
        key.without_counter = true;
        let (ours, theirs) = sign_in(&c, &mut key, &pk, |_| {});
        assert_eq!(ours.map(|a| a.sign_count), Ok(0));
        assert!(theirs);
    }

    #[test]
    fn a_registration_records_the_authenticators_aaguid_unless_it_is_zero() {
        let c = ceremony();
        let yubikey =
            [0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8];
        for (aaguid, want) in [(yubikey, Some("cb69481e-8ff7-4039-93ec-0a2729a154a8")), ([0; 16], None)] {
            let (options, state) = c.start("localhost", &[7; 32], "ada", "Ada", vec![], None).unwrap();
            let mut key = Passkey::new().unwrap();
            key.aaguid = aaguid;
            let credential = key.register(&options, ORIGIN).unwrap();
            let v = c.finish("localhost", &credential, &state).unwrap();
            assert_eq!(v.aaguid.as_deref(), want);
        }
        assert_eq!(attested_aaguid(b"not cbor"), None);
        assert_eq!(attested_aaguid(&[0xa0]), None, "an empty map");
    }
}

// ------------------------------------------------------------------ verified attestation

mod attestations {
    use super::*;
    use crate::policy::Attestation;
    use passlink_testkit::attestation::AttestationCa;
    use passlink_testkit::authenticator::Passkey;

    const ORIGIN: &str = "http://localhost:8080";
    const AAGUID: [u8; 16] =
        [0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8];

    fn trusting(ca: &AttestationCa) -> Ceremony {
        let roots = AttestationRoots::from_pem_bundle(&format!("# the test vendor\n{}", ca.pem)).unwrap();
        assert_eq!(roots.len(), 1);
        Ceremony::new("passlink", ORIGIN, &[]).unwrap().with_attestation_roots(roots)
    }

    /// Register `key` under `attestation`: the options asked for, and the verification.
    fn register(
        c: &Ceremony,
        key: &mut Passkey,
        attestation: Attestation,
    ) -> (String, Result<Verified, Error>) {
        let user = (&[7u8; 32][..], "ada", "Ada");
        let (options, state) = c.start_with("localhost", user, vec![], None, attestation).unwrap();
        let asked =
            options.pointer("/publicKey/attestation").and_then(|v| v.as_str()).unwrap_or("").to_string();
        let credential = key.register(&options, ORIGIN).unwrap();
        (asked, c.finish_with("localhost", &credential, &state, attestation))
    }

    #[test]
    fn a_packed_attestation_chaining_to_a_trusted_root_verifies() {
        let ca = AttestationCa::new("passlink test vendor");
        let c = trusting(&ca);
        let mut key = Passkey::new().unwrap();
        key.aaguid = AAGUID;
        key.attestation = Some(ca.attestation(AAGUID));
        let (asked, v) = register(&c, &mut key, Attestation::Verified);
        assert_eq!(asked, "direct");
        assert_eq!(v.unwrap().aaguid.as_deref(), Some("cb69481e-8ff7-4039-93ec-0a2729a154a8"));
        // Without the policy, the same attestation is not even looked at beyond its signature.
        let mut key = Passkey::new().unwrap();
        key.attestation = Some(ca.attestation([0; 16]));
        let (asked, v) = register(&c, &mut key, Attestation::None);
        assert_eq!(asked, "none");
        assert!(v.is_ok(), "{v:?}");
    }

    #[test]
    fn unknown_roots_self_and_no_attestation_are_refused_under_verified() {
        let ca = AttestationCa::new("passlink test vendor");
        let other = AttestationCa::new("another vendor");
        let c = trusting(&other);
        let refused = |key: &mut Passkey| {
            let (_, v) = register(&c, key, Attestation::Verified);
            let e = v.expect_err("refused");
            assert_eq!((e.kind, e.id), (Kind::FailedPrecondition, "PASSKEY-Att01"), "{e:?}");
            assert!(e.text().contains("attestation"), "{}", e.text());
        };
        let mut unknown_root = Passkey::new().unwrap();
        unknown_root.aaguid = AAGUID;
        unknown_root.attestation = Some(ca.attestation(AAGUID));
        refused(&mut unknown_root);
        let mut none = Passkey::new().unwrap();
        none.aaguid = AAGUID;
        refused(&mut none);
        // No roots at all: nothing verifies.
        let bare = Ceremony::new("passlink", ORIGIN, &[]).unwrap();
        let mut key = Passkey::new().unwrap();
        key.attestation = Some(ca.attestation(AAGUID));
        key.aaguid = AAGUID;
        let (_, v) = register(&bare, &mut key, Attestation::Verified);
        assert_eq!(v.err().map(|e| e.id), Some("PASSKEY-Att01"));
    }

    #[test]
    fn the_certificates_aaguid_must_match_the_authenticators() {
        let ca = AttestationCa::new("passlink test vendor");
        let c = trusting(&ca);
        let mut key = Passkey::new().unwrap();
        key.aaguid = [1; 16];
        key.attestation = Some(ca.attestation(AAGUID));
        let (_, v) = register(&c, &mut key, Attestation::Verified);
        assert_eq!(v.err().map(|e| e.id), Some("PASSKEY-Att01"), "a forged AAGUID");
    }

    #[test]
    fn pem_bundles_are_parsed_or_refused_by_position() {
        let a = AttestationCa::new("a");
        let b = AttestationCa::new("b");
        let both = AttestationRoots::from_pem_bundle(&format!("{}\n{}\n{}", a.pem, b.pem, a.pem)).unwrap();
        assert_eq!(both.len(), 2, "duplicates count once");
        assert!(AttestationRoots::from_pem_bundle("").unwrap_err().contains("no PEM certificate"));
        let broken = format!("{}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", a.pem);
        assert!(AttestationRoots::from_pem_bundle(&broken).unwrap_err().starts_with("certificate 2:"));
        let open = "-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(AttestationRoots::from_pem_bundle(open).unwrap_err().starts_with("certificate 1: no"));
    }
}
