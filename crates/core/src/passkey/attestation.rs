//! Attestation trust anchors: the root certificates a registration's attestation must chain to
//! when the authenticator policy asks for verified attestation ([`crate::policy::Attestation`]).
//!
//! Parsing a PEM bundle is pure; the server reads the files (the shipped roots and
//! `--attestation-roots`). Each root is trusted for any AAGUID it attests (webauthn-rs's blanket
//! allow): which AAGUIDs may register is the policy's list, not the root's.

use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::AttestationCaList;

/// Root certificates registrations' attestations may chain to.
#[derive(Debug, Clone, Default)]
pub struct AttestationRoots {
    pub(super) cas: AttestationCaList,
}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

impl AttestationRoots {
    /// The certificates of a PEM bundle (text outside the `CERTIFICATE` blocks, such as comments
    /// naming them, is ignored). Errors name the certificate by its position (1-based).
    pub fn from_pem_bundle(pem: &str) -> Result<AttestationRoots, String> {
        let mut cas = AttestationCaList::default();
        let mut rest = pem;
        let mut n = 0;
        while let Some(start) = rest.find(BEGIN) {
            n += 1;
            let end = rest[start..].find(END).ok_or_else(|| format!("certificate {n}: no {END}"))?;
            let block = &rest[start..start + end + END.len()];
            let one = AttestationCaList::try_from(block.as_bytes())
                .map_err(|e| format!("certificate {n}: not a certificate ({e})"))?;
            cas.union(&one);
            rest = &rest[start + end + END.len()..];
        }
        if n == 0 {
            return Err("no PEM certificate in it".to_string());
        }
        Ok(AttestationRoots { cas })
    }

    /// Trust the roots of `other` too.
    pub fn extend(&mut self, other: &AttestationRoots) {
        self.cas.union(&other.cas);
    }

    /// How many distinct roots.
    pub fn len(&self) -> usize {
        self.cas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }
}

/// Is this a failure of the attestation statement or its trust (as opposed to the origin,
/// challenge or signature of the registration)?
pub(super) fn is_attestation_failure(e: &WebauthnError) -> bool {
    matches!(e, WebauthnError::MissingAttestationCaList | WebauthnError::X509DerInvalid)
        || format!("{e:?}").starts_with("Attestation")
}
