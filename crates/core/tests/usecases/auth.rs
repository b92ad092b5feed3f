//! Authentication: bearer tokens to principals (401 for missing, malformed, unknown, expired,
//! revoked tokens and inactive owners), and the context organization.

use std::time::Duration;

use passlink_core::error::Kind;
use passlink_core::view::Scope;

use crate::world::{ADMIN_TOKEN, World, assert_err};

const TOKEN_ID: &str = "AUTH-7fs1e";

#[tokio::test]
async fn missing_or_malformed_tokens_are_unauthenticated() {
    let w = World::new().await;
    for header in [None, Some(""), Some("   "), Some("Basic abc"), Some(ADMIN_TOKEN), Some("Bearer nope")] {
        let r = w.app.authenticate(header).await;
        assert_err(r, Kind::Unauthenticated, TOKEN_ID);
    }
    // The scheme is case-insensitive.
    assert!(w.app.authenticate(Some(&format!("bearer {ADMIN_TOKEN}"))).await.is_ok());
}

#[tokio::test]
async fn a_pat_works_until_it_expires() {
    let w = World::new().await;
    let m = w.given_machine(&w.default_org).await;
    let exp = w.app.now().plus(Duration::from_secs(60));
    let pat = w.app.add_pat(&w.admin, &m, Some(exp)).await.unwrap();
    let header = format!("Bearer {}", pat.token.expose());
    let p = w.app.authenticate(Some(&header)).await.unwrap();
    assert_eq!((p.user_id.as_str(), p.token_expires), (m.as_str(), exp));
    assert!(p.memberships.is_empty());
    w.clock.set(exp);
    assert_err(w.app.authenticate(Some(&header)).await, Kind::Unauthenticated, TOKEN_ID);
}

#[tokio::test]
async fn a_deactivated_or_deleted_owner_cannot_authenticate() {
    let w = World::new().await;
    for delete in [false, true] {
        let (_, token) = w.caller_with_token(&w.default_org, Scope::Instance, &["IAM_OWNER"]).await;
        let p = w.app.authenticate(Some(&format!("Bearer {token}"))).await.unwrap();
        if delete {
            w.app.delete_user(&w.admin, &p.user_id).await.unwrap();
        } else {
            w.app.deactivate_user(&w.admin, &p.user_id).await.unwrap();
        }
        // The token cache is cleared by the change: the next request fails at once.
        assert_err(
            w.app.authenticate(Some(&format!("Bearer {token}"))).await,
            Kind::Unauthenticated,
            TOKEN_ID,
        );
    }
}

#[tokio::test]
async fn the_context_org_is_the_header_or_the_callers_own() {
    let w = World::new().await;
    let p = w.app.authenticate(Some(&format!("Bearer {ADMIN_TOKEN}"))).await.unwrap();
    assert_eq!(w.app.caller(p.clone(), None).context_org, w.default_org);
    assert_eq!(w.app.caller(p.clone(), Some("  ")).context_org, w.default_org);
    assert_eq!(w.app.caller(p, Some(" 77 ")).context_org, "77");
}

#[tokio::test]
async fn memberships_granted_later_apply_at_once() {
    let w = World::new().await;
    let (_, token) = w.caller_with_token(&w.default_org, Scope::Instance, &[]).await;
    let header = format!("Bearer {token}");
    let p = w.app.authenticate(Some(&header)).await.unwrap();
    assert!(p.memberships.is_empty());
    w.app
        .create_administrator(&w.admin, &p.user_id, Scope::Instance, vec!["IAM_USER_MANAGER".into()])
        .await
        .unwrap();
    let p = w.app.authenticate(Some(&header)).await.unwrap();
    assert_eq!(p.memberships.len(), 1);
}
