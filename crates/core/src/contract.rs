//! The storage contract suite: one body of tests every [`Store`] adapter must pass.
//!
//! Compiled only with the `contract-tests` feature. Each `pub async fn` below is one test; an
//! adapter's test file calls it once per test function, on a fresh, empty store, inside the
//! adapter's own async runtime (the core has none). The functions panic (assert) on a breach of
//! the contract written in [`crate::store`].
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn commit_then_read_back() {
//!     let store = fresh_store();
//!     passlink_core::contract::commit_then_read_back(&store).await;
//! }
//! ```
//!
//! Concurrency is exercised without a runtime: the suite polls many commit futures at once with
//! a small [`join_all`], so every commit is in flight together (the adapter batches or races
//! them as it would under load).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use crate::code::{CodeState, CodeView};
use crate::error::{Error, Kind};
use crate::event::{AggregateKind, CodeRequested, Event, HumanProfile, MachineProfile, OutboxJob, Recorded};
use crate::secret::Sealed;
use crate::store::{Commit, JobState, OutboxUpdate, Store, UniqueClaim};
use crate::time::Timestamp;
use crate::view::{Change, InstanceView, Membership, OrgView, PatView, Scope, UserState, UserView};

// ------------------------------------------------------------------------------------ helpers

/// Poll every future concurrently (in the caller's task) and return their outputs in order.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every joined future completed")).collect()
}

/// A base instant with nanoseconds: adapters must keep timestamps exact to the nanosecond.
const T0: i64 = 1_800_000_000_123_456_789;

/// `T0` plus `secs` seconds and a few nanoseconds.
fn at(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * 1_000_000_000 + secs)
}

/// Enough for every job a contract test writes (and a valid `LIMIT` everywhere).
const ALL_JOBS: usize = 100_000;

fn rec(kind: AggregateKind, id: &str, owner: &str, sequence: u64, event: Event) -> Recorded {
    Recorded {
        aggregate_kind: kind,
        aggregate_id: id.to_string(),
        sequence,
        created_at: at(sequence as i64),
        resource_owner: owner.to_string(),
        creator: "contract-creator".to_string(),
        event,
    }
}

/// A claim whose `taken` error names it, so the suite can tell which claim an error came from.
fn claim(kind: &'static str, value: &str) -> UniqueClaim {
    UniqueClaim {
        kind,
        value: value.to_string(),
        taken: Error::new(Kind::AlreadyExists, "CONTRACT-taken", "Errors.Contract.Taken")
            .with_cause(format!("{kind}={value}")),
    }
}

fn profile(email: &str) -> HumanProfile {
    HumanProfile {
        given_name: "Zoë".into(),
        family_name: "Ångström-O'Brien \"quoted\"".into(),
        nick_name: "zo".into(),
        display_name: "Zoë Å. 🔑".into(),
        preferred_language: "de-CH".into(),
        gender: 2,
        email: email.into(),
        email_verified: true,
        phone: "+41 44 000 00 00".into(),
        phone_verified: false,
    }
}

/// A human user's first event (sequence 1) and its view.
fn new_human(id: &str, org: &str, username: &str) -> (Recorded, UserView) {
    let r = rec(
        AggregateKind::User,
        id,
        org,
        1,
        Event::HumanAdded { username: username.into(), profile: profile(&format!("{username}@example.com")) },
    );
    let v = UserView::created(&r).expect("human view");
    (r, v)
}

/// A commit that creates a human user: event, user view, user-id and username claims.
fn create_user_commit(id: &str, org: &str, username: &str) -> Commit {
    let (r, v) = new_human(id, org, username);
    Commit {
        events: vec![r],
        claims: vec![claim("user_id", id), claim("username", username)],
        changes: vec![Change::User(v)],
        outbox: vec![],
        released: vec![],
        outbox_updates: vec![],
    }
}

fn code_requested(user: &UserView, sequence: u64, code_id: &str, returned: bool) -> (Recorded, CodeView) {
    let c = CodeRequested {
        id: code_id.into(),
        code_hash: format!("{:0>64}", code_id.len()),
        expiry_secs: 3600,
        url_template: (!returned).then(|| "https://example.com/p?u={{.UserID}}&c={{.Code}}&ü=1".to_string()),
        code_returned: returned,
    };
    let r =
        rec(AggregateKind::User, &user.id, &user.org_id, sequence, Event::PasskeyCodeRequested(c.clone()));
    let v = CodeView::requested(&r, &c);
    (r, v)
}

fn job(id: &str, user_id: &str, org_id: &str, code_id: &str, created_at: Timestamp) -> OutboxJob {
    OutboxJob {
        id: id.into(),
        kind: "passkey_registration_link".into(),
        user_id: user_id.into(),
        org_id: org_id.into(),
        code_id: code_id.into(),
        created_at,
        not_after: created_at.plus(std::time::Duration::from_secs(3600)),
        url_template: Some("https://example.com/register?code={{.Code}}&x=ä".into()),
        sealed_code: Some(Sealed {
            key_id: "k1".into(),
            nonce: "bm9uY2Vub25jZTEy".into(),
            ciphertext: format!("Y2lwaGVy-{id}_"),
        }),
        attempts: 0,
    }
}

async fn all_jobs(store: &dyn Store) -> Vec<OutboxJob> {
    store.pending_jobs(ALL_JOBS).await.expect("pending_jobs")
}

