//! Sign-in sessions with webauthn-rs's software passkey: enroll through a registration code,
//! then sign in (CreateSession with the user and a challenge, SetSession with the assertion);
//! username-less; token rotation; every refusal of a passkey check, each its own test; reads,
//! lists and deletes with and without the session token.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passlink_core::app::{
    Caller, ChallengeRequest, DateMethod, LinkMedium, RegisterPasskey, SessionChange, SessionList,
    SessionQuery, SessionWritten, UserCheck,
};
use passlink_core::error::Kind;
use passlink_core::event::{AggregateKind, Event};
use passlink_core::secret::Secret;
use passlink_core::store::Store;
use passlink_core::view::Scope;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::world::{EXTERNAL, World, assert_err};

const NO_CHALLENGE: &str = "COMMAND-Ioqu5";
const NOT_USERS: &str = "COMMAND-Aej7i";
const INVALID: &str = "WEBAUTHN-l0g1n";
const CLONED: &str = "WEBAUTHN-cl0n3";

/// A user's enrolled passkey: the authenticator holding it, its credential id and user handle.
pub(crate) struct Enrolled {
    pub user: String,
    pub key: SoftPasskey,
    cred_id: String,
    user_handle: String,
}

/// Enroll a passkey for a new human of the default org through a returned registration code.
pub(crate) async fn enroll(w: &World) -> Enrolled {
    let user = w.given_human(&w.default_org).await;
    let code = w.app.create_passkey_link(&w.admin, &user, LinkMedium::Return).await.unwrap().code.unwrap();
    let req =
        RegisterPasskey { user_id: user.clone(), code: Some(code), attachment: None, domain: String::new() };
    let started = w.app.register_passkey(None, req).await.unwrap();
    let mut options = started.options.clone();
    let user_handle = options["publicKey"]["user"]["id"].as_str().unwrap().to_string();
    let sel = &mut options["publicKey"]["authenticatorSelection"];
    sel["requireResidentKey"] = json!(false);
    sel["residentKey"] = json!("discouraged");
    let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let mut key = SoftPasskey::new(true);
    let cred = key.do_registration(Url::parse(EXTERNAL).unwrap(), ccr).unwrap();
    let cred = serde_json::to_value(cred).unwrap();
    let cred_id = cred["id"].as_str().unwrap().to_string();
    w.app.verify_passkey(None, &user, &started.passkey_id, &cred, "laptop").await.unwrap();
    Enrolled { user, key, cred_id, user_handle }
}

pub(crate) async fn login_client(w: &World) -> Caller {
    w.caller(&w.default_org, Scope::Instance, &["IAM_LOGIN_CLIENT"]).await
}

fn challenge() -> Option<ChallengeRequest> {
    Some(ChallengeRequest { domain: "localhost".into(), user_verification: 1 })
}

/// CreateSession with `checks.user` (by id) and a WebAuthN challenge.
pub(crate) async fn start(w: &World, caller: &Caller, user: Option<&str>) -> SessionWritten {
    let change = SessionChange {
        user: user.map(|u| UserCheck::Id(u.into())),
        challenge: challenge(),
        ..SessionChange::default()
    };
    w.app.create_session(caller, change).await.unwrap()
}

/// The authenticator answers the challenge options as a browser at `origin` would.
pub(crate) fn assert_with(key: &mut SoftPasskey, options: &Value, origin: &str) -> Value {
    let rcr: RequestChallengeResponse = serde_json::from_value(options.clone()).unwrap();
    serde_json::to_value(key.do_authentication(Url::parse(origin).unwrap(), rcr).unwrap()).unwrap()
}

pub(crate) fn check(assertion: Value) -> SessionChange {
    SessionChange { assertion: Some(assertion), ..SessionChange::default() }
}

/// Edit one base64url field of the assertion's `response`.
fn tamper(assertion: &mut Value, field: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = URL_SAFE_NO_PAD.decode(assertion["response"][field].as_str().unwrap()).unwrap();
    f(&mut bytes);
    assertion["response"][field] = json!(URL_SAFE_NO_PAD.encode(bytes));
}

