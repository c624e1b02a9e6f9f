//! A workspace: one IDE of one user from one template, with its lifecycle state.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workspaces")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// `^[a-z][a-z0-9-]{0,30}$`, unique per user.
    pub name: String,
    pub template_id: String,
    /// One of `WorkspaceState`'s names.
    pub state: String,
    /// Why it failed or stopped (shown in the list).
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    /// What the runtime needs to find the workspace again after a restart (JSON).
    #[sea_orm(column_type = "Text", nullable)]
    pub runtime_state: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The replica carrying out an operation on it, until `claim_expires` (renewed while the
    /// operation runs). A transitional state whose claim lapsed was left by a replica that
    /// died; the leader finishes it.
    pub claimed_by: Option<String>,
    pub claim_expires: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
