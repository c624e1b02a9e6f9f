//! The audit log: who did what to whom, when, from where, and how it went. Each change writes
//! its entry on the connection that makes the change (its transaction), so an entry exists
//! exactly when the change does; a refusal, which changes nothing, writes one on its own.
//!
//! Read by the admin page and `qingting audit export`; entries older than
//! `audit.retention_days` are pruned by the leading replica.

use crate::{accounts::Account, store::entity::audit_event, store::now_unix};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;

/// What happened. The names are stable: exports and filters use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SignIn,
    SignOut,
    PasswordChange,
    GithubLink,
    GithubUnlink,
    AccountDelete,
    RoleChange,
    Suspend,
    Resume,
    QuotaChange,
    TokenCreate,
    TokenRevoke,
    WorkspaceCreate,
    WorkspaceStart,
    WorkspaceStop,
    WorkspaceRestart,
    WorkspaceDelete,
}

impl Action {
    pub const ALL: [Action; 17] = [
        Action::SignIn,
        Action::SignOut,
        Action::PasswordChange,
        Action::GithubLink,
        Action::GithubUnlink,
        Action::AccountDelete,
        Action::RoleChange,
        Action::Suspend,
        Action::Resume,
        Action::QuotaChange,
        Action::TokenCreate,
        Action::TokenRevoke,
        Action::WorkspaceCreate,
        Action::WorkspaceStart,
        Action::WorkspaceStop,
        Action::WorkspaceRestart,
        Action::WorkspaceDelete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::SignIn => "sign_in",
            Action::SignOut => "sign_out",
            Action::PasswordChange => "password_change",
            Action::GithubLink => "github_link",
            Action::GithubUnlink => "github_unlink",
            Action::AccountDelete => "account_delete",
            Action::RoleChange => "role_change",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::QuotaChange => "quota_change",
            Action::TokenCreate => "token_create",
            Action::TokenRevoke => "token_revoke",
            Action::WorkspaceCreate => "workspace_create",
            Action::WorkspaceStart => "workspace_start",
            Action::WorkspaceStop => "workspace_stop",
            Action::WorkspaceRestart => "workspace_restart",
            Action::WorkspaceDelete => "workspace_delete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Not allowed or not possible (wrong password, a limit, a busy workspace): nothing changed.
    Refused,
    /// Allowed, but it went wrong on our side.
    Failed,
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Self> {
        [Outcome::Ok, Outcome::Refused, Outcome::Failed]
            .into_iter()
            .find(|o| o.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// Who acts, and from which client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: Option<i64>,
    pub name: String,
    pub address: Option<String>,
}

impl Actor {
    pub fn user(account: &Account, address: Option<String>) -> Self {
        Self {
            id: Some(account.id),
            name: account.username.clone(),
            address,
        }
    }

    /// The server itself (the idle reaper, an operator's command on the server's machine).
    pub fn system() -> Self {
        Self {
            id: None,
            name: "system".into(),
            address: None,
        }
    }

    /// Someone not signed in (a failed sign-in): known by address only.
    pub fn anonymous(address: Option<String>) -> Self {
        Self {
            id: None,
            name: "anonymous".into(),
            address,
        }
    }
}

/// What was acted on: an account, or something of an account's (a workspace, a token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub user_id: Option<i64>,
    pub name: Option<String>,
}

impl Subject {
    pub fn user(account: &Account) -> Self {
        Self {
            user_id: Some(account.id),
            name: Some(account.username.clone()),
        }
    }

    /// Something of `owner`'s, named `owner/<what>`.
    pub fn of(owner: &Account, what: &str) -> Self {
        Self {
            user_id: Some(owner.id),
            name: Some(format!("{}/{what}", owner.username)),
        }
    }

    /// A name that may not be an account (a failed sign-in's user name).
    pub fn named(user_id: Option<i64>, name: &str) -> Self {
        Self {
            user_id,
            name: Some(name.chars().take(160).collect()),
        }
    }
}

/// Writes one entry on `c`: the transaction of the change it records.
pub async fn record(
    c: &impl ConnectionTrait,
    actor: &Actor,
    action: Action,
    subject: &Subject,
    outcome: Outcome,
    detail: Option<&str>,
) -> Result<(), DbErr> {
    audit_event::ActiveModel {
        at: Set(now_unix()),
        actor_id: Set(actor.id),
        actor: Set(actor.name.chars().take(64).collect()),
        address: Set(actor.address.as_ref().map(|a| a.chars().take(64).collect())),
        action: Set(action.as_str().into()),
        subject_user_id: Set(subject.user_id),
        subject: Set(subject.name.as_ref().map(|n| n.chars().take(160).collect())),
        outcome: Set(outcome.as_str().into()),
        detail: Set(detail.map(|d| d.chars().take(1000).collect())),
        ..Default::default()
    }
    .insert(c)
    .await?;
    Ok(())
}

/// Writes an entry that has no change to join (a refusal changes nothing). A failure to
/// write it is logged, never turned into an error: the person gets the answer they earned
/// either way.
pub async fn record_alone(
    c: &impl ConnectionTrait,
    actor: &Actor,
    action: Action,
    subject: &Subject,
    outcome: Outcome,
    detail: Option<&str>,
) {
    if let Err(e) = record(c, actor, action, subject, outcome, detail).await {
        tracing::error!(
            action = action.as_str(),
            "cannot write the audit entry: {e}"
        );
    }
}

/// An entry as the admin page, the JSON API and the export show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub actor_id: Option<i64>,
    pub address: Option<String>,
    pub action: String,
    pub subject: Option<String>,
    pub subject_user_id: Option<i64>,
    pub outcome: String,
    pub detail: Option<String>,
}

impl From<audit_event::Model> for Entry {
    fn from(m: audit_event::Model) -> Self {
        Self {
            id: m.id,
            at: m.at,
            actor: m.actor,
            actor_id: m.actor_id,
            address: m.address,
            action: m.action,
            subject: m.subject,
            subject_user_id: m.subject_user_id,
            outcome: m.outcome,
            detail: m.detail,
        }
    }
}

/// An entry as `qingting audit export` writes it: the entry and its time in RFC 3339.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    pub time: String,
    #[serde(flatten)]
    pub entry: Entry,
}

