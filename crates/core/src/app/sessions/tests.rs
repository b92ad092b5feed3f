//! Unit tests of the session rules (no store).

use super::super::testing::{NOW, caller, human, org};
use super::rules::*;
use super::*;
use crate::event::Recorded;
use crate::view::{Change, Scope};

fn session(user: Option<&UserView>) -> SessionView {
    let r = Recorded {
        aggregate_kind: AggregateKind::Session,
        aggregate_id: "s".into(),
        sequence: 1,
        created_at: NOW,
        resource_owner: "inst".into(),
        creator: "creator".into(),
        event: Event::SessionAdded(SessionAdded::default()),
    };
    let mut s = SessionView::created(&r).unwrap_or_else(|| unreachable!());
    if let Some(u) = user {
        s.user = Some(crate::session::UserFactor {
            user_id: u.id.clone(),
            org_id: u.org_id.clone(),
            login_name: u.username.clone(),
            display_name: "Ada".into(),
            checked_at: NOW,
        });
    }
    s
}

fn plan(user: Option<&UserView>) -> Plan<'_> {
    Plan {
        user,
        check: None,
        challenge: None,
        metadata: BTreeMap::new(),
        lifetime: None,
        token: ("t1".into(), "hash1".into()),
    }
}

fn types(tx: Tx) -> Vec<&'static str> {
    tx.into_commit().events.iter().map(|r| r.event.type_name()).collect()
}

#[test]
fn creating_records_the_session_the_user_and_a_token() {
    let u = human("u", "A");
    let tx = decide_write(None, Some(("s", "inst", None)), plan(Some(&u)), "c", NOW).unwrap();
    let commit = tx.into_commit();
    let t: Vec<_> = commit.events.iter().map(|r| r.event.type_name()).collect();
    assert_eq!(t, ["session.added", "session.user.checked", "session.token.set"]);
    let s = commit.changes.iter().find_map(|c| if let Change::Session(s) = c { Some(s) } else { None });
    let s = s.unwrap();
    assert_eq!((s.user_id(), s.token_hash.as_str(), s.sequence), (Some("u"), "hash1", 3));
}

#[test]
fn a_change_without_effect_writes_nothing_and_the_user_cannot_change() {
    let u = human("u", "A");
    let s = session(Some(&u));
    let tx = decide_write(Some(&s), None, plan(Some(&u)), "c", NOW).unwrap();
    assert!(types(tx).is_empty());
    let other = human("v", "A");
    let e = decide_write(Some(&s), None, plan(Some(&other)), "c", NOW).unwrap_err();
    assert_eq!(e.error.id, "SESSION-uChg1");
    let mut p = plan(None);
    p.lifetime = Some(-1);
    assert_eq!(decide_write(Some(&s), None, p, "c", NOW).unwrap_err().error.id, "COMMAND-asEG4");
}

#[test]
fn terminated_and_expired_sessions_refuse_changes() {
    let mut s = session(None);
    s.terminated = true;
    assert_eq!(decide_write(Some(&s), None, plan(None), "c", NOW).unwrap_err().error.id, "COMMAND-Hewfq");
    let mut s = session(None);
    s.expiration = Some(NOW);
    assert_eq!(decide_write(Some(&s), None, plan(None), "c", NOW).unwrap_err().error.id, "COMMAND-Hkl3d");
}

#[test]
fn inactive_users_cannot_be_checked() {
    let mut u = human("u", "A");
    u.state = UserState::Inactive;
    let e = decide_write(None, Some(("s", "i", None)), plan(Some(&u)), "c", NOW).unwrap_err();
    assert_eq!(e.error.id, "SESSION-Gj4ko");
}

fn ready(id: &str, cred: &str) -> PasskeyView {
    PasskeyView {
        id: id.into(),
        user_id: "u".into(),
        state: PasskeyState::Ready,
        name: "k".into(),
        rp_id: "localhost".into(),
        code_id: None,
        registration_state: String::new(),
        credential: Some("{}".into()),
        cred_id: Some(cred.into()),
        created_at: NOW,
        sign_count: 3,
        backup_eligible: false,
        backup_state: false,
        last_used: None,
        aaguid: None,
    }
}

fn challenged(mut s: SessionView, at: Timestamp) -> SessionView {
    s.challenge = Some(crate::session::Challenge {
        rp_id: "localhost".into(),
        state: ChallengeState("{}".into()),
        issued_at: at,
    });
    s
}

const OK: Asserted =
    Asserted { user_verified: true, sign_count: 4, backup_eligible: true, backup_state: true };

fn refused_id(o: CheckOutcome) -> &'static str {
    match o {
        CheckOutcome::Refused { error, .. } => error.id,
        CheckOutcome::Passed { .. } => "passed",
    }
}

