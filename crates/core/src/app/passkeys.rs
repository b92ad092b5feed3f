//! The passkey ceremony: RegisterPasskey, VerifyPasskeyRegistration, ListPasskeys, RemovePasskey.
//!
//! Authorization: a registration code authorizes registering for its user without any token
//! (DESIGN 2.4: the code is consumed when a passkey is verified with it, in the same commit; see
//! [`super::codes`] for the checks). Without a code the caller must be the user or hold
//! `user.credential.write` in the user's organization.

use super::codes::authorize_on_user;
use super::revoke::{REVOKED_ON_REGISTRATION, Which, decide_revoke};
use super::tx::Tx;
use super::{App, Caller, Details, not_active, not_human, unauthenticated};
use crate::aaguid::Provider;
use crate::code::{CodeView, Rejection, invalid_code_error};
use crate::error::{Error, Kind, Result};
use crate::event::{Event, HumanProfile};
use crate::passkey::{Attachment, PasskeyState, PasskeyView, Verified};
use crate::permission as perm;
use crate::policy::Rule;
use crate::secret::Secret;
use crate::store::UniqueClaim;
use crate::time::Timestamp;
use crate::validate;
use crate::view::{UserState, UserView};

/// RegisterPasskey's input.
#[derive(Debug, Clone)]
pub struct RegisterPasskey {
    pub user_id: String,
    /// (code id, code) of a registration link.
    pub code: Option<(String, Secret)>,
    pub attachment: Option<Attachment>,
    pub domain: String,
}

#[derive(Debug, Clone)]
pub struct PasskeyStarted {
    pub details: Details,
    pub passkey_id: String,
    /// `{"publicKey": {...}}` for `navigator.credentials.create`.
    pub options: serde_json::Value,
}

/// A READY passkey as ListPasskeys shows it: ZITADEL's v2 `Passkey` message carries the id and
/// name; passlink's own `passlink.enrollment.v1` ListPasskeys the rest.
#[derive(Debug, Clone)]
pub struct PasskeyListed {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    /// The last successful sign-in with it.
    pub last_used: Option<Timestamp>,
    pub rp_id: String,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub sign_count: u32,
    /// The authenticator's AAGUID, if it told one at registration.
    pub aaguid: Option<String>,
    /// What the AAGUID catalog calls that authenticator, if it knows it.
    pub provider: Option<Provider>,
}

fn passkey_not_found() -> Error {
    Error::new(Kind::NotFound, "COMMAND-mKGo3", "Errors.User.MFA.Passwordless.NotExisting")
}

/// The human a passkey is registered for: an active human user.
fn registrant(user: &UserView) -> Result<&HumanProfile> {
    let human = user.human().ok_or_else(not_human)?;
    if user.state != UserState::Active {
        return Err(not_active());
    }
    Ok(human)
}

/// Credential ids of the READY passkeys (excluded from a new registration).
fn ready_credentials(passkeys: &[PasskeyView]) -> Vec<String> {
    passkeys.iter().filter(|p| p.state == PasskeyState::Ready).filter_map(|p| p.cred_id.clone()).collect()
}

/// RegisterPasskey, once the ceremony started: the pending passkey (`…token.added`) with its
/// ceremony state; starting again with the same code replaces the pending registration.
fn decide_register(
    user: &UserView,
    passkeys: &[PasskeyView],
    code_id: Option<String>,
    started: (&str, &str, String),
    creator: &str,
    now: Timestamp,
) -> Tx {
    let (passkey_id, rp_id, registration_state) = started;
    let mut tx = Tx::on_user(now, creator, user);
    let replaced: Vec<&PasskeyView> = passkeys
        .iter()
        .filter(|p| p.state == PasskeyState::NotReady && code_id.is_some() && p.code_id == code_id)
        .collect();
    tx.load_passkeys(replaced.iter().map(|p| (*p).clone()));
    for old in replaced {
        tx.record_user(&user.id, Event::PasskeyRemoved { id: old.id.clone() });
    }
    let ev = Event::PasskeyAdded { id: passkey_id.into(), rp_id: rp_id.into(), code_id, registration_state };
    tx.record_user(&user.id, ev);
    tx
}

/// The pending passkey a verification answers.
fn pending(passkeys: Vec<PasskeyView>, passkey_id: &str) -> Result<PasskeyView> {
    passkeys
        .into_iter()
        .find(|p| p.id == passkey_id && p.state == PasskeyState::NotReady)
        .ok_or_else(passkey_not_found)
}