impl From<Entry> for Exported {
    fn from(entry: Entry) -> Self {
        Self {
            time: rfc3339(entry.at),
            entry,
        }
    }
}

/// Which entries to read; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<Action>,
    /// Entries by or about this account (by id: it outlives a rename).
    pub user_id: Option<i64>,
    pub outcome: Option<Outcome>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
}

fn filtered(filter: &Filter) -> sea_orm::Select<audit_event::Entity> {
    let mut q = audit_event::Entity::find();
    if let Some(a) = filter.action {
        q = q.filter(audit_event::Column::Action.eq(a.as_str()));
    }
    if let Some(id) = filter.user_id {
        q = q.filter(
            audit_event::Column::ActorId
                .eq(id)
                .or(audit_event::Column::SubjectUserId.eq(id)),
        );
    }
    if let Some(o) = filter.outcome {
        q = q.filter(audit_event::Column::Outcome.eq(o.as_str()));
    }
    if let Some(t) = filter.since {
        q = q.filter(audit_event::Column::At.gte(t));
    }
    if let Some(t) = filter.until {
        q = q.filter(audit_event::Column::At.lt(t));
    }
    q
}

/// Newest first, `limit` entries with ids below `before` (the last id of the previous page).
pub async fn list(
    c: &impl ConnectionTrait,
    filter: &Filter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<Entry>, DbErr> {
    let mut q = filtered(filter);
    if let Some(b) = before {
        q = q.filter(audit_event::Column::Id.lt(b));
    }
    Ok(q.order_by_desc(audit_event::Column::Id)
        .limit(limit)
        .all(c)
        .await?
        .into_iter()
        .map(Entry::from)
        .collect())
}

/// Calls `each` with every matching entry, oldest first, a page at a time (an export of a
/// year's log never sits in memory whole).
pub async fn for_each(
    c: &impl ConnectionTrait,
    filter: &Filter,
    mut each: impl FnMut(Entry) -> std::io::Result<()>,
) -> Result<u64, ExportError> {
    const PAGE: u64 = 500;
    let mut after = 0;
    let mut n = 0;
    loop {
        let page = filtered(filter)
            .filter(audit_event::Column::Id.gt(after))
            .order_by_asc(audit_event::Column::Id)
            .limit(PAGE)
            .all(c)
            .await?;
        let full = page.len() as u64 == PAGE;
        for m in page {
            after = m.id;
            each(m.into())?;
            n += 1;
        }
        if !full {
            return Ok(n);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("storage error: {0}")]
    Store(#[from] DbErr),
    #[error("cannot write: {0}")]
    Write(#[from] std::io::Error),
}

/// Deletes entries older than `days` days; answers how many.
pub async fn prune(c: &impl ConnectionTrait, days: u64) -> Result<u64, DbErr> {
    let cutoff = now_unix() - (days as i64).saturating_mul(86_400);
    Ok(audit_event::Entity::delete_many()
        .filter(audit_event::Column::At.lt(cutoff))
        .exec(c)
        .await?
        .rows_affected)
}

/// A Unix time as RFC 3339 in UTC (`2026-11-30T22:10:00Z`), for people reading an export.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A time given on a command line or in a filter: Unix seconds, a date (`2026-11-30`, its
/// midnight in UTC) or RFC 3339.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let day = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]").ok()?;
    let date = time::Date::parse(s, &day).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

/// Deletes old entries every hour while this replica leads, until the lease's watcher ends
/// (the server stopped). `days` 0 keeps everything.
pub fn prune_while_leading(
    db: sea_orm::DatabaseConnection,
    days: u64,
    mut leads: crate::replicas::lease::Leadership,
) {
    if days == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = leads.changed() => if changed.is_err() { return } else { continue },
            }
            if !*leads.borrow() {
                continue;
            }
            match prune(&db, days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(count = n, days, "pruned the audit log"),
                Err(e) => tracing::warn!("pruning the audit log failed: {e}"),
            }
        }
    });
}
