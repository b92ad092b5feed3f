//! Search queries of the list RPCs (ListUsers, ListOrganizations) as pure values: text matching
//! with ZITADEL's eight methods, the user and organization filter trees (and/or/not), paging,
//! and the [`UserNarrowing`] a store uses to read only candidate rows through its indexes.
//!
//! Matching is done here, once, for every store: an adapter returns the candidate rows of a
//! narrowing (a superset of the matches) and [`UserFilter::matches`] decides, so SQLite,
//! PostgreSQL and memory answer a query identically (case folding included).

use std::cmp::Ordering;

use crate::error::{Error, Kind, Result};
use crate::view::{OrgView, UserKind, UserView};

/// ZITADEL's `TextQueryMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMethod {
    Equals,
    EqualsIgnoreCase,
    StartsWith,
    StartsWithIgnoreCase,
    Contains,
    ContainsIgnoreCase,
    EndsWith,
    EndsWithIgnoreCase,
}

impl TextMethod {
    /// The method of a `TextQueryMethod` number; unknown numbers compare for equality, like 0.
    pub fn from_i32(n: i32) -> TextMethod {
        match n {
            1 => TextMethod::EqualsIgnoreCase,
            2 => TextMethod::StartsWith,
            3 => TextMethod::StartsWithIgnoreCase,
            4 => TextMethod::Contains,
            5 => TextMethod::ContainsIgnoreCase,
            6 => TextMethod::EndsWith,
            7 => TextMethod::EndsWithIgnoreCase,
            _ => TextMethod::Equals,
        }
    }

    fn ignores_case(self) -> bool {
        matches!(
            self,
            TextMethod::EqualsIgnoreCase
                | TextMethod::StartsWithIgnoreCase
                | TextMethod::ContainsIgnoreCase
                | TextMethod::EndsWithIgnoreCase
        )
    }
}

/// A text condition: `value` compared with a field by `method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub value: String,
    pub method: TextMethod,
}

impl Text {
    pub fn new(value: impl Into<String>, method: TextMethod) -> Text {
        Text { value: value.into(), method }
    }

    pub fn matches(&self, field: &str) -> bool {
        let (field, value) = if self.method.ignores_case() {
            (field.to_lowercase(), self.value.to_lowercase())
        } else {
            (field.to_string(), self.value.clone())
        };
        match self.method {
            TextMethod::Equals | TextMethod::EqualsIgnoreCase => field == value,
            TextMethod::StartsWith | TextMethod::StartsWithIgnoreCase => field.starts_with(&value),
            TextMethod::Contains | TextMethod::ContainsIgnoreCase => field.contains(&value),
            TextMethod::EndsWith | TextMethod::EndsWithIgnoreCase => field.ends_with(&value),
        }
    }

    /// An exact condition (equals, either case): the value a matching field has, lower-cased.
    fn exact_lower(&self) -> Option<String> {
        matches!(self.method, TextMethod::Equals | TextMethod::EqualsIgnoreCase)
            .then(|| self.value.to_lowercase())
    }
}

/// The text fields of a user a query can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    UserName,
    /// Any of the user's login names (passlink: the username).
    LoginName,
    FirstName,
    LastName,
    NickName,
    DisplayName,
    Email,
    Phone,
}

/// One user search query (ZITADEL's `user.v2.SearchQuery`); a list of them is ANDed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilter {
    Text(UserField, Text),
    /// ZITADEL's `UserState` number (1 active, 2 inactive, ...).
    State(i32),
    /// ZITADEL's user `Type` number (1 human, 2 machine).
    Type(i32),
    Ids(Vec<String>),
    /// Exact email addresses.
    Emails(Vec<String>),
    /// Users of this organization.
    Org(String),
    And(Vec<UserFilter>),
    Or(Vec<UserFilter>),
    Not(Box<UserFilter>),
}

/// Or/and/not may nest this deep (ZITADEL's limit).
pub const MAX_NESTING: usize = 20;

pub fn too_deep() -> Error {
    Error::new(Kind::InvalidArgument, "USER-zsQ97", "Errors.Query.TooManyNestingLevels")
}

impl UserFilter {
    /// Levels of or/and/not nesting (a plain query is 0).
    pub fn depth(&self) -> usize {
        match self {
            UserFilter::And(qs) | UserFilter::Or(qs) => {
                1 + qs.iter().map(UserFilter::depth).max().unwrap_or(0)
            }
            UserFilter::Not(q) => 1 + q.depth(),
            _ => 0,
        }
    }