#[test]
fn the_check_needs_a_live_challenge_a_known_credential_and_user_verification() {
    let u = human("u", "A");
    let keys = vec![ready("p1", "cred1")];
    let s = challenged(session(Some(&u)), NOW);
    let pass = |_: &str, _: &ChallengeState, _: &PasskeyView| Ok(Ok(OK));
    let o = check_assertion(&s, &u, &keys, "cred1", true, NOW, pass).unwrap();
    assert!(matches!(o, CheckOutcome::Passed { ref passkey, .. } if passkey.id == "p1"));
    let none = session(Some(&u));
    assert_eq!(
        refused_id(check_assertion(&none, &u, &keys, "cred1", true, NOW, pass).unwrap()),
        "COMMAND-Ioqu5"
    );
    let late = NOW.plus(CHALLENGE_LIFETIME).plus(Duration::from_secs(1));
    assert_eq!(
        refused_id(check_assertion(&s, &u, &keys, "cred1", true, late, pass).unwrap()),
        "COMMAND-Ioqu5"
    );
    assert_eq!(
        refused_id(check_assertion(&s, &u, &keys, "other", true, NOW, pass).unwrap()),
        "COMMAND-Aej7i"
    );
    assert_eq!(
        refused_id(check_assertion(&s, &u, &keys, "cred1", false, NOW, pass).unwrap()),
        "COMMAND-Aej7i"
    );
    let no_uv =
        |_: &str, _: &ChallengeState, _: &PasskeyView| Ok(Ok(Asserted { user_verified: false, ..OK }));
    assert_eq!(
        refused_id(check_assertion(&s, &u, &keys, "cred1", true, NOW, no_uv).unwrap()),
        "SESSION-uvR3q"
    );
    let cloned = |_: &str, _: &ChallengeState, _: &PasskeyView| {
        Ok(Err(AssertionRefused::Cloned { stored: 3, presented: 2 }))
    };
    assert_eq!(
        refused_id(check_assertion(&s, &u, &keys, "cred1", true, NOW, cloned).unwrap()),
        "WEBAUTHN-cl0n3"
    );
    let mut gone = u.clone();
    gone.state = UserState::Deleted;
    assert_eq!(
        refused_id(check_assertion(&s, &gone, &keys, "cred1", true, NOW, pass).unwrap()),
        "COMMAND-Df4b3"
    );
}

#[test]
fn a_passed_check_sets_the_factor_and_the_sign_count_a_refusal_is_recorded() {
    let u = human("u", "A");
    let s = challenged(session(Some(&u)), NOW);
    let mut p = plan(None);
    p.check = Some((&u, CheckOutcome::Passed { passkey: Box::new(ready("p1", "cred1")), asserted: OK }));
    let c = decide_write(Some(&s), None, p, "c", NOW).unwrap().into_commit();
    // The passkey's read model row: the new counter and the last use, written in the same commit.
    let passkeys: Vec<_> = c
        .changes
        .iter()
        .filter_map(|ch| if let crate::view::Change::Passkey(p) = ch { Some(p) } else { None })
        .collect();
    assert_eq!(passkeys.len(), 1);
    assert_eq!((passkeys[0].sign_count, passkeys[0].last_used), (OK.sign_count, Some(NOW)));
    let t: Vec<_> = c.events.iter().map(|r| r.event.type_name()).collect();
    assert_eq!(
        t,
        [
            "session.webAuthN.checked",
            "user.human.passwordless.token.signcount.changed",
            "user.human.passwordless.token.check.succeeded",
            "session.token.set"
        ]
    );
    let mut p = plan(None);
    let refused = CheckOutcome::Refused {
        error: clone_detected(),
        reason: "r".into(),
        passkey_id: Some("p1".into()),
        cloned: Some((3, 2)),
    };
    p.check = Some((&u, refused));
    let r = decide_write(Some(&s), None, p, "c", NOW).unwrap_err();
    assert_eq!(r.error.id, "WEBAUTHN-cl0n3");
    let c = r.record.unwrap().into_commit();
    let t: Vec<_> = c.events.iter().map(|r| r.event.type_name()).collect();
    assert_eq!(t, ["session.webAuthN.check.failed", "user.human.passwordless.token.clone.detected"]);
    let s = c.changes.iter().find_map(|c| if let Change::Session(s) = c { Some(s) } else { None });
    assert!(s.unwrap().challenge.is_none(), "the challenge is used up");
}

#[test]
fn reading_without_the_token_needs_the_user_the_creator_or_session_read() {
    let u = human("u", "A");
    let s = session(Some(&u));
    assert!(may_access(&caller(Scope::Instance, "IAM_LOGIN_CLIENT"), &s, perm::SESSION_READ));
    assert!(may_access(&caller(org("A"), "IAM_OWNER"), &s, perm::SESSION_READ));
    assert!(!may_access(&caller(org("B"), "IAM_OWNER"), &s, perm::SESSION_READ));
    assert!(!may_access(&caller(Scope::Instance, "IAM_USER_MANAGER"), &s, perm::SESSION_READ));
    let anonymous = session(None);
    assert!(!may_access(&caller(org("A"), "IAM_OWNER"), &anonymous, perm::SESSION_READ));
    let mut mine = session(None);
    mine.creator = "caller".into();
    assert!(may_access(&caller(Scope::Instance, ""), &mine, perm::SESSION_READ));
    let mut t = session(None);
    t.token_hash = crate::hex::encode(&token_hash("tok"));
    assert!(token_matches(&t, "tok") && !token_matches(&t, "tok2"));
}

#[test]
fn terminating_twice_records_once() {
    let mut s = session(None);
    assert_eq!(types(decide_terminate(&s, "c", NOW)), ["session.terminated"]);
    s.terminated = true;
    assert!(types(decide_terminate(&s, "c", NOW)).is_empty());
}

#[test]
fn list_queries_become_a_store_filter() {
    let c = caller(Scope::Instance, "IAM_OWNER");
    let (f, dates) = list_filter(
        &c,
        &[
            SessionQuery::Ids(vec!["a".into(), "b".into()]),
            SessionQuery::Ids(vec!["b".into()]),
            SessionQuery::Creator(None),
            SessionQuery::CreationDate(NOW, DateMethod::Less),
        ],
    )
    .unwrap();
    assert_eq!(f.ids, Some(vec!["b".to_string()]));
    assert_eq!(f.creator.as_deref(), Some("caller"));
    assert_eq!(dates.len(), 1);
    assert!(date_matches(NOW, NOW.plus(Duration::from_secs(1)), DateMethod::Less));
    assert_eq!(list_filter(&c, &[SessionQuery::UserAgent(None)]).unwrap_err().id, "GRPC-x8n23uh");
    assert_eq!(query_invalid().kind, Kind::InvalidArgument);
}
