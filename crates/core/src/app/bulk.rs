//! CreateRegistrationLinks (passlink.enrollment.v1): registration links for many users in one
//! call — a list of user ids, or a page of an organization's active human users — each created
//! exactly as CreatePasskeyRegistrationLink creates one (`links::decide_keyed`, the same rules
//! and errors), with a result per user. One user's refusal never fails the batch; only a bad
//! request as a whole does (no selection or both, too many ids, a bad page token or template,
//! no `user.passkey.write` anywhere, an organization the caller may not write).
//!
//! Idempotency: the request's key is recorded in each new `…code.requested` event. Before
//! deciding, a user's events are searched for a code requested with the same key; if there is
//! one, that code is answered again (marked replayed, without the plaintext: it is not stored
//! reversibly) and nothing is written. The check and the new code are atomic per user: the page's
//! codes are appended in one commit with each user's next sequence, so a concurrent write makes
//! the commit fail (Aborted) and the page is decided again from fresh reads.
//!
//! Paging (organization selection): users in id order (byte order); a page examines up to
//! `page_size` users and its token names the last one, so 100,000 users go through in pages.

use super::links::{FreshCode, LinkMedium, LinkPolicy, check, decide_keyed};
use super::tx::Tx;
use super::{App, Caller, org_not_found};
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, Event};
use crate::passkey::PasskeyState;
use crate::permission::{self as perm, require_in};
use crate::secret::Secret;
use crate::store::Commit;
use crate::validate;
use crate::view::{UserKind, UserState, UserView};

/// At most this many user ids per call, and users per page.
pub const MAX_BULK_USERS: usize = 1000;

const MSG: &str = "CreateRegistrationLinksRequest";

/// Which users a bulk request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkSelection {
    /// These users (duplicates answered once, in the order first given).
    Users(Vec<String>),
    /// A page of the organization's active human users, in id order.
    Org {
        org_id: String,
        /// Skip users who already have a READY passkey.
        only_without_passkey: bool,
        /// Users examined per page (0: [`MAX_BULK_USERS`]; larger is capped to it).
        page_size: usize,
        /// The previous page's `next_page_token`; empty for the first page.
        page_token: String,
    },
}

/// One bulk request.
#[derive(Debug, Clone)]
pub struct BulkRequest {
    pub selection: BulkSelection,
    pub medium: LinkMedium,
    /// Empty: no replay protection.
    pub idempotency_key: String,
}

/// What happened for one user.
#[derive(Debug)]
pub enum BulkOutcome {
    /// A new code, returned to the caller.
    Code { code_id: String, code: Secret },
    /// A new code, to be delivered by the outbox job `job_id` (written with it).
    Delivery { code_id: String, job_id: String },
    /// The code an earlier request with the same idempotency key created for this user: nothing
    /// new was written; the plaintext is not available again.
    /// `job_id`: its delivery job, for a sent code (codes requested before passlink recorded
    /// job ids have none).
    Replayed { code_id: String, delivered: bool, job_id: Option<String> },
}

/// The result for one user: its outcome, or the error CreatePasskeyRegistrationLink would answer.
#[derive(Debug)]
pub struct BulkResult {
    pub user_id: String,
    pub outcome: Result<BulkOutcome>,
}

/// The answer of one bulk call (one page).
#[derive(Debug, Default)]
pub struct BulkCreated {
    pub results: Vec<BulkResult>,
    /// Organization selection: the token of the next page; `None` after the last page.
    pub next_page_token: Option<String>,
    /// Organization selection: users of the page passed over (machine users, users not active,
    /// and with `only_without_passkey` users who have a passkey).
    pub skipped: u32,
}

fn bad_request(cause: &str) -> Error {
    Error::validation(format!("invalid {MSG}: {cause}"))
}

/// The page token after `last_id` in `org_id`: opaque to callers (hex of a versioned tuple).
pub(crate) fn page_token(org_id: &str, last_id: &str) -> String {
    crate::hex::encode(format!("b1\n{org_id}\n{last_id}").as_bytes())
}

