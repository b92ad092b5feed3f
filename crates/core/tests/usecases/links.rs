//! CreatePasskeyRegistrationLink: permissions (403/404 matrix), targets (unknown, deleted,
//! deactivated, machine), media (returned code, sent link), templates, delivery preconditions.

use std::time::Duration;

use passlink_core::app::LinkMedium;
use passlink_core::code::CodeState;
use passlink_core::error::Kind;
use passlink_core::event::Event;
use passlink_core::store::{JobState, Store};
use passlink_core::view::Scope;

use crate::world::{Options, PASSKEY_WRITE, USER_NOT_FOUND, World, assert_err, assert_kind};

#[tokio::test]
async fn permission_matrix() {
    let w = World::new().await;
    w.check_matrix(&PASSKEY_WRITE, async |caller, org| {
        let target = w.given_human(org).await;
        w.app.create_passkey_link(caller, &target, LinkMedium::Return).await
    })
    .await;
}

#[tokio::test]
async fn a_returned_code_is_recorded_as_a_hash_and_usable_at_once() {
    // Given a human in an org
    let w = World::new().await;
    let org = w.given_org("acme").await;
    let user = w.given_human(&org).await;
    w.advance(Duration::from_secs(5));
    let now = w.app.now();
    // When the admin asks for a returned code
    let r = w.app.create_passkey_link(&w.admin, &user, LinkMedium::Return).await.unwrap();
    // Then the code comes back with details of the write
    let (code_id, code) = r.code.expect("a returned code");
    assert_eq!(code.expose().len(), 12);
    assert!(code.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(!format!("{code:?}").contains(code.expose()), "Debug redacts the code");
    assert_eq!(r.details.sequence, 2);
    assert_eq!(r.details.resource_owner, org);
    assert_eq!((r.details.change_date, r.details.creation_date), (now, None));
    // And the event records the keyed hash, never the code, with the caller as creator
    let events = w.user_events(&user).await;
    let last = events.last().unwrap();
    assert_eq!((last.sequence, last.creator.as_str(), last.created_at), (2, w.admin_id.as_str(), now));
    let Event::PasskeyCodeRequested(c) = &last.event else { panic!("{last:?}") };
    assert_eq!(
        (c.id.as_str(), c.expiry_secs, c.code_returned, c.url_template.as_deref()),
        (code_id.as_str(), 3600, true, None)
    );
    assert_eq!(c.code_hash.len(), 64);
    assert!(!serde_json::to_string(&events).unwrap().contains(code.expose()));
    // And the code is active (usable at once), with no delivery job
    let view = w.store.code(&code_id).await.unwrap().unwrap();
    assert_eq!((view.state, view.expires_at), (CodeState::Active, now.plus(Duration::from_secs(3600))));
    assert!(w.store.pending_jobs(10).await.unwrap().is_empty());
    assert_eq!(w.user(&user).await.sequence, 2);
}

#[tokio::test]
async fn a_sent_link_writes_a_sealed_job_and_waits_for_delivery() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let tpl = "https://example.com/register?user={{.UserID}}&code={{.Code}}".to_string();
    for template in [Some(tpl.clone()), None] {
        let r = w
            .app
            .create_passkey_link(&w.admin, &user, LinkMedium::Send { url_template: template.clone() })
            .await
            .unwrap();
        assert!(r.code.is_none(), "a sent code is not returned");
        let Event::PasskeyCodeRequested(c) = w.last_user_event(&user).await else { panic!() };
        assert_eq!((c.code_returned, c.url_template.clone()), (false, template.clone()));
        let view = w.store.code(&c.id).await.unwrap().unwrap();
        assert_eq!(view.state, CodeState::Requested, "not usable before delivery");
        let job =
            w.store.pending_jobs(10).await.unwrap().into_iter().find(|j| j.code_id == c.id).expect("job");
        assert_eq!(
            (job.user_id.as_str(), job.org_id.as_str(), job.attempts),
            (user.as_str(), w.default_org.as_str(), 0)
        );
        assert_eq!((job.url_template.clone(), job.not_after), (template, view.expires_at));
        assert!(job.sealed_code.is_some());
        let st = w.store.job(&job.id).await.unwrap().unwrap();
        assert_eq!(st.state, JobState::Pending);
    }
}

