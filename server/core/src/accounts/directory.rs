//! The instance's accounts as an admin sees them: searched by name, sorted, with their role,
//! suspension, quota, last sign of life and how many workspaces they have and run.

use super::{Quota, Role};
use crate::{
    store::entity::{user, workspace},
    workspaces::{WorkspaceState, POOL_OWNER},
};
use sea_orm::{
    sea_query::{Expr, Func, LikeExpr},
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Most accounts one listing shows (search narrows).
pub const PAGE: u64 = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: i64,
    pub username: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub suspended: bool,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    pub quota: Quota,
    pub workspaces: u64,
    pub running: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberSort {
    /// Most recently seen first; never seen last.
    #[default]
    LastSeen,
    Name,
    /// Newest accounts first.
    Created,
}

impl MemberSort {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "last_seen" => Some(Self::LastSeen),
            "name" => Some(Self::Name),
            "created" => Some(Self::Created),
            _ => None,
        }
    }
}

/// Accounts whose name or display name contains `search` (all when empty).
pub async fn directory(
    db: &DatabaseConnection,
    search: &str,
    sort: MemberSort,
) -> Result<Vec<Member>, DbErr> {
    let mut q = user::Entity::find();
    let search = search.trim().to_lowercase();
    if !search.is_empty() {
        // Case-insensitive on every backend (Postgres' LIKE is not), with `%` and `_` taken
        // literally.
        let escaped = search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = || LikeExpr::new(format!("%{escaped}%")).escape('\\');
        let lower = |c: user::Column| Expr::expr(Func::lower(Expr::col(c)));
        q = q.filter(
            Condition::any()
                .add(lower(user::Column::Username).like(pattern()))
                .add(lower(user::Column::DisplayName).like(pattern())),
        );
    }
    q = match sort {
        MemberSort::Name => q.order_by_asc(user::Column::Username),
        MemberSort::Created => q.order_by_desc(user::Column::Id),
        // Never seen last, on every backend.
        MemberSort::LastSeen => q
            .order_by(Expr::col(user::Column::LastSeenAt).is_null(), Order::Asc)
            .order_by_desc(user::Column::LastSeenAt)
            .order_by_asc(user::Column::Username),
    };
    let users = q.limit(PAGE).all(db).await?;
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let counts: Vec<(i64, String, i64)> = workspace::Entity::find()
        .select_only()
        .column(workspace::Column::UserId)
        .column(workspace::Column::State)
        .column_as(workspace::Column::Id.count(), "n")
        .filter(workspace::Column::UserId.is_in(ids))
        .filter(workspace::Column::UserId.ne(POOL_OWNER))
        .group_by(workspace::Column::UserId)
        .group_by(workspace::Column::State)
        .into_tuple()
        .all(db)
        .await?;
    let mut per: HashMap<i64, (u64, u64)> = HashMap::new();
    for (uid, state, n) in counts {
        let e = per.entry(uid).or_default();
        e.0 += n as u64;
        if WorkspaceState::parse(&state).is_some_and(WorkspaceState::is_active) {
            e.1 += n as u64;
        }
    }
    let members: Vec<Member> = users
        .into_iter()
        .map(|u| {
            let (workspaces, running) = per.get(&u.id).copied().unwrap_or_default();
            Member {
                id: u.id,
                role: Role::of(&u.role),
                suspended: u.suspended_at.is_some(),
                quota: Quota::of(&u),
                username: u.username,
                display_name: u.display_name,
                created_at: u.created_at,
                last_seen_at: u.last_seen_at,
                workspaces,
                running,
            }
        })
        .collect();
    Ok(members)
}

/// How many accounts there are, and how many of them are suspended.
pub async fn census(db: &DatabaseConnection) -> Result<(u64, u64), DbErr> {
    let all = user::Entity::find().count(db).await?;
    let suspended = user::Entity::find()
        .filter(user::Column::SuspendedAt.is_not_null())
        .count(db)
        .await?;
    Ok((all, suspended))
}
