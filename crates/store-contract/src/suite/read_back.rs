//! Reads: an empty store, `ping`, and everything a commit writes read back equal.

use passlink_core::code::CodeState;
use passlink_core::event::{AggregateKind, Event, MachineProfile};
use passlink_core::store::{Commit, Store};
use passlink_core::view::{Change, InstanceView, Membership, OrgView, PatView, Scope, UserState, UserView};

use crate::fixtures::{all_jobs, at, claim, code_requested, create_user_commit, job, new_human, rec};

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
        notifications: vec![],
        notification_updates: vec![],
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
        notifications: vec![],
        notification_updates: vec![],
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
    assert_eq!(store.outbox_depth().await.expect("outbox_depth"), 3, "the outbox depth counts them");
}

/// `events_of_kind`: every aggregate of one kind, by aggregate id then sequence, and nothing of
/// another kind.
pub async fn events_of_kind_lists_every_aggregate_of_a_kind(store: &dyn Store) {
    use passlink_core::event::Recorded;
    use passlink_core::oidc::ProjectSettings;
    use passlink_core::time::Timestamp;
    assert!(store.events_of_kind(AggregateKind::Project).await.expect("empty").is_empty());
    let ev = |id: &str, sequence: u64, event: Event| Recorded {
        aggregate_kind: AggregateKind::Project,
        aggregate_id: id.into(),
        sequence,
        created_at: Timestamp::from_unix_secs(1_800_000_000),
        resource_owner: "org".into(),
        creator: "c".into(),
        event,
    };
    let added =
        |name: &str| Event::ProjectAdded(ProjectSettings { name: name.into(), ..ProjectSettings::default() });
    let first =
        Commit { events: vec![ev("p2", 1, added("two")), ev("p1", 1, added("one"))], ..Commit::default() };
    store.commit(first).await.expect("commit projects");
    store
        .commit(Commit { events: vec![ev("p1", 2, Event::ProjectDeactivated {})], ..Commit::default() })
        .await
        .expect("commit");
    store.commit(create_user_commit("u-kind", "org-kind", "kind")).await.expect("a user");
    let listed: Vec<(String, u64, Event)> = store
        .events_of_kind(AggregateKind::Project)
        .await
        .expect("events_of_kind")
        .into_iter()
        .map(|r| (r.aggregate_id, r.sequence, r.event))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("p1".to_string(), 1, added("one")),
            ("p1".to_string(), 2, Event::ProjectDeactivated {}),
            ("p2".to_string(), 1, added("two")),
        ]
    );
}

/// A user change of the sequence only ([`Change::UserSequence`]) reads back as the view with
/// the last event's sequence and creation time, in `user`, `user_by_username` and
/// `users_matching`; a later full change replaces the view as ever.
pub async fn a_sequence_only_user_change_reads_back(store: &dyn Store) {
    use passlink_core::query::UserNarrowing;
    let (id, org) = ("seq-user", "seq-org");
    let (r1, mut view) = new_human(id, org, "Seq");
    store
        .commit(Commit { events: vec![r1], changes: vec![Change::User(view.clone())], ..Commit::default() })
        .await
        .expect("create");
    let mut events = Vec::new();
    for s in 2..=4u64 {
        let mut r = rec(AggregateKind::User, id, org, s, Event::PasskeyCodeSent { id: format!("c{s}") });
        r.created_at = at(s as i64 * 10);
        view.apply(&r);
        events.push(r);
    }
    let commit = Commit { events, changes: vec![Change::UserSequence(view.clone())], ..Commit::default() };
    store.commit(commit).await.expect("sequence only");
    assert_eq!((view.sequence, view.changed_at), (4, at(40)));
    assert_eq!(store.user(id).await.expect("user"), Some(view.clone()));
    assert_eq!(store.user_by_username("seq").await.expect("by username"), Some(view.clone()));
    let narrowing = UserNarrowing { ids: Some(vec![id.into()]), ..UserNarrowing::default() };
    assert_eq!(store.users_matching(&narrowing).await.expect("matching"), vec![view.clone()]);

    let mut r5 = rec(AggregateKind::User, id, org, 5, Event::UserDeactivated {});
    r5.created_at = at(50);
    view.apply(&r5);
    store
        .commit(Commit { events: vec![r5], changes: vec![Change::User(view.clone())], ..Commit::default() })
        .await
        .expect("deactivate");
    assert_eq!(store.user(id).await.expect("user"), Some(view.clone()));
    assert_eq!(view.state, UserState::Inactive);
}
