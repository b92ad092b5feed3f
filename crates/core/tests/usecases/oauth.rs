//! OAuth2 for machine users: AddSecret, AddKey, the token endpoint (client credentials and JWT
//! bearer) with RFC 6749 errors and the rate limit, introspection and revocation.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use passlink_core::app::{ClientCredentials, TokenRequest};
use passlink_core::error::Kind;
use passlink_core::event::Event;
use passlink_core::secret::Secret;
use passlink_core::view::{Scope, UserKind};

use crate::world::{EXTERNAL, Matrix, Options, USER_NOT_FOUND, USER_WRITERS, World, assert_err};

const API_SCOPE: &str = "openid urn:zitadel:iam:org:project:id:zitadel:aud";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

async fn signing_world() -> World {
    World::with(Options { signing: true, ..Options::default() }).await
}

fn secret_of(username: &str, secret: &Secret) -> ClientCredentials {
    ClientCredentials::Secret { client_id: username.into(), secret: secret.clone() }
}

fn grant(client: Option<ClientCredentials>, grant_type: &str, scope: &str) -> TokenRequest {
    TokenRequest { grant_type: grant_type.into(), client, scope: scope.into() }
}

/// A machine with a client secret: (user id, username, secret).
async fn machine_with_secret(w: &World) -> (String, String, Secret) {
    let id = w.given_machine(&w.default_org).await;
    let (secret, _) = w.app.add_secret(&w.admin, &id).await.unwrap();
    let username = w.user(&id).await.username;
    (id, username, secret)
}

#[tokio::test]
async fn add_secret_permissions_and_record() {
    let w = World::new().await;
    let m = Matrix {
        ok: USER_WRITERS,
        not_found: &["ORG_OWNER@other", "ORG_USER_MANAGER@other"],
        not_found_id: USER_NOT_FOUND,
    };
    w.check_matrix(&m, async |caller, org| {
        let machine = w.given_machine(org).await;
        w.app.add_secret(caller, &machine).await
    })
    .await;
    let (id, _, secret) = machine_with_secret(&w).await;
    let Event::MachineSecretSet { hash } = w.last_user_event(&id).await else { panic!() };
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(secret.expose()));
    let UserKind::Machine(m) = w.user(&id).await.kind else { panic!() };
    assert_eq!(m.secret_hash, hash);
    let human = w.given_human(&w.default_org).await;
    assert_err(w.app.add_secret(&w.admin, &human).await, Kind::FailedPrecondition, "COMMAND-Sdj4f");
    assert_err(w.app.add_secret(&w.admin, "404").await, Kind::NotFound, USER_NOT_FOUND);
}

#[tokio::test]
async fn add_key_permissions() {
    let w = World::new().await;
    // A given public key (generating one per caller would be slow).
    let (public, _) =
        passlink_core::jwt::generate_machine_key(&passlink_core::ports::SeededEntropy::new(5)).unwrap();
    let m = Matrix {
        ok: USER_WRITERS,
        not_found: &["ORG_OWNER@other", "ORG_USER_MANAGER@other"],
        not_found_id: USER_NOT_FOUND,
    };
    w.check_matrix(&m, async |caller, org| {
        let machine = w.given_machine(org).await;
        w.app.add_key(caller, &machine, None, public.as_bytes()).await
    })
    .await;
    assert_err(w.app.add_key(&w.admin, "404", None, public.as_bytes()).await, Kind::NotFound, USER_NOT_FOUND);
}

