//! Workspaces: list (with the templates to create from), create, and the lifecycle actions.
//! Create and the actions answer at once with the new transitional state; the rest of the
//! way arrives over `/api/workspaces/events` (server-sent events carrying [`WorkspaceRow`]s).

use crate::api::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The events stream's last message when the session has ended (`/api/workspaces/events`).
pub const SESSION_ENDED: &str = "\"session ended\"";

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
    /// When its state last changed (Unix seconds): lets the page tell an answer to a click
    /// from a newer snapshot of the events stream that overtook it.
    #[serde(default)]
    pub updated_at: i64,
    /// The dashboard path that opens it (`/open/<user>/<name>`).
    pub open_path: String,
    /// What the state allows, decided by the server's state machine (the page never
    /// re-derives it from `state`).
    pub controls: Controls,
    /// Ports it listens on while running, and ports it shares: each opens at its preview
    /// host through `open_path?port=N`.
    #[serde(default)]
    pub ports: Vec<PortRow>,
    /// What it uses while running.
    #[serde(default)]
    pub usage: Option<UsageRow>,
    /// Minutes until idle stop takes it, once it has been idle a while.
    #[serde(default)]
    pub idle_stop_in_minutes: Option<u64>,
    /// Its place in the line for the host's room while `queued` (1: next).
    #[serde(default)]
    pub queue_position: Option<u64>,
}

/// A running workspace's use of the machine, as its card shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsageRow {
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: u64,
    /// Percent of one core, rounded.
    pub cpu_percent: Option<u64>,
    pub disk_bytes: Option<u64>,
}

/// `1536 MiB` → `1.5 GiB`, for the card.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v >= 100.0 || (v - v.round()).abs() < 0.05 {
        format!("{} {}", v.round(), UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// One port of a workspace, as its card shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRow {
    pub port: u16,
    /// Something in the workspace listens on it now.
    pub listening: bool,
    /// private, users (every signed-in user) or public (anyone).
    pub sharing: String,
    /// Its preview address, to hand to whoever it is shared with.
    pub url: String,
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
    /// Waiting in line: Cancel (the `stop` action) takes it out.
    #[serde(default)]
    pub can_cancel: bool,
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
    Ok(WorkspacesPage {
        workspaces: server::rows(&state, &account).await?,
        templates: server::templates(&state),
    })
}

#[server(prefix = "/api", endpoint = "workspaces/create")]
pub async fn create_workspace(name: String, template: String) -> Result<WorkspaceRow, ApiError> {
    use crate::api::server_ctx::{actor, redirect_for_forms, require_account, session, state};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    let view = state
        .workspaces
        .create_in_background(&actor(&account), &account, name.trim(), &template)
        .await
        .map_err(server::api_error)?;
    redirect_for_forms("/workspaces");
    server::row(&state, &account, &view).await
}

/// `sharing`: private (the owner only), users (every signed-in user) or public (anyone).
#[server(prefix = "/api", endpoint = "workspaces/share-port")]
pub async fn share_port(id: i64, port: u16, sharing: String) -> Result<WorkspaceRow, ApiError> {
    use crate::api::server_ctx::{fail, redirect_for_forms, require_account, session, state};
    use qingting_core::workspaces::PortSharing;
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    let Some(sharing) = PortSharing::parse(&sharing) else {
        return Err(fail(ApiError::invalid(
            "sharing",
            "Sharing must be private, users or public.",
        )));
    };
    state
        .workspaces
        .share_port(&account, id, port, sharing)
        .await
        .map_err(server::api_error)?;
    let view = state
        .workspaces
        .get(&account, id)
        .await
        .map_err(server::api_error)?;
    redirect_for_forms("/workspaces");
    server::row(&state, &account, &view).await
}

/// Counts as activity now: the workspace's idle-stop countdown starts over.
#[server(prefix = "/api", endpoint = "workspaces/keep-running")]
pub async fn keep_running(id: i64) -> Result<WorkspaceRow, ApiError> {
    use crate::api::server_ctx::{redirect_for_forms, require_account, session, state};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    let view = state
        .workspaces
        .keep_running(&account, id)
        .await
        .map_err(server::api_error)?;
    redirect_for_forms("/workspaces");
    server::row(&state, &account, &view).await
}

/// `action`: start, stop, restart or delete.
#[server(prefix = "/api", endpoint = "workspaces/action")]
pub async fn workspace_action(id: i64, action: String) -> Result<WorkspaceRow, ApiError> {
    use crate::api::server_ctx::{
        actor, fail, redirect_for_forms, require_account, session, state,
    };
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
        .begin(&actor(&account), &account, id, action)
        .await
        .map_err(server::api_error)?;
    redirect_for_forms("/workspaces");
    server::row(&state, &account, &view).await
}

/// The server half: rows as the dashboard shows them, and error mapping.
#[cfg(feature = "ssr")]
pub mod server {
    use super::{Controls, PortRow, TemplateOption, UsageRow, WorkspaceRow};
    use crate::api::{server_ctx::fail, server_ctx::internal, ApiError};
    use qingting_core::{
        accounts::Account,
        workspaces::{sharing_of, PortSharing, WorkspaceError, WorkspaceState, WorkspaceView},
        AppState,
    };

    /// The templates, and whether each can run here.
    pub fn templates(state: &AppState) -> Vec<TemplateOption> {
        let svc = &state.workspaces;
        svc.templates()
            .iter()
            .map(|t| TemplateOption {
                id: t.id.clone(),
                name: t.name.clone(),
                description: t.description.clone(),
                ready: svc.template_ready(t),
            })
            .collect()
    }