/// VerifyPasskeyRegistration, once the credential verified: `…token.verified`, the code's
/// `check.succeeded` (consumed) when it was started with one, and the credential id's claim.
/// An authenticator the policy's rule for the user's organization does not allow is refused
/// (`PASSKEY-Pol01`) and nothing is recorded: the code stays usable for another authenticator.
#[allow(clippy::too_many_arguments)]
fn decide_verify(
    user: &UserView,
    pending: &PasskeyView,
    code: Option<CodeView>,
    verified: Verified,
    rule: &Rule,
    name: &str,
    creator: &str,
    now: Timestamp,
) -> Result<Tx> {
    rule.check(verified.aaguid.as_deref())?;
    let mut tx = Tx::on_user(now, creator, user);
    tx.load_passkeys([pending.clone()]);
    tx.record_user(
        &user.id,
        Event::PasskeyVerified {
            id: pending.id.clone(),
            name: name.to_string(),
            cred_id: verified.cred_id.clone(),
            credential: verified.credential,
            backup_eligible: verified.backup_eligible,
            backup_state: verified.backup_state,
            aaguid: verified.aaguid,
        },
    );
    if let Some(code) = code {
        let id = code.id.clone();
        tx.load_code(code);
        tx.record_user(&user.id, Event::PasskeyCodeCheckSucceeded { id });
    }
    tx.commit.claims.push(UniqueClaim {
        kind: "webauthn_credential",
        value: verified.cred_id,
        taken: Error::new(Kind::AlreadyExists, "WEBAUTHN-dup1c", "Errors.User.WebAuthN.CredentialExists"),
    });
    Ok(tx)
}

/// RemovePasskey: a pending or READY passkey; its credential id may be registered again.
fn decide_remove(
    user: &UserView,
    passkeys: Vec<PasskeyView>,
    passkey_id: &str,
    creator: &str,
    now: Timestamp,
) -> Result<Tx> {
    let passkey = passkeys
        .into_iter()
        .find(|p| p.id == passkey_id && p.state != PasskeyState::Removed)
        .ok_or_else(passkey_not_found)?;
    let mut tx = Tx::on_user(now, creator, user);
    tx.load_passkeys([passkey.clone()]);
    tx.record_user(&user.id, Event::PasskeyRemoved { id: passkey.id.clone() });
    if let Some(cred) = passkey.cred_id {
        tx.commit.released.push(("webauthn_credential", cred));
    }
    Ok(tx)
}

fn creator(caller: Option<&Caller>) -> &str {
    caller.map(Caller::user_id).unwrap_or_default()
}

impl App {
    async fn passkeys_of(&self, user: &UserView) -> Result<Vec<PasskeyView>> {
        self.deps.store.passkeys_of(&user.id).await
    }

    /// RegisterPasskey: start a registration; returns the creation options.
    pub async fn register_passkey(
        &self,
        caller: Option<&Caller>,
        req: RegisterPasskey,
    ) -> Result<PasskeyStarted> {
        const MSG: &str = "RegisterPasskeyRequest";
        validate::runes_between(MSG, "UserId", &req.user_id, 1, 200)?;
        if let Some((id, code)) = &req.code {
            validate::runes_between("PasskeyRegistrationCode", "Id", id, 1, 200)
                .map_err(|e| validate::embedded(MSG, "Code", e))?;
            validate::runes_between("PasskeyRegistrationCode", "Code", code.expose(), 1, 200)
                .map_err(|e| validate::embedded(MSG, "Code", e))?;
        } else {
            caller.ok_or_else(unauthenticated)?;
        }
        let rp_id = self.deps.webauthn.rp_id(&req.domain)?;
        let _lock = self.lock_aggregate(&req.user_id).await;
        retry!(self, async {
            let user = self.visible_user(&req.user_id).await?;
            let code = match &req.code {
                Some((id, code)) => Some(self.check_code(&user, id, code).await?),
                None => {
                    authorize_on_user(caller, &user, perm::USER_CREDENTIAL_WRITE)?;
                    None
                }
            };
            let human = registrant(&user)?;
            let passkeys = self.passkeys_of(&user).await?;
            let handle = self.deps.keys.user_handle(&user.id);
            let (options, state) = self.deps.webauthn.start_with(
                &rp_id,
                (&handle, &user.username, &human.effective_display_name()),
                ready_credentials(&passkeys),
                req.attachment,
                self.cfg.authenticator_policy.rule(&user.org_id).attestation,
            )?;
            let passkey_id = self.next_id();
            let code_id = code.map(|c| c.id);
            let started = (passkey_id.as_str(), rp_id.as_str(), state);
            let tx = decide_register(&user, &passkeys, code_id, started, creator(caller), self.now());
            let details = tx.user_details(&user.id);
            self.deps.store.commit(tx.into_commit()).await?;
            Ok::<_, Error>(PasskeyStarted { details, passkey_id, options })
        })
    }

