//! The passkey ceremony (RegisterPasskey, VerifyPasskeyRegistration, ListPasskeys,
//! RemovePasskey) with webauthn-rs's software authenticator, and every state of a registration
//! code: returned (usable at once), sent (usable once delivered), used, expired, locked after
//! three wrong checks, foreign, unknown.

use std::sync::Arc;
use std::time::Duration;

use passlink_core::app::{Caller, LinkMedium, PasskeyStarted, Prepared, Principal, RegisterPasskey};
use passlink_core::code::CodeState;
use passlink_core::error::{Error, Kind};
use passlink_core::event::Event;
use passlink_core::secret::Secret;
use passlink_core::store::Store;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::world::{
    CODE_INVALID, EXTERNAL, Matrix, USER_NOT_FOUND, USER_READERS, World, assert_err, assert_kind,
};

const PASSKEY_NOT_FOUND: &str = "COMMAND-mKGo3";

/// Holders of `user.credential.write` (IAM_USER_MANAGER is not one).
const CREDENTIAL_WRITE: Matrix = Matrix {
    ok: &["IAM_OWNER", "IAM_ORG_MANAGER", "IAM_LOGIN_CLIENT", "ORG_OWNER"],
    not_found: &["ORG_OWNER@other"],
    not_found_id: USER_NOT_FOUND,
};

/// The browser's side: the software authenticator answers the options for `origin` (it cannot
/// store resident keys, so it is asked for a plain credential).
fn credential(options: &Value, origin: &str) -> Value {
    let mut options = options.clone();
    let sel = &mut options["publicKey"]["authenticatorSelection"];
    sel["requireResidentKey"] = json!(false);
    sel["residentKey"] = json!("discouraged");
    let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let cred = SoftPasskey::new(true).do_registration(Url::parse(origin).unwrap(), ccr).unwrap();
    serde_json::to_value(cred).unwrap()
}

pub(crate) fn with_code(user: &str, code: &(String, Secret)) -> RegisterPasskey {
    RegisterPasskey {
        user_id: user.into(),
        code: Some(code.clone()),
        attachment: None,
        domain: String::new(),
    }
}

fn without_code(user: &str) -> RegisterPasskey {
    RegisterPasskey { user_id: user.into(), code: None, attachment: None, domain: String::new() }
}

/// The user acting for itself (a session of the user, not a machine token).
fn itself(user: &str, org: &str) -> Caller {
    let p = Principal {
        user_id: user.into(),
        org_id: org.into(),
        memberships: vec![],
        token_expires: Default::default(),
    };
    Caller { principal: Arc::new(p), context_org: org.into() }
}

pub(crate) async fn returned_code(w: &World, user: &str) -> (String, Secret) {
    w.app.create_passkey_link(&w.admin, user, LinkMedium::Return).await.unwrap().code.unwrap()
}

pub(crate) async fn register_and_verify(
    w: &World,
    caller: Option<&Caller>,
    req: RegisterPasskey,
) -> Result<String, Error> {
    let user = req.user_id.clone();
    let started: PasskeyStarted = w.app.register_passkey(caller, req).await?;
    let cred = credential(&started.options, EXTERNAL);
    w.app.verify_passkey(caller, &user, &started.passkey_id, &cred, "my key").await?;
    Ok(started.passkey_id)
}

#[tokio::test]
async fn a_returned_code_enrolls_a_passkey_once_without_a_token() {
    // Given a human with a returned code
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let code = returned_code(&w, &user).await;
    // When the browser registers with the code and no token
    let started = w.app.register_passkey(None, with_code(&user, &code)).await.unwrap();
    assert_eq!(started.details.sequence, 3);
    assert!(started.options["publicKey"]["challenge"].is_string());
    assert_eq!(w.last_user_event(&user).await.type_name(), "user.human.passwordless.token.added");
    // The code is consumed by the verification, not by the start
    assert_eq!(w.store.code(&code.0).await.unwrap().unwrap().state, CodeState::Active);
    let cred = credential(&started.options, EXTERNAL);
    let d = w.app.verify_passkey(None, &user, &started.passkey_id, &cred, "my key").await.unwrap();
    assert_eq!(d.sequence, 5);
    // Then the passkey is READY, the code consumed, both recorded
    let types = w.user_event_types(&user).await;
    assert_eq!(
        types[2..],
        [
            "user.human.passwordless.token.added",
            "user.human.passwordless.token.verified",
            "user.human.passwordless.initialization.code.check.succeeded"
        ]
    );
    assert_eq!(w.store.code(&code.0).await.unwrap().unwrap().state, CodeState::Consumed);
    let (listed, _) = w.app.list_passkeys(Some(&w.admin), &user).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id.as_str(), listed[0].name.as_str()), (started.passkey_id.as_str(), "my key"));
    // And the used code is refused
    assert_err(
        w.app.register_passkey(None, with_code(&user, &code)).await,
        Kind::InvalidArgument,
        CODE_INVALID,
    );
}

