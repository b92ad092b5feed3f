//! The authenticator policy: which authenticators (by AAGUID) may register a passkey, per
//! instance and optionally per organization, and whether their attestation must verify.
//!
//! The policy is configuration (a JSON file the server reads at start, parsed here, purely):
//!
//! ```json
//! {"deny": ["<aaguid>", …],            // or "allow": [...]; not both
//!  "attestation": "none",              // or "verified"; default "none"
//!  "organizations": {"<orgId>": {"allow": [...], "attestation": "verified"}}}
//! ```
//!
//! An organization's entry replaces the instance's list for that organization (an entry without
//! a list: no list there); its `attestation` defaults to the instance's. Under an allow-list an
//! authenticator that reports no AAGUID (all zeros) is refused unless the zero AAGUID
//! `00000000-0000-0000-0000-000000000000` is listed; under a deny-list it may register unless
//! the zero AAGUID is listed.
//!
//! Without attestation ("none") the AAGUID is self-reported: an allow-list then only keeps out
//! honest authenticators (advisory); "verified" makes the AAGUID a fact the authenticator's
//! vendor certified (the attestation chains to a trusted root).

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

use crate::error::{Error, Kind};

/// The AAGUID of an authenticator that does not tell one.
pub const ZERO_AAGUID: &str = "00000000-0000-0000-0000-000000000000";

/// Whether a registration's attestation statement is requested and verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attestation {
    /// Ask for none (`attestation: "none"`), check none: passlink's default.
    #[default]
    None,
    /// Ask for it (`attestation: "direct"`) and refuse a registration whose attestation does not
    /// chain to a trusted root (none, self attestation, unknown root).
    Verified,
}

/// An allow- or deny-list of AAGUIDs (lower-case, hyphenated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum List {
    Allow(BTreeSet<String>),
    Deny(BTreeSet<String>),
}

/// The rule for one organization (or the instance).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    pub list: Option<List>,
    pub attestation: Attestation,
}

/// The authenticator policy of the instance, with per-organization overrides.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    instance: Rule,
    organizations: HashMap<String, Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    allow: Option<Vec<String>>,
    deny: Option<Vec<String>>,
    attestation: Option<Attestation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    allow: Option<Vec<String>>,
    deny: Option<Vec<String>>,
    attestation: Option<Attestation>,
    #[serde(default)]
    organizations: HashMap<String, RawRule>,
}

fn aaguids(at: &str, list: Vec<String>) -> Result<BTreeSet<String>, String> {
    list.iter()
        .enumerate()
        .map(|(i, a)| crate::aaguid::normalize(a).ok_or_else(|| format!("{at}[{i}]: {a:?} is not an AAGUID")))
        .collect()
}

fn list(at: &str, allow: Option<Vec<String>>, deny: Option<Vec<String>>) -> Result<Option<List>, String> {
    match (allow, deny) {
        (Some(_), Some(_)) => Err(format!("{at}: \"allow\" and \"deny\" together (use one of them)")),
        (Some(a), None) => {
            let prefix = if at.is_empty() { "allow".to_string() } else { format!("{at}.allow") };
            Ok(Some(List::Allow(aaguids(&prefix, a)?)))
        }
        (None, Some(d)) => {
            let prefix = if at.is_empty() { "deny".to_string() } else { format!("{at}.deny") };
            Ok(Some(List::Deny(aaguids(&prefix, d)?)))
        }
        (None, None) => Ok(None),
    }
}

impl Policy {
    /// Parse a policy file's JSON. Errors name the entry (`organizations.123.allow[2]: …`).
    pub fn parse(json: &str) -> Result<Policy, String> {
        let raw: RawPolicy = serde_json::from_str(json).map_err(|e| format!("not a policy: {e}"))?;
        let instance = Rule {
            list: list("", raw.allow, raw.deny).map_err(|e| e.trim_start_matches(": ").to_string())?,
            attestation: raw.attestation.unwrap_or_default(),
        };
        let mut organizations = HashMap::with_capacity(raw.organizations.len());
        for (org, r) in raw.organizations {
            let at = format!("organizations.{org}");
            if org.trim().is_empty() {
                return Err(format!("{at}: an empty organization id"));
            }
            let rule = Rule {
                list: list(&at, r.allow, r.deny)?,
                attestation: r.attestation.unwrap_or(instance.attestation),
            };
            organizations.insert(org, rule);
        }
        Ok(Policy { instance, organizations })
    }