#[tokio::test]
async fn client_credentials_give_an_access_token_for_the_api() {
    let w = signing_world().await;
    let (id, username, secret) = machine_with_secret(&w).await;
    w.app
        .create_administrator(&w.admin, &id, Scope::Instance, vec!["IAM_USER_MANAGER".into()])
        .await
        .unwrap();
    let t = w
        .app
        .token(grant(Some(secret_of(&username, &secret)), "client_credentials", API_SCOPE))
        .await
        .unwrap();
    assert_eq!((t.expires_in, t.scope.as_str()), (43200, API_SCOPE));
    let p = w.app.authenticate(Some(&format!("Bearer {}", t.access_token.expose()))).await.unwrap();
    assert_eq!((p.user_id.as_str(), p.memberships.len()), (id.as_str(), 1));
    // The client id is case-insensitive.
    let upper = username.to_uppercase();
    assert!(
        w.app.token(grant(Some(secret_of(&upper, &secret)), "client_credentials", API_SCOPE)).await.is_ok()
    );
    // Without the API audience scope the token does not authenticate API calls.
    let t = w
        .app
        .token(grant(Some(secret_of(&username, &secret)), "client_credentials", "openid"))
        .await
        .unwrap();
    assert_err(
        w.app.authenticate(Some(&format!("Bearer {}", t.access_token.expose()))).await,
        Kind::Unauthenticated,
        "AUTH-7fs1e",
    );
    // It expires with its lifetime.
    let t = w
        .app
        .token(grant(Some(secret_of(&username, &secret)), "client_credentials", API_SCOPE))
        .await
        .unwrap();
    w.advance(Duration::from_secs(43200));
    assert!(w.app.authenticate(Some(&format!("Bearer {}", t.access_token.expose()))).await.is_err());
}

#[tokio::test]
async fn token_endpoint_errors_and_rate_limit() {
    let w = signing_world().await;
    let (id, username, secret) = machine_with_secret(&w).await;
    // The RFC 6749 error code; its HTTP status is the server's mapping (oauth_endpoints.rs).
    let err = |error: &str, r: Result<_, passlink_core::app::OAuthError>| {
        let e = r.map(|_: passlink_core::app::TokenGranted| ()).unwrap_err();
        assert_eq!(e.error(), error, "{e:?}");
    };
    err("invalid_request", w.app.token(grant(None, "", API_SCOPE)).await);
    err("unsupported_grant_type", w.app.token(grant(None, "password", API_SCOPE)).await);
    err("invalid_client", w.app.token(grant(None, "client_credentials", API_SCOPE)).await);
    err("invalid_request", w.app.token(grant(Some(secret_of(&username, &secret)), JWT_BEARER, "")).await);
    let good = || Some(secret_of(&username, &secret));
    err("invalid_scope", w.app.token(grant(good(), "client_credentials", "openid admin")).await);
    err(
        "invalid_client",
        w.app.token(grant(Some(secret_of("nobody", &secret)), "client_credentials", "")).await,
    );
    // Five wrong secrets within a minute: the client is refused for a minute, even with the right one.
    let wrong = Some(secret_of(&username, &Secret::new("wrong")));
    for _ in 0..5 {
        err("invalid_client", w.app.token(grant(wrong.clone(), "client_credentials", "")).await);
    }
    err("temporarily_unavailable", w.app.token(grant(good(), "client_credentials", "")).await);
    w.advance(Duration::from_secs(60));
    assert!(w.app.token(grant(good(), "client_credentials", "")).await.is_ok());
    // A deactivated machine is no client.
    w.app.deactivate_user(&w.admin, &id).await.unwrap();
    err("invalid_client", w.app.token(grant(good(), "client_credentials", "")).await);
}