#[tokio::test]
async fn a_sent_code_is_usable_only_once_delivered() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let tpl = "https://example.com/r?c={{.Code}}".to_string();
    w.app.create_passkey_link(&w.admin, &user, LinkMedium::Send { url_template: Some(tpl) }).await.unwrap();
    let jobs = w.app.claim_deliveries("worker", 10).await.unwrap();
    let Prepared::Send(msg) = w.app.prepare_delivery(&jobs[0]).await.unwrap() else { panic!("to send") };
    let value = msg.link.expose().strip_prefix("https://example.com/r?c=").unwrap().to_string();
    let code = (msg.code_id.clone(), Secret::new(value));
    // Not yet delivered: refused, and not counted as a wrong check
    assert_err(
        w.app.register_passkey(None, with_code(&user, &code)).await,
        Kind::InvalidArgument,
        CODE_INVALID,
    );
    assert!(!w.user_event_types(&user).await.iter().any(|t| t.ends_with("check.failed")));
    // Delivered: usable
    w.app.delivery_succeeded(&jobs[0]).await.unwrap();
    assert!(register_and_verify(&w, None, with_code(&user, &code)).await.is_ok());
}

#[tokio::test]
async fn three_wrong_checks_lock_the_code() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let code = returned_code(&w, &user).await;
    let wrong = (code.0.clone(), Secret::new("wrongwrong12"));
    for _ in 0..3 {
        assert_err(
            w.app.register_passkey(None, with_code(&user, &wrong)).await,
            Kind::InvalidArgument,
            CODE_INVALID,
        );
    }
    let failed = w.user_event_types(&user).await.iter().filter(|t| t.ends_with("code.check.failed")).count();
    assert_eq!(failed, 3);
    let view = w.store.code(&code.0).await.unwrap().unwrap();
    assert_eq!((view.state, view.failed_checks), (CodeState::Locked, 3));
    // The right code no longer works.
    assert_err(
        w.app.register_passkey(None, with_code(&user, &code)).await,
        Kind::InvalidArgument,
        CODE_INVALID,
    );
}

#[tokio::test]
async fn expired_foreign_and_unknown_codes_are_refused_alike() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let other = w.given_human(&w.default_org).await;
    let code = returned_code(&w, &user).await;
    // Foreign: another user's code
    assert_err(
        w.app.register_passkey(None, with_code(&other, &code)).await,
        Kind::InvalidArgument,
        CODE_INVALID,
    );
    // Unknown id
    let unknown = ("nope".to_string(), code.1.clone());
    assert_err(
        w.app.register_passkey(None, with_code(&user, &unknown)).await,
        Kind::InvalidArgument,
        CODE_INVALID,
    );
    // Expired by the clock
    w.advance(Duration::from_secs(3600));
    assert_err(
        w.app.register_passkey(None, with_code(&user, &code)).await,
        Kind::InvalidArgument,
        CODE_INVALID,
    );
    // None of these counted as a wrong value.
    assert!(!w.user_event_types(&user).await.iter().any(|t| t.ends_with("check.failed")));
    // Empty code fields are invalid requests.
    let empty = (String::new(), Secret::new("x"));
    assert_kind(w.app.register_passkey(None, with_code(&user, &empty)).await, Kind::InvalidArgument);
}

