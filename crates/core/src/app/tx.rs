//! Building one command's [`Commit`]: events are recorded with the next sequence of their
//! aggregate and folded (`apply`) into the read models the command loaded or creates; the
//! folded views become the commit's read-model changes. No view is ever written by hand.

use crate::code::CodeView;
use crate::event::{AggregateKind, Event, Recorded};
use crate::passkey::PasskeyView;
use crate::session::{CredentialOwner, SessionView};
use crate::store::Commit;
use crate::time::Timestamp;
use crate::view::{Change, InstanceView, Membership, OrgView, PatView, UserView};

use super::Details;

/// The events of one command, numbered per aggregate, and the views they fold into.
#[derive(Debug)]
pub(crate) struct Tx {
    now: Timestamp,
    creator: String,
    /// (kind, id, owner, sequence of the last event) of every aggregate written or loaded.
    sequences: Vec<(AggregateKind, String, String, u64)>,
    instance: Option<InstanceView>,
    orgs: Vec<OrgView>,
    users: Vec<UserView>,
    /// The users as loaded (before this tx's events).
    users_loaded: Vec<UserView>,
    memberships: Vec<Membership>,
    pats: Vec<PatView>,
    codes: Vec<CodeView>,
    sessions: Vec<SessionView>,
    credentials: Vec<CredentialOwner>,
    /// Loaded or created passkeys, and whether an event of this tx changed them (only those
    /// are written).
    passkeys: Vec<(PasskeyView, bool)>,
    /// Events, claims, outbox jobs, released values; the changes are added by [`Tx::into_commit`].
    pub commit: Commit,
}

impl Tx {
    pub fn new(now: Timestamp, creator: &str) -> Tx {
        Tx {
            now,
            creator: creator.to_string(),
            sequences: Vec::new(),
            instance: None,
            orgs: Vec::new(),
            users: Vec::new(),
            users_loaded: Vec::new(),
            memberships: Vec::new(),
            pats: Vec::new(),
            codes: Vec::new(),
            sessions: Vec::new(),
            credentials: Vec::new(),
            passkeys: Vec::new(),
            commit: Commit::default(),
        }
    }

    /// A transaction on one existing user (the common case).
    pub fn on_user(now: Timestamp, creator: &str, user: &UserView) -> Tx {
        let mut tx = Tx::new(now, creator);
        tx.load_user(user.clone());
        tx
    }

    /// The creator of the events recorded from now on (a transaction that decides the requests
    /// of several callers together).
    pub fn set_creator(&mut self, creator: &str) {
        creator.clone_into(&mut self.creator);
    }

    fn track(&mut self, kind: AggregateKind, id: &str, owner: &str, sequence: u64) {
        self.sequences.push((kind, id.to_string(), owner.to_string(), sequence));
    }

    /// Track a loaded instance: its events continue its sequence and fold into it.
    pub fn load_instance(&mut self, v: InstanceView) {
        self.track(AggregateKind::Instance, &v.id, &v.id, v.sequence);
        self.instance = Some(v);
    }

    pub fn load_org(&mut self, v: OrgView) {
        self.track(AggregateKind::Org, &v.id, &v.id, v.sequence);
        self.orgs.push(v);
    }

    pub fn load_user(&mut self, v: UserView) {
        self.track(AggregateKind::User, &v.id, &v.org_id, v.sequence);
        self.users_loaded.push(v.clone());
        self.users.push(v);
    }

    /// Track a loaded code (of a loaded user): the user's code events fold into it.
    pub fn load_code(&mut self, v: CodeView) {
        self.codes.push(v);
    }

    /// Track a loaded session: its events continue its sequence and fold into it.
    pub fn load_session(&mut self, v: SessionView) {
        self.track(AggregateKind::Session, &v.id, &v.instance_id, v.sequence);
        self.sessions.push(v);
    }

    /// Track an aggregate folded by its own module (projects, applications, OIDC requests and
    /// grants): its events continue its sequence; it has no read-model rows.
    pub fn load_aggregate(&mut self, kind: AggregateKind, id: &str, owner: &str, sequence: u64) {
        self.track(kind, id, owner, sequence);
    }

    /// Track loaded passkeys (of a loaded user): the user's passkey events fold into them.
    pub fn load_passkeys(&mut self, views: impl IntoIterator<Item = PasskeyView>) {
        self.passkeys.extend(views.into_iter().map(|v| (v, false)));
    }

    /// Track a loaded personal access token (of a loaded user).
    pub fn load_pat(&mut self, v: PatView) {
        self.pats.push(v);
    }