async fn session_events(w: &World, id: &str) -> Vec<&'static str> {
    w.store.events_of(AggregateKind::Session, id).await.unwrap().iter().map(|r| r.event.type_name()).collect()
}

#[tokio::test]
async fn enroll_then_sign_in_with_the_passkey() {
    // Given a user with a passkey enrolled through a registration code
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    // When the login UI creates a session for the user with a challenge
    let created = start(&w, &ui, Some(&e.user)).await;
    let options = created.challenge.clone().unwrap();
    let pk = &options["publicKey"];
    assert_eq!(pk["rpId"], "localhost");
    assert_eq!(pk["userVerification"], "required");
    assert_eq!(pk["allowCredentials"][0]["id"], e.cred_id.as_str());
    assert!(pk["challenge"].as_str().is_some_and(|c| c.len() >= 43));
    assert!(pk["timeout"].as_u64().is_some());
    let first_token = created.token.clone().unwrap();
    // And the browser answers it
    let assertion = assert_with(&mut e.key, &options, EXTERNAL);
    let set = w.app.set_session(&ui, &created.session_id, check(assertion)).await.unwrap();
    // Then the session has the user and the passkey factor, with a new token
    let token = set.token.unwrap();
    assert_ne!(token.expose(), first_token.expose());
    let s = w.app.get_session(&ui, &created.session_id, Some(&token)).await.unwrap();
    assert_eq!(s.user.as_ref().map(|u| u.user_id.as_str()), Some(e.user.as_str()));
    let f = s.webauthn.unwrap();
    assert!(f.user_verified);
    assert_eq!(f.checked_at, w.app.now());
    // The earlier token no longer works
    assert_err(
        w.app.get_session(&ui, &created.session_id, Some(&first_token)).await,
        Kind::PermissionDenied,
        "QUERY-dsfr3",
    );
    // Events on the session and on the user
    assert_eq!(
        session_events(&w, &created.session_id).await,
        [
            "session.added",
            "session.user.checked",
            "session.webAuthN.challenged",
            "session.token.set",
            "session.webAuthN.checked",
            "session.token.set"
        ]
    );
    let types = w.user_event_types(&e.user).await;
    assert_eq!(
        types[types.len() - 2..],
        ["user.human.passwordless.token.signcount.changed", "user.human.passwordless.token.check.succeeded"]
    );
    // ListPasskeys knows when the passkey was last used
    let (listed, _) = w.app.list_passkeys(Some(&w.admin), &e.user).await.unwrap();
    assert_eq!(listed[0].last_used, Some(w.app.now()));
    // The challenge was single use
    let again = assert_with(&mut e.key, &options, EXTERNAL);
    assert_err(
        w.app.set_session(&ui, &created.session_id, check(again)).await,
        Kind::FailedPrecondition,
        NO_CHALLENGE,
    );
}

#[tokio::test]
async fn a_login_name_checks_the_user_and_nothing_changed_gives_no_new_token() {
    let w = World::new().await;
    let e = enroll(&w).await;
    let ui = login_client(&w).await;
    let username = w.user(&e.user).await.username;
    let change =
        SessionChange { user: Some(UserCheck::LoginName(username.to_uppercase())), ..Default::default() };
    let created = w.app.create_session(&ui, change).await.unwrap();
    assert!(created.challenge.is_none());
    assert_eq!(created.details.resource_owner, w.instance_id);
    let s = w.app.get_session(&ui, &created.session_id, created.token.as_ref()).await.unwrap();
    assert_eq!(s.user.unwrap().login_name, username);
    let same = SessionChange { user: Some(UserCheck::Id(e.user.clone())), ..Default::default() };
    let set = w.app.set_session(&ui, &created.session_id, same).await.unwrap();
    assert!(set.token.is_none(), "no change, no new token");
    let other = w.given_human(&w.default_org).await;
    let change = SessionChange { user: Some(UserCheck::Id(other)), ..Default::default() };
    assert_err(
        w.app.set_session(&ui, &created.session_id, change).await,
        Kind::InvalidArgument,
        "SESSION-uChg1",
    );
}

