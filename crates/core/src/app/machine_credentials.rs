//! Credentials of machine users for the OAuth2 grants: AddSecret (a client secret, returned once
//! and stored as argon2id) and AddKey (a key pair whose private key is returned once in
//! ZITADEL's key file, or a given public key).

use super::tx::Tx;
use super::{App, Caller, NEVER_EXPIRES, expiration_in_past, not_machine, user_not_found};
use crate::error::Result;
use crate::event::Event;
use crate::jwt;
use crate::permission::{self as perm, require_in, require_somewhere};
use crate::secret::{self, Secret};
use crate::time::Timestamp;
use crate::validate;
use crate::view::UserView;

#[derive(Debug)]
pub struct KeyAdded {
    pub key_id: String,
    /// ZITADEL's key file (JSON) when passlink generated the key; empty for a given public key.
    pub key_content: Vec<u8>,
    pub creation_date: Timestamp,
}

/// Request checks: `user.write` somewhere and the user id.
fn check(caller: &Caller, user_id: &str, msg: &str) -> Result<()> {
    require_somewhere(caller.memberships(), perm::USER_WRITE)?;
    validate::runes_between(msg, "UserId", user_id, 1, 200)
}

/// A credential event on the loaded user: `user.write` in its org, and a machine.
fn decide(caller: &Caller, user: &UserView, event: Event, now: Timestamp) -> Result<Tx> {
    require_in(caller.memberships(), perm::USER_WRITE, &user.org_id, user_not_found)?;
    if user.is_human() {
        return Err(not_machine());
    }
    let mut tx = Tx::on_user(now, caller.user_id(), user);
    tx.record_user(&user.id, event);
    Ok(tx)
}

impl App {
    /// Load → decide → append of one credential event (after the request checks).
    async fn add_credential(
        &self,
        caller: &Caller,
        user_id: &str,
        msg: &str,
        event: Event,
    ) -> Result<Timestamp> {
        let _lock = self.lock_aggregate(user_id).await;
        retry!(self, async {
            check(caller, user_id, msg)?;
            let user = self.visible_user(user_id).await?;
            let now = self.now();
            let tx = decide(caller, &user, event.clone(), now)?;
            self.deps.store.commit(tx.into_commit()).await?;
            Ok(now)
        })
    }

    /// AddSecret: a new client secret for a machine user (returned once, stored as argon2id).
    pub async fn add_secret(&self, caller: &Caller, user_id: &str) -> Result<(Secret, Timestamp)> {
        let (secret, hash) = secret::new_client_secret(&*self.deps.entropy)?;
        let at = self
            .add_credential(caller, user_id, "AddSecretRequest", Event::MachineSecretSet { hash })
            .await?;
        self.forget_principals();
        Ok((secret, at))
    }

    /// AddKey: generate a key pair (the private key is returned once, in ZITADEL's key file) or
    /// register a given public key.
    pub async fn add_key(
        &self,
        caller: &Caller,
        user_id: &str,
        expiration: Option<Timestamp>,
        public_key: &[u8],
    ) -> Result<KeyAdded> {
        let expiration = expiration.unwrap_or(NEVER_EXPIRES);
        if expiration <= self.now() {
            return Err(expiration_in_past());
        }
        let (public_pem, private) = if public_key.is_empty() {
            let (public, private) = jwt::generate_machine_key(&*self.deps.entropy)?;
            (public, Some(private))
        } else {
            (jwt::normalize_public_key(public_key)?, None)
        };
        let key_id = self.next_id();
        let ev = Event::MachineKeyAdded { key_id: key_id.clone(), public_key: public_pem, expiration };
        let at = self.add_credential(caller, user_id, "AddKeyRequest", ev).await?;
        let key_content = private
            .map(|p| jwt::key_file(&key_id, user_id, &p, &expiration.to_rfc3339()))
            .unwrap_or_default();
        Ok(KeyAdded { key_id, key_content, creation_date: at })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{NOW, caller, human, machine, org};
    use super::*;
    use crate::error::Kind;
    use crate::view::{Change, UserKind};

    #[test]
    fn a_secret_is_folded_into_the_machine() {
        let c = caller(org("A"), "ORG_OWNER");
        let ev = Event::MachineSecretSet { hash: "$argon2id$x".into() };
        let commit = decide(&c, &machine("m", "A"), ev, NOW).unwrap().into_commit();
        let Some(Change::User(u)) = commit.changes.first() else { panic!("no user change") };
        assert!(matches!(&u.kind, UserKind::Machine(m) if m.secret_hash == "$argon2id$x"));
    }

    #[test]
    fn only_machines_in_reach() {
        let ev = || Event::MachineSecretSet { hash: String::new() };
        let e = decide(&caller(org("A"), "ORG_OWNER"), &human("h", "A"), ev(), NOW).err();
        assert_eq!(e.map(|e| e.id), Some("COMMAND-Sdj4f"));
        let e = decide(&caller(org("B"), "ORG_OWNER"), &machine("m", "A"), ev(), NOW).err();
        assert_eq!(e.map(|e| e.id), Some("COMMAND-M9dsd"));
        let e = check(&caller(org("A"), "ORG_OWNER_VIEWER"), "m", "AddSecretRequest").err();
        assert_eq!(e.map(|e| e.kind), Some(Kind::PermissionDenied));
    }
}
