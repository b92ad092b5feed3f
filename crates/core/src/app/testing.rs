//! Fixtures for the pure decide tests: views and callers built by folding events.

use std::sync::Arc;

use super::{Caller, Principal};
use crate::code::CodeView;
use crate::event::{AggregateKind, CodeRequested, Event, HumanProfile, MachineProfile, Recorded};
use crate::time::Timestamp;
use crate::view::{Membership, Scope, UserView};

pub const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

fn created(id: &str, org: &str, event: Event) -> UserView {
    let r = Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: id.into(),
        sequence: 1,
        created_at: NOW,
        resource_owner: org.into(),
        creator: String::new(),
        event,
    };
    UserView::created(&r).unwrap_or_else(|| unreachable!())
}

/// An active human "Ada Lovelace" with an email address, in `org`.
pub fn human(id: &str, org: &str) -> UserView {
    let profile = HumanProfile {
        given_name: "Ada".into(),
        family_name: "Lovelace".into(),
        email: "ada@example.com".into(),
        ..Default::default()
    };
    created(id, org, Event::HumanAdded { username: format!("{id}@example.com"), profile })
}

/// An active machine user in `org`.
pub fn machine(id: &str, org: &str) -> UserView {
    let profile = MachineProfile { name: "svc".into(), ..Default::default() };
    created(id, org, Event::MachineAdded { username: id.into(), profile })
}

/// A caller ("caller", org "A") holding `role` in `scope`.
pub fn caller(scope: Scope, role: &str) -> Caller {
    let memberships = if role.is_empty() {
        Vec::new()
    } else {
        vec![Membership { user_id: "caller".into(), scope, roles: vec![role.into()], created_at: NOW }]
    };
    let principal =
        Principal { user_id: "caller".into(), org_id: "A".into(), memberships, token_expires: NOW };
    Caller { principal: Arc::new(principal), context_org: "A".into() }
}

pub fn org(id: &str) -> Scope {
    Scope::Org(id.into())
}

/// Code `id` of `user` (in org "A"), requested at [`NOW`] for an hour: returned to the caller,
/// or with `job` its delivery job.
pub fn code(id: &str, user: &str, job: Option<&str>) -> CodeView {
    let c = CodeRequested {
        id: id.into(),
        code_hash: "h".into(),
        expiry_secs: 3600,
        url_template: None,
        code_returned: job.is_none(),
        job_id: job.map(str::to_string),
        idempotency_key: None,
    };
    let r = Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: user.into(),
        sequence: 2,
        created_at: NOW,
        resource_owner: "A".into(),
        creator: String::new(),
        event: Event::PasskeyCodeRequested(c.clone()),
    };
    CodeView::requested(&r, &c)
}