    /// The rule for a user of `org_id`: the organization's entry, else the instance's.
    pub fn rule(&self, org_id: &str) -> &Rule {
        self.organizations.get(org_id).unwrap_or(&self.instance)
    }

    /// Does any rule ask for verified attestation (the server then needs trust anchors)?
    pub fn verifies_attestation(&self) -> bool {
        std::iter::once(&self.instance)
            .chain(self.organizations.values())
            .any(|r| r.attestation == Attestation::Verified)
    }

    /// Does any rule allow-list AAGUIDs without verifying attestation (advisory only)?
    pub fn advisory_allow_lists(&self) -> bool {
        std::iter::once(&self.instance)
            .chain(self.organizations.values())
            .any(|r| matches!(r.list, Some(List::Allow(_))) && r.attestation == Attestation::None)
    }
}

/// The refusal of an authenticator the policy does not allow: FailedPrecondition, the
/// registration code stays usable (the user may try another authenticator).
pub fn not_allowed(aaguid: &str) -> Error {
    Error::new(Kind::FailedPrecondition, "PASSKEY-Pol01", "Errors.User.WebAuthN.AuthenticatorNotAllowed")
        .with_cause(format!("authenticator {aaguid} is not allowed by the authenticator policy"))
}

/// The refusal of a registration whose attestation does not verify under a "verified" rule.
pub fn attestation_not_trusted(cause: impl std::fmt::Display) -> Error {
    Error::new(Kind::FailedPrecondition, "PASSKEY-Att01", "Errors.User.WebAuthN.AttestationNotTrusted")
        .with_cause(cause)
}

