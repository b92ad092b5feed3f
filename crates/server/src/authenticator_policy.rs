//! The authenticator policy file (`--authenticator-policy`) and the attestation roots
//! (`data/attestation-roots.pem`, shipped; `--attestation-roots` adds to or replaces them), read
//! at start. Parsing and the rule itself are the core's ([`passlink_core::policy`],
//! [`passlink_core::passkey::AttestationRoots`]); errors here name the file.

use std::path::Path;

use passlink_core::passkey::AttestationRoots;
use passlink_core::policy::Policy;

/// Root certificates of authenticator vendors (as the FIDO Metadata Service publishes them),
/// shipped with passlink.
pub const SHIPPED_ROOTS: &str = include_str!("../data/attestation-roots.pem");

/// The policy in `file`, or none (every authenticator, attestation "none").
pub fn policy(file: Option<&Path>) -> Result<Policy, String> {
    let Some(p) = file else { return Ok(Policy::default()) };
    let text =
        std::fs::read_to_string(p).map_err(|e| format!("--authenticator-policy {}: {e}", p.display()))?;
    Policy::parse(&text).map_err(|e| format!("--authenticator-policy {}: {e}", p.display()))
}

/// The roots attestations are verified against: the shipped ones and the PEM bundle `file`
/// (only the file's with `file_only`).
pub fn roots(file: Option<&Path>, file_only: bool) -> Result<AttestationRoots, String> {
    let mut roots = if file_only && file.is_some() {
        AttestationRoots::default()
    } else {
        AttestationRoots::from_pem_bundle(SHIPPED_ROOTS)
            .map_err(|e| format!("the shipped attestation roots: {e}"))?
    };
    if let Some(p) = file {
        let text =
            std::fs::read_to_string(p).map_err(|e| format!("--attestation-roots {}: {e}", p.display()))?;
        let extra = AttestationRoots::from_pem_bundle(&text)
            .map_err(|e| format!("--attestation-roots {}: {e}", p.display()))?;
        roots.extend(&extra);
    }
    Ok(roots)
}

/// The policy and roots of a configuration; warns about allow-lists that are only advisory.
pub fn load(
    policy_file: Option<&Path>,
    roots_file: Option<&Path>,
    roots_file_only: bool,
) -> Result<(Policy, AttestationRoots), String> {
    let policy = policy(policy_file)?;
    let roots = roots(roots_file, roots_file_only)?;
    if let Some(p) = policy_file {
        tracing::info!(
            file = %p.display(),
            verified_attestation = policy.verifies_attestation(),
            attestation_roots = roots.len(),
            "authenticator policy loaded"
        );
        if policy.advisory_allow_lists() {
            tracing::warn!(
                file = %p.display(),
                "an AAGUID allow-list without \"attestation\": \"verified\" is advisory: the AAGUID is \
                 self-reported by the authenticator"
            );
        }
    }
    Ok((policy, roots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_roots_are_the_seven_vendor_roots() {
        let roots = roots(None, false).unwrap();
        assert_eq!(roots.len(), 7, "Apple, Yubico (3), Google (2), Microsoft TPM");
        assert_eq!(SHIPPED_ROOTS.matches("# SHA-256 ").count(), 7, "each root names its fingerprint");
    }

    #[test]
    fn no_file_no_policy_and_a_missing_file_is_named() {
        assert_eq!(policy(None).unwrap(), Policy::default());
        let e = policy(Some(Path::new("/nonexistent/policy.json"))).unwrap_err();
        assert!(e.starts_with("--authenticator-policy /nonexistent/policy.json:"), "{e}");
        let e = roots(Some(Path::new("/nonexistent/roots.pem")), false).unwrap_err();
        assert!(e.starts_with("--attestation-roots /nonexistent/roots.pem:"), "{e}");
    }
}
