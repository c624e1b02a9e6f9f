//! One entry of the audit log: who did what to whom, when, from where, and how it went.
//! Written in the transaction of the change it records (see `crate::audit`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: i64,
    /// The acting account; `None` for the system or an unknown person (a failed sign-in).
    pub actor_id: Option<i64>,
    /// The actor's user name at the time (kept after the account is gone), or `system`.
    pub actor: String,
    pub address: Option<String>,
    pub action: String,
    /// The account acted on (the owner, for a workspace).
    pub subject_user_id: Option<i64>,
    /// What was acted on, as people read it: `alice`, `alice/demo`, a token's name.
    pub subject: Option<String>,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