/// Nothing of `commit` is visible: none of its events, read-model changes or outbox jobs.
/// (Its claims are checked with [`assert_claims_free`], which writes.)
async fn assert_no_trace(store: &dyn Store, commit: &Commit, what: &str) {
    for e in &commit.events {
        let log = store.events_of(e.aggregate_kind, &e.aggregate_id).await.expect("events_of");
        assert!(
            !log.contains(e),
            "{what}: event {}#{} of a failed commit was written",
            e.aggregate_id,
            e.sequence
        );
    }
    for ch in &commit.changes {
        match ch {
            Change::Instance(v) => {
                assert_ne!(
                    store.instance().await.expect("instance").as_ref(),
                    Some(v),
                    "{what}: instance change written"
                );
            }
            Change::Org(v) => {
                assert_ne!(
                    store.org(&v.id).await.expect("org").as_ref(),
                    Some(v),
                    "{what}: org change written"
                );
            }
            Change::User(v) => {
                assert_ne!(
                    store.user(&v.id).await.expect("user").as_ref(),
                    Some(v),
                    "{what}: user change written"
                );
            }
            Change::Membership(m) => {
                let ms = store.memberships_of(&m.user_id).await.expect("memberships_of");
                assert!(!ms.contains(m), "{what}: membership change written");
            }
            Change::Pat(p) => {
                let got = store.pat_by_hash(&p.token_hash).await.expect("pat_by_hash");
                assert_ne!(got.as_ref(), Some(p), "{what}: pat change written");
            }
            Change::Code(c) => {
                assert_ne!(
                    store.code(&c.id).await.expect("code").as_ref(),
                    Some(c),
                    "{what}: code change written"
                );
            }
        }
    }
    let jobs = all_jobs(store).await;
    for j in &commit.outbox {
        assert!(
            !jobs.iter().any(|p| p.id == j.id),
            "{what}: outbox job {} of a failed commit was written",
            j.id
        );
    }
}

/// Each claim is free: a commit taking all of them (and nothing else) succeeds.
async fn assert_claims_free(store: &dyn Store, claims: &[UniqueClaim], what: &str) {
    let commit = Commit { claims: claims.to_vec(), ..Commit::default() };
    if let Err(e) = store.commit(commit).await {
        panic!("{what}: a claim of a failed commit stayed taken: {e:?}");
    }
}

// ------------------------------------------------------------------------------------ the suite

/// A fresh store answers every read with nothing, and `ping` succeeds.
pub async fn empty_store_reads_nothing(store: &dyn Store) {
    store.ping().await.expect("ping");
    assert_eq!(store.instance().await.expect("instance"), None);
    assert_eq!(store.org("nope").await.expect("org"), None);
    assert_eq!(store.user("nope").await.expect("user"), None);
    assert!(store.memberships_of("nope").await.expect("memberships_of").is_empty());
    assert_eq!(store.pat_by_hash(&[7; 32]).await.expect("pat_by_hash"), None);
    assert_eq!(store.code("nope").await.expect("code"), None);
    for kind in [AggregateKind::Instance, AggregateKind::Org, AggregateKind::User] {
        assert!(store.events_of(kind, "nope").await.expect("events_of").is_empty());
    }
    assert!(all_jobs(store).await.is_empty());
    // An empty commit is a valid commit.
    store.commit(Commit::default()).await.expect("empty commit");
}

/// `ping` answers `Ok` on a reachable store, before and after writes.
pub async fn ping(store: &dyn Store) {
    store.ping().await.expect("ping on a fresh store");
    store.commit(create_user_commit("ping-user", "ping-org", "ping")).await.expect("commit");
    store.ping().await.expect("ping after a commit");
}