#[tokio::test]
async fn username_less_sign_in_finds_the_user_by_the_credential() {
    // Given two users with passkeys (on two authenticators)
    let w = World::new().await;
    let mut ada = enroll(&w).await;
    let mut bob = enroll(&w).await;
    let ui = login_client(&w).await;
    for e in [&mut ada, &mut bob] {
        // When a session starts with only a challenge
        let created = start(&w, &ui, None).await;
        let mut options = created.challenge.clone().unwrap();
        assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
        let s = w.app.get_session(&ui, &created.session_id, created.token.as_ref()).await.unwrap();
        assert!(s.user.is_none());
        // And the authenticator picks its discoverable credential and returns its user handle
        options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": e.cred_id}]);
        let mut assertion = assert_with(&mut e.key, &options, EXTERNAL);
        assertion["response"]["userHandle"] = json!(e.user_handle);
        let set = w.app.set_session(&ui, &created.session_id, check(assertion)).await.unwrap();
        // Then the session names that user and has the passkey factor
        let s = w.app.get_session(&ui, &created.session_id, set.token.as_ref()).await.unwrap();
        assert_eq!(s.user.map(|u| u.user_id), Some(e.user.clone()));
        assert!(s.webauthn.is_some_and(|f| f.user_verified));
    }
}

#[tokio::test]
async fn a_user_handle_of_another_user_is_refused() {
    let w = World::new().await;
    let mut ada = enroll(&w).await;
    let bob = enroll(&w).await;
    let ui = login_client(&w).await;
    let created = start(&w, &ui, None).await;
    let mut options = created.challenge.unwrap();
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": ada.cred_id}]);
    let mut assertion = assert_with(&mut ada.key, &options, EXTERNAL);
    assertion["response"]["userHandle"] = json!(bob.user_handle);
    assert_err(
        w.app.set_session(&ui, &created.session_id, check(assertion)).await,
        Kind::FailedPrecondition,
        NOT_USERS,
    );
    let s = w.store.session(&created.session_id).await.unwrap().unwrap();
    assert!(s.user.is_none() && s.webauthn.is_none());
}

/// A refused check: the error, no passkey factor, the challenge used up, the reason recorded.
async fn assert_refused(w: &World, ui: &Caller, session: &str, assertion: Value, kind: Kind, id: &str) {
    assert_err(w.app.set_session(ui, session, check(assertion)).await, kind, id);
    let s = w.store.session(session).await.unwrap().unwrap();
    assert!(s.webauthn.is_none(), "no passkey factor");
    assert!(s.challenge.is_none(), "the challenge is used up");
    let last = w.store.events_of(AggregateKind::Session, session).await.unwrap().pop().unwrap();
    assert!(
        matches!(last.event, Event::SessionWebAuthNCheckFailed { ref reason } if !reason.is_empty()),
        "{last:?}"
    );
}

#[tokio::test]
async fn an_unknown_challenge_is_refused() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    // A session without a challenge; the authenticator answers a challenge of another session
    let change = SessionChange { user: Some(UserCheck::Id(e.user.clone())), ..Default::default() };
    let plain = w.app.create_session(&ui, change).await.unwrap();
    let other = start(&w, &ui, Some(&e.user)).await;
    let assertion = assert_with(&mut e.key, &other.challenge.unwrap(), EXTERNAL);
    assert_refused(&w, &ui, &plain.session_id, assertion, Kind::FailedPrecondition, NO_CHALLENGE).await;
}

#[tokio::test]
async fn a_challenge_of_another_session_is_refused() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    let a = start(&w, &ui, Some(&e.user)).await;
    let b = start(&w, &ui, Some(&e.user)).await;
    let assertion = assert_with(&mut e.key, &b.challenge.unwrap(), EXTERNAL);
    assert_refused(&w, &ui, &a.session_id, assertion, Kind::InvalidArgument, INVALID).await;
}

