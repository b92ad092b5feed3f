//! ApplicationService v2: the OIDC clients (and API applications) of a project, their secrets and keys.
//!
//! Permissions as ZITADEL's: `project.create|write|read|delete` and `project.app.write|read|delete`
//! in the project's organization (ORG_OWNER there, IAM_OWNER anywhere). A project or application
//! the caller may not read answers NotFound, as everywhere in passlink.

use super::super::tx::Tx;
use super::super::{App, Caller};
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, Event};
use crate::oidc::{AppSettings, AppView, ObjectState, OidcConfig, ProjectView, auth_method};
use crate::permission::{self as perm, require_in, require_somewhere};
use crate::secret::{self, Secret};
use crate::store::UniqueClaim;
use crate::time::Timestamp;
use crate::validate;

pub(crate) fn project_not_found() -> Error {
    Error::new(Kind::NotFound, "PROJECT-3M9sd", "Errors.Project.NotFound")
}

pub(crate) fn app_not_found() -> Error {
    Error::new(Kind::NotFound, "APP-ii4ke", "Errors.Project.App.NotExisting")
}

pub(super) fn id_claim(kind: &'static str, id: &str) -> UniqueClaim {
    UniqueClaim {
        kind,
        value: id.to_string(),
        taken: Error::new(Kind::AlreadyExists, "COMMAND-1w8IG", "Errors.AlreadyExists"),
    }
}

/// CreateApplication's input.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub project_id: String,
    /// Empty: generated.
    pub app_id: String,
    pub name: String,
    /// `None`: an API application with `api_auth_method`.
    pub oidc: Option<OidcConfig>,
    pub api_auth_method: i32,
}

/// CreateApplication's answer: the client secret is shown once.
#[derive(Debug)]
pub struct AppCreated {
    pub app: AppView,
    pub secret: Option<Secret>,
}

/// Redirect URIs must be absolute URIs without a fragment; defaults as ZITADEL's (code flow).
fn normalize_oidc(mut o: OidcConfig) -> Result<OidcConfig> {
    for uri in o.redirect_uris.iter().chain(&o.post_logout_redirect_uris) {
        let ok = url::Url::parse(uri).is_ok_and(|u| u.fragment().is_none()) && uri.len() <= 2048;
        if !ok {
            return Err(Error::new(
                Kind::InvalidArgument,
                "APP-4Ldja",
                "Errors.Project.App.OIDCConfigInvalid",
            )
            .with_cause(format!("not an absolute URI without a fragment: {uri}")));
        }
    }
    if o.response_types.is_empty() {
        o.response_types = vec![crate::oidc::response_type::CODE];
    }
    if o.response_types.contains(&0) {
        return Err(Error::validation(
            "invalid CreateOIDCApplicationRequest.ResponseTypes: value must not be in list [0]",
        ));
    }
    if o.grant_types.is_empty() {
        o.grant_types = vec![crate::oidc::grant_type::AUTHORIZATION_CODE];
    }
    if !(0..=3).contains(&o.auth_method) || !(0..=2).contains(&o.app_type) {
        return Err(Error::validation(
            "invalid CreateOIDCApplicationRequest: value must be one of the defined enum values",
        ));
    }
    Ok(o)
}

fn check_new_app(app: &NewApp) -> Result<()> {
    validate::runes_between("CreateApplicationRequest", "ProjectId", &app.project_id, 1, 200)?;
    validate::runes_at_most("CreateApplicationRequest", "ApplicationId", &app.app_id, 200)?;
    validate::runes_between("CreateApplicationRequest", "Name", &app.name, 1, 200)?;
    Ok(())
}

/// CreateApplication, decided on the loaded project.
fn decide_create_app(
    caller: &Caller,
    project: Option<&ProjectView>,
    app: NewApp,
    app_id: &str,
    secret_hash: Option<String>,
    now: Timestamp,
) -> Result<Tx> {
    let project = project.filter(|p| p.state != ObjectState::Removed).ok_or_else(project_not_found)?;
    require_in(caller.memberships(), perm::PROJECT_APP_WRITE, &project.org_id, project_not_found)?;
    let oidc = app.oidc.map(normalize_oidc).transpose()?;
    let mut tx = Tx::new(now, caller.user_id());
    tx.commit.claims.push(id_claim("application_id", app_id));
    let settings = AppSettings {
        project_id: project.id.clone(),
        name: app.name,
        oidc,
        api_auth_method: app.api_auth_method,
    };
    tx.record(AggregateKind::Application, app_id, &project.org_id, Event::ApplicationAdded(settings));
    if let Some(hash) = secret_hash {
        tx.record(AggregateKind::Application, app_id, &project.org_id, Event::ApplicationSecretSet { hash });
    }
    Ok(tx)
}

impl App {
    pub(crate) async fn load_app(&self, id: &str) -> Result<Option<AppView>> {
        Ok(AppView::fold(&self.deps.store.events_of(AggregateKind::Application, id).await?))
    }