    fn text_field(u: &UserView, field: UserField) -> Option<&str> {
        let human = u.human();
        match field {
            UserField::UserName | UserField::LoginName => Some(&u.username),
            UserField::FirstName => human.map(|h| h.given_name.as_str()),
            UserField::LastName => human.map(|h| h.family_name.as_str()),
            UserField::NickName => human.map(|h| h.nick_name.as_str()),
            UserField::DisplayName => match &u.kind {
                UserKind::Human(h) => Some(h.display_name.as_str()),
                UserKind::Machine(m) => Some(m.name.as_str()),
            },
            UserField::Email => human.map(|h| h.email.as_str()),
            UserField::Phone => human.map(|h| h.phone.as_str()),
        }
    }

    pub fn matches(&self, u: &UserView) -> bool {
        match self {
            UserFilter::Text(UserField::DisplayName, t) => match &u.kind {
                // A human's display name as GetUserByID shows it ("Given Family" when none is set).
                UserKind::Human(h) => t.matches(&h.effective_display_name()),
                UserKind::Machine(m) => t.matches(&m.name),
            },
            UserFilter::Text(field, t) => Self::text_field(u, *field).is_some_and(|v| t.matches(v)),
            UserFilter::State(s) => u.state as i32 == *s,
            UserFilter::Type(t) => match &u.kind {
                UserKind::Human(_) => *t == 1,
                UserKind::Machine(_) => *t == 2,
            },
            UserFilter::Ids(ids) => ids.contains(&u.id),
            UserFilter::Emails(es) => u.human().is_some_and(|h| es.contains(&h.email)),
            UserFilter::Org(o) => u.org_id == *o,
            UserFilter::And(qs) => qs.iter().all(|q| q.matches(u)),
            UserFilter::Or(qs) => qs.iter().any(|q| q.matches(u)),
            UserFilter::Not(q) => !q.matches(u),
        }
    }

    /// A narrowing every user this filter matches satisfies (implied by it; `None` dimensions
    /// are unconstrained).
    pub fn narrowing(&self) -> UserNarrowing {
        let mut n = UserNarrowing::default();
        match self {
            UserFilter::Ids(ids) => n.ids = Some(ids.clone()),
            UserFilter::Org(o) => n.org_ids = Some(vec![o.clone()]),
            UserFilter::Text(UserField::UserName | UserField::LoginName, t) => {
                n.usernames = t.exact_lower().map(|v| vec![v]);
            }
            UserFilter::And(qs) => {
                for q in qs {
                    n = n.and(&q.narrowing());
                }
            }
            _ => {}
        }
        n
    }
}

/// Which users a store reads as candidates: those satisfying every given dimension (ids in
/// `ids`, lower-cased username in `usernames`, organization in `org_ids`); `None` constrains
/// nothing, `Some(vec![])` admits no user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserNarrowing {
    pub ids: Option<Vec<String>>,
    /// Lower-cased usernames.
    pub usernames: Option<Vec<String>>,
    pub org_ids: Option<Vec<String>>,
}

fn intersect(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> Option<Vec<String>> {
    match (a, b) {
        (None, x) | (x, None) => x.clone(),
        (Some(a), Some(b)) => Some(a.iter().filter(|v| b.contains(v)).cloned().collect()),
    }
}

impl UserNarrowing {
    /// Users in both narrowings.
    pub fn and(&self, other: &UserNarrowing) -> UserNarrowing {
        UserNarrowing {
            ids: intersect(&self.ids, &other.ids),
            usernames: intersect(&self.usernames, &other.usernames),
            org_ids: intersect(&self.org_ids, &other.org_ids),
        }
    }

    /// Does a user satisfy it? (What an adapter's SQL must select.)
    pub fn admits(&self, u: &UserView) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&u.id))
            && self.usernames.as_ref().is_none_or(|ns| ns.contains(&u.username.to_lowercase()))
            && self.org_ids.as_ref().is_none_or(|os| os.contains(&u.org_id))
    }
}

/// ZITADEL's `UserFieldName` sorting columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserSort {
    /// By user id.
    #[default]
    Id,
    UserName,
    FirstName,
    LastName,
    NickName,
    DisplayName,
    Email,
    State,
    Type,
    CreationDate,
}

