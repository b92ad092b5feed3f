//! OpenID Connect: the read models of projects, applications (OIDC clients), authorization
//! requests and grants (ZITADEL's "OIDC sessions"), each folded from its own aggregate's events,
//! and the pure rules of the flow (redirect URIs, PKCE, scopes, claims).
//!
//! - A **project** groups applications of one organization (`AggregateKind::Project`).
//! - An **application** is an OIDC client; its client id is its application id
//!   (`AggregateKind::Application`, resource owner = the project's organization). A confidential
//!   client's secret is stored as SHA-256 (it carries 256 bits of entropy, like every token).
//! - An **authorization request** (`AggregateKind::AuthRequest`, id `V2_<id>`) is what
//!   `/oauth/v2/authorize` accepted; a login UI finishes it with a session (CreateCallback), which
//!   records the hash of a one-time code, or with an error.
//! - A **grant** (`AggregateKind::Grant`, id `V2_<id>`) is what a code was exchanged for: the
//!   hashes of the current access and refresh tokens. A refresh rotates both; presenting a code or
//!   a refresh token a second time revokes the grant (RFC 6819 §5.2.2.3, OAuth 2.1 §4.3.1).
//!
//! Tokens and codes are `<aggregate id>.<256-bit random>`: the id says which aggregate to load,
//! only the SHA-256 of the whole value is stored.

use sha2::{Digest, Sha256};

use crate::event::Recorded;

/// `OIDCResponseType`: ZITADEL's wire values.
pub mod response_type {
    pub const CODE: i32 = 1;
}

/// `OIDCGrantType`: ZITADEL's wire values (0 is a real value).
pub mod grant_type {
    pub const AUTHORIZATION_CODE: i32 = 0;
    pub const REFRESH_TOKEN: i32 = 2;
}

/// `OIDCApplicationType`: ZITADEL's wire values.
pub mod app_type {
    pub const WEB: i32 = 0;
    pub const USER_AGENT: i32 = 1;
    pub const NATIVE: i32 = 2;
}

/// `OIDCAuthMethodType`: ZITADEL's wire values.
pub mod auth_method {
    pub const BASIC: i32 = 0;
    pub const POST: i32 = 1;
    pub const NONE: i32 = 2;
    pub const PRIVATE_KEY_JWT: i32 = 3;
}

/// How long a login UI has to finish an authorization request.
pub const AUTH_REQUEST_LIFETIME_SECS: i64 = 30 * 60;
/// How long an authorization code may be exchanged.
pub const CODE_LIFETIME_SECS: i64 = 120;
/// How long an unused refresh token stays valid (each refresh starts it again).
pub const REFRESH_IDLE_SECS: i64 = 30 * 24 * 3600;

/// The scopes passlink grants; others are dropped from the request.
pub const SUPPORTED_SCOPES: &[&str] = &["openid", "profile", "email", "phone", "address", "offline_access"];

mod clients;
mod flow;

pub use clients::*;
pub use flow::*;

/// Fold one aggregate's events: `created` makes the view from the event that creates it
/// (`None` for any other), `apply` folds every later event into it.
fn fold_events<V>(
    events: &[Recorded],
    created: impl Fn(&Recorded) -> Option<V>,
    mut apply: impl FnMut(&mut V, &Recorded),
) -> Option<V> {
    let mut view = None;
    for r in events {
        match (created(r), view.as_mut()) {
            (Some(v), _) => view = Some(v),
            (None, Some(v)) => apply(v, r),
            (None, None) => {}
        }
    }
    view
}

/// `<aggregate id>.<secret>` → the aggregate id, if the value has that shape.
pub fn token_aggregate(token: &str) -> Option<&str> {
    let (id, secret) = token.split_once('.')?;
    (id.starts_with("V2_") && id.len() <= 200 && !secret.is_empty() && !secret.contains('.')).then_some(id)
}

/// Does `verifier` answer the S256 `challenge` (RFC 7636 §4.6)? The verifier must be 43–128
/// characters of the unreserved set.
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let valid = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !valid {
        return false;
    }
    let digest = Sha256::digest(verifier.as_bytes());
    let computed = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, digest);
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), challenge.as_bytes()).into()
}

/// `at_hash`: the left half of SHA-256 of the access token, base64url (OIDC Core §3.1.3.6).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &digest[..16])
}

/// The requested scopes passlink grants, in request order, without duplicates.
pub fn granted_scopes(requested: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in requested.split_ascii_whitespace() {
        if SUPPORTED_SCOPES.contains(&s) && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// `redirect_uri` with the response parameters in its query (or fragment), keeping the query
/// it already has.
pub fn response_url(redirect_uri: &str, fragment: bool, params: &[(&str, &str)]) -> String {
    let encoded: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    match url::Url::parse(redirect_uri) {
        Ok(mut u) if fragment => {
            u.set_fragment(Some(&encoded));
            u.to_string()
        }
        Ok(mut u) => {
            u.query_pairs_mut().extend_pairs(params);
            u.to_string()
        }
        Err(_) => format!("{redirect_uri}{}{encoded}", if fragment { '#' } else { '?' }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dev_mode: bool, app_type: i32, uris: &[&str]) -> OidcConfig {
        OidcConfig {
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            app_type,
            dev_mode,
            ..OidcConfig::default()
        }
    }

    #[test]
    fn redirect_uris_match_exactly_and_http_needs_development_mode() {
        let web = config(false, app_type::WEB, &["https://app.example/cb", "http://localhost:3000/cb"]);
        assert!(web.redirect_allowed("https://app.example/cb"));
        assert!(!web.redirect_allowed("https://app.example/cb/"), "exact match only");
        assert!(!web.redirect_allowed("https://app.example/cb?x=1"));
        assert!(!web.redirect_allowed("http://localhost:3000/cb"), "http without development mode");
        assert!(
            config(true, app_type::WEB, &["http://localhost:3000/cb"])
                .redirect_allowed("http://localhost:3000/cb")
        );
        let native = config(false, app_type::NATIVE, &["http://127.0.0.1:8123/cb", "com.example.app:/cb"]);
        assert!(native.redirect_allowed("http://127.0.0.1:8123/cb"));
        assert!(native.redirect_allowed("com.example.app:/cb"));
        assert!(
            !config(false, app_type::WEB, &["com.example.app:/cb"]).redirect_allowed("com.example.app:/cb")
        );
        assert!(!web.compliance_problems().is_empty());
    }

    #[test]
    fn pkce_s256_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(!pkce_s256_matches("short", challenge), "a verifier under 43 characters");
        assert!(!pkce_s256_matches(challenge, challenge), "plain is not S256");
    }

    #[test]
    fn tokens_name_their_aggregate() {
        assert_eq!(token_aggregate("V2_123.abc"), Some("V2_123"));
        assert_eq!(token_aggregate("V2_123"), None);
        assert_eq!(token_aggregate("x.y"), None);
        assert_eq!(token_aggregate("V2_1.a.b"), None);
    }

    #[test]
    fn response_parameters_keep_the_redirect_uris_query() {
        assert_eq!(
            response_url("https://a.example/cb?x=1", false, &[("code", "c d"), ("state", "s")]),
            "https://a.example/cb?x=1&code=c+d&state=s"
        );
        assert_eq!(
            response_url("https://a.example/cb", true, &[("code", "c")]),
            "https://a.example/cb#code=c"
        );
    }

    #[test]
    fn only_known_scopes_are_granted_once() {
        assert_eq!(granted_scopes("openid  email openid urn:x profile"), ["openid", "email", "profile"]);
    }

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OIDC Core's example: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
    }
}
