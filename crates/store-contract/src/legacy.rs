//! Data as an older passlink wrote it, for the adapters' migration tests: passkey events without
//! the passkeys read model (added in issue 11's read-model migration). Each adapter writes
//! [`passkey_history`] as events only, rewinds its schema to before the migration, reopens, and
//! checks [`assert_passkeys_built`].

use passlink_core::event::{AggregateKind, Event, Recorded};
use passlink_core::passkey::{PasskeyState, fold};
use passlink_core::store::{Commit, Store};
use passlink_core::time::Timestamp;

fn user_event(user: &str, sequence: u64, event: Event) -> Recorded {
    Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: user.into(),
        sequence,
        created_at: Timestamp::from_unix_secs(1_800_000_000 + sequence as i64),
        resource_owner: "org".into(),
        creator: "admin".into(),
        event,
    }
}

fn added(id: &str) -> Event {
    Event::PasskeyAdded {
        id: id.into(),
        rp_id: "localhost".into(),
        code_id: None,
        registration_state: "{}".into(),
    }
}

/// Two passkeys of user `u` (one verified then used, one removed) and an event of another user.
pub fn passkey_history() -> Vec<Recorded> {
    let verified = Event::PasskeyVerified {
        id: "p1".into(),
        name: "phone".into(),
        cred_id: "AAAA".into(),
        credential: "{}".into(),
        backup_eligible: true,
        backup_state: true,
        aaguid: None,
    };
    let used = Event::PasskeySignCountChanged {
        id: "p1".into(),
        sign_count: 9,
        backup_eligible: true,
        backup_state: false,
    };
    vec![
        user_event("u", 1, added("p1")),
        user_event("u", 2, added("p2")),
        user_event("u", 3, verified),
        user_event("u", 4, used),
        user_event("u", 5, Event::PasskeyRemoved { id: "p2".into() }),
        user_event("other", 1, Event::UserDeactivated {}),
    ]
}

/// Write the history as events only (no read-model rows), as before the migration.
pub async fn write_events_only(store: &dyn Store) {
    store.commit(Commit { events: passkey_history(), ..Commit::default() }).await.unwrap();
    assert!(store.passkeys_of("u").await.unwrap().is_empty(), "no rows written without changes");
}

/// After the migration: `u`'s passkeys are exactly the fold of its events; `other` has none.
pub async fn assert_passkeys_built(store: &dyn Store) {
    let built = store.passkeys_of("u").await.unwrap();
    let history: Vec<Recorded> = passkey_history().into_iter().filter(|r| r.aggregate_id == "u").collect();
    assert_eq!(built, fold(&history));
    assert_eq!(
        built.iter().map(|p| (p.id.as_str(), p.state, p.sign_count)).collect::<Vec<_>>(),
        [("p1", PasskeyState::Ready, 9), ("p2", PasskeyState::Removed, 0)]
    );
    assert!(store.passkeys_of("other").await.unwrap().is_empty());
}
