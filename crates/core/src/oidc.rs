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

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::{Event, Recorded};
use crate::time::Timestamp;

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

/// An OIDC client's configuration (ZITADEL's `OIDCConfiguration`, enums as their wire values).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OidcConfig {
    pub redirect_uris: Vec<String>,
    pub response_types: Vec<i32>,
    pub grant_types: Vec<i32>,
    pub app_type: i32,
    pub auth_method: i32,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub dev_mode: bool,
    #[serde(default)]
    pub access_token_type: i32,
    #[serde(default)]
    pub access_token_role_assertion: bool,
    #[serde(default)]
    pub id_token_role_assertion: bool,
    #[serde(default)]
    pub id_token_userinfo_assertion: bool,
    /// Milliseconds.
    #[serde(default)]
    pub clock_skew_ms: u64,
    #[serde(default)]
    pub additional_origins: Vec<String>,
    #[serde(default)]
    pub skip_native_app_success_page: bool,
    #[serde(default)]
    pub back_channel_logout_uri: String,
    /// `login_version.login_v2.base_uri`: this client's external login UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_base_uri: Option<String>,
    /// `login_version` was set to login v2 (with or without a base URI).
    #[serde(default)]
    pub login_v2: bool,
}

impl OidcConfig {
    pub fn is_public(&self) -> bool {
        self.auth_method == auth_method::NONE
    }

    pub fn allows_refresh(&self) -> bool {
        self.grant_types.contains(&grant_type::REFRESH_TOKEN)
    }

    /// Is `uri` one of the registered redirect URIs (exact string match) and allowed for this
    /// client: https, or http only in development mode or for a native app on a loopback host;
    /// native apps may also use their own scheme.
    pub fn redirect_allowed(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri) && self.scheme_allowed(uri)
    }

    pub fn post_logout_allowed(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == uri) && self.scheme_allowed(uri)
    }

    fn scheme_allowed(&self, uri: &str) -> bool {
        let Ok(u) = url::Url::parse(uri) else { return false };
        if u.fragment().is_some() {
            return false;
        }
        match u.scheme() {
            "https" => true,
            "http" => {
                self.dev_mode
                    || (self.app_type == app_type::NATIVE
                        && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")))
            }
            _ => self.app_type == app_type::NATIVE || self.dev_mode,
        }
    }

    /// ZITADEL's compliance problems of this configuration (message keys); empty = compliant.
    pub fn compliance_problems(&self) -> Vec<&'static str> {
        let mut problems = Vec::new();
        if self.redirect_uris.is_empty() {
            problems.push("Application.OIDC.V1.NoRedirectUris");
        }
        if !self.dev_mode && self.redirect_uris.iter().any(|u| !self.scheme_allowed(u)) {
            problems.push("Application.OIDC.V1.NotAllCombinationsAreAllowed");
        }
        problems
    }
}

/// `ApplicationState` / `ProjectState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectState {
    Active,
    Inactive,
    Removed,
}

/// Payload of `project.added`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProjectSettings {
    pub name: String,
    #[serde(default)]
    pub role_assertion: bool,
    #[serde(default)]
    pub authorization_required: bool,
    #[serde(default)]
    pub project_access_required: bool,
    #[serde(default)]
    pub private_labeling_setting: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectView {
    pub id: String,
    pub org_id: String,
    pub settings: ProjectSettings,
    pub state: ObjectState,
    pub created_at: Timestamp,
    pub changed_at: Timestamp,
    pub sequence: u64,
}

impl ProjectView {
    /// Fold a project's events; `None` if it was never added.
    pub fn fold(events: &[Recorded]) -> Option<ProjectView> {
        let created = |r: &Recorded| match &r.event {
            Event::ProjectAdded(s) => Some(ProjectView {
                id: r.aggregate_id.clone(),
                org_id: r.resource_owner.clone(),
                settings: s.clone(),
                state: ObjectState::Active,
                created_at: r.created_at,
                changed_at: r.created_at,
                sequence: r.sequence,
            }),
            _ => None,
        };
        fold_events(events, created, |v: &mut ProjectView, r| {
            match &r.event {
                Event::ProjectChanged(s) => v.settings = s.clone(),
                Event::ProjectDeactivated {} => v.state = ObjectState::Inactive,
                Event::ProjectReactivated {} => v.state = ObjectState::Active,
                Event::ProjectRemoved {} => v.state = ObjectState::Removed,
                _ => {}
            }
            v.changed_at = r.created_at;
            v.sequence = r.sequence;
        })
    }
}