impl UserSort {
    /// The column of a `UserFieldName` number.
    pub fn from_i32(n: i32) -> UserSort {
        match n {
            1 => UserSort::UserName,
            2 => UserSort::FirstName,
            3 => UserSort::LastName,
            4 => UserSort::NickName,
            5 => UserSort::DisplayName,
            6 => UserSort::Email,
            7 => UserSort::State,
            8 => UserSort::Type,
            9 => UserSort::CreationDate,
            _ => UserSort::Id,
        }
    }

    fn cmp(self, a: &UserView, b: &UserView) -> Ordering {
        let text = |f: UserField, u: &UserView| UserFilter::text_field(u, f).unwrap_or("").to_string();
        let by = match self {
            UserSort::Id => Ordering::Equal,
            UserSort::UserName => a.username.cmp(&b.username),
            UserSort::FirstName => text(UserField::FirstName, a).cmp(&text(UserField::FirstName, b)),
            UserSort::LastName => text(UserField::LastName, a).cmp(&text(UserField::LastName, b)),
            UserSort::NickName => text(UserField::NickName, a).cmp(&text(UserField::NickName, b)),
            UserSort::DisplayName => text(UserField::DisplayName, a).cmp(&text(UserField::DisplayName, b)),
            UserSort::Email => text(UserField::Email, a).cmp(&text(UserField::Email, b)),
            UserSort::State => (a.state as i32).cmp(&(b.state as i32)),
            UserSort::Type => a.is_human().cmp(&b.is_human()).reverse(),
            UserSort::CreationDate => a.created_at.cmp(&b.created_at),
        };
        by.then_with(|| a.id.cmp(&b.id))
    }
}

/// ZITADEL's `ListQuery`: offset, limit (0: [`DEFAULT_LIMIT`]), ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Page {
    pub offset: u64,
    pub limit: u32,
    pub asc: bool,
}

/// Rows of a page when the request names no limit.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest limit a request may ask for.
pub const MAX_LIMIT: u32 = 1000;

impl Page {
    /// The effective limit, or InvalidArgument above [`MAX_LIMIT`].
    pub fn limit(&self) -> Result<usize> {
        match self.limit {
            0 => Ok(DEFAULT_LIMIT as usize),
            n if n > MAX_LIMIT => {
                Err(Error::new(Kind::InvalidArgument, "QUERY-4M0fs", "Errors.Query.LimitExceeded"))
            }
            n => Ok(n as usize),
        }
    }

    /// Sort `rows` by `cmp` (descending unless `asc`) and cut this page: (page, total).
    pub fn cut<T>(&self, mut rows: Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) -> Result<(Vec<T>, u64)> {
        let limit = self.limit()?;
        rows.sort_by(|a, b| if self.asc { cmp(a, b) } else { cmp(b, a) });
        let total = rows.len() as u64;
        let offset = usize::try_from(self.offset).unwrap_or(usize::MAX);
        Ok((rows.into_iter().skip(offset).take(limit).collect(), total))
    }
}

/// Sort and cut users by `sort`.
pub fn page_users(users: Vec<UserView>, sort: UserSort, page: &Page) -> Result<(Vec<UserView>, u64)> {
    page.cut(users, |a, b| sort.cmp(a, b))
}

/// One organization search query (ZITADEL's `org.v2.SearchQuery`); a list of them is ANDed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgFilter {
    Name(Text),
    /// passlink's organizations have no domains: this compares with the empty string.
    Domain(Text),
    /// ZITADEL's `OrganizationState` number (1 active).
    State(i32),
    Id(String),
    /// The instance's default organization.
    Default,
}

impl OrgFilter {
    pub fn matches(&self, o: &OrgView, default_org: &str) -> bool {
        match self {
            OrgFilter::Name(t) => t.matches(&o.name),
            OrgFilter::Domain(t) => t.matches(""),
            OrgFilter::State(s) => *s == 1,
            OrgFilter::Id(id) => o.id == *id,
            OrgFilter::Default => o.id == default_org,
        }
    }
}

/// ZITADEL's `OrganizationFieldName`: unspecified sorts by id, 1 by name.
pub fn page_orgs(orgs: Vec<OrgView>, by_name: bool, page: &Page) -> Result<(Vec<OrgView>, u64)> {
    page.cut(orgs, |a, b| {
        let by = if by_name { a.name.cmp(&b.name) } else { Ordering::Equal };
        by.then_with(|| a.id.cmp(&b.id))
    })
}

#[cfg(test)]
mod tests;
