//! Used workspace-token nonces in the database: every replica, and every `qingting-shell`
//! that asks the dashboard, sees the same set, so a leaked token works at most once.

use super::entity::used_token;
use qingting_gateway::token::{BoxFuture, Claims, UsedTokens};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, SqlErr,
};

#[derive(Debug, Clone)]
pub struct DbUsedTokens {
    db: DatabaseConnection,
}

impl DbUsedTokens {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn record(&self, nonce: &str, exp: i64, now: i64) -> Result<bool, DbErr> {
        // Tokens live at most a minute, so this table stays tiny; trimming it on the way keeps
        // it so without a sweeper.
        used_token::Entity::delete_many()
            .filter(used_token::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?;
        let row = used_token::ActiveModel {
            nonce: Set(nonce.to_string()),
            expires_at: Set(exp),
        };
        match used_token::Entity::insert(row).exec(&self.db).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

impl UsedTokens for DbUsedTokens {
    fn first_use<'a>(
        &'a self,
        _token: &'a str,
        claims: &'a Claims,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            self.record(&claims.nonce, claims.exp, now)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
