//! The admin API: the instance, every account and every workspace, the audit log. Every
//! endpoint checks the caller's role on the server; to anyone but an admin they do not exist
//! (404, as an unknown endpoint would answer).

use crate::api::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The instance at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub version: String,
    pub runtime: String,
    /// What sandbox is in force (docs/runtimes.md), as the health check says it.
    pub isolation: String,
    pub running: u64,
    /// `workspaces.max_running` (`None`: no cap).
    pub max_running: Option<u64>,
    /// Per pooled template: (template, target, ready, starting).
    pub pool: Vec<(String, u64, u64, u64)>,
    /// Per template: (name, its editor installed here).
    pub editors: Vec<(String, bool)>,
    pub accounts: u64,
    pub suspended: u64,
    /// The instance's defaults, which quotas override.
    pub default_workspaces: u64,
    pub default_running: u64,
}

/// An account, as the users page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    pub id: i64,
    pub username: String,
    pub display_name: Option<String>,
    pub admin: bool,
    pub suspended: bool,
    /// Seconds since last seen; `None`: never.
    pub last_seen_ago: Option<i64>,
    pub created_at: i64,
    pub workspaces: u64,
    pub running: u64,
    /// The quota's overrides (`None`: the instance's default).
    pub quota_workspaces: Option<u64>,
    pub quota_running: Option<u64>,
    pub quota_memory_mb: Option<u64>,
    /// The admin looking at the list (no suspending or deleting oneself here).
    pub is_you: bool,
}

/// Any user's workspace, as the workspaces page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminWorkspaceRow {
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub template: String,
    pub state: String,
    pub reason: Option<String>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub cpu_percent: Option<u64>,
    /// Seconds since this server saw it used (0: in use now); `None`: not since it started.
    pub idle_secs: Option<u64>,
    pub updated_at: i64,
    pub can_start: bool,
    pub can_stop: bool,
}

/// One audit entry, with its time as people read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    /// `2026-11-30T22:10:00Z`.
    pub time: String,
    pub actor: String,
    pub address: Option<String>,
    pub action: String,
    pub subject: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditRow>,
    /// Pass as `before` for the next (older) page; `None`: no more.
    pub before: Option<i64>,
}

/// The audit log's action names, for the filter (the same as the server's; a test checks).
pub const AUDIT_ACTIONS: [&str; 17] = [
    "sign_in",
    "sign_out",
    "password_change",
    "github_link",
    "github_unlink",
    "account_delete",
    "role_change",
    "suspend",
    "resume",
    "quota_change",
    "token_create",
    "token_revoke",
    "workspace_create",
    "workspace_start",
    "workspace_stop",
    "workspace_restart",
    "workspace_delete",
];

#[server(prefix = "/api", endpoint = "admin/instance")]
pub async fn admin_instance() -> Result<InstanceView, ApiError> {
    use crate::api::server_ctx::{require_admin, session, state};
    let (state, session) = (state()?, session().await?);
    require_admin(&state, &session).await?;
    server::instance(&state).await
}

/// `sort`: `last_seen` (default), `name` or `created`.
#[server(prefix = "/api", endpoint = "admin/users")]
pub async fn admin_users(search: String, sort: String) -> Result<Vec<MemberRow>, ApiError> {
    use crate::api::server_ctx::{require_admin, session, state};
    let (state, session) = (state()?, session().await?);
    let me = require_admin(&state, &session).await?;
    server::users(&state, &me, &search, &sort).await
}

/// `action`: `suspend` (signed out everywhere, running workspaces stopped), `resume`,
/// `make_admin`, `make_member` or `delete` (the account, its workspaces and files).
#[server(prefix = "/api", endpoint = "admin/user-action")]
pub async fn admin_user_action(id: i64, action: String) -> Result<(), ApiError> {
    use crate::api::server_ctx::{actor, require_admin, session, state};
    let (state, session) = (state()?, session().await?);
    let me = require_admin(&state, &session).await?;
    server::user_action(&state, &me, &actor(&me), id, &action).await
}

