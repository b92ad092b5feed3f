//! OpenID Connect use cases: `projects` (ProjectService v2), `apps` (ApplicationService v2) and
//! the authorization code flow with PKCE in two halves: `login` (authorize, GetAuthRequest,
//! CreateCallback) and `tokens` (code exchange, refresh), with `client` (client authentication)
//! and `userinfo` (claims, introspection, end session). The loaders both halves use are here; the
//! read models and pure helpers are in [`crate::oidc`].

mod apps;
mod client;
mod login;
mod projects;
#[cfg(test)]
mod tests;
mod tokens;
mod userinfo;

pub use apps::{AppCreated, NewApp};
pub use client::OidcClient;
pub use login::{AuthorizeParams, Authorized, Callback};
pub use tokens::OidcTokens;
pub use userinfo::user_claims;

use super::App;
use crate::error::Result;
use crate::event::AggregateKind;
use crate::oidc::{AppView, AuthRequestView, GrantView, ObjectState};

impl App {
    pub(super) async fn load_auth_request(&self, id: &str) -> Result<Option<AuthRequestView>> {
        if !id.starts_with("V2_") || id.len() > 200 {
            return Ok(None);
        }
        Ok(AuthRequestView::fold(&self.deps.store.events_of(AggregateKind::AuthRequest, id).await?))
    }

    pub(super) async fn load_grant(&self, id: &str) -> Result<Option<GrantView>> {
        Ok(GrantView::fold(&self.deps.store.events_of(AggregateKind::Grant, id).await?))
    }

    /// An application whose project is active (a deactivated or removed project's applications
    /// sign nobody in), as loaded; `None` otherwise.
    pub(super) async fn active_client(&self, client_id: &str) -> Result<Option<AppView>> {
        let Some(app) = self.load_app(client_id).await? else { return Ok(None) };
        let project = self.load_project(&app.settings.project_id).await?;
        Ok(project.filter(|p| p.state == ObjectState::Active).map(|_| app))
    }
}