    /// VerifyPasskeyRegistration: check the browser's credential and store the passkey as READY.
    /// A registration started with a code consumes the code here, in the same commit; with
    /// [`AppConfig::revoke_codes_on_registration`](super::AppConfig) the user's other
    /// outstanding codes are revoked in it too.
    pub async fn verify_passkey(
        &self,
        caller: Option<&Caller>,
        user_id: &str,
        passkey_id: &str,
        credential: &serde_json::Value,
        name: &str,
    ) -> Result<Details> {
        const MSG: &str = "VerifyPasskeyRegistrationRequest";
        validate::runes_between(MSG, "UserId", user_id, 1, 200)?;
        validate::runes_between(MSG, "PasskeyId", passkey_id, 1, 200)?;
        validate::runes_between(MSG, "PasskeyName", name, 1, 200)?;
        if credential.as_object().is_none_or(|o| o.is_empty()) {
            return Err(validate::required(MSG, "PublicKeyCredential"));
        }
        let _lock = self.lock_aggregate(user_id).await;
        retry!(self, async {
            let user = self.visible_user(user_id).await?;
            let pending = pending(self.passkeys_of(&user).await?, passkey_id)?;
            let code = match &pending.code_id {
                // The challenge only the browser that started the ceremony knows authorizes the
                // answer; the code must still be usable (not consumed, locked or expired).
                Some(code_id) => {
                    let view = self.deps.store.code(code_id).await?;
                    let view = view.ok_or_else(|| invalid_code_error(Rejection::Unknown))?;
                    view.check(&user.id, self.now(), true).map_err(invalid_code_error)?;
                    Some(view)
                }
                None => {
                    authorize_on_user(caller, &user, perm::USER_CREDENTIAL_WRITE)?;
                    None
                }
            };
            let rule = self.cfg.authenticator_policy.rule(&user.org_id);
            let state = &pending.registration_state;
            let verified =
                self.deps.webauthn.finish_with(&pending.rp_id, credential, state, rule.attestation)?;
            let now = self.now();
            let mut tx = decide_verify(&user, &pending, code, verified, rule, name, creator(caller), now)?;
            if self.cfg.revoke_codes_on_registration {
                // The user's other outstanding codes (the one consumed here is not among them).
                let (mut codes, jobs) = self.codes_and_jobs_of(&user, now).await?;
                codes.retain(|c| pending.code_id.as_ref() != Some(&c.id));
                decide_revoke(&mut tx, &user, codes, &jobs, Which::All, REVOKED_ON_REGISTRATION, now)?;
            }
            let details = tx.user_details(&user.id);
            self.deps.store.commit(tx.into_commit()).await?;
            Ok::<_, Error>(details)
        })
    }

    /// ListPasskeys: the user's READY passkeys.
    pub async fn list_passkeys(
        &self,
        caller: Option<&Caller>,
        user_id: &str,
    ) -> Result<(Vec<PasskeyListed>, u64)> {
        validate::runes_between("ListPasskeysRequest", "UserId", user_id, 1, 200)?;
        caller.ok_or_else(unauthenticated)?;
        let user = self.visible_user(user_id).await?;
        authorize_on_user(caller, &user, perm::USER_READ)?;
        let listed = self
            .passkeys_of(&user)
            .await?
            .into_iter()
            .filter(|p| p.state == PasskeyState::Ready)
            .map(|p| PasskeyListed {
                id: p.id,
                name: p.name,
                created_at: p.created_at,
                last_used: p.last_used,
                rp_id: p.rp_id,
                backup_eligible: p.backup_eligible,
                backup_state: p.backup_state,
                sign_count: p.sign_count,
                provider: p.aaguid.as_deref().and_then(|a| self.authenticator(a)),
                aaguid: p.aaguid,
            })
            .collect();
        Ok((listed, user.sequence))
    }

    /// The provider the AAGUID catalog names for an AAGUID, if any.
    pub fn authenticator(&self, aaguid: &str) -> Option<Provider> {
        self.cfg.authenticators.get(aaguid).cloned()
    }

    /// RemovePasskey: a pending or READY passkey of the user.
    pub async fn remove_passkey(
        &self,
        caller: Option<&Caller>,
        user_id: &str,
        passkey_id: &str,
    ) -> Result<Details> {
        const MSG: &str = "RemovePasskeyRequest";
        validate::runes_between(MSG, "UserId", user_id, 1, 200)?;
        validate::runes_between(MSG, "PasskeyId", passkey_id, 1, 200)?;
        caller.ok_or_else(unauthenticated)?;
        let _lock = self.lock_aggregate(user_id).await;
        retry!(self, async {
            let user = self.visible_user(user_id).await?;
            authorize_on_user(caller, &user, perm::USER_CREDENTIAL_WRITE)?;
            let tx = decide_remove(
                &user,
                self.passkeys_of(&user).await?,
                passkey_id,
                creator(caller),
                self.now(),
            )?;
            let details = tx.user_details(&user.id);
            self.deps.store.commit(tx.into_commit()).await?;
            Ok::<_, Error>(details)
        })
    }
}

#[cfg(test)]
mod tests;