    /// An application the caller may act on with `permission`, not removed (and of
    /// `project_id` when given).
    async fn permitted_app(
        &self,
        caller: &Caller,
        id: &str,
        project_id: Option<&str>,
        permission: &str,
    ) -> Result<AppView> {
        require_somewhere(caller.memberships(), permission)?;
        let a = self
            .load_app(id)
            .await?
            .filter(|a| a.state != ObjectState::Removed)
            .filter(|a| project_id.is_none_or(|p| a.settings.project_id == p))
            .ok_or_else(app_not_found)?;
        require_in(caller.memberships(), permission, &a.org_id, app_not_found)?;
        Ok(a)
    }
    pub(super) async fn all_apps(&self) -> Result<Vec<AppView>> {
        let events = self.deps.store.events_of_kind(AggregateKind::Application).await?;
        Ok(events.chunk_by(|a, b| a.aggregate_id == b.aggregate_id).filter_map(AppView::fold).collect())
    }

    /// CreateApplication: a confidential OIDC client (basic / post) or an API application with
    /// basic authentication gets a secret, returned once.
    pub async fn create_app(&self, caller: &Caller, app: NewApp) -> Result<AppCreated> {
        check_new_app(&app)?;
        require_somewhere(caller.memberships(), perm::PROJECT_APP_WRITE)?;
        let project = self.load_project(&app.project_id).await?;
        let app_id = if app.app_id.is_empty() { self.next_id() } else { app.app_id.clone() };
        let needs_secret = match &app.oidc {
            Some(o) => matches!(o.auth_method, auth_method::BASIC | auth_method::POST),
            None => app.api_auth_method == 0,
        };
        let secret = needs_secret.then(|| secret::generate_token(&*self.deps.entropy));
        let hash = secret.as_ref().map(|s| crate::hex::encode(&secret::token_hash(s.expose())));
        let tx = decide_create_app(caller, project.as_ref(), app, &app_id, hash, self.now())?;
        self.deps.store.commit(tx.into_commit()).await?;
        let app = self
            .load_app(&app_id)
            .await?
            .ok_or_else(|| Error::internal("a created application reads back"))?;
        Ok(AppCreated { app, secret })
    }

    /// UpdateApplication: `change` edits the settings (the project stays).
    pub async fn update_app(
        &self,
        caller: &Caller,
        project_id: &str,
        app_id: &str,
        change: &(dyn Fn(&mut AppSettings) + Sync),
    ) -> Result<Timestamp> {
        let _lock = self.lock_aggregate(app_id).await;
        retry!(self, async {
            let a = self.permitted_app(caller, app_id, Some(project_id), perm::PROJECT_APP_WRITE).await?;
            let mut settings = a.settings.clone();
            change(&mut settings);
            settings.project_id = a.settings.project_id.clone();
            validate::runes_between("UpdateApplicationRequest", "Name", &settings.name, 1, 200)?;
            settings.oidc = settings.oidc.map(normalize_oidc).transpose()?;
            let now = self.now();
            if settings != a.settings {
                let mut tx = Tx::new(now, caller.user_id());
                tx.load_aggregate(AggregateKind::Application, app_id, &a.org_id, a.sequence);
                tx.record(AggregateKind::Application, app_id, &a.org_id, Event::ApplicationChanged(settings));
                self.deps.store.commit(tx.into_commit()).await?;
            }
            Ok(now)
        })
    }

    async fn app_event(
        &self,
        caller: &Caller,
        project_id: &str,
        app_id: &str,
        permission: &str,
        event: Event,
    ) -> Result<Timestamp> {
        let _lock = self.lock_aggregate(app_id).await;
        retry!(self, async {
            let a = self.permitted_app(caller, app_id, Some(project_id), permission).await?;
            let refused = match (&event, a.state) {
                (Event::ApplicationDeactivated {}, ObjectState::Inactive) => {
                    Some(("COMMAND-dsh35", "Errors.Project.App.NotActive"))
                }
                (Event::ApplicationReactivated {}, ObjectState::Active) => {
                    Some(("COMMAND-1n8cM", "Errors.Project.App.NotInactive"))
                }
                _ => None,
            };
            if let Some((id, key)) = refused {
                return Err(Error::new(Kind::FailedPrecondition, id, key));
            }
            let now = self.now();
            let mut tx = Tx::new(now, caller.user_id());
            tx.load_aggregate(AggregateKind::Application, app_id, &a.org_id, a.sequence);
            tx.record(AggregateKind::Application, app_id, &a.org_id, event.clone());
            self.deps.store.commit(tx.into_commit()).await?;
            Ok(now)
        })
    }

    /// DeleteApplication.
    pub async fn delete_app(&self, caller: &Caller, project_id: &str, app_id: &str) -> Result<Timestamp> {
        self.app_event(caller, project_id, app_id, perm::PROJECT_APP_DELETE, Event::ApplicationRemoved {})
            .await
    }

