//! CreatePasskeyRegistrationLink: a one-time code for a human user, returned to the caller or
//! delivered (an outbox job with the code sealed, written in the same commit).
//!
//! Link requests for one user do not depend on each other's result (each draws its own code),
//! so the requests that arrive while an earlier one for that user is being written wait in a
//! group ([`LinkGroups`]); the group's first request loads the user once, decides every request
//! of the group in one transaction (each with its own event and sequence, its own answer or
//! error) and appends it in one commit. One hot user is then written at the store's batch
//! pace instead of one commit after another.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_channel::oneshot;

use super::tx::Tx;
use super::{App, Caller, Details, not_active, not_human, user_not_found};
use crate::error::{Error, Kind, Result};
use crate::event::AggregateKind;
use crate::event::{CodeRequested, Event, OutboxJob};
use crate::permission::{self as perm, require_in, require_somewhere};
use crate::secret::{self, Sealed, Secret};
use crate::template::{self, LinkData};
use crate::time::Timestamp;
use crate::validate;
use crate::view::{UserState, UserView};

/// How the registration link reaches the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkMedium {
    /// Deliver it (email/webhook) with this URL template, or the hosted page when `None`.
    Send { url_template: Option<String> },
    /// Give the code back to the caller.
    Return,
}

#[derive(Debug)]
pub struct LinkCreated {
    pub details: Details,
    /// For [`LinkMedium::Return`]: the code id and the code.
    pub code: Option<(String, Secret)>,
}

/// The hosted registration page, the default link (DESIGN section 4).
pub fn default_link_template(external_url: &str) -> String {
    format!(
        "{}/ui/passkey/register?userID={{{{.UserID}}}}&orgID={{{{.OrgID}}}}&codeID={{{{.CodeID}}}}&code={{{{.Code}}}}",
        external_url.trim_end_matches('/')
    )
}

/// The error a link request gets when no delivery provider is configured (ZITADEL's id).
fn no_provider() -> Error {
    Error::new(Kind::FailedPrecondition, "MAIL-83nof", "Errors.Notification.Channels.NotPresent")
}

const MSG: &str = "CreatePasskeyRegistrationLinkRequest";

/// The link policy of this server.
#[derive(Debug, Clone, Copy)]
pub(super) struct LinkPolicy {
    pub(super) code_lifetime: Duration,
    /// Is a delivery provider configured?
    pub(super) delivery_enabled: bool,
}

/// A fresh code, drawn before deciding: its id, its keyed hash, and for a sent link the outbox
/// job id with the code sealed under it.
#[derive(Debug, Clone)]
pub(super) struct FreshCode {
    pub(super) code_id: String,
    code_hash: [u8; 32],
    pub(super) job: Option<(String, Sealed)>,
}

/// Request checks: `user.passkey.write` somewhere, the user id, the template's length.
pub(super) fn check(caller: &Caller, user_id: &str, medium: &LinkMedium) -> Result<()> {
    require_somewhere(caller.memberships(), perm::USER_PASSKEY_WRITE)?;
    validate::runes_between(MSG, "UserId", user_id, 1, 200)?;
    if let LinkMedium::Send { url_template: Some(t) } = medium {
        validate::runes_between("SendPasskeyRegistrationLink", "UrlTemplate", t, 1, 200)
            .map_err(|e| validate::embedded(MSG, "SendLink", e))?;
    }
    Ok(())
}

/// CreatePasskeyRegistrationLink on the loaded user: the caller's permission in the user's org,
/// an active human, for a sent link a valid template, an email address and a provider; then
/// `…code.requested` (folded into the code's view) and, for a sent link, the outbox job.
/// Nothing is recorded in `tx` when the request is refused.
fn decide(
    tx: &mut Tx,
    caller: &Caller,
    user: &UserView,
    medium: &LinkMedium,
    policy: LinkPolicy,
    now: Timestamp,
    code: FreshCode,
) -> Result<()> {
    decide_keyed(tx, caller, user, medium, policy, now, code, None)
}

