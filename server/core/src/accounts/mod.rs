//! Accounts: registration, password sign-in and lookups. One service that every entry
//! point (server functions, CLI, tests) calls.

mod password;
mod username;

pub use password::{hash_password, verify_password, MIN_PASSWORD_LEN};
pub use username::{validate_username, USERNAME_RULE};

use crate::store::{entity::user, now_unix};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, SqlErr,
};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{USERNAME_RULE}")]
    InvalidUsername,
    #[error("{0}")]
    WeakPassword(String),
    #[error("That user name is taken.")]
    UsernameTaken,
    /// Same message whether the user exists or the password is wrong.
    #[error("Wrong user name or password.")]
    InvalidCredentials,
    #[error("storage error: {0}")]
    Store(#[from] DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the rest of the system may know about a user: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: String,
}

impl From<user::Model> for Account {
    fn from(m: user::Model) -> Self {
        Self {
            id: m.id,
            username: m.username,
        }
    }
}

/// Creates an account with a password. Validates everything before touching the database,
/// so a refusal never leaves a row behind.
pub async fn register(
    db: &DatabaseConnection,
    username: &str,
    password: &str,
) -> Result<Account, AccountError> {
    validate_username(username)?;
    password::check_strength(password, username)?;
    if find_by_username(db, username).await?.is_some() {
        return Err(AccountError::UsernameTaken);
    }
    let hash = hash_password(password).await?;
    let row = user::ActiveModel {
        username: Set(username.to_string()),
        password_hash: Set(Some(hash)),
        created_at: Set(now_unix()),
        ..Default::default()
    };
    match row.insert(db).await {
        Ok(m) => Ok(m.into()),
        // Two registrations racing for one name: the unique index decides.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(AccountError::UsernameTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks a user name and password. Takes comparable time whether or not the user exists.
pub async fn authenticate(
    db: &DatabaseConnection,
    username: &str,
    password: &str,
) -> Result<Account, AccountError> {
    let found = if validate_username(username).is_ok() {
        user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(db)
            .await?
    } else {
        None
    };
    let hash = found.as_ref().and_then(|u| u.password_hash.clone());
    let ok = verify_password(password, hash.as_deref()).await?;
    match (found, ok) {
        (Some(u), true) => Ok(u.into()),
        _ => Err(AccountError::InvalidCredentials),
    }
}

pub async fn find_by_id(db: &DatabaseConnection, id: i64) -> Result<Option<Account>, DbErr> {
    Ok(user::Entity::find_by_id(id).one(db).await?.map(Into::into))
}

pub async fn find_by_username(
    db: &DatabaseConnection,
    username: &str,
) -> Result<Option<Account>, DbErr> {
    Ok(user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await?
        .map(Into::into))
}
