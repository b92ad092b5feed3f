//! Passkeys: their events folded into views, and the WebAuthn ceremony (a thin wrapper over
//! webauthn-rs-core, built once at start from the relying-party configuration).
//!
//! Policy, fixed here: discoverable credentials (resident key required), user verification
//! required, attestation "none" (unless the authenticator policy asks for verified attestation:
//! [`crate::policy`], roots in `passkey/attestation.rs`), existing passkeys excluded, the WebAuthn user handle derived
//! from the user id with a server key (stable, not the login name). The registration state
//! (challenge) is kept server-side in the `token.added` event and never sent to the client.
//! webauthn-rs draws the challenge from its own CSPRNG: the one place the core does not take
//! randomness as a parameter.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use url::Url;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{Credential, PublicKeyCredential, UserVerificationPolicy};

pub use self::attestation::AttestationRoots;
pub use self::registration::{Attachment, Verified, attested_aaguid};
use crate::error::{Error, Kind};
use crate::event::{Event, Recorded};
use crate::session::ChallengeState;
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PasskeyState {
    NotReady,
    Ready,
    Removed,
}

/// One passkey of a user, folded from the user's events; kept as a read model (one row per
/// passkey, written in the commit of every event that changes it), so a sign-in reads the user's
/// passkeys, not the user's whole history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyView {
    pub id: String,
    /// The user the passkey belongs to (the aggregate of its events).
    #[serde(default)]
    pub user_id: String,
    pub state: PasskeyState,
    pub name: String,
    pub rp_id: String,
    /// The registration code that authorized this registration, if any.
    pub code_id: Option<String>,
    /// webauthn-rs registration state (JSON), server-side only; dropped once the passkey is READY.
    pub registration_state: String,
    /// The verified credential (JSON) and its id (base64url, unpadded), once READY.
    pub credential: Option<String>,
    pub cred_id: Option<String>,
    pub created_at: Timestamp,
    /// The authenticator's signature counter after the last sign-in (0 at registration).
    #[serde(default)]
    pub sign_count: u32,
    /// Backup flags: at registration, updated by every sign-in.
    #[serde(default)]
    pub backup_eligible: bool,
    #[serde(default)]
    pub backup_state: bool,
    /// The last successful sign-in with this passkey.
    #[serde(default)]
    pub last_used: Option<Timestamp>,
    /// The authenticator's AAGUID (lower-case UUID), once READY, if it told one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aaguid: Option<String>,
}

impl PasskeyView {
    /// The pending passkey a `…token.added` event creates.
    pub fn created(r: &Recorded) -> Option<PasskeyView> {
        let Event::PasskeyAdded { id, rp_id, code_id, registration_state } = &r.event else { return None };
        Some(PasskeyView {
            id: id.clone(),
            user_id: r.aggregate_id.clone(),
            state: PasskeyState::NotReady,
            name: String::new(),
            rp_id: rp_id.clone(),
            code_id: code_id.clone(),
            registration_state: registration_state.clone(),
            credential: None,
            cred_id: None,
            created_at: r.created_at,
            sign_count: 0,
            backup_eligible: false,
            backup_state: false,
            last_used: None,
            aaguid: None,
        })
    }

    /// Does this event of the passkey's user change it?
    pub fn changed_by(&self, event: &Event) -> bool {
        match event {
            Event::PasskeyVerified { id, .. }
            | Event::PasskeySignCountChanged { id, .. }
            | Event::PasskeyCheckSucceeded { id, .. }
            | Event::PasskeyRemoved { id } => *id == self.id,
            Event::UserRemoved {} => true,
            _ => false,
        }
    }

    /// Fold one event of the passkey's user (events of other passkeys leave it unchanged).
    pub fn apply(&mut self, r: &Recorded) {
        if !self.changed_by(&r.event) {
            return;
        }
        match &r.event {
            Event::PasskeyVerified {
                name,
                cred_id,
                credential,
                backup_eligible,
                backup_state,
                aaguid,
                ..
            } => {
                self.state = PasskeyState::Ready;
                self.aaguid = aaguid.clone();
                self.name = name.clone();
                self.cred_id = Some(cred_id.clone());
                self.credential = Some(credential.clone());
                self.backup_eligible = *backup_eligible;
                self.backup_state = *backup_state;
                self.registration_state.clear();
            }
            Event::PasskeySignCountChanged { sign_count, backup_eligible, backup_state, .. } => {
                self.sign_count = *sign_count;
                self.backup_eligible = *backup_eligible;
                self.backup_state = *backup_state;
            }
            Event::PasskeyCheckSucceeded { .. } => self.last_used = Some(r.created_at),
            Event::PasskeyRemoved { .. } | Event::UserRemoved {} => self.state = PasskeyState::Removed,
            _ => {}
        }
    }
}

