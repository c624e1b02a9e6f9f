//! Reads: a user's workspaces, one of them, and the gateway's host → workspace lookup.

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
}