#[tokio::test]
async fn a_used_challenge_is_refused() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    let s = start(&w, &ui, Some(&e.user)).await;
    let options = s.challenge.unwrap();
    let first = assert_with(&mut e.key, &options, EXTERNAL);
    w.app.set_session(&ui, &s.session_id, check(first)).await.unwrap();
    let replay = assert_with(&mut e.key, &options, EXTERNAL);
    assert_err(
        w.app.set_session(&ui, &s.session_id, check(replay)).await,
        Kind::FailedPrecondition,
        NO_CHALLENGE,
    );
}

#[tokio::test]
async fn an_expired_challenge_is_refused() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    let s = start(&w, &ui, Some(&e.user)).await;
    w.advance(Duration::from_secs(301));
    let assertion = assert_with(&mut e.key, &s.challenge.unwrap(), EXTERNAL);
    assert_refused(&w, &ui, &s.session_id, assertion, Kind::FailedPrecondition, NO_CHALLENGE).await;
}

#[tokio::test]
async fn a_passkey_of_another_user_is_refused_and_recorded() {
    let w = World::new().await;
    let ada = enroll(&w).await;
    let mut bob = enroll(&w).await;
    let ui = login_client(&w).await;
    let s = start(&w, &ui, Some(&ada.user)).await;
    let mut options = s.challenge.unwrap();
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": bob.cred_id}]);
    let assertion = assert_with(&mut bob.key, &options, EXTERNAL);
    assert_refused(&w, &ui, &s.session_id, assertion, Kind::FailedPrecondition, NOT_USERS).await;
    assert!(matches!(
        w.last_user_event(&ada.user).await,
        Event::PasskeyCheckFailed { ref reason, .. } if reason.contains("not a passkey of the user")
    ));
}

#[tokio::test]
async fn a_removed_passkey_is_refused() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    let s = start(&w, &ui, Some(&e.user)).await;
    let (listed, _) = w.app.list_passkeys(Some(&w.admin), &e.user).await.unwrap();
    w.app.remove_passkey(Some(&w.admin), &e.user, &listed[0].id).await.unwrap();
    let assertion = assert_with(&mut e.key, &s.challenge.unwrap(), EXTERNAL);
    assert_refused(&w, &ui, &s.session_id, assertion, Kind::FailedPrecondition, NOT_USERS).await;
}

#[tokio::test]
async fn a_wrong_signature_is_refused() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    let s = start(&w, &ui, Some(&e.user)).await;
    let mut assertion = assert_with(&mut e.key, &s.challenge.unwrap(), EXTERNAL);
    tamper(&mut assertion, "signature", |sig| {
        let n = sig.len() - 1;
        sig[n] ^= 1;
    });
    assert_refused(&w, &ui, &s.session_id, assertion, Kind::InvalidArgument, INVALID).await;
    assert!(matches!(w.last_user_event(&e.user).await, Event::PasskeyCheckFailed { .. }));
}

#[tokio::test]
async fn a_wrong_origin_is_refused() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    let s = start(&w, &ui, Some(&e.user)).await;
    let assertion = assert_with(&mut e.key, &s.challenge.unwrap(), "http://localhost:9999");
    assert_refused(&w, &ui, &s.session_id, assertion, Kind::InvalidArgument, INVALID).await;
}

#[tokio::test]
async fn a_wrong_rp_id_is_refused() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    let s = start(&w, &ui, Some(&e.user)).await;
    let mut assertion = assert_with(&mut e.key, &s.challenge.unwrap(), EXTERNAL);
    let evil: [u8; 32] =
        sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(b"evil.example")).into();
    tamper(&mut assertion, "authenticatorData", |d| d[..32].copy_from_slice(&evil));
    assert_refused(&w, &ui, &s.session_id, assertion, Kind::InvalidArgument, INVALID).await;
}

