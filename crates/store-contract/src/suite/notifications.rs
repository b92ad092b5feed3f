//! The notification outbox of the events webhook (`passlink_core::notify`): written with the
//! commit's events, leased in each user's order (a user's next event only after the previous
//! one was delivered or given up), leases, outcomes, concurrent claims.

use std::collections::HashSet;

use passlink_core::notify::{KIND_CODE_EXPIRY, KIND_EVENT, Notification, NotificationUpdate};
use passlink_core::store::{Commit, JobState, Store};

use crate::fixtures::{at, create_user_commit};
use crate::join_all;

fn note(user: &str, seq: u64, due: i64) -> Notification {
    Notification {
        id: format!("evt-{user}-{seq}"),
        kind: KIND_EVENT.to_string(),
        user_id: user.to_string(),
        org_id: "n-org".to_string(),
        seq,
        created_at: at(due),
        due_at: at(due),
        payload: format!("{{\"id\":\"evt-{user}-{seq}\"}}"),
        attempts: 0,
    }
}

fn outcome(n: &Notification, state: JobState, next: i64, attempts: u32, err: Option<&str>) -> Commit {
    Commit {
        notification_updates: vec![NotificationUpdate {
            id: n.id.clone(),
            state,
            attempts,
            next_attempt_at: at(next),
            last_error: err.map(str::to_string),
        }],
        ..Commit::default()
    }
}

fn ids(v: &[Notification]) -> Vec<&str> {
    v.iter().map(|n| n.id.as_str()).collect()
}

/// A user's events are leased one at a time in sequence order (a later one waits while an
/// earlier one is leased, retried or not yet due); other users and expiry checks do not wait;
/// delivered and abandoned ones unblock the next; outcomes are kept; a final state stays.
pub async fn notifications_leased_in_each_users_order(store: &dyn Store) {
    let mut c = create_user_commit("n-u1", "n-org", "notify-order");
    let (a1, a2, a3) = (note("n-u1", 2, 1), note("n-u1", 3, 1), note("n-u1", 4, 1));
    let b1 = note("n-u2", 2, 2);
    let check = Notification {
        id: "code-expiry-n-c1".to_string(),
        kind: KIND_CODE_EXPIRY.to_string(),
        seq: 0,
        due_at: at(5),
        payload: "n-c1".to_string(),
        ..note("n-u1", 0, 1)
    };
    assert_eq!(store.events_depth().await.expect("depth"), 0, "an empty backlog");
    c.notifications = vec![a3.clone(), a1.clone(), a2.clone(), b1.clone(), check.clone()];
    store.commit(c).await.expect("commit with notifications");
    assert_eq!(
        store.events_depth().await.expect("depth"),
        4,
        "four events pending; the expiry check is not one"
    );

    let first = store.claim_notifications("w-a", at(10), at(70), 10).await.expect("claim");
    assert_eq!(
        ids(&first),
        ["evt-n-u1-2", "evt-n-u2-2", "code-expiry-n-c1"],
        "the oldest of each user, and the check"
    );
    assert_eq!(first[0], a1, "read back whole");
    assert!(store.claim_notifications("w-b", at(10), at(70), 10).await.expect("claim").is_empty());
    let st = store.notification(&a1.id).await.expect("read").expect("exists");
    assert_eq!(
        (st.state, st.lease_owner.as_deref(), st.lease_until),
        (JobState::Pending, Some("w-a"), Some(at(70)))
    );
    assert_eq!(store.notification("evt-missing").await.expect("read"), None);

    // A retry of u1's first keeps u1's second back, even when the lease ran out.
    store.commit(outcome(&a1, JobState::Pending, 100, 1, Some("503"))).await.expect("retry");
    let st = store.notification(&a1.id).await.expect("read").expect("exists");
    assert_eq!(
        (st.notification.attempts, st.next_attempt_at, st.last_error.as_deref()),
        (1, at(100), Some("503"))
    );
    assert_eq!(st.lease_owner, None);
    assert!(
        store
            .claim_notifications("w-b", at(80), at(140), 10)
            .await
            .expect("claim")
            .iter()
            .all(|n| n.user_id != "n-u1" || n.kind != KIND_EVENT)
    );
    let due = store.claim_notifications("w-b", at(100), at(160), 10).await.expect("claim");
    assert_eq!(ids(&due), ["evt-n-u1-2"]);
    assert_eq!(due[0].attempts, 1, "the attempt count comes back");

    // Delivered: the next of u1 is due; a late outcome does not reopen it.
    store.commit(outcome(&a1, JobState::Delivered, 101, 1, None)).await.expect("delivered");
    store.commit(outcome(&a1, JobState::Pending, 500, 2, Some("late"))).await.expect("late outcome");
    assert_eq!(store.notification(&a1.id).await.expect("read").expect("exists").state, JobState::Delivered);
    let next = store.claim_notifications("w-a", at(101), at(161), 10).await.expect("claim");
    assert_eq!(ids(&next), ["evt-n-u1-3"]);
    // Abandoned (given up) unblocks too.
    store.commit(outcome(&a2, JobState::Abandoned, 102, 9, Some("gave up"))).await.expect("abandoned");
    let last = store.claim_notifications("w-a", at(102), at(162), 10).await.expect("claim");
    assert_eq!(ids(&last), ["evt-n-u1-4"]);
    let st = store.notification(&a2.id).await.expect("read").expect("exists");
    assert_eq!((st.state, st.last_error.as_deref()), (JobState::Abandoned, Some("gave up")));
    // Delivered and abandoned ones leave the backlog; a leased one is still in it.
    assert_eq!(store.events_depth().await.expect("depth"), 2, "u1's third and u2's first");

    // A notification written with a failing commit is not written.
    let mut bad = create_user_commit("n-u1", "n-org", "notify-order-again");
    bad.notifications = vec![note("n-u1", 9, 1)];
    store.commit(bad).await.expect_err("the user exists");
    assert_eq!(store.notification("evt-n-u1-9").await.expect("read"), None);
}

/// Many workers claiming at once never get the same notification, and never two of one user.
pub async fn concurrent_notification_claims_never_share(store: &dyn Store) {
    let mut c = create_user_commit("nc-user", "n-org", "notify-concurrent");
    for u in 0..20 {
        for seq in 1..=3 {
            c.notifications.push(note(&format!("nc-u{u:02}"), seq, 1));
        }
    }
    store.commit(c).await.expect("commit");
    let owners: Vec<String> = (0..6).map(|i| format!("w-{i}")).collect();
    let claims = join_all(owners.iter().map(|o| store.claim_notifications(o, at(10), at(70), 8))).await;
    let mut seen = HashSet::new();
    let mut users = HashSet::new();
    for r in claims {
        for n in r.expect("claim") {
            assert!(seen.insert(n.id.clone()), "{} leased twice", n.id);
            assert!(users.insert(n.user_id.clone()), "two of {} leased at once", n.user_id);
            assert_eq!(n.seq, 1, "{} leased before the user's first", n.id);
        }
    }
    assert_eq!(seen.len(), 20, "the first of every user leased once");
}
