//! Test data and assertions shared by the suite: records, claims, users, codes, jobs, and the
//! "no trace of a failed commit" checks.

use passlink_core::code::CodeView;
use passlink_core::error::{Error, Kind};
use passlink_core::event::{AggregateKind, CodeRequested, Event, HumanProfile, OutboxJob, Recorded};
use passlink_core::secret::Sealed;
use passlink_core::store::{Commit, JobState, OutboxUpdate, Store, UniqueClaim};
use passlink_core::time::Timestamp;
use passlink_core::view::{Change, UserView};

/// A base instant with nanoseconds: adapters must keep timestamps exact to the nanosecond.
pub(crate) const T0: i64 = 1_800_000_000_123_456_789;

/// `T0` plus `secs` seconds and a few nanoseconds.
pub(crate) fn at(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * 1_000_000_000 + secs)
}

/// Enough for every job a contract test writes (and a valid `LIMIT` everywhere).
pub(crate) const ALL_JOBS: usize = 100_000;

pub(crate) fn rec(kind: AggregateKind, id: &str, owner: &str, sequence: u64, event: Event) -> Recorded {
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
pub(crate) fn claim(kind: &'static str, value: &str) -> UniqueClaim {
    UniqueClaim {
        kind,
        value: value.to_string(),
        taken: Error::new(Kind::AlreadyExists, "CONTRACT-taken", "Errors.Contract.Taken")
            .with_cause(format!("{kind}={value}")),
    }
}

pub(crate) fn profile(email: &str) -> HumanProfile {
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
pub(crate) fn new_human(id: &str, org: &str, username: &str) -> (Recorded, UserView) {
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
pub(crate) fn create_user_commit(id: &str, org: &str, username: &str) -> Commit {
    let (r, v) = new_human(id, org, username);
    Commit {
        events: vec![r],
        claims: vec![claim("user_id", id), claim("username", username)],
        changes: vec![Change::User(v)],
        outbox: vec![],
        released: vec![],
        outbox_updates: vec![],
        notifications: vec![],
        notification_updates: vec![],
    }
}

pub(crate) fn code_requested(
    user: &UserView,
    sequence: u64,
    code_id: &str,
    returned: bool,
) -> (Recorded, CodeView) {
    let c = CodeRequested {
        id: code_id.into(),
        code_hash: format!("{:0>64}", code_id.len()),
        expiry_secs: 3600,
        url_template: (!returned).then(|| "https://example.com/p?u={{.UserID}}&c={{.Code}}&ü=1".to_string()),
        code_returned: returned,
        job_id: None,
        idempotency_key: None,
    };
    let r =
        rec(AggregateKind::User, &user.id, &user.org_id, sequence, Event::PasskeyCodeRequested(c.clone()));
    let v = CodeView::requested(&r, &c);
    (r, v)
}

pub(crate) fn job(id: &str, user_id: &str, org_id: &str, code_id: &str, created_at: Timestamp) -> OutboxJob {
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

pub(crate) async fn all_jobs(store: &dyn Store) -> Vec<OutboxJob> {
    store.pending_jobs(ALL_JOBS).await.expect("pending_jobs")
}

/// Nothing of `commit` is visible: none of its events, read-model changes or outbox jobs.
/// (Its claims are checked with [`assert_claims_free`], which writes.)
pub(crate) async fn assert_no_trace(store: &dyn Store, commit: &Commit, what: &str) {
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
            Change::User(v) | Change::UserSequence(v) => {
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
            Change::Session(v) => {
                let got = store.session(&v.id).await.expect("session");
                assert_ne!(got.as_ref(), Some(v), "{what}: session change written");
            }
            Change::Credential(o) => {
                let got = store.credential_owner(&o.cred_id).await.expect("credential_owner");
                assert_ne!(got.as_ref(), Some(&o.user_id), "{what}: credential change written");
            }
            Change::Passkey(p) => {
                let got = store.passkeys_of(&p.user_id).await.expect("passkeys_of");
                assert!(!got.contains(p), "{what}: passkey change written");
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
pub(crate) async fn assert_claims_free(store: &dyn Store, claims: &[UniqueClaim], what: &str) {
    let commit = Commit { claims: claims.to_vec(), ..Commit::default() };
    if let Err(e) = store.commit(commit).await {
        panic!("{what}: a claim of a failed commit stayed taken: {e:?}");
    }
}

pub(crate) fn outbox_update(
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
