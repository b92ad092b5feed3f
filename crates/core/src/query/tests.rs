//! Unit tests of `query` (pure, no store).

use super::*;
use crate::event::AggregateKind;
use crate::event::{Event, HumanProfile, MachineProfile, Recorded};
use crate::time::Timestamp;
use crate::view::UserState;

fn user(id: &str, org: &str, username: &str, given: &str, email: &str) -> UserView {
    let profile = HumanProfile {
        given_name: given.into(),
        family_name: "Lovelace".into(),
        email: email.into(),
        phone: "+41 79".into(),
        ..Default::default()
    };
    let r = Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: id.into(),
        sequence: 1,
        created_at: Timestamp::from_unix_secs(id.len() as i64),
        resource_owner: org.into(),
        creator: String::new(),
        event: Event::HumanAdded { username: username.into(), profile },
    };
    UserView::created(&r).unwrap_or_else(|| unreachable!())
}

fn machine(id: &str) -> UserView {
    let r = Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: id.into(),
        sequence: 1,
        created_at: Timestamp(0),
        resource_owner: "A".into(),
        creator: String::new(),
        event: Event::MachineAdded {
            username: id.into(),
            profile: MachineProfile { name: "Robot".into(), ..Default::default() },
        },
    };
    UserView::created(&r).unwrap_or_else(|| unreachable!())
}

#[test]
fn the_eight_text_methods() {
    use TextMethod::*;
    let cases = [
        (Equals, "Ada", true),
        (Equals, "ada", false),
        (EqualsIgnoreCase, "aDA", true),
        (StartsWith, "Ad", true),
        (StartsWith, "ad", false),
        (StartsWithIgnoreCase, "aD", true),
        (Contains, "d", true),
        (Contains, "D", false),
        (ContainsIgnoreCase, "D", true),
        (EndsWith, "da", true),
        (EndsWith, "DA", false),
        (EndsWithIgnoreCase, "DA", true),
        (EqualsIgnoreCase, "ÄDA", false),
    ];
    for (m, v, want) in cases {
        assert_eq!(Text::new(v, m).matches("Ada"), want, "{m:?} {v}");
    }
    assert!(Text::new("ÄDA", EqualsIgnoreCase).matches("äda"), "unicode case folding");
    assert_eq!(TextMethod::from_i32(5), ContainsIgnoreCase);
    assert_eq!(TextMethod::from_i32(99), Equals);
}

#[test]
fn user_queries_and_nesting() {
    let ada = user("1", "A", "ada", "Ada", "ada@example.com");
    let bob = user("22", "B", "Bob", "Bob", "bob@example.com");
    let robot = machine("333");
    let q = |f: UserFilter| {
        [&ada, &bob, &robot].iter().filter(|u| f.matches(u)).map(|u| u.id.clone()).collect::<Vec<_>>()
    };
    let text = |f, v: &str, m| UserFilter::Text(f, Text::new(v, m));
    assert_eq!(q(text(UserField::LoginName, "BOB", TextMethod::EqualsIgnoreCase)), ["22"]);
    assert_eq!(q(text(UserField::Email, "example.com", TextMethod::EndsWith)), ["1", "22"]);
    assert_eq!(
        q(text(UserField::FirstName, "", TextMethod::Contains)),
        ["1", "22"],
        "machines have no first name"
    );
    assert_eq!(q(text(UserField::DisplayName, "Ada Lovelace", TextMethod::Equals)), ["1"]);
    assert_eq!(q(text(UserField::DisplayName, "robot", TextMethod::EqualsIgnoreCase)), ["333"]);
    assert_eq!(q(UserFilter::Type(2)), ["333"]);
    assert_eq!(q(UserFilter::State(UserState::Active as i32)), ["1", "22", "333"]);
    assert_eq!(q(UserFilter::State(0)), Vec::<String>::new());
    assert_eq!(q(UserFilter::Emails(vec!["bob@example.com".into()])), ["22"]);
    assert_eq!(q(UserFilter::Org("A".into())), ["1", "333"]);
    let nested = UserFilter::Or(vec![
        UserFilter::Ids(vec!["1".into()]),
        UserFilter::And(vec![UserFilter::Org("B".into()), UserFilter::Not(Box::new(UserFilter::Type(2)))]),
    ]);
    assert_eq!(q(nested.clone()), ["1", "22"]);
    assert_eq!(nested.depth(), 3);
    assert_eq!(q(UserFilter::Not(Box::new(nested))), ["333"]);
    let mut deep = UserFilter::Ids(vec![]);
    for _ in 0..21 {
        deep = UserFilter::Not(Box::new(deep));
    }
    assert_eq!(deep.depth(), 21);
}

