//! AddPersonalAccessToken.

use std::time::Duration;

use passlink_core::error::Kind;
use passlink_core::event::Event;
use passlink_core::store::Store;

use crate::world::{Matrix, USER_NOT_FOUND, USER_WRITERS, World, assert_err};

#[tokio::test]
async fn permission_matrix() {
    let w = World::new().await;
    let m = Matrix {
        ok: USER_WRITERS,
        not_found: &["ORG_OWNER@other", "ORG_USER_MANAGER@other"],
        not_found_id: USER_NOT_FOUND,
    };
    w.check_matrix(&m, async |caller, org| {
        let machine = w.given_machine(org).await;
        w.app.add_pat(caller, &machine, None).await
    })
    .await;
}

#[tokio::test]
async fn a_pat_is_recorded_as_a_hash_and_authenticates_its_machine() {
    let w = World::new().await;
    let machine = w.given_machine(&w.default_org).await;
    let exp = w.app.now().plus(Duration::from_secs(3600));
    let pat = w.app.add_pat(&w.admin, &machine, Some(exp)).await.unwrap();
    assert_eq!(pat.creation_date, w.app.now());
    assert!(pat.token.expose().len() >= 32);
    let Event::PatAdded { token_id, token_hash, expiration } = w.last_user_event(&machine).await else {
        panic!()
    };
    assert_eq!((token_id, expiration), (pat.token_id.clone(), exp));
    assert_eq!(token_hash.len(), 64);
    assert!(!token_hash.contains(pat.token.expose()));
    let stored =
        w.store.pat_by_hash(&passlink_core::secret::token_hash(pat.token.expose())).await.unwrap().unwrap();
    assert_eq!(
        (stored.id.as_str(), stored.user_id.as_str(), stored.revoked),
        (pat.token_id.as_str(), machine.as_str(), false)
    );
    let p = w.app.authenticate(Some(&format!("Bearer {}", pat.token.expose()))).await.unwrap();
    assert_eq!(p.user_id, machine);
}

#[tokio::test]
async fn errors() {
    let w = World::new().await;
    let human = w.given_human(&w.default_org).await;
    assert_err(w.app.add_pat(&w.admin, &human, None).await, Kind::FailedPrecondition, "COMMAND-Sdj4f");
    let machine = w.given_machine(&w.default_org).await;
    let past = w.app.now();
    assert_err(w.app.add_pat(&w.admin, &machine, Some(past)).await, Kind::InvalidArgument, "COMMAND-dv3t5");
    assert_err(w.app.add_pat(&w.admin, "404", None).await, Kind::NotFound, USER_NOT_FOUND);
    assert_eq!(w.user_event_types(&machine).await, ["user.machine.added"]);
}
