use super::super::testing::{NOW, caller, human, machine, org};
use super::*;
use crate::event::{CodeRequested, Recorded};
use crate::view::Scope;

fn request(selection: BulkSelection, medium: LinkMedium) -> BulkRequest {
    BulkRequest { selection, medium, idempotency_key: String::new() }
}

fn users(n: usize) -> BulkSelection {
    BulkSelection::Users((0..n).map(|i| i.to_string()).collect())
}

fn requested(id: &str, key: Option<&str>, returned: bool) -> Recorded {
    Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: "u".into(),
        sequence: 2,
        created_at: NOW,
        resource_owner: "A".into(),
        creator: "caller".into(),
        event: Event::PasskeyCodeRequested(CodeRequested {
            id: id.into(),
            code_hash: "00".into(),
            expiry_secs: 3600,
            url_template: None,
            code_returned: returned,
            job_id: (!returned).then(|| "j".to_string()),
            idempotency_key: key.map(str::to_string),
        }),
    }
}

#[test]
fn page_tokens_round_trip_and_are_bound_to_their_organization() {
    let t = page_token("org1", "12345");
    assert_eq!(parse_page_token("org1", &t).ok().as_deref(), Some("12345"));
    assert_eq!(parse_page_token("org2", &t).err().map(|e| e.kind), Some(Kind::InvalidArgument));
    for bad in ["zz", "abc", "00", &crate::hex::encode(b"b2\norg1\n1"), &crate::hex::encode(b"b1\norg1\n")] {
        assert_eq!(parse_page_token("org1", bad).err().map(|e| e.kind), Some(Kind::InvalidArgument), "{bad}");
    }
}

#[test]
fn a_bad_request_fails_as_a_whole() {
    let owner = caller(Scope::Instance, "IAM_OWNER");
    let kind = |c: &Caller, r: BulkRequest| check_request(c, &r).err().map(|e| e.kind);
    assert_eq!(kind(&owner, request(users(0), LinkMedium::Return)), Some(Kind::InvalidArgument));
    let too_many = check_request(&owner, &request(users(MAX_BULK_USERS + 1), LinkMedium::Return));
    assert!(too_many.err().is_some_and(|e| e.message().contains("at most 1000 userIds")));
    assert_eq!(check_request(&owner, &request(users(MAX_BULK_USERS), LinkMedium::Return)).ok(), Some(()));
    let bad_template = LinkMedium::Send { url_template: Some("https://x/{{.Nope}}".into()) };
    assert_eq!(kind(&owner, request(users(1), bad_template)), Some(Kind::InvalidArgument));
    let long_key = BulkRequest { idempotency_key: "k".repeat(201), ..request(users(1), LinkMedium::Return) };
    assert_eq!(kind(&owner, long_key), Some(Kind::InvalidArgument));
    // No user.passkey.write anywhere: 403 for the whole batch, as the single-user RPC.
    let manager = caller(org("A"), "ORG_USER_MANAGER");
    assert_eq!(kind(&manager, request(users(1), LinkMedium::Return)), Some(Kind::PermissionDenied));
    let empty_org = BulkSelection::Org {
        org_id: String::new(),
        only_without_passkey: false,
        page_size: 0,
        page_token: String::new(),
    };
    assert_eq!(kind(&owner, request(empty_org, LinkMedium::Return)), Some(Kind::InvalidArgument));
}

#[test]
fn an_organization_selects_its_active_humans_and_optionally_those_without_passkey() {
    let ada = human("u", "A");
    assert!(selected(&ada, false, false));
    assert!(selected(&ada, true, false));
    assert!(selected(&ada, false, true));
    assert!(!selected(&ada, true, true));
    assert!(!selected(&machine("m", "A"), false, false));
    let mut inactive = ada.clone();
    inactive.state = UserState::Inactive;
    assert!(!selected(&inactive, false, false));
}

#[test]
fn a_key_finds_the_code_it_created_and_only_that() {
    let events = vec![
        requested("c1", None, true),
        requested("c2", Some("k1"), true),
        requested("c3", Some("k2"), false),
    ];
    let code = |o: Option<BulkOutcome>| match o {
        Some(BulkOutcome::Replayed { code_id, delivered, job_id }) => {
            assert_eq!(job_id.is_some(), delivered);
            Some((code_id, delivered))
        }
        _ => None,
    };
    assert_eq!(code(replayed(&events, "k1")), Some(("c2".to_string(), false)));
    assert_eq!(code(replayed(&events, "k2")), Some(("c3".to_string(), true)));
    assert!(replayed(&events, "k3").is_none());
    assert!(replayed(&events[..1], "").is_none());
}
