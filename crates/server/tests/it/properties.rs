//! Property tests over real sockets: arbitrary bodies for every RPC (Connect JSON and Connect
//! binary: the decoders of every request type), arbitrary REST paths and bodies (the router and
//! the path parameters), arbitrary OAuth forms and authorization queries, arbitrary hosted-page
//! queries. Nothing answers 5xx, and nothing without a token succeeds where a token is needed.
//! `PROPTEST_CASES` sets the cases per property (256 by default; `scripts/fuzz-long` runs them
//! for minutes).

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::Value;

use crate::harness;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn rpcs() -> Vec<&'static str> {
    passlink_server::rpc::table().iter().map(|(p, _)| *p).collect()
}

/// Bytes that look like JSON often enough to reach the decoders' deeper paths.
fn json_ish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        any::<String>().prop_map(String::into_bytes),
        (any::<String>(), any::<String>(), any::<i64>()).prop_map(|(k, v, n)| {
            serde_json::json!({ k: v, "userId": n, "organization": {"orgId": n}, "queries": [{}] })
                .to_string()
                .into_bytes()
        }),
        (1usize..2000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        (1usize..2000).prop_map(|n| "{\"a\":".repeat(n).into_bytes()),
    ]
}

#[test]
fn arbitrary_request_bodies_never_cause_a_server_error() {
    let rt = runtime();
    let s = rt.block_on(harness::start("prop-bodies"));
    let http = reqwest::Client::new();
    let rpcs = rpcs();
    let mut runner = TestRunner::default();
    let calls = std::cell::Cell::new(0u32);
    runner
        .run(&(0..rpcs.len(), json_ish(), any::<bool>(), any::<bool>()), |(i, body, binary, token)| {
            let rpc = rpcs[i];
            let ct = if binary { "application/proto" } else { "application/json" };
            let mut req = http.post(format!("{}/{rpc}", s.base)).header("content-type", ct).body(body);
            if token {
                req = req.bearer_auth(&s.admin_token);
            }
            let r = rt.block_on(req.send()).unwrap();
            calls.set(calls.get() + 1);
            let status = r.status().as_u16();
            let text = rt.block_on(r.text()).unwrap();
            prop_assert!(status < 500, "{rpc} ({ct}) answered {status}: {text}");
            if status >= 400 {
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                prop_assert!(v["code"].is_string(), "{rpc}: a Connect error without a code: {text}");
            }
            Ok(())
        })
        .unwrap();
    assert!(calls.get() > 0);
}

/// A REST path from the bound templates with arbitrary segments, or an arbitrary path.
fn rest_path() -> impl Strategy<Value = (String, String)> {
    let routes: Vec<(&str, &str)> = passlink_wire::REST_ROUTES.iter().map(|r| (r.0, r.1)).collect();
    let n = routes.len();
    prop_oneof![
        (0..n, "[^/?#]{0,40}").prop_map(move |(i, seg)| {
            let (method, template) = routes[i];
            let mut out = String::new();
            let mut rest = template;
            while let Some(open) = rest.find('{') {
                out.push_str(&rest[..open]);
                let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
                out.push_str(&url::form_urlencoded::byte_serialize(seg.as_bytes()).collect::<String>());
                rest = &rest[close..];
            }
            out.push_str(rest);
            (method.to_string(), out)
        }),
        (
            prop_oneof![Just("GET"), Just("POST"), Just("DELETE"), Just("PUT")],
            "(/[a-zA-Z0-9_%.:-]{0,12}){1,6}"
        )
            .prop_map(|(m, p)| (m.to_string(), p)),
    ]
}

#[test]
fn arbitrary_rest_paths_and_bodies_never_cause_a_server_error() {
    let rt = runtime();
    let s = rt.block_on(harness::start("prop-rest"));
    let http = reqwest::Client::new();
    let mut runner = TestRunner::default();
    runner
        .run(&(rest_path(), json_ish(), any::<bool>()), |((method, path), body, token)| {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut req =
                http.request(m, format!("{}{path}", s.base)).header("content-type", "application/json");
            if method != "GET" {
                req = req.body(body);
            }
            if token {
                req = req.bearer_auth(&s.admin_token);
            }
            let r = rt.block_on(req.send()).unwrap();
            let status = r.status().as_u16();
            let text = rt.block_on(r.text()).unwrap_or_default();
            prop_assert!(status < 500, "{method} {path} answered {status}: {text}");
            if !token && path.starts_with("/v2") && !path.contains("/passkeys") {
                prop_assert!(status >= 400, "{method} {path} succeeded without a token: {text}");
            }
            Ok(())
        })
        .unwrap();
}

/// OAuth forms, authorization queries and hosted-page queries from arbitrary pairs.
fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let key = prop_oneof![
        Just("grant_type".to_string()),
        Just("code".to_string()),
        Just("refresh_token".to_string()),
        Just("client_id".to_string()),
        Just("client_secret".to_string()),
        Just("client_assertion".to_string()),
        Just("client_assertion_type".to_string()),
        Just("assertion".to_string()),
        Just("scope".to_string()),
        Just("redirect_uri".to_string()),
        Just("response_type".to_string()),
        Just("code_challenge".to_string()),
        Just("code_challenge_method".to_string()),
        Just("code_verifier".to_string()),
        Just("prompt".to_string()),
        Just("max_age".to_string()),
        Just("token".to_string()),
        Just("userID".to_string()),
        Just("codeID".to_string()),
        Just("authRequest".to_string()),
        any::<String>(),
    ];
    let value = prop_oneof![
        Just("authorization_code".to_string()),
        Just("refresh_token".to_string()),
        Just("client_credentials".to_string()),
        Just("urn:ietf:params:oauth:grant-type:jwt-bearer".to_string()),
        Just("code".to_string()),
        Just("openid".to_string()),
        Just("S256".to_string()),
        "[A-Za-z0-9._-]{0,50}",
        any::<String>(),
    ];
    proptest::collection::vec((key, value), 0..8)
}