/// Everything a commit writes reads back equal: views, memberships (instance and org scope),
/// tokens, codes, the event log (order, payloads, kinds kept apart) and the outbox (complete,
/// oldest first). A later commit replaces the views it changes.
pub async fn commit_then_read_back(store: &dyn Store) {
    use AggregateKind::{Instance, Org, User};
    let (inst, org, admin, alice) = ("rb-instance", "rb-org", "rb-admin", "rb-alice");

    // --- commit 1: an instance, two orgs, a machine and a human user, a token, a code, jobs.
    let roles_iam = vec!["IAM_OWNER".to_string()];
    let roles_org = vec!["ORG_OWNER".to_string(), "ORG_USER_MANAGER".to_string()];
    let i1 = rec(Instance, inst, inst, 1, Event::InstanceAdded { name: "Ïnstance \"rb\"".into() });
    let o1 = rec(Org, org, org, 1, Event::OrgAdded { name: "RB Org".into() });
    let a1 = rec(
        User,
        admin,
        org,
        1,
        Event::MachineAdded {
            username: "admin".into(),
            profile: MachineProfile {
                name: "Administrator".into(),
                description: "the admin".into(),
                access_token_type: 1,
                ..MachineProfile::default()
            },
        },
    );
    let i2 = rec(Instance, inst, inst, 2, Event::InstanceDefaultOrgSet { org_id: org.into() });
    let token_hash = [0xA5u8; 32];
    let a2 = rec(
        User,
        admin,
        org,
        2,
        Event::PatAdded { token_id: "rb-pat".into(), token_hash: "a5".repeat(32), expiration: at(1_000_000) },
    );
    let i3 = rec(
        Instance,
        inst,
        inst,
        3,
        Event::InstanceMemberAdded { user_id: admin.into(), roles: roles_iam.clone() },
    );
    let (u1, alice_view1) = new_human(alice, org, "alice");
    let o2 = rec(Org, org, org, 2, Event::OrgMemberAdded { user_id: alice.into(), roles: roles_org.clone() });
    // An org whose id equals a user's id: events_of must keep aggregate kinds apart.
    let shared = rec(Org, alice, alice, 1, Event::OrgAdded { name: "same id, other kind".into() });
    let (u2, code1) = code_requested(&alice_view1, 2, "rb-code-1", false);
    let mut alice_view2 = alice_view1.clone();
    alice_view2.apply(&u2);

    let instance_view = InstanceView {
        id: inst.into(),
        name: "Ïnstance \"rb\"".into(),
        default_org_id: org.into(),
        sequence: 3,
        created_at: at(1),
        changed_at: at(3),
    };
    let org_view =
        OrgView { id: org.into(), name: "RB Org".into(), sequence: 2, created_at: at(1), changed_at: at(2) };
    let shared_org_view = OrgView {
        id: alice.into(),
        name: "same id, other kind".into(),
        sequence: 1,
        created_at: at(1),
        changed_at: at(1),
    };
    let mut admin_view = UserView::created(&a1).expect("machine view");
    admin_view.apply(&a2);
    let m_admin_inst =
        Membership { user_id: admin.into(), scope: Scope::Instance, roles: roles_iam, created_at: at(3) };
    let m_admin_org = Membership {
        user_id: admin.into(),
        scope: Scope::Org(org.into()),
        roles: vec!["ORG_OWNER".into()],
        created_at: at(4),
    };
    let m_alice_org = Membership {
        user_id: alice.into(),
        scope: Scope::Org(org.into()),
        roles: roles_org,
        created_at: at(2),
    };
    let pat = PatView {
        id: "rb-pat".into(),
        user_id: admin.into(),
        token_hash,
        expiration: at(1_000_000),
        created_at: at(2),
        revoked: false,
    };
    // Jobs whose id order is the reverse of their age: "oldest first" is by creation.
    let job_old = job("rb-job-c", alice, org, "rb-code-1", at(10));
    let job_mid = job("rb-job-b", alice, org, "rb-code-1", at(20));

    let commit1 = Commit {
        events: vec![
            i1.clone(),
            o1.clone(),
            a1.clone(),
            i2.clone(),
            a2.clone(),
            i3.clone(),
            u1.clone(),
            o2.clone(),
            shared.clone(),
            u2.clone(),
        ],
        claims: vec![
            claim("instance", "default"),
            claim("org_name", "rb org"),
            claim("username", "admin"),
            claim("username", "alice"),
        ],
        changes: vec![
            Change::Instance(instance_view.clone()),
            Change::Org(org_view.clone()),
            Change::Org(shared_org_view.clone()),
            Change::User(admin_view.clone()),
            Change::User(alice_view2.clone()),
            Change::Membership(m_admin_inst.clone()),
            Change::Membership(m_admin_org.clone()),
            Change::Membership(m_alice_org.clone()),
            Change::Pat(pat.clone()),
            Change::Code(code1.clone()),
        ],
        outbox: vec![job_old.clone(), job_mid.clone()],
        released: vec![],
        outbox_updates: vec![],
    };
    store.commit(commit1).await.expect("commit 1");

    // --- read back commit 1
    assert_eq!(store.instance().await.expect("instance"), Some(instance_view.clone()));
    assert_eq!(store.org(org).await.expect("org"), Some(org_view.clone()));
    assert_eq!(store.org(alice).await.expect("org"), Some(shared_org_view));
    assert_eq!(store.org(admin).await.expect("org"), None, "a user id is not an org id");
    assert_eq!(store.user(admin).await.expect("user"), Some(admin_view.clone()));
    assert_eq!(store.user(alice).await.expect("user"), Some(alice_view2.clone()));
    assert_eq!(store.user(org).await.expect("user"), None, "an org id is not a user id");

    let ms = store.memberships_of(admin).await.expect("memberships_of");
    assert_eq!(ms.len(), 2, "admin has an instance and an org membership: {ms:?}");
    assert!(ms.contains(&m_admin_inst), "instance-scope membership reads back equal: {ms:?}");
    assert!(ms.contains(&m_admin_org), "org-scope membership reads back equal: {ms:?}");
    assert_eq!(store.memberships_of(alice).await.expect("memberships_of"), vec![m_alice_org.clone()]);
    assert!(store.memberships_of("rb-nobody").await.expect("memberships_of").is_empty());

    assert_eq!(store.pat_by_hash(&token_hash).await.expect("pat_by_hash"), Some(pat.clone()));
    let mut other_hash = token_hash;
    other_hash[31] ^= 1;
    assert_eq!(store.pat_by_hash(&other_hash).await.expect("pat_by_hash"), None);

    assert_eq!(store.code("rb-code-1").await.expect("code"), Some(code1.clone()));
    assert_eq!(store.code("rb-code-2").await.expect("code"), None);

    assert_eq!(store.events_of(Instance, inst).await.expect("events_of"), vec![i1, i2, i3]);
    assert_eq!(store.events_of(Org, org).await.expect("events_of"), vec![o1, o2]);
    assert_eq!(store.events_of(Org, alice).await.expect("events_of"), vec![shared]);
    assert_eq!(store.events_of(User, admin).await.expect("events_of"), vec![a1, a2]);
    assert_eq!(store.events_of(User, alice).await.expect("events_of"), vec![u1.clone(), u2.clone()]);
    assert!(store.events_of(Instance, org).await.expect("events_of").is_empty());

    assert_eq!(all_jobs(store).await, vec![job_old.clone(), job_mid.clone()]);

    // --- commit 2: the code is sent, checked once wrongly, the user deactivated; one more job.
    let u3 = rec(User, alice, org, 3, Event::PasskeyCodeSent { id: "rb-code-1".into() });
    let u4 = rec(User, alice, org, 4, Event::PasskeyCodeCheckFailed { id: "rb-code-1".into() });
    let u5 = rec(User, alice, org, 5, Event::UserDeactivated {});
    let mut alice_view5 = alice_view2.clone();
    let mut code1_after = code1.clone();
    for r in [&u3, &u4, &u5] {
        alice_view5.apply(r);
        code1_after.apply(&r.event);
    }
    assert_eq!(alice_view5.state, UserState::Inactive);
    assert_eq!((code1_after.state, code1_after.failed_checks), (CodeState::Active, 1));
    let job_new = job("rb-job-a", alice, org, "rb-code-1", at(30));
    let commit2 = Commit {
        events: vec![u3.clone(), u4.clone(), u5.clone()],
        claims: vec![],
        changes: vec![Change::User(alice_view5.clone()), Change::Code(code1_after.clone())],
        outbox: vec![job_new.clone()],
        released: vec![],
        outbox_updates: vec![],
    };
    store.commit(commit2).await.expect("commit 2");

    assert_eq!(store.user(alice).await.expect("user"), Some(alice_view5), "a user change replaces the view");
    assert_eq!(
        store.code("rb-code-1").await.expect("code"),
        Some(code1_after),
        "a code change replaces the view"
    );
    assert_eq!(store.events_of(User, alice).await.expect("events_of"), vec![u1, u2, u3, u4, u5]);
    assert_eq!(store.user(admin).await.expect("user"), Some(admin_view), "other views are untouched");
    assert_eq!(store.instance().await.expect("instance"), Some(instance_view));
    assert_eq!(
        all_jobs(store).await,
        vec![job_old.clone(), job_mid.clone(), job_new.clone()],
        "oldest first"
    );
    assert_eq!(
        store.pending_jobs(2).await.expect("pending_jobs"),
        vec![job_old, job_mid],
        "limit keeps the oldest"
    );
    assert_eq!(store.pending_jobs(1).await.expect("pending_jobs").len(), 1);
}