/// Every passkey of a user, in creation order, from the user's events (the read model's
/// definition; used to build it for data written before it existed).
pub fn fold(events: &[Recorded]) -> Vec<PasskeyView> {
    let mut out: Vec<PasskeyView> = Vec::new();
    for r in events {
        match PasskeyView::created(r) {
            Some(p) => out.push(p),
            None => out.iter_mut().for_each(|p| p.apply(r)),
        }
    }
    out
}

/// A sign-in assertion that verified: what the authenticator reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asserted {
    pub user_verified: bool,
    pub sign_count: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
}

/// Why an assertion was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionRefused {
    /// The signature counter did not grow: the authenticator may have been cloned.
    Cloned { stored: u32, presented: u32 },
    /// Signature, origin, rpId, challenge, user verification, ...: the reason for the log.
    Invalid(String),
}

/// The parts of a browser's assertion (`navigator.credentials.get`) the server looks at before
/// verifying it: the credential id (base64url, unpadded) and the user handle, if sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionIds {
    pub cred_id: String,
    pub user_handle: Option<Vec<u8>>,
}

/// Parse an assertion's ids; a malformed assertion is a 400.
pub fn assertion_ids(assertion: &serde_json::Value) -> Result<AssertionIds, Error> {
    let pkc = parse_assertion(assertion)?;
    Ok(AssertionIds {
        cred_id: URL_SAFE_NO_PAD.encode(&pkc.raw_id),
        user_handle: pkc.response.user_handle.clone(),
    })
}

fn parse_assertion(assertion: &serde_json::Value) -> Result<PublicKeyCredential, Error> {
    serde_json::from_value(assertion.clone())
        .map_err(|e| webauthn_error("Errors.User.WebAuthN.ErrorOnParseCredential", "WEBAUTHN-p4rs3", e))
}

fn webauthn_error(key: &'static str, id: &'static str, cause: impl std::fmt::Display) -> Error {
    Error::new(Kind::InvalidArgument, id, key).with_cause(cause)
}

/// The relying parties passlink serves: one per allowed RP id, each with its allowed origins;
/// and the roots attestations are verified against when the policy asks for it.
pub struct Ceremony {
    default_rp: String,
    parties: HashMap<String, Party>,
    roots: AttestationRoots,
}

/// One relying party: webauthn-rs for its ceremonies, and its origins for checking assertions.
struct Party {
    core: WebauthnCore,
    origins: Vec<Url>,
}

impl std::fmt::Debug for Ceremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceremony").field("default_rp", &self.default_rp).finish_non_exhaustive()
    }
}

impl Ceremony {
    /// Relying parties from the external URL (its host is the default RP id) and extra origins
    /// (each origin's host becomes an allowed RP id with that origin).
    pub fn new(rp_name: &str, external_url: &str, extra_origins: &[String]) -> Result<Ceremony, String> {
        let mut origins_by_rp: HashMap<String, Vec<Url>> = HashMap::new();
        let mut default_rp = String::new();
        for (i, o) in
            std::iter::once(external_url).chain(extra_origins.iter().map(String::as_str)).enumerate()
        {
            let url = Url::parse(o).map_err(|e| format!("invalid origin {o:?}: {e}"))?;
            let host = url.host_str().ok_or_else(|| format!("origin {o:?} has no host"))?.to_string();
            if i == 0 {
                default_rp = host.clone();
            }
            let origin = Url::parse(&url.origin().ascii_serialization()).map_err(|e| e.to_string())?;
            origins_by_rp.entry(host).or_default().push(origin);
        }
        let parties = origins_by_rp
            .into_iter()
            .map(|(rp, origins)| {
                let core = WebauthnCore::new_unsafe_experts_only(
                    rp_name,
                    &rp,
                    origins.clone(),
                    Duration::from_secs(300),
                    Some(false),
                    Some(false),
                );
                (rp, Party { core, origins })
            })
            .collect();
        Ok(Ceremony { default_rp, parties, roots: AttestationRoots::default() })
    }

