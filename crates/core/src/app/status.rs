//! GetStatus (passlink.admin.v1.AdminService): what an operator asks a running server: its
//! version, store, readiness, uptime, outbox by state and the events webhook's backlog. Instance-wide `iam.read` only: the
//! outbox spans every organization.

use super::{App, Caller};
use crate::error::Result;
use crate::permission as perm;
use crate::store::OutboxCounts;
use crate::time::Timestamp;

/// The server as GetStatus reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// passlink's version (the workspace version).
    pub version: &'static str,
    /// The store adapter: `sqlite`, `postgres` or `memory`.
    pub store_kind: &'static str,
    /// Did the store answer its readiness check?
    pub store_ready: bool,
    /// When this process's app was built, and the time of the answer.
    pub started_at: Timestamp,
    pub now: Timestamp,
    pub outbox: OutboxCounts,
    /// Events webhook notifications not yet finished ([`crate::store::Store::events_depth`]).
    pub events_backlog: u64,
}

/// Only a membership on the instance with `iam.read` sees the status (403 otherwise).
fn authorize(caller: &Caller) -> Result<()> {
    if perm::holds_instance_wide(caller.memberships(), perm::IAM_READ) { Ok(()) } else { Err(perm::denied()) }
}

impl App {
    /// GetStatus: the store's readiness is part of the answer (an unreachable store makes the
    /// counts fail, and the RPC answers Unavailable with that error).
    pub async fn status(&self, caller: &Caller) -> Result<Status> {
        authorize(caller)?;
        let now = self.now();
        let store_ready = self.deps.store.ping().await.is_ok();
        let outbox = self.deps.store.outbox_counts(now).await?;
        let events_backlog = self.deps.store.events_depth().await?;
        Ok(Status {
            version: env!("CARGO_PKG_VERSION"),
            store_kind: self.cfg.store_kind,
            store_ready,
            started_at: self.started_at,
            now,
            outbox,
            events_backlog,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testing::caller;
    use crate::error::Kind;
    use crate::view::Scope;

    #[test]
    fn only_instance_owners_and_viewers_read_the_status() {
        let org = || Scope::Org("A".into());
        for (scope, role, ok) in [
            (Scope::Instance, "IAM_OWNER", true),
            (Scope::Instance, "IAM_OWNER_VIEWER", true),
            (Scope::Instance, "IAM_ORG_MANAGER", false),
            (Scope::Instance, "IAM_USER_MANAGER", false),
            (Scope::Instance, "IAM_LOGIN_CLIENT", false),
            (org(), "ORG_OWNER", false),
        ] {
            let got = authorize(&caller(scope, role)).err().map(|e| e.kind);
            assert_eq!(got, if ok { None } else { Some(Kind::PermissionDenied) }, "{role}");
        }
    }
}