#[test]
fn arbitrary_oauth_forms_and_page_queries_never_cause_a_server_error_or_a_token() {
    let rt = runtime();
    let s = rt.block_on(harness::start("prop-oauth"));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let endpoints = [
        "/oauth/v2/token",
        "/oauth/v2/introspect",
        "/oauth/v2/revoke",
        "/oauth/v2/authorize",
        "/oidc/v1/userinfo",
        "/oidc/v1/end_session",
        "/ui/passkey/register",
        "/ui/passkey/info",
        "/ui/passkey/qr",
        "/ui/login",
    ];
    let mut runner = TestRunner::default();
    runner
        .run(&(0..endpoints.len(), pairs(), any::<bool>()), |(i, pairs, post)| {
            let path = endpoints[i];
            let query: String =
                url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
            let r = if post {
                rt.block_on(
                    http.post(format!("{}{path}", s.base))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(query)
                        .send(),
                )
            } else {
                rt.block_on(http.get(format!("{}{path}?{query}", s.base)).send())
            }
            .unwrap();
            let status = r.status().as_u16();
            let text = rt.block_on(r.text()).unwrap_or_default();
            prop_assert!(status < 500, "{path} {pairs:?} answered {status}: {text}");
            if path == "/oauth/v2/token" {
                prop_assert!(!text.contains("access_token"), "{pairs:?} got a token: {text}");
            }
            Ok(())
        })
        .unwrap();
}

/// Sign-in assertions for a real challenge and a real passkey with one part replaced by random
/// bytes (client data, authenticator data, signature, user handle, credential id): refused as a
/// client error on every attempt, never a sign-in, never a 5xx. Each case gets a fresh challenge
/// (a failed check uses the challenge up); rate limits are off (the failures are on purpose).
#[test]
fn tampered_sign_in_assertions_are_refused() {
    use passlink_server::limits::Rate;
    use serde_json::json;

    use crate::clients::{Api, ConnectJson};
    use crate::session::{assertion, enroll};
    use crate::setup::{caller, ok, world};

    let rt = runtime();
    let s = rt.block_on(harness::start_configured(harness::temp_dir("prop-assert"), |cfg| {
        cfg.limits.per_ip = Rate::OFF;
        cfg.limits.per_target = Rate::OFF;
    }));
    let w = rt.block_on(world(&s, "pa"));
    let api = ConnectJson { base: s.base.clone(), http: reqwest::Client::new() };
    let (_, ui) = rt.block_on(caller(&api, &w.admin, &w.org_a, "pa-ui", &["IAM_LOGIN_CLIENT"]));
    let mut e = rt.block_on(enroll(&s, &w.admin, &w.org_a, "pa-ada"));
    let origin = s.server.external_url.clone();
    let rp = url::Url::parse(&origin).unwrap().host_str().unwrap().to_string();
    let challenge = json!({"webAuthN": {"domain": rp, "userVerificationRequirement": "USER_VERIFICATION_REQUIREMENT_REQUIRED"}});
    let start = |user: &str| {
        let created = ok(rt.block_on(api.call(
            "zitadel.session.v2.SessionService/CreateSession",
            json!({"checks": {"user": {"userId": user}}, "challenges": challenge.clone()}),
            Some(&ui),
            None,
        )));
        let id = created["sessionId"].as_str().unwrap().to_string();
        (id, created["challenges"]["webAuthN"]["publicKeyCredentialRequestOptions"].clone())
    };
    let set = |id: &str, data: Value| {
        rt.block_on(api.call(
            "zitadel.session.v2.SessionService/SetSession",
            json!({"sessionId": id, "checks": {"webAuthN": {"credentialAssertionData": data}}}),
            Some(&ui),
            None,
        ))
    };
    // The untampered assertion signs in: the property's refusals are the tampering's.
    let (id, options) = start(&e.user);
    assert!(set(&id, assertion(&mut e.key, &origin, &options)).is_ok());
    let key = std::cell::RefCell::new(e.key);
    let user = e.user.clone();
    let fields = ["clientDataJSON", "authenticatorData", "signature", "userHandle", "id"];
    let mut runner = TestRunner::default();
    runner
        .run(&(0..fields.len(), proptest::collection::vec(any::<u8>(), 0..200)), |(f, bytes)| {
            let (id, options) = start(&user);
            let mut data = assertion(&mut key.borrow_mut(), &origin, &options);
            let random = base64url(&bytes);
            if fields[f] == "id" {
                data["id"] = json!(random.clone());
                data["rawId"] = json!(random);
            } else {
                data["response"][fields[f]] = json!(random);
            }
            match set(&id, data) {
                Ok(v) => prop_assert!(false, "a tampered {} signed in: {v}", fields[f]),
                Err(failure) => {
                    prop_assert!(![2, 13, 14].contains(&failure.code), "tampered {}: {failure:?}", fields[f]);
                    prop_assert!(failure.http.is_none_or(|h| h < 500), "{failure:?}");
                }
            }
            Ok(())
        })
        .unwrap();
}

/// base64url without padding.
fn base64url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