    /// Verify attestations (under a "verified" policy) against these roots.
    #[must_use]
    pub fn with_attestation_roots(mut self, roots: AttestationRoots) -> Ceremony {
        self.roots = roots;
        self
    }

    /// The RP id for a request's `domain` ("" = the default). Unknown domains are refused.
    pub fn rp_id(&self, domain: &str) -> Result<String, Error> {
        let domain = domain.trim();
        if domain.is_empty() {
            return Ok(self.default_rp.clone());
        }
        if self.parties.contains_key(domain) {
            return Ok(domain.to_string());
        }
        Err(Error::new(Kind::InvalidArgument, "WEBAUTHN-rp1d", "Errors.User.WebAuthN.DomainNotAllowed")
            .with_cause(format!("domain {domain:?}")))
    }

    fn party(&self, rp_id: &str) -> Result<&WebauthnCore, Error> {
        self.relying_party(rp_id).map(|p| &p.core)
    }

    fn relying_party(&self, rp_id: &str) -> Result<&Party, Error> {
        self.parties.get(rp_id).ok_or_else(|| Error::internal(format!("no relying party {rp_id}")))
    }

    /// Start a sign-in on `rp_id`: a fresh challenge with user verification required. `allow`
    /// are the stored credentials (JSON) of the user's READY passkeys; empty for a username-less
    /// sign-in (discoverable credentials). Returns `{"publicKey": {...}}` for
    /// `navigator.credentials.get` and the state to keep server-side.
    pub fn start_sign_in(
        &self,
        rp_id: &str,
        allow: &[&str],
    ) -> Result<(serde_json::Value, ChallengeState), Error> {
        let core = self.party(rp_id)?;
        let creds: Vec<Credential> = allow.iter().filter_map(|c| serde_json::from_str(c).ok()).collect();
        let begin = |e| webauthn_error("Errors.User.WebAuthN.BeginLoginFailed", "WEBAUTHN-b3g1l", e);
        let builder = core
            .new_challenge_authenticate_builder(creds, Some(UserVerificationPolicy::Required))
            .map_err(begin)?;
        let (rcr, mut state) = core.generate_challenge_authenticate(builder).map_err(begin)?;
        // The check verifies against the one stored passkey the assertion names
        // (`authenticate_single_credential` ignores the state's list): keep the state small.
        state.set_allowed_credentials(Vec::new());
        let mut options = serde_json::to_value(&rcr).map_err(Error::internal)?;
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        Ok((options, ChallengeState(serde_json::to_string(&state).map_err(Error::internal)?)))
    }

    /// Verify a sign-in assertion against the challenge's state and the stored passkey
    /// (`credential` JSON, with its last sign count and backup flags): [`assertion::verify`].
    /// User verification is required; a signature counter that does not grow is refused as a
    /// possible clone.
    pub fn finish_sign_in(
        &self,
        rp_id: &str,
        assertion: &serde_json::Value,
        state: &ChallengeState,
        passkey: &PasskeyView,
    ) -> Result<Result<Asserted, AssertionRefused>, Error> {
        let party = self.relying_party(rp_id)?;
        let pkc = parse_assertion(assertion)?;
        let challenge = state.challenge()?;
        let stored =
            passkey.credential.as_deref().ok_or_else(|| Error::internal("passkey without credential"))?;
        let mut cred: Credential = serde_json::from_str(stored).map_err(Error::internal)?;
        cred.counter = passkey.sign_count;
        cred.backup_eligible = passkey.backup_eligible;
        cred.backup_state = passkey.backup_state;
        let expected = assertion::Expected { challenge: &challenge, rp_id, origins: &party.origins };
        Ok(assertion::verify(&pkc, &expected, &cred))
    }
}

impl ChallengeState {
    /// The challenge bytes of the state `start_sign_in` kept (webauthn-rs's authentication
    /// state: `challenge` is base64url).
    fn challenge(&self) -> Result<Vec<u8>, Error> {
        #[derive(Deserialize)]
        struct State {
            challenge: String,
        }
        let state: State = serde_json::from_str(&self.0).map_err(Error::internal)?;
        URL_SAFE_NO_PAD.decode(state.challenge.trim_end_matches('=')).map_err(Error::internal)
    }
}

mod assertion;
mod attestation;
mod registration;
#[cfg(test)]
mod tests;
