//! Workspaces: the record, its state machine, the runtime interface, and the one service that
//! every entry point goes through. States are persisted before and after each runtime call, so
//! a crash at any point leaves a record the reconciler can finish or clean up.

mod activity;
pub mod fc;
pub mod local;
pub mod runtime;
mod service;
mod state;

pub use activity::{Activity, OpenSocket};
pub use service::{
    sharing_of, Action, Census, Changed, GatewayTarget, PoolStatus, PoolStep, PortShares,
    PortSharing, WorkspaceLimits, WorkspaceService, WorkspaceView, POOL_OWNER,
};
pub use state::WorkspaceState;

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("Workspace names are 1 to 31 characters: a lowercase letter, then lowercase letters, digits or hyphens.")]
    InvalidName,
    #[error("There is no template {0:?}.")]
    UnknownTemplate(String),
    #[error("{0} is not installed on this server yet; ask the operator to run `qingting editors install`.")]
    EditorMissing(&'static str),
    #[error("You already have a workspace with that name.")]
    NameTaken,
    #[error("No such workspace.")]
    NotFound,
    #[error("A port is a number from 1 to 65535.")]
    InvalidPort,
    #[error("{0}")]
    LimitReached(String),
    /// The host is at `workspaces.max_running`: a user's request waits in the queue instead.
    #[error("{0}")]
    HostFull(String),
    #[error("The workspace is {0}; wait until that finishes.")]
    Busy(&'static str),
    #[error("The workspace could not be {action}: {reason}")]
    Runtime {
        action: &'static str,
        reason: String,
    },
    #[error("storage error: {0}")]
    Store(#[from] sea_orm::DbErr),
}

/// `^[a-z][a-z0-9-]{0,30}$`: names become host labels (`<user>-<name>.<domain>`).
pub fn validate_name(name: &str) -> Result<(), WorkspaceError> {
    qingting_gateway::names::is_workspace_name(name)
        .then_some(())
        .ok_or(WorkspaceError::InvalidName)
}

#[cfg(test)]
mod tests {
    #[test]
    fn name_grammar() {
        for ok in ["a", "demo", "my-ws-2", &format!("a{}", "b".repeat(30))] {
            assert!(super::validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "-a",
            "A",
            "a_b",
            "a.b",
            "a b",
            &format!("a{}", "b".repeat(31)),
        ] {
            assert!(super::validate_name(bad).is_err(), "{bad}");
        }
    }
}