/// Two commits with the same (aggregate, sequence): the second fails with [`Kind::Aborted`]
/// and writes nothing of itself, wherever its conflicting event sits in the commit.
pub async fn stale_sequence_is_aborted_and_writes_nothing(store: &dyn Store) {
    let (org, user) = ("oc-org", "oc-user");
    let base = create_user_commit(user, org, "oc");
    store.commit(base.clone()).await.expect("create user");
    let v1 = store.user(user).await.expect("user").expect("user exists");

    // Both writers read sequence 1 and append sequence 2.
    let (w2, winner_code) = code_requested(&v1, 2, "oc-code-winner", true);
    let mut winner_view = v1.clone();
    winner_view.apply(&w2);
    let winner = Commit {
        events: vec![w2.clone()],
        claims: vec![],
        changes: vec![Change::User(winner_view.clone()), Change::Code(winner_code.clone())],
        outbox: vec![],
        released: vec![],
        outbox_updates: vec![],
    };
    store.commit(winner).await.expect("the first writer wins");

    for (n, conflict_first) in [(1, true), (2, false)] {
        let other_user = format!("oc-other-{n}");
        let (l2, loser_code) = code_requested(&v1, 2, &format!("oc-code-loser-{n}"), false);
        let mut loser_view = v1.clone();
        loser_view.apply(&l2);
        loser_view.state = UserState::Inactive;
        let l3 = rec(AggregateKind::User, user, org, 3, Event::PasskeyCodeSent { id: loser_code.id.clone() });
        let (o1, other_view) = new_human(&other_user, org, &other_user);
        let new_org = format!("oc-new-org-{n}");
        let org1 = rec(AggregateKind::Org, &new_org, &new_org, 1, Event::OrgAdded { name: new_org.clone() });
        let events = if conflict_first { vec![l2, l3, o1, org1] } else { vec![o1, org1, l2, l3] };
        let loser = Commit {
            events,
            claims: vec![claim("username", &other_user), claim("org_name", &new_org)],
            changes: vec![
                Change::User(loser_view),
                Change::User(other_view),
                Change::Org(OrgView {
                    id: new_org.clone(),
                    name: new_org.clone(),
                    sequence: 1,
                    created_at: at(1),
                    changed_at: at(1),
                }),
                Change::Code(loser_code.clone()),
                Change::Membership(Membership {
                    user_id: other_user.clone(),
                    scope: Scope::Org(new_org.clone()),
                    roles: vec!["ORG_OWNER".into()],
                    created_at: at(1),
                }),
                Change::Pat(PatView {
                    id: format!("oc-pat-{n}"),
                    user_id: user.into(),
                    token_hash: [n; 32],
                    expiration: at(99),
                    created_at: at(2),
                    revoked: false,
                }),
            ],
            outbox: vec![job(&format!("oc-job-{n}"), user, org, &loser_code.id, at(2))],
            released: vec![],
            outbox_updates: vec![],
        };
        let err = store.commit(loser.clone()).await.expect_err("a stale sequence must fail");
        assert_eq!(err.kind, Kind::Aborted, "stale sequence (conflict first: {conflict_first}): {err:?}");

        assert_no_trace(store, &loser, "stale sequence").await;
        assert_eq!(
            store.user(user).await.expect("user"),
            Some(winner_view.clone()),
            "the winner's view stays"
        );
        assert_eq!(store.code(&winner_code.id).await.expect("code"), Some(winner_code.clone()));
        assert_eq!(
            store.events_of(AggregateKind::User, user).await.expect("events_of"),
            vec![base.events[0].clone(), w2.clone()]
        );
        assert!(store.events_of(AggregateKind::User, &other_user).await.expect("events_of").is_empty());
        assert!(all_jobs(store).await.is_empty());
        assert_claims_free(store, &loser.claims, "stale sequence").await;
    }
    // The aggregate goes on at the next sequence.
    let w3 = rec(AggregateKind::User, user, org, 3, Event::PasskeyCodeSent { id: winner_code.id.clone() });
    store
        .commit(Commit { events: vec![w3], ..Commit::default() })
        .await
        .expect("sequence 3 after a fresh read");
    let seqs: Vec<u64> = store
        .events_of(AggregateKind::User, user)
        .await
        .expect("events_of")
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

/// A taken claim fails the commit with exactly that claim's `taken` error and writes nothing of
/// it. Claims are unique per (kind, value): the same value under another kind is free.
pub async fn taken_claim_fails_with_its_error_and_writes_nothing(store: &dyn Store) {
    let org = "uc-org";
    store.commit(create_user_commit("uc-first", org, "alice")).await.expect("first alice");

    // Another user with the same username; its claims list a free claim before the taken one.
    let mut dup = create_user_commit("uc-second", org, "alice");
    dup.claims =
        vec![claim("user_id", "uc-second"), claim("email", "second@example.com"), claim("username", "alice")];
    dup.outbox.push(job("uc-job", "uc-second", org, "uc-code", at(5)));
    dup.changes.push(Change::Membership(Membership {
        user_id: "uc-second".into(),
        scope: Scope::Instance,
        roles: vec!["IAM_OWNER".into()],
        created_at: at(1),
    }));
    let err = store.commit(dup.clone()).await.expect_err("a taken username must fail");
    assert_eq!(err, claim("username", "alice").taken, "the error is the taken claim's own error");
    assert_eq!(err, dup.claims[2].taken);
    assert_ne!(err.kind, Kind::Aborted);
    assert_no_trace(store, &dup, "taken claim").await;
    assert_eq!(store.user("uc-second").await.expect("user"), None);
    assert!(store.memberships_of("uc-second").await.expect("memberships_of").is_empty());
    assert!(all_jobs(store).await.is_empty());

    // Claims are per kind, and values are compared exactly (callers normalize case).
    let mut other_kinds = create_user_commit("uc-third", org, "alice-2");
    other_kinds.claims.extend([claim("org_name", "alice"), claim("username", "Alice")]);
    store.commit(other_kinds).await.expect("same value under another kind, or other bytes, is free");

    // The free claims of the failed commit were not kept.
    assert_claims_free(store, &dup.claims[..2], "taken claim").await;
    // And the taken one is still taken, by the same error, also when it comes first.
    let again = Commit {
        claims: vec![claim("username", "alice"), claim("email", "fresh@example.com")],
        ..Commit::default()
    };
    assert_eq!(store.commit(again).await.expect_err("still taken"), claim("username", "alice").taken);
    assert_claims_free(store, &[claim("email", "fresh@example.com")], "taken claim first").await;
}

/// Users are found by username, case-insensitively (client ids of machine users).
pub async fn user_by_username_is_case_insensitive(store: &dyn Store) {
    store.commit(create_user_commit("ubn-1", "ubn-org", "Alice")).await.expect("alice");
    let found = store.user_by_username("alice").await.expect("lookup").expect("found");
    assert_eq!(found.id, "ubn-1");
    assert_eq!(
        store.user_by_username("ALICE").await.expect("lookup").map(|u| u.id).as_deref(),
        Some("ubn-1")
    );
    assert_eq!(store.user_by_username("bob").await.expect("lookup"), None);
}

/// A released claim can be taken again, in the same commit that releases it or later; releasing
/// a value nobody holds is harmless.
pub async fn released_claims_are_free_again(store: &dyn Store) {
    store.commit(create_user_commit("rel-1", "rel-org", "bob")).await.expect("bob");
    let release = Commit {
        released: vec![("username", "bob".into()), ("username", "nobody".into())],
        outbox_updates: vec![],
        ..Commit::default()
    };
    store.commit(release).await.expect("release");
    store.commit(create_user_commit("rel-2", "rel-org", "bob")).await.expect("bob again after the release");
    let err = store.commit(create_user_commit("rel-3", "rel-org", "bob")).await.expect_err("taken again");
    assert_eq!(err, claim("username", "bob").taken);
}

/// A commit whose later part fails leaves no trace of its earlier parts: a conflicting event
/// after fresh ones, a taken claim after free ones, a claim repeated inside one commit.
pub async fn failed_commit_leaves_no_trace(store: &dyn Store) {
    let org = "at-org";
    store.commit(create_user_commit("at-existing", org, "at-existing")).await.expect("setup");

    // 1. Fresh user, fresh claims, job, code, then an event that reuses at-existing's sequence 1.
    let existing = store.user("at-existing").await.expect("user").expect("exists");
    let (_, new_view) = new_human("at-new-1", org, "at-new-1");
    let (_, code) = code_requested(&new_view, 2, "at-code-1", false);
    let mut c1 = create_user_commit("at-new-1", org, "at-new-1");
    c1.changes.push(Change::Code(code));
    c1.outbox.push(job("at-job-1", "at-new-1", org, "at-code-1", at(3)));
    c1.events.push(rec(AggregateKind::User, "at-existing", org, 1, Event::UserRemoved {}));
    let err = store.commit(c1.clone()).await.expect_err("later conflicting event");
    assert_eq!(err.kind, Kind::Aborted, "{err:?}");
    assert_no_trace(store, &c1, "later conflicting event").await;
    assert_claims_free(store, &c1.claims, "later conflicting event").await;

    // 2. Events, changes and a job, then a taken claim last.
    let mut c2 = create_user_commit("at-new-2", org, "at-new-2");
    c2.outbox.push(job("at-job-2", "at-new-2", org, "at-code-2", at(3)));
    c2.claims.push(claim("username", "at-existing"));
    let err = store.commit(c2.clone()).await.expect_err("later taken claim");
    assert_eq!(err, claim("username", "at-existing").taken);
    assert_no_trace(store, &c2, "later taken claim").await;
    assert_claims_free(store, &c2.claims[..2], "later taken claim").await;

    // 3. A claim repeated inside one commit: the second copy finds it taken by the first.
    let mut c3 = create_user_commit("at-new-3", org, "at-new-3");
    c3.outbox.push(job("at-job-3", "at-new-3", org, "at-code-3", at(3)));
    c3.claims.push(claim("email", "twice@example.com"));
    c3.claims.push(claim("email", "twice@example.com"));
    let err = store.commit(c3.clone()).await.expect_err("a claim repeated in one commit");
    assert_eq!(err, claim("email", "twice@example.com").taken);
    assert_no_trace(store, &c3, "repeated claim").await;
    assert_claims_free(store, &c3.claims[..3], "repeated claim").await;

    // 4. The same (aggregate, sequence) twice inside one commit.
    let mut c4 = create_user_commit("at-new-4", org, "at-new-4");
    c4.outbox.push(job("at-job-4", "at-new-4", org, "at-code-4", at(3)));
    c4.events.push(rec(AggregateKind::User, "at-new-4", org, 1, Event::UserDeactivated {}));
    let err = store.commit(c4.clone()).await.expect_err("a sequence repeated in one commit");
    assert_eq!(err.kind, Kind::Aborted, "{err:?}");
    assert_no_trace(store, &c4, "repeated sequence").await;
    assert_claims_free(store, &c4.claims, "repeated sequence").await;

    assert!(all_jobs(store).await.is_empty());
    assert_eq!(
        store.user("at-existing").await.expect("user"),
        Some(existing),
        "the existing user is untouched"
    );
    assert_eq!(store.events_of(AggregateKind::User, "at-existing").await.expect("events_of").len(), 1);
}

/// Many concurrent writers on one user aggregate, each reading the current sequence, appending
/// the next and retrying on [`Kind::Aborted`]: every writer succeeds, and the log is gap-free
/// `1..=N` with each writer's event exactly once.
pub async fn concurrent_commits_on_one_aggregate_serialize(store: &dyn Store) {
    const WRITERS: u64 = 40;
    let (org, user) = ("cc-org", "cc-user");
    store.commit(create_user_commit(user, org, "cc")).await.expect("create user");

    let writer = |i: u64| async move {
        let code_id = format!("cc-code-{i}");
        let mut attempts = 0u64;
        loop {
            attempts += 1;
            // Each loss means another writer's commit landed after our read; there are only
            // WRITERS - 1 others, so a correct store lets every writer in within WRITERS tries.
            assert!(
                attempts <= WRITERS,
                "writer {i} lost {} races: lost updates or stale reads",
                attempts - 1
            );
            let current = store.user(user).await.expect("user").expect("user exists");
            let (r, code) = code_requested(&current, current.sequence + 1, &code_id, true);
            let mut after = current.clone();
            after.apply(&r);
            let commit = Commit {
                events: vec![r],
                claims: vec![claim("code_id", &code_id)],
                changes: vec![Change::User(after), Change::Code(code)],
                outbox: vec![],
                released: vec![],
                outbox_updates: vec![],
            };
            match store.commit(commit).await {
                Ok(()) => return attempts,
                Err(e) => assert_eq!(e.kind, Kind::Aborted, "writer {i}: only a conflict may fail it: {e:?}"),
            }
        }
    };
    let attempts = join_all((0..WRITERS).map(writer)).await;
    assert_eq!(attempts.len() as u64, WRITERS, "every writer finished with success");

    let log = store.events_of(AggregateKind::User, user).await.expect("events_of");
    let seqs: Vec<u64> = log.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=WRITERS + 1).collect::<Vec<_>>(), "gap-free, duplicate-free, in order");
    let mut seen = HashSet::new();
    for e in &log[1..] {
        let Event::PasskeyCodeRequested(c) = &e.event else { panic!("unexpected event {e:?}") };
        assert!(seen.insert(c.id.clone()), "{} written twice", c.id);
    }
    assert_eq!(seen.len() as u64, WRITERS, "each writer's event exactly once");
    let view = store.user(user).await.expect("user").expect("exists");
    assert_eq!(view.sequence, WRITERS + 1, "the view matches the last event");
    for i in 0..WRITERS {
        let code =
            store.code(&format!("cc-code-{i}")).await.expect("code").expect("every writer's code exists");
        let at_seq =
            log.iter().find(|e| matches!(&e.event, Event::PasskeyCodeRequested(c) if c.id == code.id));
        assert_eq!(
            Some(code.created_at),
            at_seq.map(|e| e.created_at),
            "the code view is the one of its event"
        );
    }
}