    /// DeactivateApplication / ReactivateApplication.
    pub async fn set_app_active(
        &self,
        caller: &Caller,
        project_id: &str,
        app_id: &str,
        active: bool,
    ) -> Result<Timestamp> {
        let ev = if active { Event::ApplicationReactivated {} } else { Event::ApplicationDeactivated {} };
        self.app_event(caller, project_id, app_id, perm::PROJECT_APP_WRITE, ev).await
    }

    /// GenerateClientSecret: a new secret replaces the old one (returned once).
    pub async fn generate_client_secret(
        &self,
        caller: &Caller,
        project_id: &str,
        app_id: &str,
    ) -> Result<(Secret, Timestamp)> {
        let a = self.permitted_app(caller, app_id, Some(project_id), perm::PROJECT_APP_WRITE).await?;
        if !a.needs_secret() {
            return Err(Error::new(
                Kind::FailedPrecondition,
                "COMMAND-Ghrh3",
                "Errors.Project.App.OIDCAuthMethodNoSecret",
            ));
        }
        let secret = secret::generate_token(&*self.deps.entropy);
        let hash = crate::hex::encode(&secret::token_hash(secret.expose()));
        let now = self
            .app_event(
                caller,
                project_id,
                app_id,
                perm::PROJECT_APP_WRITE,
                Event::ApplicationSecretSet { hash },
            )
            .await?;
        Ok((secret, now))
    }

    /// CreateApplicationKey: a key pair for private_key_jwt; answers the key id and ZITADEL's
    /// key file with the private key (shown once, never stored).
    pub async fn add_app_key(
        &self,
        caller: &Caller,
        project_id: &str,
        app_id: &str,
        expiration: Option<Timestamp>,
    ) -> Result<(String, Timestamp, Secret)> {
        let now = self.now();
        let expiration = expiration.unwrap_or(super::super::NEVER_EXPIRES);
        if expiration <= now {
            return Err(super::super::expiration_in_past());
        }
        let a = self.permitted_app(caller, app_id, Some(project_id), perm::PROJECT_APP_WRITE).await?;
        let uses_keys = a
            .settings
            .oidc
            .as_ref()
            .map_or(a.settings.api_auth_method == 1, |o| o.auth_method == auth_method::PRIVATE_KEY_JWT);
        if !uses_keys {
            return Err(Error::new(
                Kind::FailedPrecondition,
                "COMMAND-Fdsg3",
                "Errors.Project.App.AuthMethodNoPrivateKeyJWT",
            ));
        }
        let key_id = self.next_id();
        let (public, private) = crate::jwt::generate_machine_key(&*self.deps.entropy)?;
        let ev = Event::ApplicationKeyAdded { key_id: key_id.clone(), public_key: public, expiration };
        let at = self.app_event(caller, project_id, app_id, perm::PROJECT_APP_WRITE, ev).await?;
        let file =
            crate::jwt::app_key_file(&key_id, &a.id, a.client_id(), &private, &expiration.to_rfc3339());
        Ok((key_id, at, Secret::new(String::from_utf8_lossy(&file).into_owned())))
    }

    /// DeleteApplicationKey.
    pub async fn remove_app_key(
        &self,
        caller: &Caller,
        project_id: &str,
        app_id: &str,
        key_id: &str,
    ) -> Result<Timestamp> {
        let a = self.permitted_app(caller, app_id, Some(project_id), perm::PROJECT_APP_WRITE).await?;
        if !a.keys.iter().any(|k| k.id == key_id) {
            return Err(Error::new(Kind::NotFound, "COMMAND-4m77G", "Errors.Project.App.Key.NotFound"));
        }
        let ev = Event::ApplicationKeyRemoved { key_id: key_id.to_string() };
        self.app_event(caller, project_id, app_id, perm::PROJECT_APP_WRITE, ev).await
    }

    /// The keys of every application the caller may read: (application, key).
    pub async fn app_keys(&self, caller: &Caller) -> Result<Vec<(AppView, crate::oidc::AppKey)>> {
        let apps = self.apps(caller).await?;
        Ok(apps.into_iter().flat_map(|a| a.keys.clone().into_iter().map(move |k| (a.clone(), k))).collect())
    }

    /// GetApplication.
    pub async fn app(&self, caller: &Caller, app_id: &str) -> Result<AppView> {
        validate::runes_between("GetApplicationRequest", "ApplicationId", app_id, 1, 200)?;
        self.permitted_app(caller, app_id, None, perm::PROJECT_APP_READ).await
    }

    /// ListApplications: every application the caller may read, oldest first.
    pub async fn apps(&self, caller: &Caller) -> Result<Vec<AppView>> {
        require_somewhere(caller.memberships(), perm::PROJECT_APP_READ)?;
        let mut out: Vec<AppView> = self
            .all_apps()
            .await?
            .into_iter()
            .filter(|a| a.state != ObjectState::Removed)
            .filter(|a| perm::holds_in(caller.memberships(), perm::PROJECT_APP_READ, &a.org_id))
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }
}
