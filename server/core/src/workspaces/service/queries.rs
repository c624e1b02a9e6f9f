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

    /// Every user's workspace with its owner's name (the admin's view), by owner and name.
    pub async fn everyone(&self) -> Result<Vec<(String, WorkspaceView)>, WorkspaceError> {
        let rows = workspace::Entity::find()
            .filter(workspace::Column::UserId.ne(POOL_OWNER))
            .order_by_asc(workspace::Column::UserId)
            .order_by_asc(workspace::Column::Name)
            .all(&self.db)
            .await?;
        let ids: HashSet<i64> = rows.iter().map(|r| r.user_id).collect();
        let names: HashMap<i64, String> = crate::store::entity::user::Entity::find()
            .filter(crate::store::entity::user::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        let mut all: Vec<(String, WorkspaceView)> = rows
            .iter()
            .map(|r| (names.get(&r.user_id).cloned().unwrap_or_default(), r.into()))
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
        Ok(all)
    }

    /// The owner of any user's workspace `id`.
    pub async fn owner_of(&self, id: i64) -> Result<Account, WorkspaceError> {
        let row = workspace::Entity::find_by_id(id)
            .filter(workspace::Column::UserId.ne(POOL_OWNER))
            .one(&self.db)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        accounts::find_by_id(&self.db, row.user_id)
            .await?
            .ok_or(WorkspaceError::NotFound)
    }

    /// How many are running or on their way up on this host, and the cap (`None`: no cap).
    pub async fn host_use(&self) -> Result<(u64, Option<u64>), WorkspaceError> {
        let running = self.active_on_host(&self.db).await?;
        Ok((
            running,
            (self.max_running != u64::MAX).then_some(self.max_running),
        ))
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