/// Many concurrent commits on different aggregates (the group-commit path) all succeed and are
/// all readable.
pub async fn independent_concurrent_commits_all_succeed(store: &dyn Store) {
    const USERS: usize = 200;
    let org = "ic-org";
    let commits: Vec<Commit> = (0..USERS)
        .map(|i| {
            let id = format!("ic-user-{i}");
            let mut c = create_user_commit(&id, org, &id);
            c.outbox.push(job(&format!("ic-job-{i:04}"), &id, org, &format!("ic-code-{i}"), at(i as i64)));
            c
        })
        .collect();
    let results = join_all(commits.iter().cloned().map(|c| store.commit(c))).await;
    for (i, r) in results.iter().enumerate() {
        assert!(r.is_ok(), "independent commit {i} failed: {r:?}");
    }
    for c in &commits {
        let Some(Change::User(v)) = c.changes.first() else { panic!("fixture") };
        assert_eq!(store.user(&v.id).await.expect("user").as_ref(), Some(v));
        assert_eq!(store.events_of(AggregateKind::User, &v.id).await.expect("events_of"), c.events);
    }
    let jobs = all_jobs(store).await;
    assert_eq!(jobs.len(), USERS);
    let expected: Vec<OutboxJob> = commits.iter().flat_map(|c| c.outbox.clone()).collect();
    assert_eq!(jobs, expected, "every job, oldest first");
}

