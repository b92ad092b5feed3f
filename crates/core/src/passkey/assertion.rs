//! Checking a sign-in assertion against its challenge and the stored passkey (WebAuthn L3 §7.2,
//! "Verifying an Authentication Assertion"): the checks webauthn-rs-core's
//! `authenticate_single_credential` makes, in the same order, with the same policy (user
//! verification required, backup eligibility may not change, a counter that does not grow is a
//! possible clone). webauthn-rs still parses the stored credential and the browser's JSON and
//! runs every registration.
//!
//! Why not webauthn-rs here: its P-256 verification (RustCrypto, portable field arithmetic) was
//! 40 % of the server's CPU per sign-in. ES256 signatures — what passkeys use — are verified with
//! ring (assembly field arithmetic); other algorithms (RS256, EdDSA, P-384) with webauthn-rs's
//! COSE key, as before.

use ring::digest::{SHA256, digest};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use url::Url;
use webauthn_rs_core::proto::{
    COSEAlgorithm, COSEKeyType, CollectedClientData, Credential, ECDSACurve, PublicKeyCredential,
};

use super::{Asserted, AssertionRefused};

/// Authenticator data flags (WebAuthn §6.1).
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;

/// What the assertion must match: the session's challenge and the relying party's id and
/// allowed origins.
pub(crate) struct Expected<'a> {
    pub challenge: &'a [u8],
    pub rp_id: &'a str,
    pub origins: &'a [Url],
}

fn invalid(reason: impl Into<String>) -> AssertionRefused {
    AssertionRefused::Invalid(reason.into())
}

/// Check `pkc` (already parsed from the browser's JSON) for the stored `cred`, whose counter and
/// backup flags are the ones stored after its last use.
pub(crate) fn verify(
    pkc: &PublicKeyCredential,
    expected: &Expected<'_>,
    cred: &Credential,
) -> Result<Asserted, AssertionRefused> {
    if cred.cred_id.as_slice() != pkc.raw_id.as_slice() {
        return Err(invalid("the assertion names another credential"));
    }
    let client_data_bytes: &[u8] = pkc.response.client_data_json.as_ref();
    let auth_data: &[u8] = pkc.response.authenticator_data.as_ref();
    let signature: &[u8] = pkc.response.signature.as_ref();
    let client: CollectedClientData = serde_json::from_slice(client_data_bytes)
        .map_err(|e| invalid(format!("the client data is not valid JSON: {e}")))?;
    if client.type_ != "webauthn.get" {
        return Err(invalid(format!("the client data type is {:?}, not webauthn.get", client.type_)));
    }
    if client.challenge.as_slice() != expected.challenge {
        return Err(invalid("the client data answers another challenge"));
    }
    if !expected
        .origins
        .iter()
        .any(|o| webauthn_rs_core::proto::origin::origins_match(false, false, &client.origin, o))
    {
        return Err(invalid(format!("the origin {} is not one of the relying party's", client.origin)));
    }
    // rpIdHash (32) | flags (1) | signCount (4) | attested credential data, extensions (ignored).
    let (Some(rp_id_hash), Some(&flags), Some(counter)) =
        (auth_data.get(..32), auth_data.get(32), auth_data.get(33..37))
    else {
        return Err(invalid(format!("the authenticator data is {} bytes, fewer than 37", auth_data.len())));
    };
    // The appid extension (a U2F credential's old id) is never requested: only the RP id counts.
    if rp_id_hash != digest(&SHA256, expected.rp_id.as_bytes()).as_ref() {
        return Err(invalid(format!(
            "the authenticator data is not for the relying party {}",
            expected.rp_id
        )));
    }
    if flags & UP == 0 {
        return Err(invalid("the user was not present (UP flag)"));
    }
    if flags & UV == 0 {
        return Err(invalid("the user was not verified (UV flag)"));
    }
    let (backup_eligible, backup_state) = (flags & BE != 0, flags & BS != 0);
    if backup_eligible != cred.backup_eligible {
        return Err(invalid("the credential's backup eligibility changed since it was registered"));
    }
    if backup_state && !backup_eligible {
        return Err(invalid("the credential claims to be backed up but is not backup eligible"));
    }
    let mut signed = Vec::with_capacity(auth_data.len() + 32);
    signed.extend_from_slice(auth_data);
    signed.extend_from_slice(digest(&SHA256, client_data_bytes).as_ref());
    if !signature_verifies(cred, signature, &signed) {
        return Err(invalid("the signature does not verify with the passkey's public key"));
    }
    let counter = u32::from_be_bytes([counter[0], counter[1], counter[2], counter[3]]);
    // A counter of 0 on both sides: the authenticator keeps none (most synced passkeys).
    if (counter > 0 || cred.counter > 0) && counter <= cred.counter {
        return Err(AssertionRefused::Cloned { stored: cred.counter, presented: counter });
    }
    Ok(Asserted { user_verified: true, sign_count: counter, backup_eligible, backup_state })
}

/// Does `signature` verify over `signed` with the credential's public key? ES256 with ring;
/// anything else with webauthn-rs's COSE key.
fn signature_verifies(cred: &Credential, signature: &[u8], signed: &[u8]) -> bool {
    match (&cred.cred.type_, &cred.cred.key) {
        (COSEAlgorithm::ES256, COSEKeyType::EC_EC2(k)) if k.curve == ECDSACurve::SECP256R1 => {
            if k.x.len() != 32 || k.y.len() != 32 {
                return false;
            }
            let mut point = [0u8; 65];
            point[0] = 0x04;
            point[1..33].copy_from_slice(&k.x);
            point[33..].copy_from_slice(&k.y);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &point[..]).verify(signed, signature).is_ok()
        }
        _ => cred.cred.verify_signature(signature, signed).unwrap_or(false),
    }
}