/// The last user id of the page a token continues after; the token must be one of `org_id`.
pub(crate) fn parse_page_token(org_id: &str, token: &str) -> Result<String> {
    let invalid = || bad_request("page token is invalid");
    let bytes = crate::hex::decode(token);
    if crate::hex::encode(&bytes) != token {
        return Err(invalid());
    }
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '\n');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("b1"), Some(org), Some(last)) if org == org_id && !last.is_empty() => Ok(last.to_string()),
        _ => Err(invalid()),
    }
}

/// The whole request's checks (before any user is read): `user.passkey.write` somewhere, exactly
/// one selection, at most [`MAX_BULK_USERS`] ids, the key's length, the template once.
fn check_request(caller: &Caller, req: &BulkRequest) -> Result<()> {
    // The single-user checks (permission somewhere, the template's length); each user id is
    // checked per user (`link_one`), so a placeholder stands in for it here.
    check(caller, "bulk", &req.medium)?;
    match &req.selection {
        BulkSelection::Users(ids) if ids.is_empty() => {
            return Err(bad_request("give userIds or organization"));
        }
        BulkSelection::Users(ids) if ids.len() > MAX_BULK_USERS => {
            return Err(bad_request(&format!(
                "at most {MAX_BULK_USERS} userIds per call ({} given); page through an organization \
                 or split the list",
                ids.len()
            )));
        }
        BulkSelection::Users(_) => {}
        BulkSelection::Org { org_id, .. } => {
            validate::runes_between(MSG, "Organization.OrgId", org_id, 1, 200)?
        }
    }
    if !req.idempotency_key.is_empty() {
        validate::runes_between(MSG, "IdempotencyKey", &req.idempotency_key, 1, 200)?;
    }
    if let LinkMedium::Send { url_template: Some(t) } = &req.medium {
        crate::template::validate(t, "1", "1")?;
    }
    Ok(())
}

/// Is this user one an organization selection creates a link for (active, human, and with
/// `only_without_passkey` none of its passkeys READY)?
fn selected(user: &UserView, has_passkey: bool, only_without_passkey: bool) -> bool {
    matches!(user.kind, UserKind::Human(_))
        && user.state == UserState::Active
        && !(only_without_passkey && has_passkey)
}

/// The code an earlier request with `key` created for the user (its id, and whether it was sent),
/// from the user's events.
fn replayed(events: &[crate::event::Recorded], key: &str) -> Option<BulkOutcome> {
    events.iter().find_map(|r| match &r.event {
        Event::PasskeyCodeRequested(c) if c.idempotency_key.as_deref() == Some(key) => {
            Some(BulkOutcome::Replayed {
                code_id: c.id.clone(),
                delivered: !c.code_returned,
                job_id: c.job_id.clone(),
            })
        }
        _ => None,
    })
}

impl App {
    /// CreateRegistrationLinks: a registration link for each selected user (one page), returned
    /// or delivered, with a result per user.
    pub async fn create_registration_links(&self, caller: &Caller, req: BulkRequest) -> Result<BulkCreated> {
        check_request(caller, &req)?;
        let (users, next_page_token, skipped) = match &req.selection {
            BulkSelection::Users(ids) => {
                let mut seen = std::collections::HashSet::new();
                let ids: Vec<String> = ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect();
                (ids, None, 0)
            }
            BulkSelection::Org { org_id, only_without_passkey, page_size, page_token } => {
                self.org_page(caller, org_id, *only_without_passkey, *page_size, page_token).await?
            }
        };
        let results = retry!(self, self.write_links(caller, &users, &req.medium, &req.idempotency_key))?;
        Ok(BulkCreated { results, next_page_token, skipped })
    }

