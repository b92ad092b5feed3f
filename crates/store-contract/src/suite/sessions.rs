//! Sign-in sessions and the credential → user index (issue 11): read back by id, filtered
//! listing in creation order, replaced views, an index entry that moves with a credential, and
//! the passkeys read model (a user's passkeys in creation order, replaced in place).

use passlink_core::event::{AggregateKind, Event, Recorded};
use passlink_core::passkey::{PasskeyState, PasskeyView};
use passlink_core::session::{CredentialOwner, SessionAdded, SessionFilter, SessionView, UserFactor};
use passlink_core::store::{Commit, Store};
use passlink_core::time::Timestamp;
use passlink_core::view::Change;

fn added(id: &str, creator: &str, at: i64) -> (Recorded, SessionView) {
    let r = Recorded {
        aggregate_kind: AggregateKind::Session,
        aggregate_id: id.into(),
        sequence: 1,
        created_at: Timestamp::from_unix_secs(at),
        resource_owner: "inst".into(),
        creator: creator.into(),
        event: Event::SessionAdded(SessionAdded::default()),
    };
    let v = SessionView::created(&r).expect("session.added creates a view");
    (r, v)
}

fn with_user(mut v: SessionView, user: &str) -> SessionView {
    v.user = Some(UserFactor {
        user_id: user.into(),
        org_id: "org".into(),
        login_name: format!("{user}@example.com"),
        display_name: "Ada".into(),
        checked_at: v.created_at,
    });
    v
}

/// Sessions read back by id and by filter (ids, user, creator), oldest first; a later commit
/// replaces the view (a user checked, a token set) and the filters follow it.
pub async fn sessions_read_back_and_filter(store: &dyn Store) {
    assert_eq!(store.session("s1").await.unwrap(), None);
    assert!(store.sessions(&SessionFilter::default()).await.unwrap().is_empty());
    let (r2, s2) = added("s2", "login-ui", 20);
    let (r1, s1) = added("s1", "login-ui", 10);
    let (r3, s3) = added("s3", "other", 30);
    let s3 = with_user(s3, "u1");
    for (r, v) in [(r2, s2.clone()), (r1, s1.clone()), (r3, s3.clone())] {
        store
            .commit(Commit { events: vec![r], changes: vec![Change::Session(v)], ..Commit::default() })
            .await
            .unwrap();
    }
    assert_eq!(store.session("s1").await.unwrap().as_ref(), Some(&s1));
    let ids = |v: Vec<SessionView>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(store.sessions(&SessionFilter::default()).await.unwrap()), ["s1", "s2", "s3"]);
    let by_user = SessionFilter { user_id: Some("u1".into()), ..SessionFilter::default() };
    assert_eq!(ids(store.sessions(&by_user).await.unwrap()), ["s3"]);
    let by_creator = SessionFilter { creator: Some("login-ui".into()), ..SessionFilter::default() };
    assert_eq!(ids(store.sessions(&by_creator).await.unwrap()), ["s1", "s2"]);
    let by_ids = SessionFilter {
        ids: Some(vec!["s3".into(), "s2".into(), "nope".into()]),
        ..SessionFilter::default()
    };
    assert_eq!(ids(store.sessions(&by_ids).await.unwrap()), ["s2", "s3"]);
    // A later change: the user of s1 is checked, its token set.
    let mut s1b = with_user(s1, "u1");
    s1b.sequence = 2;
    s1b.token_hash = "ab".into();
    let r = Recorded {
        aggregate_kind: AggregateKind::Session,
        aggregate_id: "s1".into(),
        sequence: 2,
        created_at: Timestamp::from_unix_secs(40),
        resource_owner: "inst".into(),
        creator: "login-ui".into(),
        event: Event::SessionTokenSet { token_id: "t".into(), token_hash: "ab".into() },
    };
    store
        .commit(Commit { events: vec![r], changes: vec![Change::Session(s1b.clone())], ..Commit::default() })
        .await
        .unwrap();
    assert_eq!(store.session("s1").await.unwrap().as_ref(), Some(&s1b));
    assert_eq!(ids(store.sessions(&by_user).await.unwrap()), ["s1", "s3"]);
    assert_eq!(store.events_of(AggregateKind::Session, "s1").await.unwrap().len(), 2);
}

/// A credential id names the user it was last verified for; unknown ids name nobody.
pub async fn credential_owner_follows_the_last_verification(store: &dyn Store) {
    assert_eq!(store.credential_owner("cred-a").await.unwrap(), None);
    let own = |cred: &str, user: &str| {
        Change::Credential(CredentialOwner { cred_id: cred.into(), user_id: user.into() })
    };
    store
        .commit(Commit { changes: vec![own("cred-a", "u1"), own("cred-b", "u2")], ..Commit::default() })
        .await
        .unwrap();
    assert_eq!(store.credential_owner("cred-a").await.unwrap().as_deref(), Some("u1"));
    assert_eq!(store.credential_owner("cred-b").await.unwrap().as_deref(), Some("u2"));
    // Removed from u1 and registered again by u3.
    store.commit(Commit { changes: vec![own("cred-a", "u3")], ..Commit::default() }).await.unwrap();
    assert_eq!(store.credential_owner("cred-a").await.unwrap().as_deref(), Some("u3"));
    assert_eq!(store.credential_owner("CRED-A").await.unwrap(), None, "credential ids are case-sensitive");
}

fn passkey(id: &str, user: &str, at: i64) -> PasskeyView {
    let r = Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: user.into(),
        sequence: 1,
        created_at: Timestamp::from_unix_secs(at),
        resource_owner: "org".into(),
        creator: String::new(),
        event: Event::PasskeyAdded {
            id: id.into(),
            rp_id: "localhost".into(),
            code_id: None,
            registration_state: "{\"s\":1}".into(),
        },
    };
    PasskeyView::created(&r).expect("token.added creates a passkey")
}

pub async fn passkeys_of_a_user_in_creation_order(store: &dyn Store) {
    assert!(store.passkeys_of("u1").await.unwrap().is_empty());
    let (late, early, other) = (passkey("p-b", "u1", 20), passkey("p-z", "u1", 10), passkey("p-c", "u2", 15));
    let changes =
        vec![Change::Passkey(late.clone()), Change::Passkey(early.clone()), Change::Passkey(other.clone())];
    store.commit(Commit { changes, ..Commit::default() }).await.unwrap();
    assert_eq!(store.passkeys_of("u1").await.unwrap(), vec![early.clone(), late.clone()]);
    assert_eq!(store.passkeys_of("u2").await.unwrap(), vec![other]);
    // A change replaces the row in place (same position, new content).
    let mut used = early.clone();
    used.state = PasskeyState::Ready;
    used.sign_count = 7;
    used.last_used = Some(Timestamp::from_unix_secs(30));
    store.commit(Commit { changes: vec![Change::Passkey(used.clone())], ..Commit::default() }).await.unwrap();
    assert_eq!(store.passkeys_of("u1").await.unwrap(), vec![used, late]);
    assert!(store.passkeys_of("U1").await.unwrap().is_empty(), "user ids are case-sensitive");
}