/// Empty fields go back to the instance's default.
#[server(prefix = "/api", endpoint = "admin/set-quota")]
pub async fn admin_set_quota(
    id: i64,
    workspaces: String,
    running: String,
    memory_mb: String,
) -> Result<(), ApiError> {
    use crate::api::server_ctx::{actor, fail, require_admin, session, state};
    use qingting_core::accounts::Quota;
    let (state, session) = (state()?, session().await?);
    let me = require_admin(&state, &session).await?;
    let number = |field: &str, v: &str| -> Result<Option<u64>, ApiError> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse::<u64>().map(Some).map_err(|_| {
            fail(ApiError::invalid(
                field,
                "A whole number, or empty for the default.",
            ))
        })
    };
    let quota = Quota {
        workspaces: number("workspaces", &workspaces)?,
        running: number("running", &running)?,
        memory_mb: number("memory_mb", &memory_mb)?,
    };
    server::set_quota(&state, &actor(&me), id, quota).await
}

#[server(prefix = "/api", endpoint = "admin/workspaces")]
pub async fn admin_workspaces() -> Result<Vec<AdminWorkspaceRow>, ApiError> {
    use crate::api::server_ctx::{require_admin, session, state};
    let (state, session) = (state()?, session().await?);
    require_admin(&state, &session).await?;
    server::workspaces(&state).await
}

/// `action`: start, stop, restart or delete, on any user's workspace.
#[server(prefix = "/api", endpoint = "admin/workspace-action")]
pub async fn admin_workspace_action(id: i64, action: String) -> Result<(), ApiError> {
    use crate::api::server_ctx::{actor, require_admin, session, state};
    let (state, session) = (state()?, session().await?);
    let me = require_admin(&state, &session).await?;
    server::workspace_action(&state, &actor(&me), id, &action).await
}

/// Newest first, 50 at a time; empty filters match everything. `user` is a user name.
#[server(prefix = "/api", endpoint = "admin/audit")]
pub async fn admin_audit(
    action: String,
    user: String,
    outcome: String,
    before: Option<i64>,
) -> Result<AuditPage, ApiError> {
    use crate::api::server_ctx::{require_admin, session, state};
    let (state, session) = (state()?, session().await?);
    require_admin(&state, &session).await?;
    server::audit(&state, &action, &user, &outcome, before).await
}

/// What the admin endpoints do, for the server functions above and the JSON API
/// (`/api/v1/admin/…`). The caller has checked that an admin asks.
#[cfg(feature = "ssr")]
pub mod server {
    use super::{AdminWorkspaceRow, AuditPage, AuditRow, InstanceView, MemberRow};
    use crate::api::{
        server_ctx::{fail, internal},
        workspaces::server::api_error,
        ApiError,
    };
    use qingting_core::{
        accounts::{self, Account, MemberSort, Quota, Role},
        audit::{self, Actor},
        workspaces::{Action, WorkspaceState},
        AppState,
    };

    /// Most audit entries one page shows.
    pub const AUDIT_PAGE: u64 = 50;