    /// The users of one page of an organization selection (ids), the next page's token, and how
    /// many users of the page were passed over.
    async fn org_page(
        &self,
        caller: &Caller,
        org_id: &str,
        only_without_passkey: bool,
        page_size: usize,
        token: &str,
    ) -> Result<(Vec<String>, Option<String>, u32)> {
        require_in(caller.memberships(), perm::USER_PASSKEY_WRITE, org_id, org_not_found)?;
        let after = if token.is_empty() { String::new() } else { parse_page_token(org_id, token)? };
        if self.deps.store.org(org_id).await?.is_none() {
            return Err(org_not_found());
        }
        let limit = if page_size == 0 { MAX_BULK_USERS } else { page_size.min(MAX_BULK_USERS) };
        // One user more than the page tells whether another page follows (no empty last page).
        let mut page = self.deps.store.org_users_after(org_id, &after, limit + 1).await?;
        let more = page.len() > limit;
        page.truncate(limit);
        let next = match page.last() {
            Some(last) if more => Some(page_token(org_id, &last.id)),
            _ => None,
        };
        let mut ids = Vec::with_capacity(page.len());
        let mut skipped = 0;
        for user in page {
            let has_passkey = only_without_passkey
                && self
                    .deps
                    .store
                    .passkeys_of(&user.id)
                    .await?
                    .iter()
                    .any(|p| p.state == PasskeyState::Ready);
            if selected(&user, has_passkey, only_without_passkey) {
                ids.push(user.id);
            } else {
                skipped += 1;
            }
        }
        Ok((ids, next, skipped))
    }

    /// Decide a link for each user (or find the one its key already created) and append every
    /// new code of the page in one commit.
    async fn write_links(
        &self,
        caller: &Caller,
        user_ids: &[String],
        medium: &LinkMedium,
        key: &str,
    ) -> Result<Vec<BulkResult>> {
        let policy =
            LinkPolicy { code_lifetime: self.cfg.code_lifetime, delivery_enabled: self.cfg.delivery_enabled };
        let key = (!key.is_empty()).then_some(key);
        let now = self.now();
        let mut commit = Commit::default();
        let mut results = Vec::with_capacity(user_ids.len());
        for user_id in user_ids {
            let outcome = match self.link_one(caller, user_id, medium, policy, key, now).await {
                Ok((outcome, Some(c))) => {
                    merge(&mut commit, c);
                    Ok(outcome)
                }
                Ok((outcome, None)) => Ok(outcome),
                Err(e) if e.kind == Kind::Unavailable || e.kind == Kind::Internal => return Err(e),
                Err(e) => Err(e),
            };
            results.push(BulkResult { user_id: user_id.clone(), outcome });
        }
        if !commit.events.is_empty() {
            self.deps.store.commit(commit).await?;
        }
        Ok(results)
    }

    /// One user's link: its outcome, and the commit of a new code (none for a replay).
    async fn link_one(
        &self,
        caller: &Caller,
        user_id: &str,
        medium: &LinkMedium,
        policy: LinkPolicy,
        key: Option<&str>,
        now: crate::time::Timestamp,
    ) -> Result<(BulkOutcome, Option<Commit>)> {
        validate::runes_between("CreatePasskeyRegistrationLinkRequest", "UserId", user_id, 1, 200)?;
        let user = self.visible_user(user_id).await?;
        require_in(caller.memberships(), perm::USER_PASSKEY_WRITE, &user.org_id, super::user_not_found)?;
        if let Some(key) = key {
            let events = self.deps.store.events_of(AggregateKind::User, user_id).await?;
            if let Some(again) = replayed(&events, key) {
                return Ok((again, None));
            }
        }
        let (fresh, code): (FreshCode, Secret) = self.fresh_code(medium)?;
        let code_id = fresh.code_id.clone();
        let job_id = fresh.job.as_ref().map(|(id, _)| id.clone());
        let mut tx = Tx::on_user(now, "", &user);
        decide_keyed(&mut tx, caller, &user, medium, policy, now, fresh, key)?;
        let outcome = match job_id {
            Some(job_id) => BulkOutcome::Delivery { code_id, job_id },
            None => BulkOutcome::Code { code_id, code },
        };
        Ok((outcome, Some(tx.into_commit())))
    }
}

/// Add one user's commit to the page's.
fn merge(into: &mut Commit, c: Commit) {
    into.events.extend(c.events);
    into.claims.extend(c.claims);
    into.changes.extend(c.changes);
    into.outbox.extend(c.outbox);
    into.released.extend(c.released);
    into.outbox_updates.extend(c.outbox_updates);
}

#[cfg(test)]
mod tests;