/// Failing commits in flight together with good ones (one group-commit batch, typically) fail
/// alone: the good ones are written whole, the bad ones not at all.
pub async fn failures_in_a_batch_are_isolated(store: &dyn Store) {
    const COMMITS: usize = 90;
    let org = "bi-org";
    store.commit(create_user_commit("bi-base", org, "bi-base")).await.expect("setup");
    let commits: Vec<Commit> = (0..COMMITS)
        .map(|i| {
            let id = format!("bi-user-{i}");
            let mut c = create_user_commit(&id, org, &id);
            c.outbox.push(job(&format!("bi-job-{i:03}"), &id, org, "bi-code", at(i as i64)));
            match i % 3 {
                // A stale sequence on the base user, after the fresh parts.
                0 => c.events.push(rec(AggregateKind::User, "bi-base", org, 1, Event::UserRemoved {})),
                // A taken claim, after the free ones.
                1 => c.claims.push(claim("username", "bi-base")),
                _ => {}
            }
            c
        })
        .collect();
    let results = join_all(commits.iter().cloned().map(|c| store.commit(c))).await;
    let mut good_jobs = Vec::new();
    for (i, (c, r)) in commits.iter().zip(&results).enumerate() {
        match i % 3 {
            0 => {
                assert_eq!(r.as_ref().map_err(|e| e.kind), Err(Kind::Aborted), "commit {i}");
                assert_no_trace(store, c, "stale sequence in a batch").await;
            }
            1 => {
                assert_eq!(r.as_ref().err(), Some(&claim("username", "bi-base").taken), "commit {i}");
                assert_no_trace(store, c, "taken claim in a batch").await;
            }
            _ => {
                assert!(r.is_ok(), "good commit {i} failed: {r:?}");
                let Some(Change::User(v)) = c.changes.first() else { panic!("fixture") };
                assert_eq!(store.user(&v.id).await.expect("user").as_ref(), Some(v));
                assert_eq!(store.events_of(AggregateKind::User, &v.id).await.expect("events_of"), c.events);
                good_jobs.extend(c.outbox.clone());
            }
        }
    }
    assert_eq!(all_jobs(store).await, good_jobs, "only the good commits' jobs");
    let base_log = store.events_of(AggregateKind::User, "bi-base").await.expect("events_of");
    assert_eq!(base_log.len(), 1, "the base user's log is untouched");
    for (i, c) in commits.iter().enumerate() {
        match i % 3 {
            0 => assert_claims_free(store, &c.claims, "stale sequence in a batch").await,
            1 => assert_claims_free(store, &c.claims[..2], "taken claim in a batch").await,
            _ => {}
        }
    }
}