/// Payload of `application.added` / `application.changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSettings {
    pub project_id: String,
    pub name: String,
    /// `None`: an API application (client credentials only; no sign-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcConfig>,
    /// An API application's `APIAuthMethodType` (0 basic, 1 private key JWT).
    #[serde(default)]
    pub api_auth_method: i32,
}

/// An application's public key (the private half is returned once, never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppKey {
    pub id: String,
    pub public_key: String,
    pub expiration: Timestamp,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppView {
    pub id: String,
    pub org_id: String,
    pub settings: AppSettings,
    /// Hex SHA-256 of the current client secret (confidential clients).
    pub secret_hash: Option<String>,
    /// Public keys for private_key_jwt (ApplicationService CreateApplicationKey).
    #[serde(default)]
    pub keys: Vec<AppKey>,
    pub state: ObjectState,
    pub created_at: Timestamp,
    pub changed_at: Timestamp,
    pub sequence: u64,
}

impl AppView {
    pub fn client_id(&self) -> &str {
        &self.id
    }

    /// Fold an application's events; `None` if it was never added.
    pub fn fold(events: &[Recorded]) -> Option<AppView> {
        let created = |r: &Recorded| match &r.event {
            Event::ApplicationAdded(s) => Some(AppView {
                id: r.aggregate_id.clone(),
                org_id: r.resource_owner.clone(),
                settings: s.clone(),
                secret_hash: None,
                keys: Vec::new(),
                state: ObjectState::Active,
                created_at: r.created_at,
                changed_at: r.created_at,
                sequence: r.sequence,
            }),
            _ => None,
        };
        fold_events(events, created, |v: &mut AppView, r| {
            match &r.event {
                Event::ApplicationChanged(s) => v.settings = s.clone(),
                Event::ApplicationSecretSet { hash } => v.secret_hash = Some(hash.clone()),
                Event::ApplicationKeyAdded { key_id, public_key, expiration } => v.keys.push(AppKey {
                    id: key_id.clone(),
                    public_key: public_key.clone(),
                    expiration: *expiration,
                    created_at: r.created_at,
                }),
                Event::ApplicationKeyRemoved { key_id } => v.keys.retain(|k| k.id != *key_id),
                Event::ApplicationDeactivated {} => v.state = ObjectState::Inactive,
                Event::ApplicationReactivated {} => v.state = ObjectState::Active,
                Event::ApplicationRemoved {} => v.state = ObjectState::Removed,
                _ => {}
            }
            v.changed_at = r.created_at;
            v.sequence = r.sequence;
        })
    }

    /// Does the client need a secret at the token endpoint?
    pub fn needs_secret(&self) -> bool {
        match &self.settings.oidc {
            Some(o) => matches!(o.auth_method, auth_method::BASIC | auth_method::POST),
            None => self.settings.api_auth_method == 0,
        }
    }
}

/// `prompt` values (ZITADEL's `Prompt` enum numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    None = 1,
    Login = 2,
    Consent = 3,
    SelectAccount = 4,
    Create = 5,
}

impl Prompt {
    pub fn parse(s: &str) -> Option<Prompt> {
        Some(match s {
            "none" => Prompt::None,
            "login" => Prompt::Login,
            "consent" => Prompt::Consent,
            "select_account" => Prompt::SelectAccount,
            "create" => Prompt::Create,
            _ => return None,
        })
    }
}

/// Payload of `auth_request.added`: the validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequestAdded {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The S256 code challenge, if the client sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub prompt: Vec<Prompt>,
    #[serde(default)]
    pub ui_locales: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// `fragment` instead of the query (response_mode).
    #[serde(default)]
    pub fragment: bool,
}