#[tokio::test]
async fn unknown_deleted_deactivated_and_machine_targets() {
    let w = World::new().await;
    let org = &w.default_org;
    assert_err(
        w.app.create_passkey_link(&w.admin, "999999", LinkMedium::Return).await,
        Kind::NotFound,
        USER_NOT_FOUND,
    );
    let deleted = w.given_human(org).await;
    w.app.delete_user(&w.admin, &deleted).await.unwrap();
    assert_err(
        w.app.create_passkey_link(&w.admin, &deleted, LinkMedium::Return).await,
        Kind::NotFound,
        USER_NOT_FOUND,
    );
    let inactive = w.given_human(org).await;
    w.app.deactivate_user(&w.admin, &inactive).await.unwrap();
    assert_err(
        w.app.create_passkey_link(&w.admin, &inactive, LinkMedium::Return).await,
        Kind::FailedPrecondition,
        "COMMAND-Nd7ah",
    );
    let machine = w.given_machine(org).await;
    assert_err(
        w.app.create_passkey_link(&w.admin, &machine, LinkMedium::Return).await,
        Kind::FailedPrecondition,
        "COMMAND-xu3Ag",
    );
    // None of them got an event.
    for u in [&deleted, &inactive, &machine] {
        assert!(!w.user_event_types(u).await.iter().any(|t| t.contains("code.requested")));
    }
}

#[tokio::test]
async fn request_validation() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let send = |t: &str| LinkMedium::Send { url_template: Some(t.to_string()) };
    let e =
        assert_kind(w.app.create_passkey_link(&w.admin, "", LinkMedium::Return).await, Kind::InvalidArgument);
    assert_eq!(e.id, "");
    assert_kind(
        w.app.create_passkey_link(&w.admin, &"1".repeat(201), LinkMedium::Return).await,
        Kind::InvalidArgument,
    );
    assert_kind(w.app.create_passkey_link(&w.admin, &user, send("")).await, Kind::InvalidArgument);
    assert_kind(
        w.app.create_passkey_link(&w.admin, &user, send(&"a".repeat(201))).await,
        Kind::InvalidArgument,
    );
    assert_err(
        w.app.create_passkey_link(&w.admin, &user, send("{{")).await,
        Kind::InvalidArgument,
        "DOMAIN-oGh5e",
    );
    assert_err(
        w.app.create_passkey_link(&w.admin, &user, send("https://x/{{.LoginName}}")).await,
        Kind::InvalidArgument,
        "DOMAIN-ieYa7",
    );
    assert_eq!(w.user_event_types(&user).await, ["user.human.added"]);
}

#[tokio::test]
async fn sending_needs_a_provider_and_an_email_address() {
    // Without a provider: 400 and nothing written; a returned code still works.
    let w = World::with(Options { delivery_enabled: false, ..Options::default() }).await;
    let user = w.given_human(&w.default_org).await;
    let send = LinkMedium::Send { url_template: None };
    assert_err(
        w.app.create_passkey_link(&w.admin, &user, send.clone()).await,
        Kind::FailedPrecondition,
        "MAIL-83nof",
    );
    assert_eq!(w.user_event_types(&user).await, ["user.human.added"]);
    assert!(w.store.pending_jobs(10).await.unwrap().is_empty());
    assert!(w.app.create_passkey_link(&w.admin, &user, LinkMedium::Return).await.is_ok());
    // A user without an email address cannot be sent a link (with a provider).
    let w = World::new().await;
    let user = w.given_human_without_email(&w.default_org).await;
    assert_err(
        w.app.create_passkey_link(&w.admin, &user, send).await,
        Kind::FailedPrecondition,
        "COMMAND-mL4il",
    );
    assert!(w.app.create_passkey_link(&w.admin, &user, LinkMedium::Return).await.is_ok());
}

#[tokio::test]
async fn concurrent_links_for_one_user_get_distinct_sequences() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let links = (0..20).map(|_| w.app.create_passkey_link(&w.admin, &user, LinkMedium::Return));
    let mut seqs: Vec<u64> = passlink_store_contract::join_all(links)
        .await
        .into_iter()
        .map(|r| r.unwrap().details.sequence)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (2..22).collect::<Vec<_>>());
    assert_eq!(w.user_events(&user).await.len(), 21);
}

#[tokio::test]
async fn one_users_concurrent_links_from_several_callers_are_decided_each_on_its_own() {
    let w = World::new().await;
    let user = w.given_human(&w.default_org).await;
    let other = w.given_org("other").await;
    let stranger = w.caller(&other, Scope::Org(other.clone()), &["ORG_OWNER"]).await;
    let requests = (0..30).map(|i| {
        let caller = if i % 3 == 0 { &stranger } else { &w.admin };
        let medium = if i % 2 == 0 { LinkMedium::Return } else { LinkMedium::Send { url_template: None } };
        w.app.create_passkey_link(caller, &user, medium)
    });
    let results = passlink_store_contract::join_all(requests).await;
    let mut seqs = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        if i % 3 == 0 {
            assert_err(r, Kind::NotFound, USER_NOT_FOUND);
        } else {
            let created = r.unwrap();
            assert_eq!(created.code.is_some(), i % 2 == 0, "request {i}");
            seqs.push(created.details.sequence);
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (2..22).collect::<Vec<_>>(), "20 links, one event each, no gap");
    let events = w.user_events(&user).await;
    assert_eq!(events.len(), 21);
    assert!(events[1..].iter().all(|e| e.creator == w.admin.principal.user_id));
}
