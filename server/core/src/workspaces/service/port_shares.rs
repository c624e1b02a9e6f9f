//! Sharing a workspace's port preview beyond its owner: with every signed-in user of this
//! instance, or with anyone (public). Explicit, per port, shown on the card, and revocable:
//! every change reaches the gateway at once (through `owner_changed`).

use super::*;
use crate::store::entity::port_share;
use sea_orm::sea_query::OnConflict;

/// Who may open one port of a workspace besides its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSharing {
    Private,
    /// Anyone signed in to this instance (through the same token exchange as the owner).
    Users,
    /// Anyone at all, without signing in.
    Public,
}

impl PortSharing {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Self::Private),
            "users" => Some(Self::Users),
            "public" => Some(Self::Public),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Users => "users",
            Self::Public => "public",
        }
    }
}

/// Shared ports per workspace, at most (each is on its card and in the gateway's memory).
pub const MAX_SHARED_PORTS: u64 = 32;

/// The shared ports of one workspace, ascending.
pub type PortShares = Vec<(u16, PortSharing)>;

impl WorkspaceService {
    /// Shares port `port` of the owner's workspace `id` (or stops sharing it: `Private`).
    pub async fn share_port(
        &self,
        owner: &Account,
        id: i64,
        port: u16,
        sharing: PortSharing,
    ) -> Result<(), WorkspaceError> {
        let ws = self.load(owner, id).await?;
        if port == 0 {
            return Err(WorkspaceError::InvalidPort);
        }
        let key = (
            port_share::Column::WorkspaceId.eq(ws.id),
            port_share::Column::Port.eq(i32::from(port)),
        );
        if sharing == PortSharing::Private {
            port_share::Entity::delete_many()
                .filter(key.0)
                .filter(key.1)
                .exec(&self.db)
                .await?;
        } else {
            let others = port_share::Entity::find()
                .filter(port_share::Column::WorkspaceId.eq(ws.id))
                .filter(port_share::Column::Port.ne(i32::from(port)))
                .count(&self.db)
                .await?;
            if others >= MAX_SHARED_PORTS {
                return Err(WorkspaceError::LimitReached(format!(
                    "A workspace shares at most {MAX_SHARED_PORTS} ports; stop sharing one first."
                )));
            }
            // One statement, so two changes at once cannot trip over each other.
            port_share::Entity::insert(port_share::ActiveModel {
                workspace_id: Set(ws.id),
                port: Set(i32::from(port)),
                sharing: Set(sharing.as_str().to_string()),
                created_at: Set(now_unix()),
            })
            .on_conflict(
                OnConflict::columns([port_share::Column::WorkspaceId, port_share::Column::Port])
                    .update_column(port_share::Column::Sharing)
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        }
        tracing::info!(
            workspace = ws.id,
            port,
            sharing = sharing.as_str(),
            "port sharing changed"
        );
        self.owner_changed(owner.id);
        Ok(())
    }

    /// The shared ports of workspace `id`.
    pub async fn port_shares(&self, id: i64) -> Result<PortShares, WorkspaceError> {
        Ok(self
            .port_shares_of(&[id])
            .await?
            .remove(&id)
            .unwrap_or_default())
    }

    /// The shared ports of each of `ids` that shares any, in one query.
    pub async fn port_shares_of(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, PortShares>, WorkspaceError> {
        let rows = port_share::Entity::find()
            .filter(port_share::Column::WorkspaceId.is_in(ids.iter().copied()))
            .order_by_asc(port_share::Column::Port)
            .all(&self.db)
            .await?;
        let mut out: HashMap<i64, PortShares> = HashMap::new();
        for r in rows {
            // An unknown value can only come from a newer version: treat it as private.
            if let (Ok(port), Some(sharing)) =
                (u16::try_from(r.port), PortSharing::parse(&r.sharing))
            {
                out.entry(r.workspace_id).or_default().push((port, sharing));
            }
        }
        Ok(out)
    }

    /// Forgets the shares of a deleted workspace.
    pub(super) async fn forget_port_shares(&self, id: i64) -> Result<(), WorkspaceError> {
        port_share::Entity::delete_many()
            .filter(port_share::Column::WorkspaceId.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// How `port` of a workspace with `shares` is shared.
pub fn sharing_of(shares: &[(u16, PortSharing)], port: u16) -> PortSharing {
    shares
        .iter()
        .find(|(p, _)| *p == port)
        .map_or(PortSharing::Private, |(_, s)| *s)
}
