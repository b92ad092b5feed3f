//! The events webhook's use cases on the memory store behind `NotifyingStore`: notifications are
//! written with the events that cause them; a code's expiry check records `code.expired` and its
//! notification; a failed send backs off and holds the user's next event back.

use std::time::Duration;

use passlink_core::app::{LinkMedium, events_policy};
use passlink_core::event::Event;
use passlink_core::notify::{KIND_CODE_EXPIRY, KIND_EVENT};
use passlink_core::store::{JobState, Store};

use crate::world::{Options, World};

async fn events_world() -> World {
    World::with(Options { events: true, ..Options::default() }).await
}

fn body(n: &passlink_core::notify::Notification) -> serde_json::Value {
    serde_json::from_str(&n.payload).unwrap()
}

#[tokio::test]
async fn an_unredeemed_code_is_announced_at_its_expiry() {
    // Given a returned code
    let w = events_world().await;
    let user = w.given_human(&w.default_org).await;
    let link = w.app.create_passkey_link(&w.admin, &user, LinkMedium::Return).await.unwrap();
    let code_id = link.code.unwrap().0;
    // Then its expiry check is scheduled, not due before the expiry
    let check = w.store.notification(&format!("code-expiry-{code_id}")).await.unwrap().unwrap();
    assert_eq!((check.notification.kind.as_str(), check.state), (KIND_CODE_EXPIRY, JobState::Pending));
    assert!(w.app.claim_notifications("w", Duration::from_secs(60), 10).await.unwrap().is_empty());
    // When the code expired and the worker runs the check
    w.advance(Duration::from_secs(3601));
    let due = w.app.claim_notifications("w", Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(w.app.check_code_expiry(&due[0]).await.unwrap());
    // Then code.expired is recorded, the check is done, and the event's notification is due
    assert_eq!(w.last_user_event(&user).await, Event::PasskeyCodeExpired { id: code_id.clone() });
    let st = w.store.notification(&due[0].id).await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Delivered);
    let next = w.app.claim_notifications("w", Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].kind, KIND_EVENT);
    let seq = w.user_events(&user).await.last().unwrap().sequence;
    assert_eq!(next[0].id, format!("evt-{user}-{seq}"));
    let b = body(&next[0]);
    assert_eq!(b["type"], "registration_code.expired");
    assert_eq!(b["data"]["codeId"], code_id.as_str());
    assert_eq!(
        (b["userId"].as_str(), b["orgId"].as_str()),
        (Some(user.as_str()), Some(w.default_org.as_str()))
    );
}

#[tokio::test]
async fn a_failed_send_backs_off_and_holds_the_users_next_event() {
    // Given two link deliveries of one user given up (two link.delivery_failed)
    let w = events_world().await;
    let user = w.given_human(&w.default_org).await;
    for _ in 0..2 {
        w.app.create_passkey_link(&w.admin, &user, LinkMedium::Send { url_template: None }).await.unwrap();
    }
    for job in w.app.claim_deliveries("d", 10).await.unwrap() {
        w.app.delivery_failed(&job, "550 no such mailbox", true).await.unwrap();
    }
    // Only the first is leased
    let first = w.app.claim_notifications("w", Duration::from_secs(60), 10).await.unwrap();
    let events: Vec<_> = first.iter().filter(|n| n.kind == KIND_EVENT).collect();
    assert_eq!(events.len(), 1, "{first:?}");
    assert_eq!(body(events[0])["type"], "link.delivery_failed");
    assert_eq!(body(events[0])["data"]["reason"], "permanent failure: 550 no such mailbox");
    // When its send fails: retried later, with backoff; the second still waits
    let at = w.app.notification_failed(events[0], "503", &events_policy()).await.unwrap().expect("retried");
    assert!(at > w.app.now());
    w.advance(Duration::from_millis(100));
    let none = w.app.claim_notifications("w", Duration::from_secs(60), 10).await.unwrap();
    assert!(none.iter().all(|n| n.kind != KIND_EVENT), "{none:?}");
    // When it is delivered on the retry, the second is due
    w.advance(Duration::from_secs(10));
    let again = w.app.claim_notifications("w", Duration::from_secs(60), 10).await.unwrap();
    let again: Vec<_> = again.into_iter().filter(|n| n.kind == KIND_EVENT).collect();
    assert_eq!((again.len(), again[0].id.as_str(), again[0].attempts), (1, events[0].id.as_str(), 1));
    w.app.notification_delivered(&again[0]).await.unwrap();
    let second = w.app.claim_notifications("w", Duration::from_secs(60), 10).await.unwrap();
    let second: Vec<_> = second.into_iter().filter(|n| n.kind == KIND_EVENT).collect();
    assert_eq!(second.len(), 1);
    assert!(second[0].seq > again[0].seq);
    // A given-up event: past the age bound
    w.advance(Duration::from_secs(4 * 24 * 3600));
    assert_eq!(w.app.notification_failed(&second[0], "503", &events_policy()).await.unwrap(), None);
    let st = w.store.notification(&second[0].id).await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Abandoned);
}

#[tokio::test]
async fn without_the_events_webhook_nothing_is_written() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let link = w.app.create_passkey_link(&w.admin, &user, LinkMedium::Return).await.unwrap();
    let code_id = link.code.unwrap().0;
    assert_eq!(w.store.notification(&format!("code-expiry-{code_id}")).await.unwrap(), None);
    w.advance(Duration::from_secs(3601));
    assert!(w.app.claim_notifications("w", Duration::from_secs(60), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn notifications_released_at_a_stop_are_due_at_once_for_another_worker() {
    // Given two users' events leased to a worker
    let w = events_world().await;
    for _ in 0..2 {
        let user = w.given_human(&w.default_org).await;
        w.app.create_passkey_link(&w.admin, &user, LinkMedium::Send { url_template: None }).await.unwrap();
    }
    for job in w.app.claim_deliveries("d", 10).await.unwrap() {
        w.app.delivery_failed(&job, "550 no such mailbox", true).await.unwrap();
    }
    let leased: Vec<_> = w
        .app
        .claim_notifications("stopping", Duration::from_secs(60), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.kind == KIND_EVENT)
        .collect();
    assert_eq!(leased.len(), 2);
    assert!(w.app.claim_notifications("other", Duration::from_secs(60), 10).await.unwrap().is_empty());
    // When the worker stops and releases them unsent
    w.app.release_notifications(&leased).await.unwrap();
    // Then another worker leases them at once, with no attempt counted
    let again = w.app.claim_notifications("other", Duration::from_secs(60), 10).await.unwrap();
    let mut ids: Vec<_> = again.iter().map(|n| (n.id.clone(), n.attempts)).collect();
    let mut want: Vec<_> = leased.iter().map(|n| (n.id.clone(), 0)).collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
    let st = w.store.notification(&leased[0].id).await.unwrap().unwrap();
    assert_eq!(st.lease_owner.as_deref(), Some("other"));
}