    pub async fn instance(state: &AppState) -> Result<InstanceView, ApiError> {
        let ws = &state.workspaces;
        let (running, max_running) = ws.host_use().await.map_err(internal)?;
        let pool = ws
            .pool_status()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|p| {
                (
                    p.template,
                    p.target.into(),
                    p.ready.into(),
                    p.starting.into(),
                )
            })
            .collect();
        let (accounts, suspended) = accounts::census(&state.db).await.map_err(internal)?;
        Ok(InstanceView {
            version: env!("CARGO_PKG_VERSION").to_string(),
            runtime: ws.runtime().name().to_string(),
            isolation: describe(&ws.runtime().isolation()),
            running,
            max_running,
            pool,
            editors: ws
                .templates()
                .iter()
                .map(|t| (t.name.clone(), ws.template_ready(t)))
                .collect(),
            accounts,
            suspended,
            default_workspaces: state.config.workspaces.max_per_user,
            default_running: state.config.workspaces.max_running_per_user,
        })
    }

    /// The runtime's isolation report (`/healthz`) on one line: `sandboxed: true, limits: …`.
    pub(super) fn describe(v: &serde_json::Value) -> String {
        match v.as_object() {
            Some(o) if !o.is_empty() => o
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k}: {}", plain(v)))
                .collect::<Vec<_>>()
                .join(", "),
            _ => "the runtime's own (one function per workspace)".to_string(),
        }
    }

    /// A value of the report as people read it: lists joined, a section by its `mode`.
    fn plain(v: &serde_json::Value) -> String {
        use serde_json::Value;
        match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
            Value::Object(o) => o.get("mode").map_or_else(|| v.to_string(), plain),
            other => other.to_string(),
        }
    }

    /// `sort`: `last_seen` (default), `name` or `created`.
    pub async fn users(
        state: &AppState,
        me: &Account,
        search: &str,
        sort: &str,
    ) -> Result<Vec<MemberRow>, ApiError> {
        let sort = MemberSort::parse(sort).unwrap_or_default();
        let list = accounts::directory(&state.db, search, sort)
            .await
            .map_err(internal)?;
        let now = qingting_core::store::now_unix();
        Ok(list
            .into_iter()
            .map(|m| MemberRow {
                is_you: m.id == me.id,
                id: m.id,
                username: m.username,
                display_name: m.display_name,
                admin: m.role == Role::Admin,
                suspended: m.suspended,
                last_seen_ago: m.last_seen_at.map(|t| (now - t).max(0)),
                created_at: m.created_at,
                workspaces: m.workspaces,
                running: m.running,
                quota_workspaces: m.quota.workspaces,
                quota_running: m.quota.running,
                quota_memory_mb: m.quota.memory_mb,
            })
            .collect())
    }

    /// `action`: `suspend`, `resume`, `make_admin`, `make_member` or `delete`.
    pub async fn user_action(
        state: &AppState,
        me: &Account,
        by: &Actor,
        id: i64,
        action: &str,
    ) -> Result<(), ApiError> {
        let target = accounts::find_by_id(&state.db, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| fail(ApiError::NotFound("No such account.".into())))?;
        match action {
            "suspend" => {
                accounts::set_suspended(&state.db, by, id, true).await?;
                // Its sessions are gone: its open dashboards and IDEs here close now.
                state.live.recheck();
                // Nobody can reach them any more: their running IDEs would only use room.
                let svc = &state.workspaces;
                for ws in svc.list(&target).await.map_err(internal)? {
                    if ws.state.can_stop() || ws.state.can_cancel() {
                        if let Err(e) = svc.begin(by, &target, ws.id, Action::Stop).await {
                            tracing::warn!(
                                workspace = ws.id,
                                "stopping a suspended user's workspace: {e}"
                            );
                        }
                    }
                }
            }
            "resume" => {
                accounts::set_suspended(&state.db, by, id, false).await?;
            }
            "make_admin" | "make_member" => {
                let role = match action {
                    "make_admin" => Role::Admin,
                    _ => Role::Member,
                };
                accounts::set_role(&state.db, by, &target.username, role).await?;
            }
            "delete" => {
                if id == me.id {
                    return Err(fail(ApiError::Conflict(
                        "Delete your own account from Settings → Security.".into(),
                    )));
                }
                accounts::delete_account(state, by, id).await?;
            }
            _ => {
                return Err(fail(ApiError::invalid(
                    "action",
                    "The action must be suspend, resume, make_admin, make_member or delete.",
                )))
            }
        }
        Ok(())
    }

    pub async fn set_quota(
        state: &AppState,
        by: &Actor,
        id: i64,
        quota: Quota,
    ) -> Result<(), ApiError> {
        accounts::set_quota(&state.db, by, id, quota).await?;
        Ok(())
    }

    pub async fn workspaces(state: &AppState) -> Result<Vec<AdminWorkspaceRow>, ApiError> {
        let svc = &state.workspaces;
        let all = svc.everyone().await.map_err(internal)?;
        Ok(all
            .into_iter()
            .map(|(owner, v)| {
                let usage = (v.state == WorkspaceState::Running)
                    .then(|| svc.runtime().usage(v.id))
                    .flatten();
                AdminWorkspaceRow {
                    id: v.id,
                    owner,
                    template: v.template_id.clone(),
                    state: v.state.as_str().to_string(),
                    reason: v.reason.clone(),
                    memory_bytes: usage.as_ref().and_then(|u| u.memory_bytes),
                    memory_limit_bytes: usage.as_ref().map(|u| u.memory_limit_bytes),
                    cpu_percent: usage
                        .as_ref()
                        .and_then(|u| u.cpu_percent)
                        .map(|p| p.round() as u64),
                    idle_secs: svc.activity().idle_secs(v.id),
                    updated_at: v.updated_at,
                    can_start: v.state.can_start(),
                    // A queued one is "stopped" by taking it out of the line.
                    can_stop: v.state.can_stop() || v.state.can_cancel(),
                    name: v.name,
                }
            })
            .collect())
    }

    /// `action`: start, stop, restart or delete, on any user's workspace.
    pub async fn workspace_action(
        state: &AppState,
        by: &Actor,
        id: i64,
        action: &str,
    ) -> Result<(), ApiError> {
        let Some(action) = Action::parse(action) else {
            return Err(fail(ApiError::invalid(
                "action",
                "The action must be start, stop, restart or delete.",
            )));
        };
        let owner = state.workspaces.owner_of(id).await.map_err(api_error)?;
        state
            .workspaces
            .begin(by, &owner, id, action)
            .await
            .map_err(api_error)?;
        Ok(())
    }

    /// Newest first, [`AUDIT_PAGE`] at a time; empty filters match everything.
    pub async fn audit(
        state: &AppState,
        action: &str,
        user: &str,
        outcome: &str,
        before: Option<i64>,
    ) -> Result<AuditPage, ApiError> {
        let action = match action.trim() {
            "" => None,
            a => Some(
                audit::Action::parse(a)
                    .ok_or_else(|| fail(ApiError::invalid("action", "Unknown action.")))?,
            ),
        };
        let outcome = match outcome.trim() {
            "" => None,
            o => Some(audit::Outcome::parse(o).ok_or_else(|| {
                fail(ApiError::invalid(
                    "outcome",
                    "The outcome is ok, refused or failed.",
                ))
            })?),
        };
        let user_id = match user.trim() {
            "" => None,
            name => match accounts::find_by_username(&state.db, name)
                .await
                .map_err(internal)?
            {
                Some(a) => Some(a.id),
                // Entries may outlive the account; an unknown name matches nothing.
                None => Some(i64::MIN),
            },
        };
        let filter = audit::Filter {
            action,
            user_id,
            outcome,
            since: None,
            until: None,
        };
        let entries = audit::list(&state.db, &filter, before, AUDIT_PAGE)
            .await
            .map_err(internal)?;
        let before = (entries.len() as u64 == AUDIT_PAGE)
            .then(|| entries.last().map(|e| e.id))
            .flatten();
        Ok(AuditPage {
            entries: entries
                .into_iter()
                .map(|e| AuditRow {
                    id: e.id,
                    time: audit::rfc3339(e.at),
                    actor: e.actor,
                    address: e.address,
                    action: e.action,
                    subject: e.subject,
                    outcome: e.outcome,
                    detail: e.detail,
                })
                .collect(),
            before,
        })
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    #[test]
    fn the_filter_offers_every_action_the_log_has() {
        let server: Vec<&str> = qingting_core::audit::Action::ALL
            .iter()
            .map(|a| a.as_str())
            .collect();
        assert_eq!(super::AUDIT_ACTIONS.to_vec(), server);
    }

    #[test]
    fn the_isolation_report_reads_as_words() {
        let report = serde_json::json!({
            "sandbox": "bubblewrap",
            "namespaces": ["mount", "pid"],
            "network": {"mode": "internet, firewalled", "refused": ["10.0.0.0/8"]},
            "uid_base": null,
        });
        let text = super::server::describe(&report);
        for part in [
            "sandbox: bubblewrap",
            "namespaces: mount, pid",
            "network: internet, firewalled",
        ] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!text.contains('{') && !text.contains("uid_base"), "{text}");
    }
}