/// [`decide`], recording the bulk request's idempotency key in the `…code.requested` event
/// (CreateRegistrationLinks, `bulk.rs`).
#[allow(clippy::too_many_arguments)]
pub(super) fn decide_keyed(
    tx: &mut Tx,
    caller: &Caller,
    user: &UserView,
    medium: &LinkMedium,
    policy: LinkPolicy,
    now: Timestamp,
    code: FreshCode,
    idempotency_key: Option<&str>,
) -> Result<()> {
    require_in(caller.memberships(), perm::USER_PASSKEY_WRITE, &user.org_id, user_not_found)?;
    let human = user.human().ok_or_else(not_human)?;
    if user.state != UserState::Active {
        return Err(not_active());
    }
    let url_template = match medium {
        LinkMedium::Send { url_template } => {
            if let Some(t) = url_template {
                template::validate(t, &user.id, &user.org_id)?;
            }
            if human.email.is_empty() {
                return Err(Error::new(
                    Kind::FailedPrecondition,
                    "COMMAND-mL4il",
                    "Errors.User.Code.NoEmail",
                ));
            }
            if !policy.delivery_enabled {
                return Err(no_provider());
            }
            url_template.clone()
        }
        LinkMedium::Return => None,
    };
    let requested = CodeRequested {
        id: code.code_id.clone(),
        code_hash: crate::hex::encode(&code.code_hash),
        expiry_secs: policy.code_lifetime.as_secs(),
        url_template: url_template.clone(),
        code_returned: *medium == LinkMedium::Return,
        job_id: code.job.as_ref().map(|(job_id, _)| job_id.clone()),
        idempotency_key: idempotency_key.map(str::to_string),
    };
    tx.set_creator(caller.user_id());
    tx.record_user(&user.id, Event::PasskeyCodeRequested(requested));
    if let Some((job_id, sealed)) = code.job {
        tx.commit.outbox.push(OutboxJob {
            id: job_id,
            kind: "passkey_registration_link".into(),
            user_id: user.id.clone(),
            org_id: user.org_id.clone(),
            code_id: code.code_id,
            created_at: now,
            not_after: now.plus(Duration::from_secs(policy.code_lifetime.as_secs())),
            url_template,
            sealed_code: Some(sealed),
            attempts: 0,
        });
    }
    Ok(())
}

/// A link request waiting for its group to be written.
struct Waiting {
    caller: Caller,
    medium: LinkMedium,
    reply: oneshot::Sender<Result<LinkCreated>>,
}

/// The link requests waiting, by user id. The first request of a user's group leads it: it
/// waits for the user's write lock, takes the whole group and writes it.
#[derive(Default)]
pub(crate) struct LinkGroups {
    waiting: Mutex<HashMap<String, Vec<Waiting>>>,
}

impl LinkGroups {
    /// Add a request to its user's group; true when it is the first (it leads the group).
    fn join(&self, user_id: &str, w: Waiting) -> bool {
        let Ok(mut waiting) = self.waiting.lock() else {
            return false; // poisoned: the reply sender is dropped, the caller gets Unavailable
        };
        let group = waiting.entry(user_id.to_string()).or_default();
        group.push(w);
        group.len() == 1
    }

    /// Take the user's group: requests arriving from now on start the next one.
    fn take(&self, user_id: &str) -> Vec<Waiting> {
        self.waiting.lock().ok().and_then(|mut w| w.remove(user_id)).unwrap_or_default()
    }
}

/// The answer of a request whose group's leader stopped before answering (its client went
/// away mid-commit): the link may or may not have been created; its code was never shown.
fn interrupted() -> Error {
    Error::new(Kind::Unavailable, "LINK-gr0up", "Errors.Internal")
        .with_cause("the request's group was interrupted; try again")
}

impl App {
    /// CreatePasskeyRegistrationLink: a one-time code for a human user, returned or delivered.
    pub async fn create_passkey_link(
        &self,
        caller: &Caller,
        user_id: &str,
        medium: LinkMedium,
    ) -> Result<LinkCreated> {
        check(caller, user_id, &medium)?;
        let (reply, answer) = oneshot::channel();
        if self.link_groups.join(user_id, Waiting { caller: caller.clone(), medium, reply }) {
            let _lock = self.lock_aggregate(user_id).await;
            let group = self.link_groups.take(user_id);
            self.write_link_group(user_id, group).await;
        }
        answer.await.map_err(|_| interrupted())?
    }