/// Payload of `auth_request.session.linked`: the code a login UI obtained with a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLinked {
    pub session_id: String,
    pub user_id: String,
    pub org_id: String,
    /// When the passkey check that signed the user in happened.
    pub auth_time: Timestamp,
    pub user_verified: bool,
    /// Hex SHA-256 of the code.
    pub code_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthRequestOutcome {
    Pending,
    Linked { linked: SessionLinked, at: Timestamp },
    Failed { error: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequestView {
    pub id: String,
    /// The client's organization.
    pub org_id: String,
    /// Who proxied `/authorize` as a login client (`x-zitadel-login-client`); "" otherwise.
    pub login_client: String,
    pub request: AuthRequestAdded,
    pub created_at: Timestamp,
    pub sequence: u64,
    pub outcome: AuthRequestOutcome,
    /// The grant the code was exchanged for.
    pub exchanged: Option<String>,
}

impl AuthRequestView {
    pub fn fold(events: &[Recorded]) -> Option<AuthRequestView> {
        let created = |r: &Recorded| match &r.event {
            Event::AuthRequestAdded(a) => Some(AuthRequestView {
                id: r.aggregate_id.clone(),
                org_id: r.resource_owner.clone(),
                login_client: r.creator.clone(),
                request: a.clone(),
                created_at: r.created_at,
                sequence: r.sequence,
                outcome: AuthRequestOutcome::Pending,
                exchanged: None,
            }),
            _ => None,
        };
        fold_events(events, created, |v: &mut AuthRequestView, r| {
            match &r.event {
                Event::AuthRequestSessionLinked(l) => {
                    v.outcome = AuthRequestOutcome::Linked { linked: l.clone(), at: r.created_at }
                }
                Event::AuthRequestFailed { error, .. } => {
                    v.outcome = AuthRequestOutcome::Failed { error: error.clone() }
                }
                Event::AuthRequestCodeExchanged { grant_id } => v.exchanged = Some(grant_id.clone()),
                _ => {}
            }
            v.sequence = r.sequence;
        })
    }

    pub fn expired(&self, now: Timestamp) -> bool {
        now.secs_nanos().0 >= self.created_at.secs_nanos().0 + AUTH_REQUEST_LIFETIME_SECS
    }
}

/// Payload of `oidc_session.added`: what a code was exchanged for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantAdded {
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub auth_request_id: String,
    pub scope: Vec<String>,
    pub auth_time: Timestamp,
    pub user_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub tokens: GrantTokens,
}

/// The hashes of a grant's current tokens (hex SHA-256) and their expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantTokens {
    pub access_hash: String,
    pub access_expires: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    pub id: String,
    pub org_id: String,
    pub grant: GrantAdded,
    pub tokens: GrantTokens,
    /// Refresh token hashes already rotated away: presenting one again revokes the grant.
    pub spent_refresh: Vec<String>,
    pub revoked: bool,
    pub created_at: Timestamp,
    pub sequence: u64,
}

impl GrantView {
    pub fn fold(events: &[Recorded]) -> Option<GrantView> {
        let created = |r: &Recorded| match &r.event {
            Event::GrantAdded(g) => Some(GrantView {
                id: r.aggregate_id.clone(),
                org_id: r.resource_owner.clone(),
                grant: g.clone(),
                tokens: g.tokens.clone(),
                spent_refresh: Vec::new(),
                revoked: false,
                created_at: r.created_at,
                sequence: r.sequence,
            }),
            _ => None,
        };
        fold_events(events, created, |v: &mut GrantView, r| {
            match &r.event {
                Event::GrantRefreshed(t) => {
                    let old = std::mem::replace(&mut v.tokens, t.clone());
                    v.spent_refresh.extend(old.refresh_hash);
                }
                Event::GrantRevoked { .. } => v.revoked = true,
                _ => {}
            }
            v.sequence = r.sequence;
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.grant.scope.iter().any(|s| s == scope)
    }
}

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
