//! OAuth2 for machine callers: discovery, JWKS, client secrets and keys, both grants, tokens on
//! every protocol, RFC 6749 errors, rate limiting, assertion checks, introspection, revocation,
//! expiry (the clock is a parameter) and signing-key rotation.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use passlink_core::event::AggregateKind;
use passlink_core::ports::{Clock, FixedClock};
use passlink_server::Server;
use serde_json::{Value, json};

use crate::clients::{self, Api};
use crate::harness::{self, TestServer};
use crate::setup::{LINK_V2, caller, human, ok, world};

fn grpc(s: &TestServer) -> clients::Generated {
    clients::Generated::new("grpc", &s.base, connectrpc::Protocol::Grpc)
}

async fn form(
    s: &TestServer,
    path: &str,
    basic: Option<(&str, &str)>,
    body: &[(&str, &str)],
) -> (u16, Value) {
    let mut rb = reqwest::Client::new().post(format!("{}{path}", s.base)).form(body);
    if let Some((id, secret)) = basic {
        rb = rb.basic_auth(id, Some(secret));
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

const SCOPE: &str = "openid urn:zitadel:iam:org:project:id:zitadel:aud";

/// A machine user with ORG_OWNER on org A, a client secret and a generated key.
async fn machine(s: &TestServer, admin: &str, org: &str, name: &str) -> (String, String, Value) {
    let g = grpc(s);
    let (id, _pat) = caller(&g, admin, org, name, &["ORG_OWNER"]).await;
    let sec =
        ok(g.call("zitadel.user.v2.UserService/AddSecret", json!({"userId": id}), Some(admin), None).await);
    let key = ok(g
        .call(
            "zitadel.user.v2.UserService/AddKey",
            json!({"userId": id, "expirationDate": "2099-01-01T00:00:00Z"}),
            Some(admin),
            None,
        )
        .await);
    let content = key["keyContent"].as_str().unwrap();
    let file: Value = serde_json::from_slice(&base64_decode(content)).unwrap();
    assert_eq!(file["type"], "serviceaccount");
    assert_eq!(file["userId"], id.as_str());
    assert_eq!(file["keyId"], key["keyId"]);
    assert!(file["key"].as_str().unwrap().starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    (id, sec["clientSecret"].as_str().unwrap().to_string(), file)
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn assertion(file: &Value, aud: &str, iat: i64, exp: i64, jti: Option<&str>) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = file["keyId"].as_str().map(str::to_string);
    let uid = file["userId"].as_str().unwrap();
    let mut claims = json!({"iss": uid, "sub": uid, "aud": aud, "iat": iat, "exp": exp});
    if let Some(j) = jti {
        claims["jti"] = json!(j);
    }
    let key = EncodingKey::from_rsa_pem(file["key"].as_str().unwrap().as_bytes()).unwrap();
    jsonwebtoken::encode(&h, &claims, &key).unwrap()
}

fn now_secs() -> i64 {
    passlink_server::platform::SystemClock.now().secs_nanos().0
}

#[tokio::test]
async fn tokens_from_both_grants_work_on_every_protocol() {
    let s = harness::start("oauth").await;
    let w = world(&s, "oa").await;
    let issuer = s.server.external_url.clone();
    // Discovery and JWKS.
    let d: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], issuer.as_str());
    assert_eq!(d["token_endpoint"], format!("{issuer}/oauth/v2/token"));
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:ietf:params:oauth:grant-type:jwt-bearer"))
    );
    let jwks: Value = reqwest::get(format!("{}/oauth/v2/keys", s.base)).await.unwrap().json().await.unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_string();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert!(jwks["keys"][0].get("d").is_none(), "no private parts in the JWKS");

    let username = "oa-svc";
    let (uid, secret, file) = machine(&s, &w.admin, &w.org_a, username).await;
    let target = human(&grpc(&s), &w.admin, &w.org_a, "oa-target").await;

    // client_secret_basic and client_secret_post.
    let (st, basic) = form(
        &s,
        "/oauth/v2/token",
        Some((username, &secret)),
        &[("grant_type", "client_credentials"), ("scope", SCOPE)],
    )
    .await;
    assert_eq!(st, 200, "{basic}");
    assert_eq!((basic["token_type"].as_str(), basic["expires_in"].as_u64()), (Some("Bearer"), Some(43_200)));
    let (st, post) = form(
        &s,
        "/oauth/v2/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
            ("client_id", username),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(st, 200, "{post}");
    // JWT bearer (client_id=None as an SDK sends it is ignored).
    let a = assertion(&file, &issuer, now_secs(), now_secs() + 3600, None);
    let (st, jwt) = form(
        &s,
        "/oauth/v2/token",
        None,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &a),
            ("scope", SCOPE),
            ("client_id", "None"),
        ],
    )
    .await;
    assert_eq!(st, 200, "{jwt}");
    for t in [&basic, &post, &jwt] {
        let token = t["access_token"].as_str().unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        for api in clients::all(&s.base) {
            let r =
                ok(api.call(LINK_V2, json!({"userId": target, "returnCode": {}}), Some(token), None).await);
            assert_eq!(r["details"]["resourceOwner"], w.org_a.as_str(), "[{}]", api.name());
        }
    }
    // The secret and the private key are not stored: only an argon2 hash and the public key.
    let events =
        serde_json::to_string(&s.server.app.store().events_of(AggregateKind::User, &uid).await.unwrap())
            .unwrap();
    assert!(!events.contains(&secret) && events.contains("$argon2id$"));
    assert!(!events.contains("PRIVATE KEY") && events.contains("PUBLIC KEY"));
    let got = ok(grpc(&s)
        .call("zitadel.user.v2.UserService/GetUserByID", json!({"userId": uid}), Some(&w.admin), None)
        .await);
    assert_eq!(got["user"]["machine"]["hasSecret"], true);
    // The metrics count the token responses by grant type.
    let samples = crate::metrics::parse(&s.server.metrics.render(None));
    let issued = |grant| {
        crate::metrics::value(&samples, "passlink_oidc_tokens_issued_total", &[("grant_type", grant)])
    };
    assert_eq!((issued("client_credentials"), issued("jwt_bearer")), (2.0, 1.0));
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rfc6749_errors_rate_limit_and_assertion_checks() {
    let s = harness::start("oauth-err").await;
    let w = world(&s, "oe").await;
    let issuer = s.server.external_url.clone();
    let (_, secret, file) = machine(&s, &w.admin, &w.org_a, "oe-svc").await;
    let cc = [("grant_type", "client_credentials"), ("scope", SCOPE)];
    let (st, e) = form(&s, "/oauth/v2/token", Some(("oe-svc", "wrong")), &cc).await;
    assert_eq!((st, e["error"].as_str()), (401, Some("invalid_client")));
    let (st, e) = form(&s, "/oauth/v2/token", Some(("nobody", "x")), &cc).await;
    assert_eq!((st, e["error"].as_str()), (401, Some("invalid_client")));
    let (st, e) = form(&s, "/oauth/v2/token", Some(("oe-svc", &secret)), &[("grant_type", "password")]).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("unsupported_grant_type")));
    let (st, e) = form(
        &s,
        "/oauth/v2/token",
        Some(("oe-svc", &secret)),
        &[("grant_type", "client_credentials"), ("scope", "openid admin:everything")],
    )
    .await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_scope")));
    // Assertions: wrong audience, expired, not yet valid, too long, replayed jti, foreign key.
    let now = now_secs();
    let jb = |a: String| {
        vec![
            ("grant_type".to_string(), "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string()),
            ("assertion".to_string(), a),
        ]
    };
    for (what, a) in [
        ("wrong audience", assertion(&file, "http://evil.example", now, now + 60, None)),
        ("expired", assertion(&file, &issuer, now - 7200, now - 3600, None)),
        ("lifetime over an hour", assertion(&file, &issuer, now, now + 7200, None)),
    ] {
        let body = jb(a);
        let pairs: Vec<(&str, &str)> = body.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (st, e) = form(&s, "/oauth/v2/token", None, &pairs).await;
        assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")), "{what}: {e}");
    }
    let once = assertion(&file, &issuer, now, now + 60, Some("jti-1"));
    let body = jb(once);
    let pairs: Vec<(&str, &str)> = body.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(form(&s, "/oauth/v2/token", None, &pairs).await.0, 200);
    let (st, e) = form(&s, "/oauth/v2/token", None, &pairs).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")), "replay: {e}");
    // Rate limit: after repeated failures even the right secret is refused for a while.
    for _ in 0..5 {
        form(&s, "/oauth/v2/token", Some(("oe-svc", "wrong")), &cc).await;
    }
    let (st, e) = form(&s, "/oauth/v2/token", Some(("oe-svc", &secret)), &cc).await;
    assert_eq!((st, e["error"].as_str()), (429, Some("temporarily_unavailable")), "{e}");
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn audience_expiry_revocation_and_introspection() {
    let dir = harness::temp_dir("oauth-life");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let real = passlink_server::platform::SystemClock.now();
    let clock = Arc::new(FixedClock::at(real));
    let server =
        Server::start_with_clock(harness::config(addr, &dir), listener, clock.clone()).await.unwrap();
    let admin = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    let s =
        TestServer { base: format!("http://{addr}"), server, admin_token: admin.clone(), dir: dir.clone() };
    let w = world(&s, "ol").await;
    let (uid, secret, _) = machine(&s, &admin, &w.org_a, "ol-svc").await;
    let target = human(&grpc(&s), &admin, &w.org_a, "ol-target").await;
    let get_token = |scope: &'static str| {
        let (s, secret) = (&s, secret.clone());
        async move {
            let (st, t) = form(
                s,
                "/oauth/v2/token",
                Some(("ol-svc", &secret)),
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await;
            assert_eq!(st, 200, "{t}");
            t["access_token"].as_str().unwrap().to_string()
        }
    };
    let link = |token: String| {
        let base = s.base.clone();
        let target = target.clone();
        async move {
            clients::all(&base)[0]
                .call(LINK_V2, json!({"userId": target, "returnCode": {}}), Some(&token), None)
                .await
        }
    };
    // Without the API audience scope the token is not for this API.
    let no_aud = get_token("openid").await;
    assert_eq!(link(no_aud).await.unwrap_err().code, 16);
    // Expiry: valid now, 401 after 12 h.
    let t = get_token(SCOPE).await;
    ok(link(t.clone()).await);
    clock.set(real.plus(Duration::from_secs(12 * 3600 + 1)));
    assert_eq!(link(t.clone()).await.unwrap_err().code, 16, "expired token");
    clock.set(real);
    // A tampered signature.
    let mut bad = t.clone();
    bad.replace_range(t.len() - 6.., "AAAAAA");
    assert_eq!(link(bad).await.unwrap_err().code, 16);
    // Introspection of the JWT and of a PAT, then revocation of both.
    let pat = ok(grpc(&s)
        .call(
            "zitadel.user.v2.UserService/AddPersonalAccessToken",
            json!({"userId": uid, "expirationDate": "2099-01-01T00:00:00Z"}),
            Some(&admin),
            None,
        )
        .await)["token"]
        .as_str()
        .unwrap()
        .to_string();
    for tok in [&t, &pat] {
        let (st, i) = form(&s, "/oauth/v2/introspect", Some(("ol-svc", &secret)), &[("token", tok)]).await;
        assert_eq!((st, &i["active"]), (200, &json!(true)), "{i}");
        assert_eq!(i["sub"], uid.as_str());
    }
    let (st, _) = form(&s, "/oauth/v2/introspect", None, &[("token", &t)]).await;
    assert_eq!(st, 401, "introspection needs client authentication");
    ok(link(pat.clone()).await);
    for tok in [&t, &pat] {
        let (st, _) = form(&s, "/oauth/v2/revoke", Some(("ol-svc", &secret)), &[("token", tok)]).await;
        assert_eq!(st, 200);
        let (_, i) = form(&s, "/oauth/v2/introspect", Some(("ol-svc", &secret)), &[("token", tok)]).await;
        assert_eq!(i, json!({"active": false}));
        for api in clients::all(&s.base) {
            assert_eq!(
                api.call(LINK_V2, json!({"userId": target, "returnCode": {}}), Some(tok), None)
                    .await
                    .unwrap_err()
                    .code,
                16,
                "[{}] revoked",
                api.name()
            );
        }
    }
    // Unknown tokens revoke "successfully" (RFC 7009).
    assert_eq!(form(&s, "/oauth/v2/revoke", Some(("ol-svc", &secret)), &[("token", "nope")]).await.0, 200);
    // A deactivated machine user's fresh token stops working.
    let fresh = get_token(SCOPE).await;
    ok(grpc(&s)
        .call("zitadel.user.v2.UserService/DeactivateUser", json!({"userId": uid}), Some(&admin), None)
        .await);
    assert_eq!(link(fresh).await.unwrap_err().code, 16);
    // A token of another client, minted before a signing-key rotation.
    let (_, secret2, _) = machine(&s, &admin, &w.org_a, "ol-svc2").await;
    let cc2 = [("grant_type", "client_credentials"), ("scope", SCOPE)];
    let (_, old) = form(&s, "/oauth/v2/token", Some(("ol-svc2", &secret2)), &cc2).await;
    let old = old["access_token"].as_str().unwrap().to_string();
    s.server.shutdown().await.unwrap();

    // Rotation: a restart with a zero maximum key age signs with a new key; old tokens verify.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let mut cfg = harness::config(addr, &dir);
    cfg.signing_key_max_age = Duration::ZERO;
    let server = Server::start_with_clock(cfg, listener, clock.clone()).await.unwrap();
    let s2 = TestServer { base: s.base.clone(), server, admin_token: admin.clone(), dir };
    let jwks: Value = reqwest::get(format!("{}/oauth/v2/keys", s2.base)).await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    let rest = clients::all(&s2.base);
    ok(rest[0].call(LINK_V2, json!({"userId": target, "returnCode": {}}), Some(&old), None).await);
    let (_, new) = form(&s2, "/oauth/v2/token", Some(("ol-svc2", &secret2)), &cc2).await;
    let new = new["access_token"].as_str().unwrap().to_string();
    assert_ne!(
        jsonwebtoken::decode_header(&new).unwrap().kid,
        jsonwebtoken::decode_header(&old).unwrap().kid
    );
    ok(rest[0].call(LINK_V2, json!({"userId": target, "returnCode": {}}), Some(&new), None).await);
    s2.server.shutdown().await.unwrap();
}