    /// One workspace's row, as an answer to an action on it.
    pub async fn row(
        state: &AppState,
        owner: &Account,
        v: &WorkspaceView,
    ) -> Result<WorkspaceRow, ApiError> {
        let shared = state
            .workspaces
            .port_shares(v.id)
            .await
            .map_err(api_error)?;
        let place = queue_places(state, std::slice::from_ref(v)).await?;
        Ok(row_with(
            state,
            owner,
            v,
            &shared,
            place.get(&v.id).copied(),
        ))
    }

    fn row_with(
        state: &AppState,
        owner: &Account,
        v: &WorkspaceView,
        shared: &[(u16, PortSharing)],
        queue_position: Option<u64>,
    ) -> WorkspaceRow {
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
            updated_at: v.updated_at,
            open_path: format!("/open/{}/{}", owner.username, v.name),
            controls: Controls {
                can_open: v.state.can_stop(),
                can_start: v.state.can_start(),
                can_stop: v.state.can_stop(),
                busy: v.state.is_transitional(),
                can_cancel: v.state.can_cancel(),
            },
            ports: ports(state, owner, v, shared),
            usage: (v.state == WorkspaceState::Running)
                .then(|| state.workspaces.runtime().usage(v.id))
                .flatten()
                .map(|u| UsageRow {
                    memory_bytes: u.memory_bytes,
                    memory_limit_bytes: u.memory_limit_bytes,
                    cpu_percent: u.cpu_percent.map(|p| p.round() as u64),
                    disk_bytes: u.disk_bytes,
                }),
            idle_stop_in_minutes: state
                .workspaces
                .idle_stop_in(v)
                .map(|d| d.as_secs().div_ceil(60)),
            queue_position,
        }
    }

    /// What it listens on (while running) and what it shares, ascending.
    fn ports(
        state: &AppState,
        owner: &Account,
        v: &WorkspaceView,
        shared: &[(u16, PortSharing)],
    ) -> Vec<PortRow> {
        let listening = if v.state == WorkspaceState::Running {
            state.workspaces.runtime().listening_ports(v.id)
        } else {
            Vec::new()
        };
        let mut all: Vec<u16> = listening
            .iter()
            .copied()
            .chain(shared.iter().map(|s| s.0))
            .collect();
        all.sort_unstable();
        all.dedup();
        all.into_iter()
            .map(|port| PortRow {
                port,
                listening: listening.contains(&port),
                sharing: sharing_of(shared, port).as_str().to_string(),
                url: state
                    .config
                    .workspace_origin(&owner.username, &v.name, Some(port)),
            })
            .collect()
    }

    pub async fn rows(state: &AppState, owner: &Account) -> Result<Vec<WorkspaceRow>, ApiError> {
        let list = state.workspaces.list(owner).await.map_err(api_error)?;
        let ids: Vec<i64> = list.iter().map(|v| v.id).collect();
        let shared = state
            .workspaces
            .port_shares_of(&ids)
            .await
            .map_err(api_error)?;
        let places = queue_places(state, &list).await?;
        Ok(list
            .iter()
            .map(|v| {
                row_with(
                    state,
                    owner,
                    v,
                    shared.get(&v.id).map_or(&[], Vec::as_slice),
                    places.get(&v.id).copied(),
                )
            })
            .collect())
    }

    /// Places in line, read only when one of `list` waits in it.
    async fn queue_places(
        state: &AppState,
        list: &[WorkspaceView],
    ) -> Result<std::collections::HashMap<i64, u64>, ApiError> {
        if !list.iter().any(|v| v.state == WorkspaceState::Queued) {
            return Ok(Default::default());
        }
        state.workspaces.queue_positions().await.map_err(api_error)
    }

    pub fn api_error(e: WorkspaceError) -> ApiError {
        let err = match e {
            WorkspaceError::InvalidName => ApiError::invalid("name", e.to_string()),
            WorkspaceError::UnknownTemplate(_) | WorkspaceError::EditorMissing(_) => {
                ApiError::invalid("template", e.to_string())
            }
            WorkspaceError::NameTaken => ApiError::Conflict(e.to_string()),
            WorkspaceError::NotFound => ApiError::NotFound(e.to_string()),
            WorkspaceError::InvalidPort => ApiError::invalid("port", e.to_string()),
            WorkspaceError::LimitReached(m) | WorkspaceError::HostFull(m) => {
                ApiError::LimitReached(m)
            }
            WorkspaceError::Busy(_) | WorkspaceError::Runtime { .. } => {
                ApiError::Conflict(e.to_string())
            }
            WorkspaceError::Store(_) => return internal(e),
        };
        fail(err)
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_read_as_people_write_them() {
        for (n, want) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1 KiB"),
            (1536, "1.5 KiB"),
            (1024 * 1024 * 3 / 2 * 1024, "1.5 GiB"),
            // Within a twentieth of a whole number: shown whole.
            (2 * 1024 * 1024 + 40 * 1024, "2 MiB"),
            (2 * 1024 * 1024 + 60 * 1024, "2.1 MiB"),
            // From 100 of a unit on, no decimals.
            (150 * 1024 * 1024 + 700 * 1024, "151 MiB"),
            (512 * 1024 * 1024, "512 MiB"),
            (u64::MAX, "16777216 TiB"),
        ] {
            assert_eq!(human_bytes(n), want, "{n}");
        }
    }
}