#[tokio::test]
async fn starting_again_with_the_same_code_replaces_the_pending_registration() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let code = returned_code(&w, &user).await;
    let first = w.app.register_passkey(None, with_code(&user, &code)).await.unwrap();
    let second = w.app.register_passkey(None, with_code(&user, &code)).await.unwrap();
    assert_eq!(
        w.user_events(&user)
            .await
            .iter()
            .filter(|r| r.event == Event::PasskeyRemoved { id: first.passkey_id.clone() })
            .count(),
        1
    );
    // The first one can no longer be verified; the second can.
    let cred = credential(&first.options, EXTERNAL);
    assert_err(
        w.app.verify_passkey(None, &user, &first.passkey_id, &cred, "k").await,
        Kind::NotFound,
        PASSKEY_NOT_FOUND,
    );
    let cred = credential(&second.options, EXTERNAL);
    assert!(w.app.verify_passkey(None, &user, &second.passkey_id, &cred, "k").await.is_ok());
}

#[tokio::test]
async fn verification_errors() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let code = returned_code(&w, &user).await;
    let started = w.app.register_passkey(None, with_code(&user, &code)).await.unwrap();
    let good = credential(&started.options, EXTERNAL);
    // Wrong origin and tampered attestation are refused; the code stays usable.
    let wrong_origin = credential(&started.options, "http://localhost:9");
    assert_err(
        w.app.verify_passkey(None, &user, &started.passkey_id, &wrong_origin, "k").await,
        Kind::InvalidArgument,
        "WEBAUTHN-v3r1f",
    );
    let mut tampered = good.clone();
    tampered["response"]["clientDataJSON"] = json!("e30");
    assert!(w.app.verify_passkey(None, &user, &started.passkey_id, &tampered, "k").await.is_err());
    assert_kind(
        w.app.verify_passkey(None, &user, &started.passkey_id, &json!({}), "k").await,
        Kind::InvalidArgument,
    );
    assert_kind(
        w.app.verify_passkey(None, &user, &started.passkey_id, &good, "").await,
        Kind::InvalidArgument,
    );
    assert_err(w.app.verify_passkey(None, &user, "404", &good, "k").await, Kind::NotFound, PASSKEY_NOT_FOUND);
    assert_eq!(w.store.code(&code.0).await.unwrap().unwrap().state, CodeState::Active);
    // The code expired between start and verification: refused.
    w.advance(Duration::from_secs(3600));
    assert_err(
        w.app.verify_passkey(None, &user, &started.passkey_id, &good, "k").await,
        Kind::InvalidArgument,
        CODE_INVALID,
    );
}

#[tokio::test]
async fn without_a_code_the_user_itself_or_credential_write() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    assert_err(w.app.register_passkey(None, without_code(&user)).await, Kind::Unauthenticated, "AUTH-7fs1e");
    let me = itself(&user, &w.default_org);
    assert!(register_and_verify(&w, Some(&me), without_code(&user)).await.is_ok());
    w.check_matrix(&CREDENTIAL_WRITE, async |caller, org| {
        let user = w.given_human(org).await;
        w.app.register_passkey(Some(caller), without_code(&user)).await
    })
    .await;
    // Targets: unknown, machine, deactivated; and unknown relying parties.
    assert_err(
        w.app.register_passkey(Some(&w.admin), without_code("404")).await,
        Kind::NotFound,
        USER_NOT_FOUND,
    );
    let machine = w.given_machine(&w.default_org).await;
    assert_err(
        w.app.register_passkey(Some(&w.admin), without_code(&machine)).await,
        Kind::FailedPrecondition,
        "COMMAND-xu3Ag",
    );
    let inactive = w.given_human(&w.default_org).await;
    w.app.deactivate_user(&w.admin, &inactive).await.unwrap();
    assert_err(
        w.app.register_passkey(Some(&w.admin), without_code(&inactive)).await,
        Kind::FailedPrecondition,
        "COMMAND-Nd7ah",
    );
    let mut other_rp = without_code(&user);
    other_rp.domain = "evil.example.com".into();
    assert_err(
        w.app.register_passkey(Some(&w.admin), other_rp).await,
        Kind::InvalidArgument,
        "WEBAUTHN-rp1d",
    );
}

