//! The pure decisions of the code flow, without a store.

use super::client::{OidcClient, check_client};
use super::login::{AuthorizeParams, decide_authorize};
use super::tokens::decide_refresh;
use crate::event::{AggregateKind, Event, Recorded};
use crate::oidc::{
    AppSettings, AppView, GrantAdded, GrantTokens, GrantView, ObjectState, OidcConfig, auth_method,
    grant_type, response_type,
};
use crate::secret::{Secret, token_hash};

use super::super::testing::{NOW, human};

const ISS: &str = "https://id.example";

fn app(auth: i32) -> AppView {
    AppView {
        id: "c1".into(),
        org_id: "A".into(),
        settings: AppSettings {
            project_id: "p".into(),
            name: "Shop".into(),
            oidc: Some(OidcConfig {
                redirect_uris: vec!["https://app.example/cb".into()],
                response_types: vec![response_type::CODE],
                grant_types: vec![grant_type::AUTHORIZATION_CODE, grant_type::REFRESH_TOKEN],
                auth_method: auth,
                ..OidcConfig::default()
            }),
            api_auth_method: 0,
        },
        secret_hash: Some(crate::hex::encode(&token_hash("s3cret"))),
        keys: Vec::new(),
        state: ObjectState::Active,
        created_at: NOW,
        changed_at: NOW,
        sequence: 1,
    }
}

fn params() -> AuthorizeParams {
    AuthorizeParams {
        client_id: "c1".into(),
        redirect_uri: "https://app.example/cb".into(),
        response_type: "code".into(),
        scope: "openid email".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        code_challenge_method: Some("S256".into()),
        ..AuthorizeParams::default()
    }
}

fn redirected_error(p: &AuthorizeParams, a: &AppView) -> &'static str {
    match decide_authorize(Some(a), p) {
        Err(Err(r)) => r.error,
        other => panic!("expected a redirected error, got {other:?}"),
    }
}

#[test]
fn authorize_records_what_the_login_needs() {
    let p = AuthorizeParams {
        prompt: Some("login consent".into()),
        ui_locales: Some("de en".into()),
        max_age: Some("600".into()),
        response_mode: Some("fragment".into()),
        ..params()
    };
    let added = decide_authorize(Some(&app(auth_method::NONE)), &p).unwrap();
    assert_eq!(added.scope, ["openid", "email"]);
    assert_eq!(
        (added.max_age, added.fragment, added.ui_locales.len(), added.prompt.len()),
        (Some(600), true, 2, 2)
    );
}

#[test]
fn authorize_refusals_go_back_or_stay_on_a_page() {
    let public = app(auth_method::NONE);
    assert!(matches!(decide_authorize(None, &params()), Err(Ok(_))), "unknown client: a page");
    let bad_uri = AuthorizeParams { redirect_uri: "https://app.example/cb2".into(), ..params() };
    assert!(matches!(decide_authorize(Some(&public), &bad_uri), Err(Ok(_))), "unregistered redirect: a page");
    let mut inactive = public.clone();
    inactive.state = ObjectState::Inactive;
    assert!(matches!(decide_authorize(Some(&inactive), &params()), Err(Ok(_))));
    let cases = [
        (AuthorizeParams { code_challenge_method: Some("plain".into()), ..params() }, "invalid_request"),
        (AuthorizeParams { code_challenge: Some("short".into()), ..params() }, "invalid_request"),
        (AuthorizeParams { prompt: Some("none".into()), ..params() }, "login_required"),
        (AuthorizeParams { prompt: Some("none login".into()), ..params() }, "invalid_request"),
        (AuthorizeParams { prompt: Some("later".into()), ..params() }, "invalid_request"),
        (AuthorizeParams { max_age: Some("-1".into()), ..params() }, "invalid_request"),
        (AuthorizeParams { response_type: "id_token".into(), ..params() }, "unsupported_response_type"),
        (AuthorizeParams { scope: "email".into(), ..params() }, "invalid_scope"),
        (AuthorizeParams { response_mode: Some("form_post".into()), ..params() }, "invalid_request"),
        (AuthorizeParams { unsupported: Some("request_uri"), ..params() }, "request_uri_not_supported"),
        (
            AuthorizeParams { code_challenge: None, code_challenge_method: None, ..params() },
            "invalid_request",
        ),
    ];
    for (p, error) in cases {
        assert_eq!(redirected_error(&p, &public), error, "{p:?}");
    }
    let confidential = app(auth_method::BASIC);
    let no_pkce = AuthorizeParams { code_challenge: None, code_challenge_method: None, ..params() };
    assert!(
        decide_authorize(Some(&confidential), &no_pkce).is_ok(),
        "PKCE is optional for a confidential client"
    );
}