#[test]
fn a_narrowing_is_implied_by_its_filter() {
    let f = UserFilter::And(vec![
        UserFilter::Org("A".into()),
        UserFilter::Text(UserField::LoginName, Text::new("Ada", TextMethod::EqualsIgnoreCase)),
        UserFilter::And(vec![UserFilter::Ids(vec!["1".into(), "2".into()])]),
        UserFilter::Or(vec![UserFilter::Org("A".into()), UserFilter::Org("B".into())]),
    ]);
    let n = f.narrowing();
    assert_eq!(n.org_ids, Some(vec!["A".to_string()]));
    assert_eq!(n.usernames, Some(vec!["ada".to_string()]));
    assert_eq!(n.ids, Some(vec!["1".to_string(), "2".to_string()]));
    // Non-exact text, or and not narrow nothing.
    let loose = UserFilter::Text(UserField::UserName, Text::new("a", TextMethod::StartsWith));
    assert_eq!(loose.narrowing(), UserNarrowing::default());
    assert_eq!(UserFilter::Not(Box::new(UserFilter::Org("A".into()))).narrowing(), UserNarrowing::default());
    // Intersections: two orgs ANDed admit none.
    let none = UserFilter::And(vec![UserFilter::Org("A".into()), UserFilter::Org("B".into())]).narrowing();
    assert_eq!(none.org_ids, Some(vec![]));
    let ada = user("1", "A", "Ada", "Ada", "ada@example.com");
    assert!(n.admits(&ada));
    assert!(!none.admits(&ada));
    assert!(f.matches(&ada));
}

#[test]
fn paging_sorts_then_cuts_and_counts_everything() {
    let users: Vec<UserView> =
        ["3", "1", "2"].iter().map(|id| user(id, "A", &format!("u{id}"), "G", "e@x")).collect();
    let ids = |p: &Page, sort| {
        let (rows, total) = page_users(users.clone(), sort, p).unwrap();
        (rows.into_iter().map(|u| u.id).collect::<Vec<_>>(), total)
    };
    let asc = Page { offset: 0, limit: 0, asc: true };
    assert_eq!(ids(&asc, UserSort::Id), (vec!["1".into(), "2".into(), "3".into()], 3));
    assert_eq!(ids(&Page { asc: false, ..asc }, UserSort::Id).0, ["3", "2", "1"]);
    assert_eq!(ids(&Page { offset: 1, limit: 1, asc: true }, UserSort::UserName), (vec!["2".into()], 3));
    assert_eq!(ids(&Page { offset: 5, limit: 1, asc: true }, UserSort::Id), (vec![], 3));
    let e = page_users(users, UserSort::Id, &Page { limit: MAX_LIMIT + 1, ..asc }).err();
    assert_eq!(e.map(|e| e.id), Some("QUERY-4M0fs"));
    assert_eq!(UserSort::from_i32(9), UserSort::CreationDate);
}

#[test]
fn organization_queries() {
    let o = |id: &str, name: &str| OrgView {
        id: id.into(),
        name: name.into(),
        sequence: 1,
        created_at: Timestamp(0),
        changed_at: Timestamp(0),
    };
    let (a, b) = (o("1", "Acme"), o("2", "Beta"));
    assert!(OrgFilter::Name(Text::new("acme", TextMethod::EqualsIgnoreCase)).matches(&a, "2"));
    assert!(!OrgFilter::Name(Text::new("acme", TextMethod::Equals)).matches(&a, "2"));
    assert!(OrgFilter::Default.matches(&b, "2") && !OrgFilter::Default.matches(&a, "2"));
    assert!(OrgFilter::Id("1".into()).matches(&a, ""));
    assert!(OrgFilter::State(1).matches(&a, "") && !OrgFilter::State(2).matches(&a, ""));
    assert!(!OrgFilter::Domain(Text::new("acme.example.com", TextMethod::Equals)).matches(&a, ""));
    let (rows, total) = page_orgs(vec![b, a], true, &Page { asc: true, ..Page::default() }).unwrap();
    assert_eq!((rows[0].name.as_str(), total), ("Acme", 2));
}
