//! Property tests of what an attacker reaches without an account, and of the generators behind
//! codes: arbitrary input never panics, never fails as an internal error, and is never accepted.
//! `PROPTEST_CASES` sets the cases per property (256 by default; `scripts/fuzz-long` runs them
//! for minutes).

use passlink_core::app::{LinkMedium, RegisterPasskey};
use passlink_core::error::Kind;
use passlink_core::jwt::{self, AccessClaims, SigningKey, TokenKeys};
use passlink_core::passkey::{self, Ceremony};
use passlink_core::ports::SeededEntropy;
use passlink_core::secret::{self, Secret};
use passlink_core::template::{self, LinkData};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::world::{EXTERNAL, T0, World};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A piece of a URL template: text, one of the four placeholders, or template syntax.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9/:?&=._~%-]{0,12}",
        Just("{{.UserID}}".to_string()),
        Just("{{.OrgID}}".to_string()),
        Just("{{.CodeID}}".to_string()),
        Just("{{.Code}}".to_string()),
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{{.Other}}".to_string()),
        Just("{{ .Code }}".to_string()),
        Just("{{if .Code}}x{{end}}".to_string()),
        any::<String>(),
    ]
}

proptest! {
    /// Any template: validation and rendering never panic; a template that validates renders,
    /// and what it renders contains no template syntax left over.
    #[test]
    fn url_templates_validate_and_render_without_surprises(
        pieces in proptest::collection::vec(piece(), 0..8),
        code in "[A-Za-z0-9]{12}",
    ) {
        let t = pieces.concat();
        let data = LinkData { user_id: "111", org_id: "222", code_id: "333", code: &code };
        if template::validate(&t, "111", "222").is_ok() {
            let out = template::render(&t, &data);
            prop_assert!(out.is_ok(), "validated template {t:?} does not render: {out:?}");
        } else {
            // A refused template is a 400, never a 500.
            let e = template::validate(&t, "111", "222").unwrap_err();
            prop_assert_eq!(e.kind, Kind::InvalidArgument);
        }
        let _ = template::render(&t, &data);
    }

    /// Codes: the requested length, only [A-Za-z0-9], from any seed.
    #[test]
    fn generated_codes_are_alphanumeric_of_the_requested_length(seed in any::<u64>(), len in 1usize..64) {
        let code = secret::generate_code(&SeededEntropy::new(seed), len);
        prop_assert_eq!(code.expose().len(), len);
        prop_assert!(code.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    /// JWT parsing of any string: never a panic, never claims from garbage.
    #[test]
    fn jwt_peeks_of_arbitrary_strings_do_not_panic(s in any::<String>(), parts in proptest::collection::vec("[A-Za-z0-9_=-]{0,40}", 0..5)) {
        let dotted = parts.join(".");
        for t in [s.as_str(), dotted.as_str()] {
            let _ = jwt::looks_like_jwt(t);
            let _ = jwt::peek_issuer(t);
            let _ = jwt::peek_assertion(t);
        }
    }

    /// WebAuthn: any JSON as an assertion or a registration response is a 400, never a panic.
    #[test]
    fn arbitrary_credentials_are_refused_as_bad_requests(v in json_value(3)) {
        if let Err(e) = passkey::assertion_ids(&v) {
            prop_assert_eq!(e.kind, Kind::InvalidArgument);
        }
        let c = ceremony();
        let (_, state) = c.start("localhost", b"user-handle", "ada", "Ada", Vec::new(), None).unwrap();
        let r = c.finish("localhost", &v, &state);
        prop_assert!(r.is_err(), "garbage registered a passkey: {v}");
        prop_assert_eq!(r.err().map(|e| e.kind), Some(Kind::InvalidArgument));
    }

    /// A registration response shaped like a real one, with random bytes in every field: refused.
    #[test]
    fn well_shaped_registration_responses_with_random_bytes_are_refused(
        id in proptest::collection::vec(any::<u8>(), 0..64),
        client_data in proptest::collection::vec(any::<u8>(), 0..300),
        attestation in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let b64 = |b: &[u8]| base64url(b);
        let v = json!({"id": b64(&id), "rawId": b64(&id), "type": "public-key",
            "response": {"clientDataJSON": b64(&client_data), "attestationObject": b64(&attestation)},
            "extensions": {}});
        let c = ceremony();
        let (_, state) = c.start("localhost", b"user-handle", "ada", "Ada", Vec::new(), None).unwrap();
        let r = c.finish("localhost", &v, &state);
        prop_assert_eq!(r.err().map(|e| e.kind), Some(Kind::InvalidArgument));
    }
}

/// base64url without padding (WebAuthn's JSON encoding of bytes).
fn base64url(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &x)| n | (u32::from(x) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn ceremony() -> Ceremony {
    Ceremony::new("passlink", EXTERNAL, &[]).unwrap()
}

/// Arbitrary JSON up to `depth` levels.
fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<String>().prop_map(Value::String),
        "[A-Za-z0-9_-]{0,60}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("rawId".to_string()),
                    Just("type".to_string()),
                    Just("response".to_string()),
                    Just("clientDataJSON".to_string()),
                    Just("attestationObject".to_string()),
                    Just("authenticatorData".to_string()),
                    Just("signature".to_string()),
                    Just("userHandle".to_string()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Codes and bearer tokens an attacker guesses: never accepted, never an internal error.
#[test]
fn guessed_codes_and_tokens_are_refused() {
    let rt = runtime();
    let w = rt.block_on(World::new());
    let user = rt.block_on(w.given_human(&w.default_org));
    let link = rt.block_on(w.app.create_passkey_link(&w.admin, &user, LinkMedium::Return)).unwrap();
    let (code_id, real) = link.code.unwrap();
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&(any::<String>(), "[A-Za-z0-9]{12}", any::<String>()), |(guess, alnum, token)| {
            for g in [guess.as_str(), alnum.as_str()] {
                if g == real.expose() {
                    continue;
                }
                let code = Secret::new(g);
                let info = rt.block_on(w.app.registration_info(&user, &code_id, &code));
                prop_assert!(info.is_err(), "guessed code {g:?} accepted");
                prop_assert_ne!(info.err().map(|e| e.kind), Some(Kind::Internal));
                let req = RegisterPasskey {
                    user_id: user.clone(),
                    code: Some((code_id.clone(), Secret::new(g))),
                    attachment: None,
                    domain: String::new(),
                };
                let r = rt.block_on(w.app.register_passkey(None, req));
                prop_assert!(r.is_err(), "guessed code {g:?} started a registration");
                prop_assert_ne!(r.err().map(|e| e.kind), Some(Kind::Internal));
            }
            for header in
                [token.clone(), format!("Bearer {token}"), format!("Bearer {alnum}.{alnum}.{alnum}")]
            {
                let p = rt.block_on(w.app.authenticate(Some(&header)));
                prop_assert_eq!(p.err().map(|e| e.kind), Some(Kind::Unauthenticated));
            }
            Ok(())
        })
        .unwrap();
}

/// A signed access token with any one character changed does not verify.
#[test]
fn tampered_access_tokens_do_not_verify() {
    let key = SigningKey::generate(&SeededEntropy::new(7), "k1".into(), T0).unwrap();
    let keys = TokenKeys { keys: vec![key] };
    let claims = AccessClaims {
        iss: EXTERNAL.into(),
        sub: "u1".into(),
        aud: vec!["a".into()],
        exp: T0.secs_nanos().0 + 3600,
        iat: T0.secs_nanos().0,
        nbf: T0.secs_nanos().0,
        jti: "j".into(),
        client_id: "c".into(),
        scope: String::new(),
    };
    let token = keys.sign(&claims).unwrap();
    assert!(keys.verify(&token, EXTERNAL, T0).is_ok());
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&(0..token.len(), proptest::char::range('!', '~')), |(at, c)| {
            let mut t: Vec<char> = token.chars().collect();
            if t[at] == c {
                return Ok(());
            }
            t[at] = c;
            let t: String = t.into_iter().collect();
            let r = keys.verify(&t, EXTERNAL, T0);
            // base64url's last character may carry unused bits: a change there can decode to
            // the same bytes; then the token is the same token.
            if let Ok(got) = &r {
                prop_assert_eq!(got, &claims, "a changed token verified with other claims");
            }
            Ok(())
        })
        .unwrap();
}
