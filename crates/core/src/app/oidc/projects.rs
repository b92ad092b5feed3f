//! ProjectService v2: the projects that group an organization's applications.

use super::super::tx::Tx;
use super::super::{App, Caller, org_not_found};
use super::apps::{id_claim, project_not_found};
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, Event};
use crate::oidc::{ObjectState, ProjectSettings, ProjectView};
use crate::permission::{self as perm, require_in, require_somewhere};
use crate::time::Timestamp;
use crate::validate;

impl App {
    pub(crate) async fn load_project(&self, id: &str) -> Result<Option<ProjectView>> {
        Ok(ProjectView::fold(&self.deps.store.events_of(AggregateKind::Project, id).await?))
    }

    /// A project the caller may read (`project.read` in its organization), not removed.
    async fn readable_project(&self, caller: &Caller, id: &str, permission: &str) -> Result<ProjectView> {
        require_somewhere(caller.memberships(), permission)?;
        let p = self
            .load_project(id)
            .await?
            .filter(|p| p.state != ObjectState::Removed)
            .ok_or_else(project_not_found)?;
        require_in(caller.memberships(), permission, &p.org_id, project_not_found)?;
        Ok(p)
    }

    /// CreateProject.
    pub async fn create_project(
        &self,
        caller: &Caller,
        org_id: &str,
        project_id: Option<&str>,
        settings: ProjectSettings,
    ) -> Result<(String, Timestamp)> {
        validate::runes_between("CreateProjectRequest", "OrganizationId", org_id, 1, 200)?;
        validate::runes_between("CreateProjectRequest", "Name", &settings.name, 1, 200)?;
        if let Some(id) = project_id {
            validate::runes_between("CreateProjectRequest", "ProjectId", id, 1, 200)?;
        }
        require_somewhere(caller.memberships(), perm::PROJECT_CREATE)?;
        let org = self.deps.store.org(org_id).await?.ok_or_else(org_not_found)?;
        require_in(caller.memberships(), perm::PROJECT_CREATE, &org.id, org_not_found)?;
        let id = project_id.map_or_else(|| self.next_id(), str::to_string);
        let now = self.now();
        let mut tx = Tx::new(now, caller.user_id());
        tx.commit.claims.push(id_claim("project_id", &id));
        tx.record(AggregateKind::Project, &id, &org.id, Event::ProjectAdded(settings));
        self.deps.store.commit(tx.into_commit()).await?;
        Ok((id, now))
    }

    /// UpdateProject: `change` edits the settings.
    pub async fn update_project(
        &self,
        caller: &Caller,
        id: &str,
        change: &(dyn Fn(&mut ProjectSettings) + Sync),
    ) -> Result<Timestamp> {
        let _lock = self.lock_aggregate(id).await;
        retry!(self, async {
            let p = self.readable_project(caller, id, perm::PROJECT_WRITE).await?;
            let mut settings = p.settings.clone();
            change(&mut settings);
            validate::runes_between("UpdateProjectRequest", "Name", &settings.name, 1, 200)?;
            let now = self.now();
            if settings != p.settings {
                let mut tx = Tx::new(now, caller.user_id());
                tx.load_aggregate(AggregateKind::Project, id, &p.org_id, p.sequence);
                tx.record(AggregateKind::Project, id, &p.org_id, Event::ProjectChanged(settings));
                self.deps.store.commit(tx.into_commit()).await?;
            }
            Ok(now)
        })
    }

    /// DeactivateProject / ActivateProject.
    pub async fn set_project_active(&self, caller: &Caller, id: &str, active: bool) -> Result<Timestamp> {
        let _lock = self.lock_aggregate(id).await;
        retry!(self, async {
            let p = self.readable_project(caller, id, perm::PROJECT_WRITE).await?;
            let wanted = if active { ObjectState::Active } else { ObjectState::Inactive };
            if p.state == wanted {
                let (id, key) = if active {
                    ("PROJECT-cdfg4", "Errors.Project.NotInactive")
                } else {
                    ("PROJECT-mM3Ds", "Errors.Project.NotActive")
                };
                return Err(Error::new(Kind::FailedPrecondition, id, key));
            }
            let now = self.now();
            let mut tx = Tx::new(now, caller.user_id());
            tx.load_aggregate(AggregateKind::Project, id, &p.org_id, p.sequence);
            let ev = if active { Event::ProjectReactivated {} } else { Event::ProjectDeactivated {} };
            tx.record(AggregateKind::Project, id, &p.org_id, ev);
            self.deps.store.commit(tx.into_commit()).await?;
            Ok(now)
        })
    }

    /// DeleteProject: removes the project and its applications. A project that does not exist
    /// (or is already removed) answers success without a date, as ZITADEL's.
    pub async fn delete_project(&self, caller: &Caller, id: &str) -> Result<Option<Timestamp>> {
        validate::runes_between("DeleteProjectRequest", "ProjectId", id, 1, 200)?;
        require_somewhere(caller.memberships(), perm::PROJECT_DELETE)?;
        let _lock = self.lock_aggregate(id).await;
        retry!(self, async {
            let Some(p) = self.load_project(id).await?.filter(|p| p.state != ObjectState::Removed) else {
                return Ok(None);
            };
            require_in(caller.memberships(), perm::PROJECT_DELETE, &p.org_id, project_not_found)?;
            let now = self.now();
            let mut tx = Tx::new(now, caller.user_id());
            tx.load_aggregate(AggregateKind::Project, id, &p.org_id, p.sequence);
            tx.record(AggregateKind::Project, id, &p.org_id, Event::ProjectRemoved {});
            for app in self.all_apps().await?.into_iter().filter(|a| a.settings.project_id == id) {
                if app.state != ObjectState::Removed {
                    tx.load_aggregate(AggregateKind::Application, &app.id, &app.org_id, app.sequence);
                    tx.record(AggregateKind::Application, &app.id, &app.org_id, Event::ApplicationRemoved {});
                }
            }
            self.deps.store.commit(tx.into_commit()).await?;
            Ok(Some(now))
        })
    }

    /// GetProject.
    pub async fn project(&self, caller: &Caller, id: &str) -> Result<ProjectView> {
        validate::runes_between("GetProjectRequest", "ProjectId", id, 1, 200)?;
        self.readable_project(caller, id, perm::PROJECT_READ).await
    }

    /// ListProjects: every project the caller may read, oldest first.
    pub async fn projects(&self, caller: &Caller) -> Result<Vec<ProjectView>> {
        require_somewhere(caller.memberships(), perm::PROJECT_READ)?;
        let events = self.deps.store.events_of_kind(AggregateKind::Project).await?;
        let mut out: Vec<ProjectView> = events
            .chunk_by(|a, b| a.aggregate_id == b.aggregate_id)
            .filter_map(ProjectView::fold)
            .filter(|p| p.state != ObjectState::Removed)
            .filter(|p| perm::holds_in(caller.memberships(), perm::PROJECT_READ, &p.org_id))
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }
}
