//! The lifecycle states and which actions each allows.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkspaceState {
    /// Asked to start while the host was at its cap: waits its turn (`workspaces.max_running`).
    Queued,
    Creating,
    Starting,
    Running,
    Stopping,
    Stopped,
    Failed,
    Deleting,
}

impl WorkspaceState {
    pub const ALL: [WorkspaceState; 8] = [
        Self::Queued,
        Self::Creating,
        Self::Starting,
        Self::Running,
        Self::Stopping,
        Self::Stopped,
        Self::Failed,
        Self::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Creating => "creating",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A runtime call is under way.
    pub fn is_transitional(self) -> bool {
        matches!(
            self,
            Self::Creating | Self::Starting | Self::Stopping | Self::Deleting
        )
    }

    /// Counts against the per-user limit of running workspaces (waiting to run counts too).
    pub fn is_active(self) -> bool {
        self == Self::Queued || self.takes_host_room()
    }

    /// Takes one of the host's `max_running` slots.
    pub fn takes_host_room(self) -> bool {
        matches!(self, Self::Creating | Self::Starting | Self::Running)
    }

    /// Waiting for room: Cancel takes it out of the line (to `stopped`).
    pub fn can_cancel(self) -> bool {
        self == Self::Queued
    }

    pub fn can_start(self) -> bool {
        matches!(self, Self::Stopped | Self::Failed)
    }

    pub fn can_stop(self) -> bool {
        matches!(self, Self::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::WorkspaceState as S;

    #[test]
    fn names_round_trip_and_rules_hold() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
            assert!(!(s.can_start() && s.is_transitional()));
            assert!(!(s.can_stop() && s.is_transitional()));
        }
        assert_eq!(S::parse("exploded"), None);
        assert!(S::Queued.is_active() && !S::Queued.takes_host_room());
        assert!(!S::Queued.can_start() && !S::Queued.can_stop() && S::Queued.can_cancel());
    }
}
