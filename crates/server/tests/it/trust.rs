//! `--trust-issuer`: tokens of an external OpenID issuer (a real HTTP server here, with its own
//! discovery document and JWKS) authenticate the passlink user whose id is their `sub`.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::LineEnding;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use crate::clients::{self, Api};
use crate::harness;
use crate::setup::{LINK_V2, human, ok};

struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
}

fn new_key(kid: &str) -> (Value, String) {
    let mut rng = rsa::rand_core::OsRng;
    let key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be())});
    (jwk, key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string())
}

async fn start_issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let keys = Arc::new(Mutex::new(Vec::new()));
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/keys")});
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { Json(discovery) }))
        .route(
            "/keys",
            get(|State(k): State<Arc<Mutex<Vec<Value>>>>| async move {
                Json(json!({"keys": k.lock().unwrap().clone()}))
            }),
        )
        .with_state(keys.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Issuer { url, keys }
}

fn mint(iss: &str, kid: &str, pem: &str, sub: &str, aud: &str, exp_in: i64) -> String {
    let now = passlink_server::platform::SystemClock.now_secs();
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    let claims = json!({"iss": iss, "sub": sub, "aud": [aud], "iat": now, "exp": now + exp_in});
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()).unwrap()
}

#[tokio::test]
async fn external_tokens_map_to_users_by_id() {
    let issuer = start_issuer().await;
    let (jwk1, pem1) = new_key("ext-1");
    issuer.keys.lock().unwrap().push(jwk1);
    let dir = harness::temp_dir("trust");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = crate::harness::config(addr, &dir);
    cfg.trust_issuers = vec![issuer.url.clone()];
    let server = passlink_server::Server::start(cfg, listener).await.unwrap();
    let admin = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    let base = format!("http://{addr}");
    let g = clients::Generated::new("grpc", &base, connectrpc::Protocol::Grpc);
    let org = ok(g
        .call(
            "zitadel.org.v2.OrganizationService/AddOrganization",
            json!({"name": "trust"}),
            Some(&admin),
            None,
        )
        .await);
    let org = org["organizationId"].as_str().unwrap().to_string();
    // The passlink user carries the external subject as its id, and a role.
    ok(g.call("zitadel.user.v2.UserService/CreateUser", json!({"organizationId": org, "userId": "ext-subject-42", "username": "ext", "machine": {"name": "ext"}}), Some(&admin), None).await);
    ok(g.call(
        "zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
        json!({"userId": "ext-subject-42", "resource": {"organizationId": org}, "roles": ["ORG_OWNER"]}),
        Some(&admin),
        None,
    )
    .await);
    let target = human(&g, &admin, &org, "trust-target").await;
    let call = |token: String| {
        let (base, target) = (base.clone(), target.clone());
        async move {
            clients::all(&base)[3]
                .call(LINK_V2, json!({"userId": target, "returnCode": {}}), Some(&token), None)
                .await
        }
    };
    let good = mint(&issuer.url, "ext-1", &pem1, "ext-subject-42", "zitadel", 300);
    let r = ok(call(good).await);
    assert_eq!(r["details"]["resourceOwner"], org.as_str());
    // Wrong audience, unknown subject, expired, unknown issuer: 401.
    for (what, t) in [
        ("audience", mint(&issuer.url, "ext-1", &pem1, "ext-subject-42", "someone-else", 300)),
        ("subject", mint(&issuer.url, "ext-1", &pem1, "nobody", "zitadel", 300)),
        ("expired", mint(&issuer.url, "ext-1", &pem1, "ext-subject-42", "zitadel", -10)),
        ("issuer", mint("http://untrusted.example", "ext-1", &pem1, "ext-subject-42", "zitadel", 300)),
    ] {
        assert_eq!(call(t).await.unwrap_err().code, 16, "{what}");
    }
    // Key rotation at the issuer: a new kid is fetched on first sight (after the refresh pause).
    let (jwk2, pem2) = new_key("ext-2");
    issuer.keys.lock().unwrap().push(jwk2);
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    ok(call(mint(&issuer.url, "ext-2", &pem2, "ext-subject-42", "zitadel", 300)).await);
    // A key the issuer does not publish is refused.
    let (_, pem3) = new_key("ext-1");
    assert_eq!(
        call(mint(&issuer.url, "ext-1", &pem3, "ext-subject-42", "zitadel", 300)).await.unwrap_err().code,
        16
    );
    server.shutdown().await.unwrap();
}
