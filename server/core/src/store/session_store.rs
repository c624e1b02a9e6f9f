//! tower-sessions records in the application database, so a restart logs nobody out and
//! several replicas share sessions.

use super::{entity::session, now_unix};
use async_trait::async_trait;
use qingting_gateway::{
    live::{SessionKey, SessionProbe},
    token::BoxFuture,
};
use sea_orm::{
    sea_query::OnConflict, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    QueryFilter,
};
use std::collections::HashSet;
use tower_sessions::{
    session::{Id, Record},
    session_store::{Error, ExpiredDeletion, Result},
    SessionStore,
};

/// Session key holding the signed-in user's id.
pub const USER_ID_KEY: &str = "uid";

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: DatabaseConnection,
}

impl DbSessionStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    fn to_row(record: &Record) -> Result<session::ActiveModel> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        Ok(session::ActiveModel {
            id: Set(record.id.to_string()),
            user_id: Set(record.data.get(USER_ID_KEY).and_then(|v| v.as_i64())),
            data: Set(data),
            expires_at: Set(record.expiry_date.unix_timestamp()),
        })
    }
}

/// Deletes every session of `user_id` except `keep` (the caller's own, if any).
pub async fn revoke_user_sessions(
    db: &DatabaseConnection,
    user_id: i64,
    keep: Option<&Id>,
) -> std::result::Result<u64, sea_orm::DbErr> {
    let mut q = session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
    if let Some(keep) = keep {
        q = q.filter(session::Column::Id.ne(keep.to_string()));
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// Whether dashboard session `id` still exists, belongs to `user_id` and has not expired
/// (workspace access ends with the session it came from).
pub async fn session_alive(
    db: &DatabaseConnection,
    id: &str,
    user_id: i64,
) -> std::result::Result<bool, sea_orm::DbErr> {
    use sea_orm::PaginatorTrait;
    Ok(session::Entity::find_by_id(id.to_string())
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::ExpiresAt.gt(now_unix()))
        .count(db)
        .await?
        > 0)
}

/// Which sessions are alive, from the sessions table (for [`LiveSessions`]).
///
/// [`LiveSessions`]: qingting_gateway::live::LiveSessions
#[derive(Debug, Clone)]
pub struct DbSessionProbe {
    db: DatabaseConnection,
}

impl DbSessionProbe {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Of `sessions`, the ones that exist, belong to their user and have not expired.
    pub async fn alive_among(
        &self,
        sessions: &[SessionKey],
    ) -> std::result::Result<HashSet<SessionKey>, sea_orm::DbErr> {
        use sea_orm::QuerySelect;
        let mut alive = HashSet::new();
        for chunk in sessions.chunks(500) {
            let rows: Vec<(String, Option<i64>)> = session::Entity::find()
                .select_only()
                .column(session::Column::Id)
                .column(session::Column::UserId)
                .filter(session::Column::Id.is_in(chunk.iter().map(|(s, _)| s.clone())))
                .filter(session::Column::ExpiresAt.gt(now_unix()))
                .into_tuple()
                .all(&self.db)
                .await?;
            alive.extend(rows.into_iter().filter_map(|(id, u)| Some((id, u?))));
        }
        alive.retain(|k| sessions.contains(k));
        Ok(alive)
    }
}

impl SessionProbe for DbSessionProbe {
    fn alive<'a>(
        &'a self,
        sessions: &'a [SessionKey],
    ) -> BoxFuture<'a, std::result::Result<HashSet<SessionKey>, String>> {
        Box::pin(async move { self.alive_among(sessions).await.map_err(|e| e.to_string()) })
    }
}

fn backend(e: sea_orm::DbErr) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A 128-bit random id practically never collides, but never overwrite someone else's.
        loop {
            let exists = session::Entity::find_by_id(record.id.to_string())
                .one(&self.db)
                .await
                .map_err(backend)?
                .is_some();
            if !exists {
                break;
            }
            record.id = Id::default();
        }
        session::Entity::insert(Self::to_row(record)?)
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        session::Entity::insert(Self::to_row(record)?)
            .on_conflict(
                OnConflict::column(session::Column::Id)
                    .update_columns([
                        session::Column::UserId,
                        session::Column::Data,
                        session::Column::ExpiresAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let row = session::Entity::find_by_id(id.to_string())
            .filter(session::Column::ExpiresAt.gt(now_unix()))
            .one(&self.db)
            .await
            .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let data = serde_json::from_str(&row.data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(row.expires_at)
            .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        session::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> Result<()> {
        session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lte(now_unix()))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
