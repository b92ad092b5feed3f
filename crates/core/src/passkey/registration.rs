//! The registration ceremony: creation options for `navigator.credentials.create` and the
//! verification of the browser's answer (webauthn-rs), under the authenticator policy's
//! attestation; and the AAGUID a registration reports.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AuthenticatorAttachment, COSEAlgorithm, Credential, CredentialID,
    RegisterPublicKeyCredential, RegistrationState, UserVerificationPolicy,
};

use super::{Ceremony, attestation, webauthn_error};
use crate::error::Error;
use crate::policy::Attestation;

/// The authenticator attachment a registration may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    Platform,
    CrossPlatform,
}

/// A credential verified by the ceremony, ready to be stored.
#[derive(Debug, Clone)]
pub struct Verified {
    pub cred_id: String,
    pub credential: String,
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// The authenticator's AAGUID, if it told one (see [`attested_aaguid`]).
    pub aaguid: Option<String>,
}

/// The AAGUID in a registration's attestation object: its `authData` is rpIdHash (32 bytes),
/// flags (1), signCount (4), then, with the AT flag, the attested credential data, which starts
/// with the 16-byte AAGUID. `None` without attested data or for all zeros (what an authenticator
/// that does not tell, or a browser that hides it, sends).
pub fn attested_aaguid(attestation_object: &[u8]) -> Option<String> {
    use serde_cbor_2::Value;
    let Value::Map(top) = serde_cbor_2::from_slice::<Value>(attestation_object).ok()? else {
        return None;
    };
    let Value::Bytes(auth_data) = top.get(&Value::Text("authData".into()))? else { return None };
    const AT: u8 = 0x40;
    if auth_data.get(32)? & AT == 0 {
        return None;
    }
    let aaguid: &[u8; 16] = auth_data.get(37..53)?.try_into().ok()?;
    crate::aaguid::from_bytes(aaguid)
}

impl Ceremony {
    /// Start a registration. Returns the options for `navigator.credentials.create` (JSON,
    /// `{"publicKey": {...}}`) and the state to keep server-side (JSON).
    pub fn start(
        &self,
        rp_id: &str,
        user_handle: &[u8],
        user_name: &str,
        display_name: &str,
        exclude: Vec<String>,
        attachment: Option<Attachment>,
    ) -> Result<(serde_json::Value, String), Error> {
        let user = (user_handle, user_name, display_name);
        self.start_with(rp_id, user, exclude, attachment, Attestation::None)
    }

    /// [`Ceremony::start`] under an authenticator policy's attestation: "verified" asks for
    /// `attestation: "direct"`.
    pub fn start_with(
        &self,
        rp_id: &str,
        (user_handle, user_name, display_name): (&[u8], &str, &str),
        exclude: Vec<String>,
        attachment: Option<Attachment>,
        attestation: Attestation,
    ) -> Result<(serde_json::Value, String), Error> {
        let core = self.party(rp_id)?;
        let exclude: Vec<CredentialID> =
            exclude.iter().filter_map(|c| URL_SAFE_NO_PAD.decode(c).ok()).collect();
        let builder = core
            .new_challenge_register_builder(user_handle, user_name, display_name)
            .map_err(|e| webauthn_error("Errors.User.WebAuthN.BeginRegisterFailed", "WEBAUTHN-b3g1n", e))?
            .attestation(match attestation {
                Attestation::None => AttestationConveyancePreference::None,
                Attestation::Verified => AttestationConveyancePreference::Direct,
            })
            .credential_algorithms(vec![COSEAlgorithm::ES256, COSEAlgorithm::RS256, COSEAlgorithm::EDDSA])
            .require_resident_key(true)
            .authenticator_attachment(attachment.map(|a| match a {
                Attachment::Platform => AuthenticatorAttachment::Platform,
                Attachment::CrossPlatform => AuthenticatorAttachment::CrossPlatform,
            }))
            .user_verification_policy(UserVerificationPolicy::Required)
            .exclude_credentials((!exclude.is_empty()).then_some(exclude));
        let (ccr, state) = core
            .generate_challenge_register(builder)
            .map_err(|e| webauthn_error("Errors.User.WebAuthN.BeginRegisterFailed", "WEBAUTHN-b3g1n", e))?;
        let options = serde_json::to_value(&ccr).map_err(Error::internal)?;
        let state = serde_json::to_string(&state).map_err(Error::internal)?;
        Ok((options, state))
    }

    /// Verify the browser's answer against the stored state.
    pub fn finish(
        &self,
        rp_id: &str,
        credential: &serde_json::Value,
        state: &str,
    ) -> Result<Verified, Error> {
        self.finish_with(rp_id, credential, state, Attestation::None)
    }

    /// [`Ceremony::finish`] under an authenticator policy's attestation: "verified" refuses an
    /// attestation that does not chain to one of the roots (none, self attestation, unknown
    /// root, unsupported format) with [`crate::policy::attestation_not_trusted`].
    pub fn finish_with(
        &self,
        rp_id: &str,
        credential: &serde_json::Value,
        state: &str,
        attestation: Attestation,
    ) -> Result<Verified, Error> {
        let core = self.party(rp_id)?;
        let reg: RegisterPublicKeyCredential = serde_json::from_value(credential.clone()).map_err(|e| {
            webauthn_error("Errors.User.WebAuthN.ErrorOnParseCredential", "WEBAUTHN-p4rs3", e)
        })?;
        let state: RegistrationState = serde_json::from_str(state).map_err(Error::internal)?;
        let cas = (attestation == Attestation::Verified).then_some(&self.roots.cas);
        let cred: Credential = core.register_credential(&reg, &state, cas).map_err(|e| {
            if cas.is_some() && attestation::is_attestation_failure(&e) {
                crate::policy::attestation_not_trusted(format!("{e:?}"))
            } else {
                webauthn_error("Errors.User.WebAuthN.CreateCredentialFailed", "WEBAUTHN-v3r1f", e)
            }
        })?;
        let id_bytes: &[u8] = cred.cred_id.as_ref();
        let cred_id = URL_SAFE_NO_PAD.encode(id_bytes);
        let aaguid = attested_aaguid(reg.response.attestation_object.as_ref());
        Ok(Verified {
            aaguid,
            cred_id,
            credential: serde_json::to_string(&cred).map_err(Error::internal)?,
            backup_eligible: cred.backup_eligible,
            backup_state: cred.backup_state,
        })
    }
}
