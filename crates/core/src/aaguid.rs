//! Which authenticator made a passkey: its AAGUID (from the attested credential data of the
//! registration) and the provider name and icons a catalog gives it.
//!
//! The catalog has the shape of the community list of passkey provider AAGUIDs
//! (`{"<aaguid>": {"name": …, "icon_dark": …, "icon_light": …}}`, icons as `data:` URIs). The
//! server ships one and may be given another file; parsing it is pure and lives here.

use std::collections::HashMap;

use serde::Deserialize;

/// An authenticator model (or passkey provider) as a catalog names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Provider {
    pub name: String,
    /// An icon for dark backgrounds (a `data:image/svg+xml;base64,…` URI), if any.
    #[serde(default)]
    pub icon_dark: Option<String>,
    /// An icon for light backgrounds, if any.
    #[serde(default)]
    pub icon_light: Option<String>,
}

/// AAGUID (lower-case, hyphenated) → provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    providers: HashMap<String, Provider>,
}

impl Catalog {
    /// Parse a catalog in the community list's format. Keys must be AAGUIDs; an entry must have
    /// a non-empty name.
    pub fn parse(json: &str) -> Result<Catalog, String> {
        let raw: HashMap<String, Provider> =
            serde_json::from_str(json).map_err(|e| format!("not an AAGUID list: {e}"))?;
        let mut providers = HashMap::with_capacity(raw.len());
        for (key, p) in raw {
            let aaguid = normalize(&key).ok_or_else(|| format!("{key:?} is not an AAGUID"))?;
            if p.name.trim().is_empty() {
                return Err(format!("{key}: the name is empty"));
            }
            providers.insert(aaguid, p);
        }
        Ok(Catalog { providers })
    }

    /// The provider of an AAGUID (any case, with or without hyphens).
    pub fn get(&self, aaguid: &str) -> Option<&Provider> {
        self.providers.get(&normalize(aaguid)?)
    }

    pub fn len(&self) -> usize {
        self.providers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

/// An AAGUID as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lower case), from 32 hex digits with or
/// without hyphens.
pub fn normalize(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|c| *c != '-').map(|c| c.to_ascii_lowercase()).collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

/// The AAGUID of 16 bytes, or `None` for all zeros (an authenticator, or a browser, that does not
/// tell).
pub fn from_bytes(bytes: &[u8; 16]) -> Option<String> {
    if bytes.iter().all(|b| *b == 0) {
        return None;
    }
    normalize(&crate::hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_community_format_and_looks_up_in_any_spelling() {
        let c = Catalog::parse(
            r#"{"EA9B8D66-4d01-1d21-3ce4-b6b48cb575d4": {"name": "Google Password Manager",
                 "icon_light": "data:image/svg+xml;base64,PHN2Zz4=", "icon_dark": "data:x"},
                "cb69481e-8ff7-4039-93ec-0a2729a154a8": {"name": "YubiKey 5 Series"}}"#,
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        let g = c.get("ea9b8d664d011d213ce4b6b48cb575d4").unwrap();
        assert_eq!(g.name, "Google Password Manager");
        assert_eq!(g.icon_light.as_deref(), Some("data:image/svg+xml;base64,PHN2Zz4="));
        let y = c.get("CB69481E-8FF7-4039-93EC-0A2729A154A8").unwrap();
        assert_eq!((y.name.as_str(), y.icon_dark.as_deref()), ("YubiKey 5 Series", None));
        assert!(c.get("00000000-0000-0000-0000-000000000000").is_none());
        assert!(c.get("not an aaguid").is_none());
    }

    #[test]
    fn refuses_what_is_not_an_aaguid_list() {
        assert!(Catalog::parse("[]").is_err());
        assert!(Catalog::parse(r#"{"nope": {"name": "x"}}"#).unwrap_err().contains("not an AAGUID"));
        assert!(Catalog::parse(r#"{"cb69481e-8ff7-4039-93ec-0a2729a154a8": {"name": " "}}"#).is_err());
        assert!(Catalog::parse(r#"{"cb69481e-8ff7-4039-93ec-0a2729a154a8": {}}"#).is_err());
        assert!(Catalog::parse("{}").unwrap().is_empty(), "the list's retirement: an empty object");
    }

    #[test]
    fn zero_bytes_are_no_aaguid() {
        assert_eq!(from_bytes(&[0; 16]), None);
        let mut b = [0u8; 16];
        b[0] = 0xab;
        b[15] = 1;
        assert_eq!(from_bytes(&b).as_deref(), Some("ab000000-0000-0000-0000-000000000001"));
    }
}
