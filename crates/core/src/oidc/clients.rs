//! Projects and applications (OIDC clients): their settings, keys and read models.

use serde::{Deserialize, Serialize};

use super::{app_type, auth_method, fold_events, grant_type};
use crate::event::{Event, Recorded};
use crate::time::Timestamp;

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
