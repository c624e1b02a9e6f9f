//! What the service hands out: the dashboard's view of a workspace, the gateway's routing
//! target, the actions a person can ask for, and the per-user limits.

use super::*;

#[derive(Debug, Clone, Copy)]
pub struct WorkspaceLimits {
    pub max_per_user: u64,
    pub max_running_per_user: u64,
}

/// A workspace as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceView {
    pub id: i64,
    pub name: String,
    pub template_id: String,
    pub state: WorkspaceState,
    pub reason: Option<String>,
    /// When its state last changed (Unix seconds).
    pub updated_at: i64,
}

impl From<&workspace::Model> for WorkspaceView {
    fn from(m: &workspace::Model) -> Self {
        Self {
            id: m.id,
            name: m.name.clone(),
            template_id: m.template_id.clone(),
            state: state_of(m),
            reason: m.reason.clone(),
            updated_at: m.updated_at,
        }
    }
}

/// An unknown state can only come from a newer version; treat it as failed.
pub(super) fn state_of(m: &workspace::Model) -> WorkspaceState {
    WorkspaceState::parse(&m.state).unwrap_or(WorkspaceState::Failed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    Delete,
}

impl Action {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "start" => Some(Self::Start),
            "stop" => Some(Self::Stop),
            "restart" => Some(Self::Restart),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// What the gateway needs to route to a workspace.
#[derive(Debug, Clone)]
pub struct GatewayTarget {
    pub id: i64,
    pub owner_id: i64,
    pub state: WorkspaceState,
    pub endpoint: Option<Endpoint>,
    /// Its ports shared beyond the owner.
    pub shared_ports: PortShares,
}