#[tokio::test]
async fn list_and_remove() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let id = register_and_verify(&w, Some(&w.admin), without_code(&user)).await.unwrap();
    // ListPasskeys: the user itself or user.read in its org
    assert_err(w.app.list_passkeys(None, &user).await, Kind::Unauthenticated, "AUTH-7fs1e");
    let (mine, _) = w.app.list_passkeys(Some(&itself(&user, &w.default_org)), &user).await.unwrap();
    assert_eq!(mine.len(), 1);
    let read = Matrix {
        ok: USER_READERS,
        not_found: &["ORG_OWNER@other", "ORG_USER_MANAGER@other"],
        not_found_id: USER_NOT_FOUND,
    };
    w.check_matrix(&read, async |caller, org| {
        let user = w.given_human(org).await;
        w.app.list_passkeys(Some(caller), &user).await
    })
    .await;
    // RemovePasskey: credential.write; the passkey disappears from the list.
    w.check_matrix(&CREDENTIAL_WRITE, async |caller, org| {
        let user = w.given_human(org).await;
        let id = register_and_verify(&w, Some(&w.admin), without_code(&user)).await.unwrap();
        w.app.remove_passkey(Some(caller), &user, &id).await
    })
    .await;
    assert_err(w.app.remove_passkey(None, &user, &id).await, Kind::Unauthenticated, "AUTH-7fs1e");
    let d = w.app.remove_passkey(Some(&w.admin), &user, &id).await.unwrap();
    assert_eq!(d.sequence, w.user(&user).await.sequence);
    assert_eq!(w.last_user_event(&user).await, Event::PasskeyRemoved { id: id.clone() });
    assert!(w.app.list_passkeys(Some(&w.admin), &user).await.unwrap().0.is_empty());
    assert_err(w.app.remove_passkey(Some(&w.admin), &user, &id).await, Kind::NotFound, PASSKEY_NOT_FOUND);
}

#[tokio::test]
async fn verifying_a_registration_without_a_code_needs_the_same_authorization() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let started = w.app.register_passkey(Some(&w.admin), without_code(&user)).await.unwrap();
    let cred = credential(&started.options, EXTERNAL);
    let verify = async |caller: Option<&Caller>| {
        w.app.verify_passkey(caller, &user, &started.passkey_id, &cred, "k").await
    };
    assert_err(verify(None).await, Kind::Unauthenticated, "AUTH-7fs1e");
    let nobody = w.nobody().await;
    assert_err(verify(Some(&nobody)).await, Kind::PermissionDenied, crate::world::DENIED);
    let elsewhere = w.given_org("elsewhere").await;
    let owner =
        w.caller(&elsewhere, passlink_core::view::Scope::Org(elsewhere.clone()), &["ORG_OWNER"]).await;
    assert_err(verify(Some(&owner)).await, Kind::NotFound, USER_NOT_FOUND);
    assert!(!w.user_event_types(&user).await.contains(&"user.human.passwordless.token.verified"));
    let d = verify(Some(&w.admin)).await.unwrap();
    assert_eq!(d.sequence, 3);
    assert_eq!(w.last_user_event(&user).await.type_name(), "user.human.passwordless.token.verified");
}

#[tokio::test]
async fn the_hosted_page_names_who_is_enrolling() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let (code_id, code) = returned_code(&w, &user).await;
    let info = w.app.registration_info(&user, &code_id, &code).await.unwrap();
    assert_eq!(info.display_name, "Ada Lovelace");
    assert_eq!(info.login_name, w.user(&user).await.username);
    // The profile's preferredLanguage, for the page's language.
    assert_eq!(info.preferred_language, "en");
    // A wrong value is counted like any wrong check.
    let e = w.app.registration_info(&user, &code_id, &Secret::new("wrongwrong12")).await;
    assert_err(e, Kind::InvalidArgument, CODE_INVALID);
    assert_eq!(w.store.code(&code_id).await.unwrap().unwrap().failed_checks, 1);
    // The page's own link (for the QR code) is the default link, only for plain values.
    let link = w.app.hosted_link(&user, &w.default_org, &code_id, &code).unwrap();
    assert_eq!(
        link,
        format!(
            "{EXTERNAL}/ui/passkey/register?userID={user}&orgID={}&codeID={code_id}&code={}",
            w.default_org,
            code.expose()
        )
    );
    assert_err(w.app.hosted_link("a&b", &w.default_org, &code_id, &code), Kind::InvalidArgument, "UI-qr1nv");
}