    /// Record `event` as the next event of the aggregate (a new aggregate starts at 1) and fold
    /// it into the views it changes.
    pub fn record(&mut self, kind: AggregateKind, id: &str, owner: &str, event: Event) -> Recorded {
        let sequence = match self.sequences.iter_mut().find(|(k, i, _, _)| *k == kind && i == id) {
            Some(entry) => {
                entry.3 += 1;
                entry.3
            }
            None => {
                self.track(kind, id, owner, 1);
                1
            }
        };
        let r = Recorded {
            aggregate_kind: kind,
            aggregate_id: id.to_string(),
            sequence,
            created_at: self.now,
            resource_owner: owner.to_string(),
            creator: self.creator.clone(),
            event,
        };
        self.fold(&r);
        self.commit.events.push(r.clone());
        r
    }

    /// Record the next event of a user tracked with [`Tx::load_user`] or created in this tx.
    pub fn record_user(&mut self, user_id: &str, event: Event) -> Recorded {
        let owner = self.owner_of(AggregateKind::User, user_id);
        self.record(AggregateKind::User, user_id, &owner, event)
    }

    /// Record the next event of a session tracked with [`Tx::load_session`] or created in this tx.
    pub fn record_session(&mut self, session_id: &str, event: Event) -> Recorded {
        let owner = self.owner_of(AggregateKind::Session, session_id);
        self.record(AggregateKind::Session, session_id, &owner, event)
    }

    fn owner_of(&self, kind: AggregateKind, id: &str) -> String {
        self.sequences
            .iter()
            .find(|(k, i, _, _)| *k == kind && i == id)
            .map(|e| e.2.clone())
            .unwrap_or_default()
    }

    fn fold(&mut self, r: &Recorded) {
        let id = &r.aggregate_id;
        match r.aggregate_kind {
            AggregateKind::Instance => match InstanceView::created(r) {
                Some(created) => self.instance = Some(created),
                None => self.instance.iter_mut().filter(|v| v.id == *id).for_each(|v| v.apply(r)),
            },
            AggregateKind::Org => match OrgView::created(r) {
                Some(created) => self.orgs.push(created),
                None => self.orgs.iter_mut().filter(|o| o.id == *id).for_each(|o| o.apply(r)),
            },
            AggregateKind::User => {
                match UserView::created(r) {
                    Some(created) => self.users.push(created),
                    None => self.users.iter_mut().filter(|u| u.id == *id).for_each(|u| u.apply(r)),
                }
                if let Event::PasskeyVerified { cred_id, .. } = &r.event {
                    self.credentials.push(CredentialOwner { cred_id: cred_id.clone(), user_id: id.clone() });
                }
                match PasskeyView::created(r) {
                    Some(created) => self.passkeys.push((created, true)),
                    None => {
                        for (p, changed) in self.passkeys.iter_mut().filter(|(p, _)| p.user_id == *id) {
                            if p.changed_by(&r.event) {
                                p.apply(r);
                                *changed = true;
                            }
                        }
                    }
                }
                match (&r.event, PatView::added(r)) {
                    (_, Some(pat)) => self.pats.push(pat),
                    (Event::PasskeyCodeRequested(c), _) => self.codes.push(CodeView::requested(r, c)),
                    _ => {
                        self.pats.iter_mut().filter(|p| p.user_id == *id).for_each(|p| p.apply(r));
                        self.codes.iter_mut().filter(|c| c.user_id == *id).for_each(|c| c.apply(&r.event));
                    }
                }
            }
            AggregateKind::Session => match SessionView::created(r) {
                Some(created) => self.sessions.push(created),
                None => self.sessions.iter_mut().filter(|s| s.id == *id).for_each(|s| s.apply(r)),
            },
            AggregateKind::Project
            | AggregateKind::Application
            | AggregateKind::AuthRequest
            | AggregateKind::Grant => {}
        }
        if let Some(m) = Membership::added(r) {
            self.memberships.push(m);
        }
    }

    /// The sequence of the last event of an aggregate (0 if untouched).
    pub fn sequence(&self, kind: AggregateKind, id: &str) -> u64 {
        self.sequences.iter().find(|(k, i, _, _)| *k == kind && i == id).map_or(0, |e| e.3)
    }

    /// ZITADEL's details of the write to one aggregate.
    pub fn details(&self, kind: AggregateKind, id: &str, created: bool) -> Details {
        Details {
            sequence: self.sequence(kind, id),
            change_date: self.now,
            resource_owner: self.owner_of(kind, id),
            creation_date: created.then_some(self.now),
        }
    }

    /// Details of a write to an existing user.
    pub fn user_details(&self, user_id: &str) -> Details {
        self.details(AggregateKind::User, user_id, false)
    }

