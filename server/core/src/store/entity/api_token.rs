//! A personal API token: only its SHA-256 is stored; the secret is shown once.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// The secret's first characters, to tell tokens apart in a list.
    pub prefix: String,
    /// Hex SHA-256 of the whole secret.
    #[sea_orm(unique)]
    pub hash: String,
    /// Comma-separated: `read`, `workspaces`.
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