#[test]
fn client_authentication_follows_the_registered_method() {
    let c = |secret: Option<&str>| OidcClient {
        client_id: "c1".into(),
        secret: secret.map(Secret::new),
        assertion: None,
    };
    assert!(check_client(Some(&app(auth_method::NONE)), &c(None), ISS, NOW).is_ok());
    assert!(check_client(Some(&app(auth_method::BASIC)), &c(Some("s3cret")), ISS, NOW).is_ok());
    assert!(check_client(Some(&app(auth_method::POST)), &c(Some("s3cret")), ISS, NOW).is_ok());
    assert_eq!(
        check_client(Some(&app(auth_method::BASIC)), &c(Some("wrong")), ISS, NOW).unwrap_err().error(),
        "invalid_client"
    );
    assert_eq!(
        check_client(Some(&app(auth_method::BASIC)), &c(None), ISS, NOW).unwrap_err().error(),
        "invalid_client"
    );
    assert_eq!(check_client(None, &c(None), ISS, NOW).unwrap_err().error(), "invalid_client");
}

fn grant(refresh: &str) -> GrantView {
    let tokens = GrantTokens {
        access_hash: "a".into(),
        access_expires: NOW.plus(std::time::Duration::from_secs(60)),
        refresh_hash: Some(crate::hex::encode(&token_hash(refresh))),
        refresh_expires: Some(NOW.plus(std::time::Duration::from_secs(600))),
    };
    let added = GrantAdded {
        client_id: "c1".into(),
        user_id: "u".into(),
        session_id: "s".into(),
        auth_request_id: "V2_1".into(),
        scope: vec!["openid".into()],
        auth_time: NOW,
        user_verified: true,
        nonce: None,
        tokens,
    };
    let r = Recorded {
        aggregate_kind: AggregateKind::Grant,
        aggregate_id: "V2_9".into(),
        sequence: 1,
        created_at: NOW,
        resource_owner: "A".into(),
        creator: "c1".into(),
        event: Event::GrantAdded(added),
    };
    GrantView::fold(&[r]).unwrap()
}

#[test]
fn refresh_rotates_and_a_spent_token_revokes_the_grant() {
    let user = human("u", "A");
    let next = GrantTokens {
        access_hash: "b".into(),
        access_expires: NOW,
        refresh_hash: Some(crate::hex::encode(&token_hash("V2_9.r2"))),
        refresh_expires: None,
    };
    let g = grant("V2_9.r1");
    let tx = decide_refresh(&g, "c1", "V2_9.r1", Some(&user), next.clone(), NOW).unwrap();
    let rotated = GrantView::fold(&[vec_events(&g), tx.into_commit().events].concat()).unwrap();
    assert_eq!(rotated.spent_refresh.len(), 1);
    // The spent token: refused, and the decision revokes the grant.
    let (e, revoke) = *decide_refresh(&rotated, "c1", "V2_9.r1", Some(&user), next.clone(), NOW).unwrap_err();
    assert_eq!(e.error(), "invalid_grant");
    let revoked = revoke.expect("reuse revokes").into_commit().events;
    assert!(matches!(revoked[0].event, Event::GrantRevoked { .. }));
    // Another client, an unknown token, an expired one: refused without revoking.
    assert!(decide_refresh(&g, "c2", "V2_9.r1", Some(&user), next.clone(), NOW).unwrap_err().1.is_none());
    assert!(decide_refresh(&g, "c1", "V2_9.zz", Some(&user), next.clone(), NOW).unwrap_err().1.is_none());
    let late = NOW.plus(std::time::Duration::from_secs(601));
    assert!(decide_refresh(&g, "c1", "V2_9.r1", Some(&user), next, late).is_err());
}

fn vec_events(g: &GrantView) -> Vec<Recorded> {
    vec![Recorded {
        aggregate_kind: AggregateKind::Grant,
        aggregate_id: g.id.clone(),
        sequence: 1,
        created_at: g.created_at,
        resource_owner: g.org_id.clone(),
        creator: "c1".into(),
        event: Event::GrantAdded(g.grant.clone()),
    }]
}