impl Rule {
    /// May the authenticator with this AAGUID (`None`: it did not tell) register?
    pub fn check(&self, aaguid: Option<&str>) -> Result<(), Error> {
        let aaguid = aaguid.and_then(crate::aaguid::normalize).unwrap_or_else(|| ZERO_AAGUID.to_string());
        let allowed = match &self.list {
            None => true,
            Some(List::Allow(set)) => set.contains(&aaguid),
            Some(List::Deny(set)) => !set.contains(&aaguid),
        };
        if allowed { Ok(()) } else { Err(not_allowed(&aaguid)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YUBIKEY: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
    const CHROMIUM: &str = "01020304-0506-0708-0102-030405060708";

    #[test]
    fn no_policy_allows_every_authenticator_without_attestation() {
        let p = Policy::parse("{}").unwrap();
        assert_eq!(p, Policy::default());
        let r = p.rule("any org");
        assert_eq!(r.attestation, Attestation::None);
        assert!(r.check(Some(YUBIKEY)).is_ok());
        assert!(r.check(None).is_ok());
        assert!(!p.verifies_attestation());
        assert!(!p.advisory_allow_lists());
    }

    #[test]
    fn an_allow_list_admits_only_its_aaguids_and_refuses_the_silent_ones() {
        let p = Policy::parse(&format!(r#"{{"allow": ["{}"]}}"#, YUBIKEY.to_uppercase())).unwrap();
        let r = p.rule("o1");
        assert!(r.check(Some(YUBIKEY)).is_ok(), "any spelling in the file");
        assert!(r.check(Some("CB69481E8FF7403993EC0A2729A154A8")).is_ok());
        let e = r.check(Some(CHROMIUM)).unwrap_err();
        assert_eq!((e.kind, e.id), (Kind::FailedPrecondition, "PASSKEY-Pol01"));
        assert_eq!(e.key, "Errors.User.WebAuthN.AuthenticatorNotAllowed");
        assert!(e.cause.as_deref().unwrap_or_default().contains(CHROMIUM));
        assert!(e.text().contains("not allowed"), "{}", e.text());
        assert_eq!(r.check(None).unwrap_err().id, "PASSKEY-Pol01", "no AAGUID under an allow-list");
        assert_eq!(r.check(Some(ZERO_AAGUID)).unwrap_err().id, "PASSKEY-Pol01");
        assert!(p.advisory_allow_lists(), "an allow-list without attestation is advisory");
    }

    #[test]
    fn a_deny_list_refuses_its_aaguids_and_admits_the_rest() {
        let p = Policy::parse(&format!(r#"{{"deny": ["{CHROMIUM}"]}}"#)).unwrap();
        let r = p.rule("o1");
        assert_eq!(r.check(Some(CHROMIUM)).unwrap_err().id, "PASSKEY-Pol01");
        assert!(r.check(Some(YUBIKEY)).is_ok());
        assert!(r.check(None).is_ok(), "no AAGUID passes a deny-list");
        let strict = Policy::parse(&format!(r#"{{"deny": ["{ZERO_AAGUID}"]}}"#)).unwrap();
        assert_eq!(strict.rule("o1").check(None).unwrap_err().id, "PASSKEY-Pol01");
        let lenient = Policy::parse(&format!(r#"{{"allow": ["{YUBIKEY}", "{ZERO_AAGUID}"]}}"#)).unwrap();
        assert!(lenient.rule("o1").check(None).is_ok());
    }

    #[test]
    fn an_organization_entry_overrides_the_instance() {
        let p = Policy::parse(&format!(
            r#"{{"deny": ["{CHROMIUM}"], "attestation": "verified",
                 "organizations": {{"o2": {{"allow": ["{CHROMIUM}"], "attestation": "none"}},
                                    "o3": {{"deny": ["{YUBIKEY}"]}},
                                    "o4": {{}}}}}}"#
        ))
        .unwrap();
        assert_eq!(p.rule("o1").check(Some(CHROMIUM)).unwrap_err().id, "PASSKEY-Pol01");
        assert_eq!(p.rule("o1").attestation, Attestation::Verified);
        assert!(p.rule("o2").check(Some(CHROMIUM)).is_ok());
        assert_eq!(p.rule("o2").check(Some(YUBIKEY)).unwrap_err().id, "PASSKEY-Pol01");
        assert_eq!(p.rule("o2").attestation, Attestation::None);
        assert!(p.rule("o3").check(Some(CHROMIUM)).is_ok(), "the org's list replaces the instance's");
        assert!(p.rule("o3").check(Some(YUBIKEY)).is_err());
        assert_eq!(p.rule("o3").attestation, Attestation::Verified, "inherited");
        assert!(p.rule("o4").check(Some(CHROMIUM)).is_ok(), "an entry without a list: none");
        assert!(p.verifies_attestation());
        assert!(p.advisory_allow_lists(), "o2 allow-lists without attestation");
    }

    #[test]
    fn errors_name_the_entry() {
        let e = Policy::parse(r#"{"allow": ["cb69481e-8ff7-4039-93ec-0a2729a154a8", "nope"]}"#).unwrap_err();
        assert_eq!(e, r#"allow[1]: "nope" is not an AAGUID"#);
        let e = Policy::parse(r#"{"organizations": {"77": {"deny": ["x"]}}}"#).unwrap_err();
        assert_eq!(e, r#"organizations.77.deny[0]: "x" is not an AAGUID"#);
        let e = Policy::parse(r#"{"organizations": {"77": {"deny": [], "allow": []}}}"#).unwrap_err();
        assert!(e.starts_with("organizations.77: \"allow\" and \"deny\" together"), "{e}");
        let e = Policy::parse(r#"{"allow": [], "deny": []}"#).unwrap_err();
        assert!(e.starts_with("\"allow\" and \"deny\" together"), "{e}");
        assert!(Policy::parse(r#"{"attestation": "direct"}"#).unwrap_err().contains("direct"));
        assert!(Policy::parse(r#"{"alow": []}"#).unwrap_err().contains("alow"), "typos are refused");
        assert!(Policy::parse("[]").is_err());
    }
}