/// Many concurrent commits racing for one claim: exactly one wins; every other fails with the
/// claim's error and leaves nothing.
pub async fn racing_claims_have_one_winner(store: &dyn Store) {
    const RACERS: usize = 24;
    let org = "rc-org";
    let commits: Vec<Commit> = (0..RACERS)
        .map(|i| {
            let id = format!("rc-user-{i}");
            let mut c = create_user_commit(&id, org, "racer");
            c.outbox.push(job(&format!("rc-job-{i}"), &id, org, "rc-code", at(1)));
            c
        })
        .collect();
    let results = join_all(commits.iter().cloned().map(|c| store.commit(c))).await;
    let winners: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_ok()).map(|(i, _)| i).collect();
    assert_eq!(winners.len(), 1, "exactly one commit wins the claim: {results:?}");
    let winner = winners[0];
    for (i, (c, r)) in commits.iter().zip(&results).enumerate() {
        if i == winner {
            let Some(Change::User(v)) = c.changes.first() else { panic!("fixture") };
            assert_eq!(store.user(&v.id).await.expect("user").as_ref(), Some(v));
        } else {
            assert_eq!(r.as_ref().err(), Some(&claim("username", "racer").taken), "racer {i}");
            assert_no_trace(store, c, "lost claim race").await;
        }
    }
    assert_eq!(all_jobs(store).await, commits[winner].outbox);
}

/// Everything committed survives closing and reopening the store on the same location:
/// views, log, claims, outbox, and the sequences that optimistic concurrency checks against.
/// `open` opens the store at one fixed location each time it is called.
pub async fn durable_across_reopen<F, Fut>(mut open: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let (org, user) = ("du-org", "du-user");
    let store = open().await;
    let mut c1 = create_user_commit(user, org, "durable");
    let org_view =
        OrgView { id: org.into(), name: "Durable".into(), sequence: 1, created_at: at(1), changed_at: at(1) };
    let membership = Membership {
        user_id: user.into(),
        scope: Scope::Org(org.into()),
        roles: vec!["ORG_OWNER".into()],
        created_at: at(1),
    };
    let instance = InstanceView {
        id: "du-inst".into(),
        name: "durable".into(),
        default_org_id: org.into(),
        sequence: 1,
        created_at: at(1),
        changed_at: at(1),
    };
    let pat = PatView {
        id: "du-pat".into(),
        user_id: user.into(),
        token_hash: [0x5A; 32],
        expiration: at(500),
        created_at: at(1),
        revoked: false,
    };
    c1.events.push(rec(AggregateKind::Org, org, org, 1, Event::OrgAdded { name: "Durable".into() }));
    c1.events.push(rec(
        AggregateKind::Instance,
        "du-inst",
        "du-inst",
        1,
        Event::InstanceAdded { name: "durable".into() },
    ));
    c1.changes.extend([
        Change::Org(org_view.clone()),
        Change::Membership(membership.clone()),
        Change::Instance(instance.clone()),
        Change::Pat(pat.clone()),
    ]);
    store.commit(c1.clone()).await.expect("commit 1");
    let Some(Change::User(v1)) = c1.changes.first().cloned() else { panic!("fixture") };
    let (e2, code) = code_requested(&v1, 2, "du-code", false);
    let mut v2 = v1.clone();
    v2.apply(&e2);
    let j = job("du-job", user, org, "du-code", at(2));
    store
        .commit(Commit {
            events: vec![e2.clone()],
            claims: vec![],
            changes: vec![Change::User(v2.clone()), Change::Code(code.clone())],
            outbox: vec![j.clone()],
            released: vec![],
            outbox_updates: vec![],
        })
        .await
        .expect("commit 2");
    drop(store);

    let store = open().await;
    store.ping().await.expect("ping after reopen");
    assert_eq!(store.user(user).await.expect("user"), Some(v2.clone()));
    assert_eq!(store.org(org).await.expect("org"), Some(org_view));
    assert_eq!(store.instance().await.expect("instance"), Some(instance));
    assert_eq!(store.memberships_of(user).await.expect("memberships_of"), vec![membership]);
    assert_eq!(store.pat_by_hash(&pat.token_hash).await.expect("pat_by_hash"), Some(pat));
    assert_eq!(store.code("du-code").await.expect("code"), Some(code.clone()));
    assert_eq!(
        store.events_of(AggregateKind::User, user).await.expect("events_of"),
        vec![c1.events[0].clone(), e2]
    );
    assert_eq!(all_jobs(store.as_ref()).await, vec![j.clone()]);

    // Sequences and claims are still enforced.
    let stale = rec(AggregateKind::User, user, org, 2, Event::UserDeactivated {});
    let err = store
        .commit(Commit { events: vec![stale], ..Commit::default() })
        .await
        .expect_err("stale after reopen");
    assert_eq!(err.kind, Kind::Aborted);
    let dup = Commit { claims: vec![claim("username", "durable")], ..Commit::default() };
    assert_eq!(store.commit(dup).await.expect_err("claim after reopen"), claim("username", "durable").taken);
    let e3 = rec(AggregateKind::User, user, org, 3, Event::PasskeyCodeSent { id: "du-code".into() });
    let mut v3 = v2;
    v3.apply(&e3);
    store
        .commit(Commit { events: vec![e3], changes: vec![Change::User(v3.clone())], ..Commit::default() })
        .await
        .expect("the next sequence after reopen");
    drop(store);

    let store = open().await;
    assert_eq!(store.user(user).await.expect("user"), Some(v3));
    let seqs: Vec<u64> = store
        .events_of(AggregateKind::User, user)
        .await
        .expect("events_of")
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(all_jobs(store.as_ref()).await, vec![j]);
}

