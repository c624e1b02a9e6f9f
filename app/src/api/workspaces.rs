//! Workspaces: list (with the templates to create from), create, and the lifecycle actions.
//! Create and the actions answer at once with the new transitional state; the rest of the
//! way arrives over `/api/workspaces/events` (server-sent events carrying [`WorkspaceRow`]s).

use crate::api::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRow {
    pub id: i64,
    pub name: String,
    pub template_id: String,
    pub template_name: String,
    /// creating, starting, running, stopping, stopped, failed, deleting
    pub state: String,
    /// Why it failed or stopped.
    pub reason: Option<String>,
    /// The dashboard path that opens it (`/open/<user>/<name>`).
    pub open_path: String,
    /// What the state allows, decided by the server's state machine (the page never
    /// re-derives it from `state`).
    pub controls: Controls,
    /// TCP ports it listens on while running (each opens at its preview host through
    /// `open_path?port=N`).
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// The controls a workspace offers in its current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Controls {
    /// Running: Open, Stop and Restart.
    pub can_open: bool,
    pub can_start: bool,
    pub can_stop: bool,
    /// Between states (creating, starting, stopping, deleting): a spinner, no Delete.
    pub busy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateOption {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Its editor is installed on this server.
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspacesPage {
    pub workspaces: Vec<WorkspaceRow>,
    pub templates: Vec<TemplateOption>,
}

#[server(prefix = "/api", endpoint = "workspaces/list")]
pub async fn list_workspaces() -> Result<WorkspacesPage, ApiError> {
    use crate::api::server_ctx::{require_account, session, state};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    let svc = &state.workspaces;
    let templates = svc
        .templates()
        .iter()
        .map(|t| TemplateOption {
            id: t.id.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            ready: svc.template_ready(t),
        })
        .collect();
    Ok(WorkspacesPage {
        workspaces: server::rows(&state, &account).await?,
        templates,
    })
}

#[server(prefix = "/api", endpoint = "workspaces/create")]
pub async fn create_workspace(name: String, template: String) -> Result<WorkspaceRow, ApiError> {
    use crate::api::server_ctx::{redirect_for_forms, require_account, session, state};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    let view = state
        .workspaces
        .create_in_background(&account, name.trim(), &template)
        .await
        .map_err(server::api_error)?;
    redirect_for_forms("/workspaces");
    Ok(server::row(&state, &account, &view))
}

/// `action`: start, stop, restart or delete.
#[server(prefix = "/api", endpoint = "workspaces/action")]
pub async fn workspace_action(id: i64, action: String) -> Result<WorkspaceRow, ApiError> {
    use crate::api::server_ctx::{fail, redirect_for_forms, require_account, session, state};
    use qingting_core::workspaces::Action;
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    let Some(action) = Action::parse(&action) else {
        return Err(fail(ApiError::invalid(
            "action",
            "The action must be start, stop, restart or delete.",
        )));
    };
    let view = state
        .workspaces
        .begin(&account, id, action)
        .await
        .map_err(server::api_error)?;
    redirect_for_forms("/workspaces");
    Ok(server::row(&state, &account, &view))
}

/// The server half: rows as the dashboard shows them, and error mapping.
#[cfg(feature = "ssr")]
pub mod server {
    use super::{Controls, WorkspaceRow};
    use crate::api::{server_ctx::fail, server_ctx::internal, ApiError};
    use qingting_core::{
        accounts::Account,
        workspaces::{WorkspaceError, WorkspaceState, WorkspaceView},
        AppState,
    };

    pub fn row(state: &AppState, owner: &Account, v: &WorkspaceView) -> WorkspaceRow {
        let template_name = state
            .workspaces
            .templates()
            .iter()
            .find(|t| t.id == v.template_id)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| v.template_id.clone());
        WorkspaceRow {
            id: v.id,
            name: v.name.clone(),
            template_id: v.template_id.clone(),
            template_name,
            state: v.state.as_str().to_string(),
            reason: v.reason.clone(),
            open_path: format!("/open/{}/{}", owner.username, v.name),
            controls: Controls {
                can_open: v.state.can_stop(),
                can_start: v.state.can_start(),
                can_stop: v.state.can_stop(),
                busy: v.state.is_transitional(),
            },
            ports: if v.state == WorkspaceState::Running {
                state.workspaces.runtime().listening_ports(v.id)
            } else {
                Vec::new()
            },
        }
    }

    pub async fn rows(state: &AppState, owner: &Account) -> Result<Vec<WorkspaceRow>, ApiError> {
        let list = state.workspaces.list(owner).await.map_err(api_error)?;
        Ok(list.iter().map(|v| row(state, owner, v)).collect())
    }

    pub fn api_error(e: WorkspaceError) -> ApiError {
        let err = match e {
            WorkspaceError::InvalidName => ApiError::invalid("name", e.to_string()),
            WorkspaceError::UnknownTemplate(_) | WorkspaceError::EditorMissing(_) => {
                ApiError::invalid("template", e.to_string())
            }
            WorkspaceError::NameTaken => ApiError::Conflict(e.to_string()),
            WorkspaceError::NotFound => ApiError::NotFound(e.to_string()),
            WorkspaceError::LimitReached(m) => ApiError::LimitReached(m),
            WorkspaceError::Busy(_) | WorkspaceError::Runtime { .. } => {
                ApiError::Conflict(e.to_string())
            }
            WorkspaceError::Store(_) => return internal(e),
        };
        fail(err)
    }
}