#[tokio::test]
async fn a_missing_user_verification_flag_is_refused() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    let s = start(&w, &ui, Some(&e.user)).await;
    let mut options = s.challenge.unwrap();
    // The authenticator is told UV is not needed: it signs without the UV flag.
    options["publicKey"]["userVerification"] = json!("discouraged");
    let assertion = assert_with(&mut e.key, &options, EXTERNAL);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(assertion["response"]["authenticatorData"].as_str().unwrap()).unwrap()[32] & 4,
        0
    );
    assert_refused(&w, &ui, &s.session_id, assertion, Kind::InvalidArgument, INVALID).await;
}

#[tokio::test]
async fn an_inactive_user_is_refused() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    let s = start(&w, &ui, Some(&e.user)).await;
    w.app.deactivate_user(&w.admin, &e.user).await.unwrap();
    let assertion = assert_with(&mut e.key, &s.challenge.unwrap(), EXTERNAL);
    assert_refused(&w, &ui, &s.session_id, assertion, Kind::FailedPrecondition, "SESSION-Gj4ko").await;
    // And no new session can check the user
    let change = SessionChange { user: Some(UserCheck::Id(e.user.clone())), ..Default::default() };
    assert_err(w.app.create_session(&ui, change).await, Kind::FailedPrecondition, "SESSION-Gj4ko");
}

#[tokio::test]
async fn a_deleted_user_is_refused() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    let s = start(&w, &ui, None).await;
    w.app.delete_user(&w.admin, &e.user).await.unwrap();
    let mut options = s.challenge.unwrap();
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": e.cred_id}]);
    let assertion = assert_with(&mut e.key, &options, EXTERNAL);
    assert_refused(&w, &ui, &s.session_id, assertion, Kind::FailedPrecondition, "COMMAND-Df4b3").await;
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_as_a_clone() {
    let w = World::new().await;
    let mut e = enroll(&w).await;
    let ui = login_client(&w).await;
    let a = start(&w, &ui, Some(&e.user)).await;
    let b = start(&w, &ui, Some(&e.user)).await;
    // Counter 1 for a, 2 for b; b arrives first.
    let for_a = assert_with(&mut e.key, &a.challenge.unwrap(), EXTERNAL);
    let for_b = assert_with(&mut e.key, &b.challenge.unwrap(), EXTERNAL);
    w.app.set_session(&ui, &b.session_id, check(for_b)).await.unwrap();
    assert!(matches!(
        w.user_events(&e.user).await.iter().rev().nth(1).map(|r| &r.event),
        Some(Event::PasskeySignCountChanged { sign_count: 2, .. })
    ));
    assert_refused(&w, &ui, &a.session_id, for_a, Kind::FailedPrecondition, CLONED).await;
    assert!(matches!(
        w.last_user_event(&e.user).await,
        Event::PasskeyCloneDetected { stored: 2, presented: 1, .. }
    ));
}

#[tokio::test]
async fn challenges_need_a_known_relying_party_and_user_verification() {
    let w = World::new().await;
    let ui = login_client(&w).await;
    let bad_rp = SessionChange {
        challenge: Some(ChallengeRequest { domain: "evil.example".into(), user_verification: 1 }),
        ..Default::default()
    };
    assert_err(w.app.create_session(&ui, bad_rp).await, Kind::InvalidArgument, "WEBAUTHN-rp1d");
    let no_uv = SessionChange {
        challenge: Some(ChallengeRequest { domain: String::new(), user_verification: 2 }),
        ..Default::default()
    };
    assert_err(w.app.create_session(&ui, no_uv).await, Kind::InvalidArgument, "SESSION-uvR3q");
}