#[tokio::test]
async fn jwt_bearer_with_a_generated_key() {
    let w = signing_world().await;
    let id = w.given_machine(&w.default_org).await;
    let key = w.app.add_key(&w.admin, &id, None, &[]).await.unwrap();
    let file: serde_json::Value = serde_json::from_slice(&key.key_content).unwrap();
    assert_eq!(
        (file["type"].as_str(), file["keyId"].as_str(), file["userId"].as_str()),
        (Some("serviceaccount"), Some(key.key_id.as_str()), Some(id.as_str()))
    );
    let Event::MachineKeyAdded { key_id, public_key, .. } = w.last_user_event(&id).await else { panic!() };
    assert_eq!(key_id, key.key_id);
    assert!(
        public_key.contains("PUBLIC KEY") && !public_key.contains("PRIVATE"),
        "only the public key is stored"
    );
    let now = w.app.now().secs_nanos().0;
    let assertion = |jti: &str, aud: &str, exp: i64| {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(key.key_id.clone());
        let claims =
            serde_json::json!({"iss": id, "sub": id, "aud": aud, "iat": now, "exp": exp, "jti": jti});
        let enc = EncodingKey::from_rsa_pem(file["key"].as_str().unwrap().as_bytes()).unwrap();
        Secret::new(jsonwebtoken::encode(&h, &claims, &enc).unwrap())
    };
    let req = |a: Secret| grant(Some(ClientCredentials::Assertion(a)), JWT_BEARER, API_SCOPE);
    let t = w.app.token(req(assertion("j1", EXTERNAL, now + 600))).await.unwrap();
    assert!(w.app.authenticate(Some(&format!("Bearer {}", t.access_token.expose()))).await.is_ok());
    let refused = |r: Result<passlink_core::app::TokenGranted, passlink_core::app::OAuthError>| {
        assert_eq!(r.unwrap_err().error(), "invalid_grant");
    };
    refused(w.app.token(req(assertion("j1", EXTERNAL, now + 600))).await); // replay
    refused(w.app.token(req(assertion("j2", "https://other.example.com", now + 600))).await); // audience
    refused(w.app.token(req(assertion("j3", EXTERNAL, now - 61))).await); // expired (60 s leeway)
    refused(w.app.token(req(assertion("j4", EXTERNAL, now + 7200))).await); // lifetime over an hour
    refused(w.app.token(req(Secret::new("not-a-jwt"))).await);
    // Errors of AddKey.
    let past = Some(w.app.now());
    assert_err(w.app.add_key(&w.admin, &id, past, &[]).await, Kind::InvalidArgument, "COMMAND-dv3t5");
    assert_err(w.app.add_key(&w.admin, &id, None, b"not a key").await, Kind::InvalidArgument, "KEY-pUb1c");
    let human = w.given_human(&w.default_org).await;
    assert_err(
        w.app.add_key(&w.admin, &human, None, public_key.as_bytes()).await,
        Kind::FailedPrecondition,
        "COMMAND-Sdj4f",
    );
    // A given public key is registered, and no key file is returned.
    let given = w.app.add_key(&w.admin, &id, None, public_key.as_bytes()).await.unwrap();
    assert!(given.key_content.is_empty());
}

#[tokio::test]
async fn introspection_and_revocation() {
    let w = signing_world().await;
    let (id, username, secret) = machine_with_secret(&w).await;
    let client = secret_of(&username, &secret);
    let jwt =
        w.app.token(grant(Some(client.clone()), "client_credentials", API_SCOPE)).await.unwrap().access_token;
    let pat = w.app.add_pat(&w.admin, &id, None).await.unwrap().token;
    for token in [&jwt, &pat] {
        let r = w.app.introspect(&client, token.expose()).await.unwrap();
        assert_eq!((r["active"].as_bool(), r["sub"].as_str()), (Some(true), Some(id.as_str())), "{r}");
    }
    assert_eq!(w.app.introspect(&client, "garbage").await.unwrap()["active"], false);
    let bad_client = secret_of(&username, &Secret::new("wrong"));
    assert_eq!(w.app.introspect(&bad_client, jwt.expose()).await.unwrap_err().error(), "invalid_client");
    // Another client's revocation of these tokens is answered like success and changes nothing.
    let (_, other_name, other_secret) = machine_with_secret(&w).await;
    let other = secret_of(&other_name, &other_secret);
    w.app.revoke(&other, jwt.expose()).await.unwrap();
    w.app.revoke(&other, pat.expose()).await.unwrap();
    assert_eq!(w.app.introspect(&client, jwt.expose()).await.unwrap()["active"], true);
    // The owner revokes both: recorded, inactive, and they stop authenticating at once.
    w.app.revoke(&client, jwt.expose()).await.unwrap();
    w.app.revoke(&client, pat.expose()).await.unwrap();
    let types = w.user_event_types(&id).await;
    assert!(types.ends_with(&["user.token.removed", "user.personal.access.token.removed"]), "{types:?}");
    for token in [&jwt, &pat] {
        assert_eq!(w.app.introspect(&client, token.expose()).await.unwrap()["active"], false);
        assert!(w.app.authenticate(Some(&format!("Bearer {}", token.expose()))).await.is_err());
    }
    // Unknown tokens: success, nothing recorded.
    let before = w.user_events(&id).await.len();
    w.app.revoke(&client, "unknown").await.unwrap();
    assert_eq!(w.user_events(&id).await.len(), before);
}
