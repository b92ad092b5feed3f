//! CreateRegistrationLinks: a result per user with the single-user errors, the idempotency key
//! (a retry writes nothing), and an organization paged in id order.

use passlink_core::app::{BulkOutcome, BulkRequest, BulkSelection, LinkMedium};
use passlink_core::error::Kind;
use passlink_core::event::Event;
use passlink_core::store::Store;
use passlink_core::view::Scope;

use crate::world::World;

fn ids(v: &[&String]) -> BulkSelection {
    BulkSelection::Users(v.iter().map(|s| s.to_string()).collect())
}

fn outcome_kind(o: &Result<BulkOutcome, passlink_core::error::Error>) -> String {
    match o {
        Ok(BulkOutcome::Code { .. }) => "code".into(),
        Ok(BulkOutcome::Delivery { .. }) => "delivery".into(),
        Ok(BulkOutcome::Replayed { delivered, .. }) => format!("replayed:{delivered}"),
        Err(e) => e.id.to_string(),
    }
}

#[tokio::test]
async fn each_user_gets_its_own_result_and_a_retry_with_the_key_writes_nothing() {
    let w = World::new().await;
    let org = w.given_org("acme").await;
    let other = w.given_org("other").await;
    let (a, b) = (w.given_human(&org).await, w.given_human(&org).await);
    let machine = w.given_machine(&org).await;
    let no_email = w.given_human_without_email(&org).await;
    let foreign = w.given_human(&other).await;
    let unknown = "404".to_string();
    let owner = w.caller(&org, Scope::Org(org.clone()), &["ORG_OWNER"]).await;
    let req = BulkRequest {
        selection: ids(&[&a, &machine, &no_email, &foreign, &unknown, &b]),
        medium: LinkMedium::Send { url_template: None },
        idempotency_key: "k1".into(),
    };
    let r = w.app.create_registration_links(&owner, req.clone()).await.unwrap();
    let got: Vec<(String, String)> =
        r.results.iter().map(|x| (x.user_id.clone(), outcome_kind(&x.outcome))).collect();
    let want = [
        (a.clone(), "delivery"),
        (machine.clone(), "COMMAND-xu3Ag"),
        (no_email.clone(), "COMMAND-mL4il"),
        (foreign.clone(), "COMMAND-M9dsd"),
        (unknown.clone(), "COMMAND-M9dsd"),
        (b.clone(), "delivery"),
    ];
    assert_eq!(got, want.map(|(u, k)| (u, k.to_string())));
    let Event::PasskeyCodeRequested(c) = w.last_user_event(&a).await else { panic!() };
    assert_eq!(c.idempotency_key.as_deref(), Some("k1"));
    let jobs = w.store.pending_jobs(100).await.unwrap();
    assert!(jobs.iter().any(|j| j.code_id == c.id), "the job is written with the code");
    let Ok(BulkOutcome::Delivery { code_id, job_id }) = &r.results[0].outcome else { panic!() };
    assert_eq!((code_id, Some(job_id)), (&c.id, c.job_id.as_ref()));

    // The retry: the same code ids, replayed, and no new event or job.
    let before = (w.user_events(&a).await.len(), w.user_events(&b).await.len(), jobs.len());
    let again = w.app.create_registration_links(&owner, req).await.unwrap();
    match &again.results[0].outcome {
        Ok(BulkOutcome::Replayed { code_id, delivered: true, job_id }) => {
            assert_eq!((code_id, job_id), (&c.id, &c.job_id));
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(outcome_kind(&again.results[5].outcome), "replayed:true");
    let after = (
        w.user_events(&a).await.len(),
        w.user_events(&b).await.len(),
        w.store.pending_jobs(100).await.unwrap().len(),
    );
    assert_eq!(before, after);

    // A returned code under another key: the code comes back once, then only its id.
    let ret = |key: &str| BulkRequest {
        selection: ids(&[&a]),
        medium: LinkMedium::Return,
        idempotency_key: key.into(),
    };
    let first = w.app.create_registration_links(&owner, ret("k2")).await.unwrap();
    let Ok(BulkOutcome::Code { code_id, code }) = &first.results[0].outcome else { panic!() };
    assert_eq!(code.expose().len(), 12);
    let second = w.app.create_registration_links(&owner, ret("k2")).await.unwrap();
    match &second.results[0].outcome {
        Ok(BulkOutcome::Replayed { code_id: again, delivered: false, job_id: None }) => {
            assert_eq!(again, code_id)
        }
        o => panic!("{o:?}"),
    }
    // Without a key nothing is deduplicated.
    let n = w.user_events(&a).await.len();
    w.app.create_registration_links(&owner, ret("")).await.unwrap();
    w.app.create_registration_links(&owner, ret("")).await.unwrap();
    assert_eq!(w.user_events(&a).await.len(), n + 2);
}

#[tokio::test]
async fn an_organization_goes_through_in_pages_in_id_order() {
    let w = World::new().await;
    let org = w.given_org("big").await;
    let mut humans = Vec::new();
    for _ in 0..7 {
        humans.push(w.given_human(&org).await);
    }
    let machine = w.given_machine(&org).await;
    humans.sort();
    let mut seen = Vec::new();
    let (mut token, mut pages, mut skipped) = (String::new(), 0, 0);
    loop {
        let req = BulkRequest {
            selection: BulkSelection::Org {
                org_id: org.clone(),
                only_without_passkey: true,
                page_size: 3,
                page_token: token.clone(),
            },
            medium: LinkMedium::Return,
            idempotency_key: "pages".into(),
        };
        let r = w.app.create_registration_links(&w.admin, req).await.unwrap();
        pages += 1;
        skipped += r.skipped;
        seen.extend(r.results.iter().map(|x| x.user_id.clone()));
        assert!(r.results.iter().all(|x| matches!(x.outcome, Ok(BulkOutcome::Code { .. }))));
        match r.next_page_token {
            Some(t) => token = t,
            None => break,
        }
    }
    assert_eq!((pages, skipped), (3, 1), "8 users in pages of 3");
    // A page that ends the organization exactly has no next token (no empty page after it).
    let exact = BulkRequest {
        selection: BulkSelection::Org {
            org_id: org.clone(),
            only_without_passkey: false,
            page_size: 8,
            page_token: String::new(),
        },
        medium: LinkMedium::Return,
        idempotency_key: "pages".into(),
    };
    let r = w.app.create_registration_links(&w.admin, exact).await.unwrap();
    assert_eq!((r.results.len(), r.next_page_token.is_none()), (7, true));
    assert_eq!(seen, humans);
    assert!(!seen.contains(&machine));

    // Another organization's token, a caller without the permission there.
    let stranger_org = w.given_org("stranger").await;
    let stranger = w.caller(&stranger_org, Scope::Org(stranger_org.clone()), &["ORG_OWNER"]).await;
    let page = |org_id: &str, token: &str| BulkRequest {
        selection: BulkSelection::Org {
            org_id: org_id.into(),
            only_without_passkey: false,
            page_size: 0,
            page_token: token.into(),
        },
        medium: LinkMedium::Return,
        idempotency_key: String::new(),
    };
    let e = w.app.create_registration_links(&stranger, page(&org, "")).await.unwrap_err();
    assert_eq!((e.kind, e.id), (Kind::NotFound, "ORG-o0Ng9"));
    let first = w
        .app
        .create_registration_links(&w.admin, {
            let mut p = page(&org, "");
            if let BulkSelection::Org { page_size, .. } = &mut p.selection {
                *page_size = 2;
            }
            p
        })
        .await
        .unwrap();
    let t = first.next_page_token.unwrap();
    let e = w.app.create_registration_links(&w.admin, page(&stranger_org, &t)).await.unwrap_err();
    assert_eq!(e.kind, Kind::InvalidArgument);
}