#[tokio::test]
async fn permissions_to_create_read_list_and_delete() {
    let w = World::new().await;
    let e = enroll(&w).await;
    let ui = login_client(&w).await;
    let nobody = w.nobody().await;
    let other_org = w.given_org("elsewhere").await;
    let foreign_owner = w.caller(&w.default_org, Scope::Org(other_org), &["ORG_OWNER"]).await;
    let by_user = || SessionChange { user: Some(UserCheck::Id(e.user.clone())), ..Default::default() };
    assert_err(w.app.create_session(&nobody, by_user()).await, Kind::PermissionDenied, "AUTH-5mWD2");
    assert_err(w.app.create_session(&foreign_owner, by_user()).await, Kind::PermissionDenied, "AUTH-5mWD2");
    let s = w.app.create_session(&ui, by_user()).await.unwrap();
    let token = s.token.clone().unwrap();
    // Reading: with the token anyone; without it the creator or session.read holders
    w.app.get_session(&nobody, &s.session_id, Some(&token)).await.unwrap();
    w.app.get_session(&ui, &s.session_id, None).await.unwrap();
    w.app.get_session(&w.admin, &s.session_id, None).await.unwrap();
    assert_err(w.app.get_session(&nobody, &s.session_id, None).await, Kind::PermissionDenied, "QUERY-dsfr3");
    assert_err(w.app.get_session(&ui, "nope", None).await, Kind::NotFound, "QUERY-SFeaa");
    // Listing drops what the caller may not read
    let list = SessionList { queries: vec![SessionQuery::UserId(e.user.clone())], ..Default::default() };
    assert_eq!(w.app.list_sessions(&ui, &list).await.unwrap().1, 1);
    assert_eq!(w.app.list_sessions(&nobody, &list).await.unwrap().1, 0);
    let later = SessionList {
        queries: vec![SessionQuery::CreationDate(w.app.now(), DateMethod::Greater)],
        ..Default::default()
    };
    assert_eq!(w.app.list_sessions(&ui, &later).await.unwrap().1, 0);
    // Deleting: a wrong token is refused, the right one works without a permission
    assert_err(
        w.app.delete_session(&nobody, &s.session_id, Some(&Secret::new("wrong"))).await,
        Kind::PermissionDenied,
        "COMMAND-sGr42",
    );
    assert_err(
        w.app.delete_session(&nobody, &s.session_id, None).await,
        Kind::PermissionDenied,
        "AUTH-5mWD2",
    );
    w.app.delete_session(&nobody, &s.session_id, Some(&token)).await.unwrap();
    assert_eq!(session_events(&w, &s.session_id).await.last(), Some(&"session.terminated"));
    assert_err(w.app.get_session(&ui, &s.session_id, Some(&token)).await, Kind::NotFound, "QUERY-SFeaa");
    assert_err(
        w.app.set_session(&ui, &s.session_id, by_user()).await,
        Kind::FailedPrecondition,
        "COMMAND-Hewfq",
    );
    // Deleting again succeeds and records nothing
    w.app.delete_session(&ui, &s.session_id, None).await.unwrap();
    assert_eq!(
        session_events(&w, &s.session_id).await.iter().filter(|t| **t == "session.terminated").count(),
        1
    );
}

#[tokio::test]
async fn lifetime_and_metadata() {
    let w = World::new().await;
    let ui = login_client(&w).await;
    let change = SessionChange {
        lifetime: Some(60),
        metadata: [("k".to_string(), b"v".to_vec())].into(),
        ..Default::default()
    };
    let s = w.app.create_session(&ui, change).await.unwrap();
    let v = w.app.get_session(&ui, &s.session_id, None).await.unwrap();
    assert_eq!(v.expiration, Some(w.app.now().plus(Duration::from_secs(60))));
    assert_eq!(v.metadata.get("k").map(String::as_str), Some("dg=="));
    w.advance(Duration::from_secs(61));
    let set = SessionChange { lifetime: Some(10), ..Default::default() };
    assert_err(w.app.set_session(&ui, &s.session_id, set).await, Kind::FailedPrecondition, "COMMAND-Hkl3d");
    let negative = SessionChange { lifetime: Some(-1), ..Default::default() };
    assert_err(w.app.create_session(&ui, negative).await, Kind::InvalidArgument, "COMMAND-asEG4");
}
