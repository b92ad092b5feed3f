//! First start: the instance, a default organization and the machine user `admin` (IAM_OWNER)
//! with a personal access token, in one commit.

use super::tx::Tx;
use super::{App, NEVER_EXPIRES, username_claim};
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, Event, MachineProfile};
use crate::secret::{self, Secret};
use crate::store::{Commit, UniqueClaim};
use crate::time::Timestamp;

#[derive(Debug)]
pub struct Bootstrapped {
    pub instance_id: String,
    pub org_id: String,
    pub admin_user_id: String,
    pub admin_token: Secret,
}

/// The ids a bootstrap needs, drawn before deciding.
#[derive(Debug, Clone)]
struct BootstrapIds {
    instance_id: String,
    org_id: String,
    admin_id: String,
    pat_id: String,
}

/// The bootstrap commit: events of the instance, the default org and the admin, folded into
/// their views, and the claims that make a second bootstrap fail (`INST-b00t1`).
fn decide(instance_name: &str, ids: &BootstrapIds, token_hash: &[u8; 32], now: Timestamp) -> Commit {
    let BootstrapIds { instance_id, org_id, admin_id, pat_id } = ids;
    let mut tx = Tx::new(now, "");
    let i = AggregateKind::Instance;
    tx.record(i, instance_id, instance_id, Event::InstanceAdded { name: instance_name.into() });
    tx.record(i, instance_id, instance_id, Event::InstanceDefaultOrgSet { org_id: org_id.clone() });
    let roles = vec!["IAM_OWNER".to_string()];
    tx.record(i, instance_id, instance_id, Event::InstanceMemberAdded { user_id: admin_id.clone(), roles });
    tx.record(AggregateKind::Org, org_id, org_id, Event::OrgAdded { name: "Default".into() });
    let profile = MachineProfile { name: "Administrator".into(), ..Default::default() };
    let u = AggregateKind::User;
    tx.record(u, admin_id, org_id, Event::MachineAdded { username: "admin".into(), profile });
    let pat = Event::PatAdded {
        token_id: pat_id.clone(),
        token_hash: crate::hex::encode(token_hash),
        expiration: NEVER_EXPIRES,
    };
    tx.record(u, admin_id, org_id, pat);
    tx.commit.claims = vec![
        UniqueClaim {
            kind: "instance",
            value: "default".into(),
            taken: Error::new(Kind::AlreadyExists, "INST-b00t1", "Errors.Instance.AlreadyExists"),
        },
        UniqueClaim {
            kind: "org_name",
            value: "default".into(),
            taken: Error::new(Kind::AlreadyExists, "ORG-lapo2m", "Errors.Org.NameTaken"),
        },
        username_claim("admin"),
    ];
    tx.into_commit()
}

impl App {
    /// First start: create the instance, a default organization and the machine user `admin`
    /// (IAM_OWNER) with a personal access token. Returns `None` when the instance exists.
    ///
    /// The caller generates `token` (see [`secret::generate_token`]) so it can persist it before
    /// the commit makes it valid: a crash in between never leaves an admin nobody can act as.
    pub async fn bootstrap(&self, instance_name: &str, token: Secret) -> Result<Option<Bootstrapped>> {
        if self.deps.store.instance().await?.is_some() {
            return Ok(None);
        }
        let ids = BootstrapIds {
            instance_id: self.next_id(),
            org_id: self.next_id(),
            admin_id: self.next_id(),
            pat_id: self.next_id(),
        };
        let commit = decide(instance_name, &ids, &secret::token_hash(token.expose()), self.now());
        match self.deps.store.commit(commit).await {
            Ok(()) => Ok(Some(Bootstrapped {
                instance_id: ids.instance_id,
                org_id: ids.org_id,
                admin_user_id: ids.admin_id,
                admin_token: token,
            })),
            // Another replica bootstrapped first.
            Err(e) if e.id == "INST-b00t1" => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::NOW;
    use super::*;
    use crate::view::{Change, Scope, UserKind};

    #[test]
    fn bootstrap_folds_every_view_from_its_events() {
        let ids = BootstrapIds {
            instance_id: "i".into(),
            org_id: "o".into(),
            admin_id: "a".into(),
            pat_id: "p".into(),
        };
        let c = decide("passlink", &ids, &[9; 32], NOW);
        let types: Vec<_> =
            c.events.iter().map(|r| (r.aggregate_id.as_str(), r.sequence, r.event.type_name())).collect();
        assert_eq!(
            types,
            vec![
                ("i", 1, "instance.added"),
                ("i", 2, "instance.default.org.set"),
                ("i", 3, "instance.member.added"),
                ("o", 1, "org.added"),
                ("a", 1, "user.machine.added"),
                ("a", 2, "user.personal.access.token.added"),
            ]
        );
        assert_eq!(c.changes.len(), 5);
        for ch in &c.changes {
            match ch {
                Change::Instance(v) => {
                    assert_eq!(
                        (v.name.as_str(), v.default_org_id.as_str(), v.sequence),
                        ("passlink", "o", 3)
                    );
                }
                Change::Org(v) => assert_eq!((v.name.as_str(), v.sequence), ("Default", 1)),
                Change::User(v) => {
                    assert_eq!((v.username.as_str(), v.org_id.as_str(), v.sequence), ("admin", "o", 2));
                    assert!(matches!(&v.kind, UserKind::Machine(m) if m.name == "Administrator"));
                }
                Change::Membership(m) => {
                    assert_eq!(
                        (m.user_id.as_str(), &m.scope, m.roles.as_slice()),
                        ("a", &Scope::Instance, &["IAM_OWNER".to_string()][..])
                    );
                }
                Change::Pat(p) => {
                    assert_eq!((p.id.as_str(), p.token_hash, p.expiration), ("p", [9; 32], NEVER_EXPIRES))
                }
                Change::UserSequence(_)
                | Change::Code(_)
                | Change::Session(_)
                | Change::Credential(_)
                | Change::Passkey(_) => {
                    panic!("unexpected change at bootstrap")
                }
            }
        }
        assert_eq!(
            c.claims.iter().map(|c| c.kind).collect::<Vec<_>>(),
            vec!["instance", "org_name", "username"]
        );
    }
}
