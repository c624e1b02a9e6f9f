//! A person's account.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub username: String,
    /// Argon2id PHC string; `None` for accounts that sign in only through GitHub.
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub display_name: Option<String>,
    pub email: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub bio: Option<String>,
    /// Object-store key of the current avatar image.
    pub avatar_key: Option<String>,
    /// GitHub's numeric user id: the only thing GitHub sign-in links by.
    #[sea_orm(unique)]
    pub github_id: Option<i64>,
    pub github_login: Option<String>,
    /// `admin` or `member` (see `accounts::Role`).
    pub role: String,
    /// When an admin suspended the account: it cannot sign in, and has no sessions.
    pub suspended_at: Option<i64>,
    /// When the person last signed in or used the dashboard (to the nearest few minutes).
    pub last_seen_at: Option<i64>,
    /// Per-user overrides of the instance's limits (`None`: the instance's).
    pub quota_workspaces: Option<i64>,
    pub quota_running: Option<i64>,
    pub quota_memory_mb: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
