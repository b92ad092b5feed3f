//! Delivery (the outbox worker's use cases): lease, prepare, and the outcomes: success
//! (`code.sent`, the code usable, the sealed code erased), failure (backoff), permanent failure
//! or last attempt (`code.send.failed`), an expired code never sent, a gone user.

use std::time::Duration;

use passlink_core::app::{AppConfig, DeliveryPolicy, Failed, LinkMedium, Prepared};
use passlink_core::code::CodeState;
use passlink_core::event::{Event, OutboxJob};
use passlink_core::store::{JobState, Store};

use crate::world::{EXTERNAL, Options, World};

async fn sent_link(w: &World, user: &str) -> OutboxJob {
    w.app.create_passkey_link(&w.admin, user, LinkMedium::Send { url_template: None }).await.unwrap();
    let jobs = w.app.claim_deliveries("worker-1", 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    jobs.into_iter().next().unwrap()
}

#[tokio::test]
async fn success_records_code_sent_and_erases_the_sealed_code() {
    // Given a link to be sent, leased by a worker
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let job = sent_link(&w, &user).await;
    // A leased job is not leased again.
    assert!(w.app.claim_deliveries("worker-2", 10).await.unwrap().is_empty());
    // When the worker prepares it
    let Prepared::Send(msg) = w.app.prepare_delivery(&job).await.unwrap() else { panic!("to send") };
    // Then the message goes to the user's address, with the hosted page's link
    assert_eq!(
        (msg.job_id.as_str(), msg.user_id.as_str(), msg.org_id.as_str()),
        (job.id.as_str(), user.as_str(), w.default_org.as_str())
    );
    assert_eq!(msg.message_id, format!("passkey-link-{}", job.code_id));
    assert!(msg.to.ends_with("@example.com"));
    assert_eq!(
        (msg.given_name.as_str(), msg.display_name.as_str(), msg.preferred_language.as_str()),
        ("Ada", "Ada Lovelace", "en")
    );
    let prefix = format!(
        "{EXTERNAL}/ui/passkey/register?userID={user}&orgID={}&codeID={}&code=",
        w.default_org, job.code_id
    );
    assert!(msg.link.expose().starts_with(&prefix), "{}", msg.link.expose());
    assert!(!format!("{msg:?}").contains(msg.link.expose()), "Debug redacts the link");
    // When the provider accepted it
    w.advance(Duration::from_secs(2));
    w.app.delivery_succeeded(&job).await.unwrap();
    // Then code.sent is recorded (by the system), the code is usable, the job done and erased
    let last = w.user_events(&user).await.pop().unwrap();
    assert_eq!(last.event, Event::PasskeyCodeSent { id: job.code_id.clone() });
    assert_eq!((last.creator.as_str(), last.created_at), ("", w.app.now()));
    assert_eq!(w.store.code(&job.code_id).await.unwrap().unwrap().state, CodeState::Active);
    let st = w.store.job(&job.id).await.unwrap().unwrap();
    assert_eq!((st.state, st.job.sealed_code.clone()), (JobState::Delivered, None));
    assert!(w.store.pending_jobs(10).await.unwrap().is_empty());
    // A redelivery of the same job (a worker that died after sending) records nothing more.
    let before = w.user_events(&user).await.len();
    w.app.delivery_succeeded(&job).await.unwrap();
    assert_eq!(w.user_events(&user).await.len(), before);
}

#[tokio::test]
async fn failure_backs_off_and_keeps_the_code() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let job = sent_link(&w, &user).await;
    let now = w.app.now();
    let Failed::RetryAt(at) = w.app.delivery_failed(&job, "connection refused", false).await.unwrap() else {
        panic!("retried")
    };
    // First retry after min_backoff (1 s) with jitter in [0.5, 1).
    assert!(at >= now.plus(Duration::from_millis(500)) && at < now.plus(Duration::from_secs(1)), "{at:?}");
    let st = w.store.job(&job.id).await.unwrap().unwrap();
    assert_eq!((st.state, st.job.attempts, st.next_attempt_at), (JobState::Pending, 1, at));
    assert_eq!(st.last_error.as_deref(), Some("connection refused"));
    assert!(st.job.sealed_code.is_some());
    assert_eq!(st.lease_owner, None);
    assert_eq!(w.user(&user).await.sequence, 2, "nothing recorded on the user");
    // Not due before its time; due after.
    assert!(w.app.claim_deliveries("worker-1", 10).await.unwrap().is_empty());
    w.clock.set(at);
    let again = w.app.claim_deliveries("worker-1", 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
}

#[tokio::test]
async fn a_permanent_failure_gives_up_and_records_it() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let job = sent_link(&w, &user).await;
    assert_eq!(w.app.delivery_failed(&job, "550 no such mailbox", true).await.unwrap(), Failed::Abandoned);
    let Event::PasskeyCodeSendFailed { id, reason } = w.last_user_event(&user).await else { panic!() };
    assert_eq!((id, reason.as_str()), (job.code_id.clone(), "permanent failure: 550 no such mailbox"));
    let st = w.store.job(&job.id).await.unwrap().unwrap();
    assert_eq!((st.state, st.job.sealed_code.clone(), st.job.attempts), (JobState::Abandoned, None, 1));
    assert_eq!(
        w.store.code(&job.code_id).await.unwrap().unwrap().state,
        CodeState::Requested,
        "never usable"
    );
}