    /// Load the user once, decide every request of the group, append them in one commit, and
    /// answer each request.
    async fn write_link_group(&self, user_id: &str, group: Vec<Waiting>) {
        let policy =
            LinkPolicy { code_lifetime: self.cfg.code_lifetime, delivery_enabled: self.cfg.delivery_enabled };
        let written = retry!(self, async {
            let user = self.visible_user(user_id).await?;
            let now = self.now();
            let mut tx = Tx::on_user(now, "", &user);
            let mut answers = Vec::with_capacity(group.len());
            for w in &group {
                let decided = self.fresh_code(&w.medium).and_then(|(fresh, code)| {
                    let code_id = fresh.code_id.clone();
                    decide(&mut tx, &w.caller, &user, &w.medium, policy, now, fresh)?;
                    let details = tx.user_details(user_id);
                    let returned = w.medium == LinkMedium::Return;
                    Ok(LinkCreated { details, code: returned.then_some((code_id, code)) })
                });
                answers.push(decided);
            }
            if tx.sequence(AggregateKind::User, user_id) > user.sequence {
                self.deps.store.commit(tx.into_commit()).await?;
            }
            Ok(answers)
        });
        match written {
            Ok(answers) => {
                for (w, a) in group.into_iter().zip(answers) {
                    let _ = w.reply.send(a);
                }
            }
            Err(e) => {
                for w in group {
                    let _ = w.reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// The hosted page's link for these values (what the default email carries), for the QR
    /// code of the page. Values must be plain ids and codes (letters, digits, `-`, `_`).
    pub fn hosted_link(&self, user_id: &str, org_id: &str, code_id: &str, code: &Secret) -> Result<String> {
        for (field, v) in
            [("userID", user_id), ("orgID", org_id), ("codeID", code_id), ("code", code.expose())]
        {
            let plain = v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if v.is_empty() || v.len() > 200 || !plain {
                return Err(Error::new(Kind::InvalidArgument, "UI-qr1nv", "Errors.Invalid.Argument")
                    .with_cause(format!("{field} is not a plain id")));
            }
        }
        template::render(
            &default_link_template(&self.cfg.issuer),
            &LinkData { user_id, org_id, code_id, code: code.expose() },
        )
    }

    /// Draw a code: its id, the code, its hash, and for a sent link the job id and the sealed code.
    pub(super) fn fresh_code(&self, medium: &LinkMedium) -> Result<(FreshCode, Secret)> {
        let deps = &self.deps;
        let code_id = self.next_id();
        let code = secret::generate_code(&*deps.entropy, self.cfg.code_length);
        let code_hash = deps.keys.hash_code(&code_id, &code);
        let job = match medium {
            LinkMedium::Return => None,
            LinkMedium::Send { .. } => {
                let job_id = self.next_id();
                let sealed = deps.keys.seal(&*deps.entropy, code.expose().as_bytes(), job_id.as_bytes())?;
                Some((job_id, sealed))
            }
        };
        Ok((FreshCode { code_id, code_hash, job }, code))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NOW, caller, human, machine, org};
    use super::*;
    use crate::code::CodeState;
    use crate::view::{Change, Scope};

    const POLICY: LinkPolicy =
        LinkPolicy { code_lifetime: Duration::from_secs(3600), delivery_enabled: true };

    fn fresh(job: bool) -> FreshCode {
        let sealed = Sealed { key_id: "1".into(), nonce: "n".into(), ciphertext: "c".into() };
        FreshCode { code_id: "c1".into(), code_hash: [1; 32], job: job.then(|| ("j1".to_string(), sealed)) }
    }

    /// One request decided alone, as a group of one.
    fn decide_one(
        c: &Caller,
        user: &UserView,
        medium: &LinkMedium,
        policy: LinkPolicy,
        fresh: FreshCode,
    ) -> Result<Tx> {
        let mut tx = Tx::on_user(NOW, "", user);
        decide(&mut tx, c, user, medium, policy, NOW, fresh).map(|()| tx)
    }

    fn send(t: Option<&str>) -> LinkMedium {
        LinkMedium::Send { url_template: t.map(str::to_string) }
    }

    #[test]
    fn default_link_is_the_hosted_page() {
        let t = default_link_template("https://id.example.com/");
        let out = template::render(&t, &LinkData { user_id: "u", org_id: "o", code_id: "c", code: "X" });
        assert_eq!(
            out.ok().as_deref(),
            Some("https://id.example.com/ui/passkey/register?userID=u&orgID=o&codeID=c&code=X")
        );
    }

    #[test]
    fn a_returned_code_is_active_at_once_and_has_no_job() {
        let c = caller(Scope::Instance, "IAM_OWNER");
        let tx = decide_one(&c, &human("u", "A"), &LinkMedium::Return, POLICY, fresh(false)).unwrap();
        assert_eq!(tx.user_details("u").sequence, 2);
        let commit = tx.into_commit();
        assert!(commit.outbox.is_empty());
        let code = commit
            .changes
            .iter()
            .find_map(|ch| if let Change::Code(c) = ch { Some(c.clone()) } else { None });
        let code = code.unwrap();
        assert_eq!(
            (code.id.as_str(), code.state, code.expires_at),
            ("c1", CodeState::Active, NOW.plus(Duration::from_secs(3600)))
        );
        assert_eq!(code.code_hash, "01".repeat(32));
    }

    #[test]
    fn a_group_numbers_its_links_and_a_refused_one_records_nothing() {
        let owner = caller(org("A"), "ORG_OWNER");
        let stranger = caller(org("B"), "ORG_OWNER");
        let u = human("u", "A");
        let mut tx = Tx::on_user(NOW, "", &u);
        let first = FreshCode { code_id: "c1".into(), ..fresh(false) };
        decide(&mut tx, &owner, &u, &LinkMedium::Return, POLICY, NOW, first).unwrap();
        assert_eq!(tx.user_details("u").sequence, 2);
        let refused = decide(&mut tx, &stranger, &u, &LinkMedium::Return, POLICY, NOW, fresh(false));
        assert_eq!(refused.err().map(|e| e.id), Some("COMMAND-M9dsd"));
        let third = FreshCode { code_id: "c3".into(), ..fresh(true) };
        decide(&mut tx, &owner, &u, &send(None), POLICY, NOW, third).unwrap();
        assert_eq!(tx.user_details("u").sequence, 3);
        let commit = tx.into_commit();
        let seqs: Vec<_> = commit.events.iter().map(|e| (e.sequence, e.creator.as_str())).collect();
        assert_eq!(seqs, [(2, owner.user_id()), (3, owner.user_id())]);
        let codes: Vec<_> = commit
            .changes
            .iter()
            .filter_map(|ch| if let Change::Code(c) = ch { Some(c.id.as_str()) } else { None })
            .collect();
        assert_eq!(codes, ["c1", "c3"]);
        assert_eq!(commit.outbox.len(), 1);
    }

    #[test]
    fn a_sent_code_waits_for_its_outbox_job() {
        let c = caller(org("A"), "ORG_OWNER");
        let commit =
            decide_one(&c, &human("u", "A"), &send(None), POLICY, fresh(true)).unwrap().into_commit();
        let job = &commit.outbox[0];
        assert_eq!(
            (job.id.as_str(), job.code_id.as_str(), job.user_id.as_str(), job.org_id.as_str()),
            ("j1", "c1", "u", "A")
        );
        assert_eq!(job.not_after, NOW.plus(Duration::from_secs(3600)));
        assert!(
            commit.changes.iter().any(|ch| matches!(ch, Change::Code(c) if c.state == CodeState::Requested))
        );
    }

    #[test]
    fn permission_target_and_delivery_errors() {
        let id = |r: Result<Tx>| r.err().map(|e| e.id);
        let owner = caller(org("A"), "ORG_OWNER");
        let u = human("u", "A");
        assert_eq!(
            check(&caller(org("A"), "ORG_USER_MANAGER"), "u", &LinkMedium::Return).err().map(|e| e.id),
            Some("AUTH-5mWD2")
        );
        assert_eq!(
            id(decide_one(&caller(org("B"), "ORG_OWNER"), &u, &LinkMedium::Return, POLICY, fresh(false))),
            Some("COMMAND-M9dsd")
        );
        assert_eq!(
            id(decide_one(&owner, &machine("m", "A"), &LinkMedium::Return, POLICY, fresh(false))),
            Some("COMMAND-xu3Ag")
        );
        let mut inactive = u.clone();
        inactive.state = UserState::Inactive;
        assert_eq!(
            id(decide_one(&owner, &inactive, &LinkMedium::Return, POLICY, fresh(false))),
            Some("COMMAND-Nd7ah")
        );
        let mut no_email = u.clone();
        if let crate::view::UserKind::Human(h) = &mut no_email.kind {
            h.email.clear();
        }
        assert_eq!(
            id(decide_one(&owner, &no_email, &send(None), POLICY, fresh(true))),
            Some("COMMAND-mL4il")
        );
        assert!(decide_one(&owner, &no_email, &LinkMedium::Return, POLICY, fresh(false)).is_ok());
        let off = LinkPolicy { delivery_enabled: false, ..POLICY };
        assert_eq!(id(decide_one(&owner, &u, &send(None), off, fresh(true))), Some("MAIL-83nof"));
        let bad = send(Some("https://x/{{.Nope}}"));
        assert_eq!(
            decide_one(&owner, &u, &bad, POLICY, fresh(true)).err().map(|e| e.kind),
            Some(Kind::InvalidArgument)
        );
    }
}
