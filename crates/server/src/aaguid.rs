//! Which authenticator made a passkey: the AAGUID list passlink names authenticators from, and
//! the hosted page's look-up of one AAGUID.
//!
//! The list shipped in the binary (`data/aaguid.json`) merges the community list of passkey
//! provider AAGUIDs (names and icons) with the names of FIDO-certified authenticators (security
//! keys); `--aaguid-file` replaces it without a rebuild with a file in the same format, e.g. a
//! newer copy of the community list's `combined_aaguid.json`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use passlink_core::aaguid::Catalog;
use passlink_core::app::App;

/// The AAGUID list shipped with passlink.
pub const SHIPPED: &str = include_str!("../data/aaguid.json");

/// The list to name authenticators from: `file`, or the shipped one. A file that cannot be read
/// or is not an AAGUID list stops the start with the reason.
pub fn catalog(file: Option<&Path>) -> Result<Catalog, String> {
    match file {
        None => Catalog::parse(SHIPPED).map_err(|e| format!("the shipped AAGUID list: {e}")),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| format!("--aaguid-file {}: {e}", p.display()))?;
            Catalog::parse(&text).map_err(|e| format!("--aaguid-file {}: {e}", p.display()))
        }
    }
}

/// `GET /ui/passkey/register/authenticator?aaguid=…`: what the list calls an authenticator
/// (`{"name", "iconLight", "iconDark"}`), 404 `{}` when it does not know it. The hosted page asks
/// after the browser created the passkey, to name it after its provider. The list is public:
/// no code or token is needed.
pub(crate) async fn lookup(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let aaguid = q.get("aaguid").map(String::as_str).unwrap_or_default();
    let (status, body) = match app.authenticator(aaguid) {
        Some(p) => (
            StatusCode::OK,
            serde_json::json!({"name": p.name, "iconLight": p.icon_light, "iconDark": p.icon_dark}),
        ),
        None => (StatusCode::NOT_FOUND, serde_json::json!({})),
    };
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_names_platform_providers_and_security_keys() {
        let c = catalog(None).unwrap();
        assert!(c.len() > 300, "{}", c.len());
        let google = c.get("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4").unwrap();
        assert_eq!(google.name, "Google Password Manager");
        assert!(google.icon_light.as_deref().unwrap_or_default().starts_with("data:image/svg+xml;base64,"));
        assert_eq!(c.get("fbfc3007-154e-4ecc-8c0b-6e020557d7bd").unwrap().name, "Apple Passwords");
        assert_eq!(c.get("cb69481e-8ff7-4039-93ec-0a2729a154a8").unwrap().name, "YubiKey 5 Series");
    }

    #[test]
    fn a_file_replaces_the_shipped_list() {
        let dir = std::env::temp_dir().join(format!("passlink-aaguid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("list.json");
        std::fs::write(&f, r#"{"01020304-0506-0708-0102-030405060708": {"name": "Test key"}}"#).unwrap();
        let c = catalog(Some(&f)).unwrap();
        assert_eq!(
            (c.len(), c.get("01020304050607080102030405060708").map(|p| p.name.as_str())),
            (1, Some("Test key"))
        );
        std::fs::write(&f, "[1]").unwrap();
        assert!(catalog(Some(&f)).unwrap_err().starts_with("--aaguid-file"));
        assert!(catalog(Some(&dir.join("missing.json"))).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
