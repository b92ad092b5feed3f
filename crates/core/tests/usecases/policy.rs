//! The authenticator policy in the passkey ceremony: a registration whose AAGUID the policy of
//! the user's organization refuses answers `PASSKEY-Pol01`, records nothing, and leaves the code
//! usable; a policy that does not refuse it changes nothing. webauthn-rs's software passkey sends
//! no AAGUID (zeros), which passes a deny-list and fails an allow-list that does not name it.

use std::sync::Arc;

use passlink_core::app::AppConfig;
use passlink_core::code::CodeState;
use passlink_core::error::Kind;
use passlink_core::policy::Policy;
use passlink_core::store::Store;

use crate::codes::{register_and_verify, returned_code, with_code};
use crate::world::{EXTERNAL, Options, World, assert_err};

const CHROMIUM: &str = "01020304-0506-0708-0102-030405060708";

async fn world_with(policy: &str) -> World {
    let policy = Arc::new(Policy::parse(policy).unwrap());
    World::with(Options {
        cfg: AppConfig { issuer: EXTERNAL.into(), authenticator_policy: policy, ..AppConfig::default() },
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn an_authenticator_outside_the_allow_list_is_refused_and_the_code_stays_usable() {
    // Given an instance that allows only one authenticator, and a user with a returned code
    let w = world_with(&format!(r#"{{"allow": ["{CHROMIUM}"]}}"#)).await;
    let user = w.given_human(&w.default_org).await;
    let code = returned_code(&w, &user).await;
    let before = w.user_event_types(&user).await;
    // When the user registers an authenticator without an AAGUID
    let refused = register_and_verify(&w, None, with_code(&user, &code)).await;
    // Then the registration is refused by the policy
    let e = assert_err(refused, Kind::FailedPrecondition, "PASSKEY-Pol01");
    assert!(e.to_string().contains("not allowed"), "{e}");
    // and only the started registration is recorded: no passkey verified, the code not used
    let after = w.user_event_types(&user).await;
    assert_eq!(after[before.len()..], ["user.human.passwordless.token.added"]);
    assert_eq!(w.store.code(&code.0).await.unwrap().unwrap().state, CodeState::Active);
}

#[tokio::test]
async fn an_organizations_list_overrides_the_instance_and_a_deny_list_passes_others() {
    // Given an instance allow-list, and an organization whose own rule only denies Chromium's
    // authenticator (ids are sequential: the default organization's id is the same in every world)
    let org = World::new().await.default_org;
    let w = world_with(&format!(
        r#"{{"allow": ["{CHROMIUM}"], "organizations": {{"{org}": {{"deny": ["{CHROMIUM}"]}}}}}}"#
    ))
    .await;
    assert_eq!(w.default_org, org, "bootstraps are deterministic");
    let user = w.given_human(&w.default_org).await;
    let code = returned_code(&w, &user).await;
    // When the user registers an authenticator the organization's deny-list does not name
    let id = register_and_verify(&w, None, with_code(&user, &code)).await.unwrap();
    // Then it is registered and the code used
    assert!(!id.is_empty());
    assert_eq!(w.store.code(&code.0).await.unwrap().unwrap().state, CodeState::Consumed);
}
