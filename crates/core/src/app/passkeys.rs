//! The passkey use cases: RegisterPasskey, VerifyPasskeyRegistration, ListPasskeys,
//! RemovePasskey, and the hosted page's "who is enrolling" look-up.
//!
//! Authorization: a registration code authorizes registering for its user without any token
//! (DESIGN 2.4: the code is consumed when a passkey is verified with it, three wrong checks lock
//! it, every code failure is `COMMAND-Eeb2a`). Without a code the caller must be the user or hold
//! `user.credential.write` in the user's organization.

use super::{App, Caller, Details, UserTx, unauthenticated, user_not_found};
use crate::code::{CodeView, Rejection, invalid_code_error};
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, Event};
use crate::passkey::{Attachment, PasskeyState, PasskeyView, fold};
use crate::permission::{self as perm, require_in, require_somewhere};
use crate::secret::Secret;
use crate::store::UniqueClaim;
use crate::validate;
use crate::view::{Change, UserState, UserView};

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

#[derive(Debug, Clone)]
pub struct PasskeyListed {
    pub id: String,
    pub name: String,
}

/// Who a registration link enrolls (for the hosted page).
#[derive(Debug, Clone)]
pub struct RegistrationInfo {
    pub display_name: String,
    pub login_name: String,
}

fn passkey_not_found() -> Error {
    Error::new(Kind::NotFound, "COMMAND-mKGo3", "Errors.User.MFA.Passwordless.NotExisting")
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

impl App {
    /// Self-service, or `permission` in the user's organization (else 403/404 by the rule).
    fn authorize_on_user(&self, caller: Option<&Caller>, user: &UserView, permission: &str) -> Result<()> {
        let caller = caller.ok_or_else(unauthenticated)?;
        if caller.principal.user_id == user.id {
            return Ok(());
        }
        let ms = &caller.principal.memberships;
        require_somewhere(ms, permission)?;
        require_in(ms, permission, &user.org_id, user_not_found)
    }

    /// Check a presented code for `user`. A wrong value for this user's code is recorded
    /// (`check.failed`, three lock the code); every refusal answers `COMMAND-Eeb2a`.
    async fn check_code(&self, user: &UserView, code_id: &str, code: &Secret) -> Result<CodeView> {
        let now = self.now();
        let Some(view) = self.deps.store.code(code_id).await? else {
            return Err(invalid_code_error(Rejection::Unknown));
        };
        let matches = self.deps.keys.code_matches(code_id, code, &hex_decode(&view.code_hash));
        match view.check(&user.id, now, matches) {
            Ok(()) => Ok(view),
            Err(reason) => {
                if reason == Rejection::Wrong {
                    let mut tx = UserTx::new(now, "", user);
                    let ev = Event::PasskeyCodeCheckFailed { id: code_id.to_string() };
                    tx.record(ev.clone());
                    let mut code_after = view.clone();
                    code_after.apply(&ev);
                    tx.tx.commit.changes.push(Change::Code(code_after));
                    self.deps.store.commit(tx.into_commit()).await?;
                }
                Err(invalid_code_error(reason))
            }
        }
    }

    /// The hosted page's look-up: who does this link enroll? Checks (and counts) the code.
    pub async fn registration_info(
        &self,
        user_id: &str,
        code_id: &str,
        code: &Secret,
    ) -> Result<RegistrationInfo> {
        validate::runes_between("RegistrationInfo", "UserId", user_id, 1, 200)?;
        let _lock = self.lock_aggregate(user_id).await;
        let user = self.visible_user(user_id).await?;
        self.check_code(&user, code_id, code).await?;
        let human = user.human().ok_or_else(user_not_found)?;
        Ok(RegistrationInfo {
            display_name: human.effective_display_name(),
            login_name: user.username.clone(),
        })
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
                    self.authorize_on_user(caller, &user, perm::USER_CREDENTIAL_WRITE)?;
                    None
                }
            };
            let Some(human) = user.human() else {
                return Err(Error::new(Kind::FailedPrecondition, "COMMAND-xu3Ag", "Errors.User.NotHuman"));
            };
            if user.state != UserState::Active {
                return Err(Error::new(Kind::FailedPrecondition, "COMMAND-Nd7ah", "Errors.User.NotActive"));
            }
            let events = self.deps.store.events_of(AggregateKind::User, &user.id).await?;
            let passkeys = fold(&events);
            let exclude = passkeys
                .iter()
                .filter(|p| p.state == PasskeyState::Ready)
                .filter_map(|p| p.cred_id.clone())
                .collect();
            let handle = self.deps.keys.user_handle(&user.id);
            let (options, state) = self.deps.webauthn.start(
                &rp_id,
                &handle,
                &user.username,
                &human.effective_display_name(),
                exclude,
                req.attachment,
            )?;
            let now = self.now();
            let creator = caller.map(|c| c.principal.user_id.as_str()).unwrap_or_default();
            let mut tx = UserTx::new(now, creator, &user);
            let code_id = code.as_ref().map(|c| c.id.clone());
            // Starting again with the same code replaces the pending registration.
            for old in passkeys
                .iter()
                .filter(|p| p.state == PasskeyState::NotReady && code_id.is_some() && p.code_id == code_id)
            {
                tx.record(Event::PasskeyRemoved { id: old.id.clone() });
            }
            let passkey_id = self.deps.ids.next_id();
            tx.record(Event::PasskeyAdded {
                id: passkey_id.clone(),
                rp_id: rp_id.clone(),
                code_id,
                registration_state: state,
            });
            let details = tx.details();
            self.deps.store.commit(tx.into_commit()).await?;
            Ok::<_, Error>(PasskeyStarted {
                details,
                passkey_id: passkey_id.clone(),
                options: options.clone(),
            })
        })
    }

    /// VerifyPasskeyRegistration: check the browser's credential and store the passkey as READY.
    /// A registration started with a code consumes the code here, in the same commit.
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
            let events = self.deps.store.events_of(AggregateKind::User, &user.id).await?;
            let pending: PasskeyView = fold(&events)
                .into_iter()
                .find(|p| p.id == passkey_id && p.state == PasskeyState::NotReady)
                .ok_or_else(passkey_not_found)?;
            let code = match &pending.code_id {
                // The challenge only the browser that started the ceremony knows authorizes the
                // answer; the code must still be usable (not consumed, locked or expired).
                Some(code_id) => {
                    let view = self
                        .deps
                        .store
                        .code(code_id)
                        .await?
                        .ok_or_else(|| invalid_code_error(Rejection::Unknown))?;
                    view.check(&user.id, self.now(), true).map_err(invalid_code_error)?;
                    Some(view)
                }
                None => {
                    self.authorize_on_user(caller, &user, perm::USER_CREDENTIAL_WRITE)?;
                    None
                }
            };
            let verified =
                self.deps.webauthn.finish(&pending.rp_id, credential, &pending.registration_state)?;
            let now = self.now();
            let creator = caller.map(|c| c.principal.user_id.as_str()).unwrap_or_default();
            let mut tx = UserTx::new(now, creator, &user);
            tx.record(Event::PasskeyVerified {
                id: pending.id.clone(),
                name: name.to_string(),
                cred_id: verified.cred_id.clone(),
                credential: verified.credential.clone(),
            });
            if let Some(mut view) = code.clone() {
                let ev = Event::PasskeyCodeCheckSucceeded { id: view.id.clone() };
                tx.record(ev.clone());
                view.apply(&ev);
                tx.tx.commit.changes.push(Change::Code(view));
            }
            tx.tx.commit.claims.push(UniqueClaim {
                kind: "webauthn_credential",
                value: verified.cred_id.clone(),
                taken: Error::new(
                    Kind::AlreadyExists,
                    "WEBAUTHN-dup1c",
                    "Errors.User.WebAuthN.CredentialExists",
                ),
            });
            let details = tx.details();
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
        self.authorize_on_user(caller, &user, perm::USER_READ)?;
        let events = self.deps.store.events_of(AggregateKind::User, &user.id).await?;
        let listed = fold(&events)
            .into_iter()
            .filter(|p| p.state == PasskeyState::Ready)
            .map(|p| PasskeyListed { id: p.id, name: p.name })
            .collect();
        Ok((listed, user.sequence))
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
            self.authorize_on_user(caller, &user, perm::USER_CREDENTIAL_WRITE)?;
            let events = self.deps.store.events_of(AggregateKind::User, &user.id).await?;
            let passkey = fold(&events)
                .into_iter()
                .find(|p| p.id == passkey_id && p.state != PasskeyState::Removed)
                .ok_or_else(passkey_not_found)?;
            let now = self.now();
            let creator = caller.map(|c| c.principal.user_id.as_str()).unwrap_or_default();
            let mut tx = UserTx::new(now, creator, &user);
            tx.record(Event::PasskeyRemoved { id: passkey.id.clone() });
            if let Some(cred) = &passkey.cred_id {
                tx.tx.commit.released.push(("webauthn_credential", cred.clone()));
            }
            let details = tx.details();
            self.deps.store.commit(tx.into_commit()).await?;
            Ok::<_, Error>(details)
        })
    }
}