// ------------------------------------------------------------------------------------ outbox

fn outbox_update(
    j: &OutboxJob,
    state: JobState,
    next: Timestamp,
    attempts: u32,
    error: Option<&str>,
) -> OutboxUpdate {
    let mut job = j.clone();
    job.attempts = attempts;
    if state != JobState::Pending {
        job.sealed_code = None;
    }
    OutboxUpdate { job, state, next_attempt_at: next, last_error: error.map(str::to_string) }
}

/// Jobs are leased oldest first, to one owner at a time; a lease that ran out is taken over;
/// a retried job waits for its next attempt; the final states erase the sealed code and leave
/// the pending list; an outcome is written atomically with the commit's events.
pub async fn outbox_leases_and_outcomes(store: &dyn Store) {
    let (org, user) = ("ol-org", "ol-user");
    let mut c = create_user_commit(user, org, "outbox-lease");
    let jobs: Vec<OutboxJob> =
        (1..=3).map(|i| job(&format!("ol-job-{i}"), user, org, &format!("ol-code-{i}"), at(i))).collect();
    c.outbox = jobs.clone();
    store.commit(c).await.expect("commit jobs");

    let a = store.claim_jobs("worker-a", at(10), at(70), 2).await.expect("claim a");
    assert_eq!(a, jobs[..2].to_vec(), "the two oldest jobs, complete");
    let b = store.claim_jobs("worker-b", at(10), at(70), 10).await.expect("claim b");
    assert_eq!(b, vec![jobs[2].clone()], "a leased job is not leased again");
    assert!(store.claim_jobs("worker-b", at(20), at(80), 10).await.expect("claim").is_empty());
    let st = store.job("ol-job-1").await.expect("job").expect("exists");
    assert_eq!(
        (st.state, st.lease_owner.as_deref(), st.lease_until),
        (JobState::Pending, Some("worker-a"), Some(at(70)))
    );
    assert_eq!(store.job("ol-missing").await.expect("job"), None);

    // Delivered: sealed code erased, out of the pending list, never leased again.
    store
        .commit(Commit {
            outbox_updates: vec![outbox_update(&jobs[0], JobState::Delivered, at(11), 1, None)],
            ..Commit::default()
        })
        .await
        .expect("delivered");
    let st = store.job("ol-job-1").await.expect("job").expect("exists");
    assert_eq!(st.state, JobState::Delivered);
    assert_eq!(st.job.sealed_code, None, "the code is erased once delivered");
    assert_eq!(st.job.attempts, 1);
    assert_eq!(st.lease_owner, None);
    // Retry: due again at its next attempt, with its attempt count and error.
    store
        .commit(Commit {
            outbox_updates: vec![outbox_update(
                &jobs[1],
                JobState::Pending,
                at(100),
                1,
                Some("connection refused"),
            )],
            ..Commit::default()
        })
        .await
        .expect("retry");
    let st = store.job("ol-job-2").await.expect("job").expect("exists");
    assert_eq!(
        (st.state, st.next_attempt_at, st.last_error.as_deref()),
        (JobState::Pending, at(100), Some("connection refused"))
    );
    assert!(st.job.sealed_code.is_some(), "a job to retry keeps its code");
    assert_eq!(st.lease_owner, None);
    // After worker-b's lease ran out (it "died"), another worker takes job 3 over; job 2 is
    // not due yet.
    let c2 = store.claim_jobs("worker-c", at(80), at(140), 10).await.expect("claim c");
    assert_eq!(c2, vec![jobs[2].clone()], "an expired lease is taken over");
    let due = store.claim_jobs("worker-c", at(100), at(160), 10).await.expect("claim due");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id.as_str(), due[0].attempts), ("ol-job-2", 1));
    // Abandoned: erased and kept with its reason.
    store
        .commit(Commit {
            outbox_updates: vec![outbox_update(&jobs[2], JobState::Abandoned, at(101), 5, Some("gave up"))],
            ..Commit::default()
        })
        .await
        .expect("abandoned");
    let st = store.job("ol-job-3").await.expect("job").expect("exists");
    assert_eq!(
        (st.state, st.job.sealed_code.clone(), st.last_error.as_deref()),
        (JobState::Abandoned, None, Some("gave up"))
    );
    let pending: Vec<String> = all_jobs(store).await.into_iter().map(|j| j.id).collect();
    assert_eq!(pending, vec!["ol-job-2".to_string()]);

    // An outcome in a failing commit is not written either.
    let stale = rec(AggregateKind::User, user, org, 1, Event::PasskeyCodeSent { id: "ol-code-2".into() });
    let err = store
        .commit(Commit {
            events: vec![stale],
            outbox_updates: vec![outbox_update(&jobs[1], JobState::Delivered, at(102), 2, None)],
            ..Commit::default()
        })
        .await
        .expect_err("stale sequence");
    assert_eq!(err.kind, Kind::Aborted);
    let st = store.job("ol-job-2").await.expect("job").expect("exists");
    assert_eq!(st.state, JobState::Pending, "the outcome of a failed commit is not written");
    assert!(st.job.sealed_code.is_some());
}

/// Many workers claiming at once never get the same job, and together get every due job.
pub async fn concurrent_claims_never_share_a_job(store: &dyn Store) {
    let (org, user) = ("cc-org", "cc-user");
    let mut c = create_user_commit(user, org, "outbox-concurrent");
    c.outbox =
        (0..40).map(|i| job(&format!("cc-job-{i:02}"), user, org, &format!("cc-code-{i}"), at(i))).collect();
    store.commit(c).await.expect("commit jobs");
    let owners: Vec<String> = (0..8).map(|i| format!("worker-{i}")).collect();
    let claims = join_all(owners.iter().map(|o| store.claim_jobs(o, at(100), at(160), 10))).await;
    let mut seen = HashSet::new();
    for r in claims {
        for j in r.expect("claim") {
            assert!(seen.insert(j.id.clone()), "job {} leased twice", j.id);
        }
    }
    assert_eq!(seen.len(), 40, "every due job leased once");
}