    /// The commit: events, claims, outbox, and every tracked view as folded.
    pub fn into_commit(self) -> Commit {
        let mut commit = self.commit;
        commit.changes.extend(self.instance.map(Change::Instance));
        commit.changes.extend(self.orgs.into_iter().map(Change::Org));
        let loaded = self.users_loaded;
        commit.changes.extend(self.users.into_iter().map(|v| {
            let same_but_sequence = loaded.iter().any(|l| {
                l.id == v.id && UserView { sequence: l.sequence, changed_at: l.changed_at, ..v.clone() } == *l
            });
            if same_but_sequence { Change::UserSequence(v) } else { Change::User(v) }
        }));
        commit.changes.extend(self.memberships.into_iter().map(Change::Membership));
        commit.changes.extend(self.pats.into_iter().map(Change::Pat));
        commit.changes.extend(self.codes.into_iter().map(Change::Code));
        commit.changes.extend(self.sessions.into_iter().map(Change::Session));
        commit.changes.extend(self.credentials.into_iter().map(Change::Credential));
        commit.changes.extend(self.passkeys.into_iter().filter(|(_, c)| *c).map(|(p, _)| Change::Passkey(p)));
        commit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::MachineProfile;
    use crate::view::Scope;

    const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

    #[test]
    fn events_are_numbered_per_aggregate_and_folded() {
        let mut tx = Tx::new(NOW, "c");
        tx.record(AggregateKind::Org, "o", "o", Event::OrgAdded { name: "n".into() });
        let machine = Event::MachineAdded { username: "m".into(), profile: MachineProfile::default() };
        tx.record(AggregateKind::User, "u", "o", machine);
        let member = Event::OrgMemberAdded { user_id: "u".into(), roles: vec!["ORG_OWNER".into()] };
        let r = tx.record(AggregateKind::Org, "o", "o", member);
        assert_eq!(r.sequence, 2);
        assert_eq!(tx.details(AggregateKind::Org, "o", true).sequence, 2);
        let c = tx.into_commit();
        assert_eq!(c.events.len(), 3);
        assert!(c.changes.iter().any(|ch| matches!(ch, Change::Org(o) if o.sequence == 2 && o.name == "n")));
        assert!(c.changes.iter().any(|ch| matches!(ch, Change::User(u) if u.sequence == 1)));
        assert!(c.changes.iter().any(
            |ch| matches!(ch, Change::Membership(m) if m.scope == Scope::Org("o".into()) && m.user_id == "u")
        ));
    }

    #[test]
    fn a_user_whose_events_change_only_its_sequence_is_a_sequence_change() {
        let mut seed = Tx::new(NOW, "c");
        let machine = Event::MachineAdded { username: "m".into(), profile: MachineProfile::default() };
        seed.record(AggregateKind::User, "u", "o", machine);
        let Some(Change::User(user)) = seed.into_commit().changes.into_iter().next() else {
            panic!("a new user is a user change")
        };
        let mut tx = Tx::on_user(NOW.plus(std::time::Duration::from_secs(1)), "c", &user);
        let code = crate::event::CodeRequested {
            id: "c1".into(),
            code_hash: "00".into(),
            expiry_secs: 60,
            url_template: None,
            code_returned: true,
            job_id: None,
            idempotency_key: None,
        };
        tx.record_user("u", Event::PasskeyCodeRequested(code));
        let changes = tx.into_commit().changes;
        assert!(
            matches!(&changes[0], Change::UserSequence(v) if v.sequence == 2 && v.changed_at > user.changed_at),
            "{changes:?}"
        );
        let mut tx = Tx::on_user(NOW, "c", &user);
        tx.record_user("u", Event::UserDeactivated {});
        assert!(matches!(&tx.into_commit().changes[0], Change::User(v) if v.sequence == 2));
    }

    #[test]
    fn only_the_passkeys_an_event_changes_are_written() {
        let added = |id: &str| Event::PasskeyAdded {
            id: id.into(),
            rp_id: "localhost".into(),
            code_id: None,
            registration_state: "{}".into(),
        };
        // Two passkeys of "u" as the store holds them, loaded with their user.
        let mut seed = Tx::new(NOW, "c");
        seed.record(AggregateKind::User, "u", "o", added("p1"));
        seed.record(AggregateKind::User, "u", "o", added("p2"));
        let loaded: Vec<PasskeyView> = seed
            .into_commit()
            .changes
            .into_iter()
            .filter_map(|c| if let Change::Passkey(p) = c { Some(p) } else { None })
            .collect();
        assert_eq!(loaded.len(), 2, "a new passkey is written");
        let mut tx = Tx::new(NOW, "c");
        tx.track(AggregateKind::User, "u", "o", 2);
        tx.load_passkeys(loaded);
        tx.record_user("u", Event::PasskeyRemoved { id: "p2".into() });
        let written: Vec<_> = tx
            .into_commit()
            .changes
            .into_iter()
            .filter_map(|c| if let Change::Passkey(p) = c { Some((p.id, p.state)) } else { None })
            .collect();
        assert_eq!(written, [("p2".to_string(), crate::passkey::PasskeyState::Removed)]);
    }
}