#[tokio::test]
async fn the_last_attempt_gives_up() {
    let policy = DeliveryPolicy { max_attempts: 2, ..DeliveryPolicy::default() };
    let cfg = AppConfig { issuer: EXTERNAL.into(), delivery: policy, ..AppConfig::default() };
    let w = World::with(Options { cfg, ..Options::default() }).await;
    let user = w.given_human(&w.default_org).await;
    let job = sent_link(&w, &user).await;
    let Failed::RetryAt(at) = w.app.delivery_failed(&job, "timeout", false).await.unwrap() else { panic!() };
    w.clock.set(at);
    let job = w.app.claim_deliveries("worker-1", 10).await.unwrap().pop().unwrap();
    assert_eq!(w.app.delivery_failed(&job, "timeout", false).await.unwrap(), Failed::Abandoned);
    let Event::PasskeyCodeSendFailed { reason, .. } = w.last_user_event(&user).await else { panic!() };
    assert_eq!(reason, "gave up after 2 attempts: timeout");
    let st = w.store.job(&job.id).await.unwrap().unwrap();
    assert_eq!((st.state, st.job.sealed_code.clone()), (JobState::Abandoned, None));
}

#[tokio::test]
async fn a_retry_past_the_codes_expiry_gives_up() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let job = sent_link(&w, &user).await;
    w.advance(Duration::from_millis(3_599_500));
    assert_eq!(w.app.delivery_failed(&job, "timeout", false).await.unwrap(), Failed::Abandoned);
    let Event::PasskeyCodeSendFailed { reason, .. } = w.last_user_event(&user).await else { panic!() };
    assert_eq!(reason, "gave up, the link would be too old to send: timeout");
}

#[tokio::test]
async fn an_expired_code_is_never_sent() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    w.app.create_passkey_link(&w.admin, &user, LinkMedium::Send { url_template: None }).await.unwrap();
    w.advance(Duration::from_secs(3600));
    let job = w.app.claim_deliveries("worker-1", 10).await.unwrap().pop().unwrap();
    let r = w.app.prepare_delivery(&job).await.unwrap();
    assert!(matches!(r, Prepared::Finished("code expired")), "{r:?}");
    let Event::PasskeyCodeSendFailed { id, reason } = w.last_user_event(&user).await else { panic!() };
    assert_eq!((id, reason.as_str()), (job.code_id.clone(), "the code expired before it could be delivered"));
    let st = w.store.job(&job.id).await.unwrap().unwrap();
    assert_eq!((st.state, st.job.sealed_code.clone()), (JobState::Abandoned, None));
}

#[tokio::test]
async fn a_deleted_user_gets_nothing() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let job = sent_link(&w, &user).await;
    w.app.delete_user(&w.admin, &user).await.unwrap();
    let r = w.app.prepare_delivery(&job).await.unwrap();
    assert!(matches!(r, Prepared::Finished(_)), "{r:?}");
    assert_eq!(w.last_user_event(&user).await, Event::UserRemoved {}, "nothing recorded on a deleted user");
    let st = w.store.job(&job.id).await.unwrap().unwrap();
    assert_eq!((st.state, st.job.sealed_code.clone()), (JobState::Abandoned, None));
}

#[tokio::test]
async fn a_lease_of_a_dead_worker_is_taken_over() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let job = sent_link(&w, &user).await;
    w.advance(Duration::from_secs(59));
    assert!(w.app.claim_deliveries("worker-2", 10).await.unwrap().is_empty());
    w.advance(Duration::from_secs(1));
    let taken = w.app.claim_deliveries("worker-2", 10).await.unwrap();
    assert_eq!(taken, vec![job.clone()]);
    assert_eq!(w.store.job(&job.id).await.unwrap().unwrap().lease_owner.as_deref(), Some("worker-2"));
}
