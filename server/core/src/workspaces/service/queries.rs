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

    /// The workspace `<user>-<name>` names, for the gateway; `None` when either is unknown.
    pub async fn resolve(
        &self,
        user: &str,
        name: &str,
    ) -> Result<Option<GatewayTarget>, WorkspaceError> {
        let Some(owner) = accounts::find_by_username(&self.db, user).await? else {
            return Ok(None);
        };
        let Some(row) = workspace::Entity::find()
            .filter(workspace::Column::UserId.eq(owner.id))
            .filter(workspace::Column::Name.eq(name))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let endpoint = self.runtime.endpoint(row.id, &runtime_state(&row));
        Ok(Some(GatewayTarget {
            id: row.id,
            owner_id: owner.id,
            state: state_of(&row),
            endpoint,
        }))
    }
}
