//! Reads: a user's workspaces, one of them, and how many there are in each state.

use super::*;

impl WorkspaceService {
    pub async fn list(&self, owner: &Account) -> Result<Vec<WorkspaceView>, WorkspaceError> {
        let rows = workspace::Entity::find()
            .filter(workspace::Column::UserId.eq(owner.id))
            .order_by_asc(workspace::Column::Name)
            .all(&self.db)
            .await?;
        Ok(rows.iter().map(Into::into).collect())
    }

    pub async fn get(&self, owner: &Account, id: i64) -> Result<WorkspaceView, WorkspaceError> {
        Ok((&self.load(owner, id).await?).into())
    }

    pub async fn find_by_name(
        &self,
        owner: &Account,
        name: &str,
    ) -> Result<Option<WorkspaceView>, WorkspaceError> {
        Ok(workspace::Entity::find()
            .filter(workspace::Column::UserId.eq(owner.id))
            .filter(workspace::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .as_ref()
            .map(Into::into))
    }

    /// How many workspaces there are per (template, state): users' first, then the pool's.
    pub async fn census(&self) -> Result<(Census, Census), WorkspaceError> {
        let count = |pooled: bool| {
            let owner = match pooled {
                true => workspace::Column::UserId.eq(POOL_OWNER),
                false => workspace::Column::UserId.ne(POOL_OWNER),
            };
            workspace::Entity::find()
                .select_only()
                .column(workspace::Column::TemplateId)
                .column(workspace::Column::State)
                .column_as(workspace::Column::Id.count(), "n")
                .filter(owner)
                .group_by(workspace::Column::TemplateId)
                .group_by(workspace::Column::State)
                .into_tuple::<(String, String, i64)>()
                .all(&self.db)
        };
        Ok((count(false).await?, count(true).await?))
    }
}

/// (template, state, how many).
pub type Census = Vec<(String, String, i64)>;
