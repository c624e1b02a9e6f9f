//! Accounts: registration, password sign-in and lookups. One service that every entry
//! point (server functions, CLI, tests) calls.

mod directory;
pub mod github;
mod password;
mod profile;
mod quotas;
mod roles;
mod username;

pub use directory::{census, directory, Member, MemberSort};
pub use github::{bind_github, sign_in_with_github, unbind_github, GithubIdentity};
pub use password::{hash_password, verify_password, MIN_PASSWORD_LEN};
pub use profile::{profile, update_profile, valid_email, Profile, ProfileInput};
pub use quotas::{quota_of, set_quota, Quota};
pub use roles::{role_of, set_role, set_suspended, Role};
pub use username::{validate_username, USERNAME_RULE};

use crate::{
    audit::{self, Actor, Subject},
    store::{entity::user, now_unix},
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, SqlErr, TransactionTrait,
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
    #[error("{message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    #[error("The current password is wrong.")]
    WrongPassword,
    #[error("This account no longer exists.")]
    NotFound,
    #[error("That GitHub account is already linked to another QingTing account.")]
    GithubTaken,
    #[error("A GitHub account is already linked. Unlink it first.")]
    GithubAlreadyLinked,
    #[error("Set a password first: without GitHub you would have no way to sign in.")]
    LastSignInMethod,
    /// Said only after the password was right: a guesser learns nothing from it.
    #[error("This account is suspended. Ask an administrator of this instance.")]
    Suspended,
    #[error("There is no account named {0}.")]
    NoSuchUser(String),
    #[error("This is the only admin: make someone else an admin first.")]
    LastAdmin,
    #[error("You cannot do that to your own account.")]
    OwnAccount,
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
    let (txn, role) = roles::begin_new_account(db).await?;
    let row = user::ActiveModel {
        username: Set(username.to_string()),
        password_hash: Set(Some(hash)),
        created_at: Set(now_unix()),
        role: Set(role.as_str().into()),
        ..Default::default()
    };
    match row.insert(&txn).await {
        Ok(m) => {
            txn.commit().await?;
            Ok(m.into())
        }
        // Two registrations racing for one name: the unique index decides.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(AccountError::UsernameTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks a user name and password. Takes comparable time whether or not the user exists.
/// A suspended account is refused, and said so, only when the password was right.
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
        (Some(u), true) if u.suspended_at.is_some() => Err(AccountError::Suspended),
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

/// Changes the password after checking the current one (accounts without a password, made
/// through GitHub, set their first one without it). The caller rotates the session and
/// revokes the user's other sessions.
pub async fn change_password(
    db: &DatabaseConnection,
    by: &Actor,
    user_id: i64,
    current: &str,
    new: &str,
) -> Result<(), AccountError> {
    let row = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AccountError::NotFound)?;
    if let Some(hash) = &row.password_hash {
        if !verify_password(current, Some(hash)).await? {
            return Err(AccountError::WrongPassword);
        }
    }
    password::check_strength(new, &row.username)?;
    let hash = hash_password(new).await?;
    let account = Account::from(row.clone());
    let mut row: user::ActiveModel = row.into();
    row.password_hash = Set(Some(hash));
    let txn = db.begin().await?;
    row.update(&txn).await?;
    audit::record(
        &txn,
        by,
        audit::Action::PasswordChange,
        &Subject::user(&account),
        audit::Outcome::Ok,
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Checks a signed-in user's password (re-confirmation before destructive actions).
pub async fn confirm_password(
    db: &DatabaseConnection,
    user_id: i64,
    password: &str,
) -> Result<(), AccountError> {
    let row = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AccountError::NotFound)?;
    match verify_password(password, row.password_hash.as_deref()).await? {
        true => Ok(()),
        false => Err(AccountError::WrongPassword),
    }
}

/// Deletes the user row and every session of the user, atomically. Returns the avatar key so
/// the caller can delete the object.
pub async fn delete_user_rows(
    db: &DatabaseConnection,
    by: &Actor,
    user_id: i64,
) -> Result<Option<String>, AccountError> {
    use crate::store::entity::session;
    let txn = db.begin().await?;
    let row = user::Entity::find_by_id(user_id)
        .one(&txn)
        .await?
        .ok_or(AccountError::NotFound)?;
    roles::keep_an_admin(&txn, &row).await?;
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    crate::api_tokens::delete_all(&txn, user_id).await?;
    user::Entity::delete_by_id(user_id).exec(&txn).await?;
    audit::record(
        &txn,
        by,
        audit::Action::AccountDelete,
        &Subject::user(&row.clone().into()),
        audit::Outcome::Ok,
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(row.avatar_key)
}

/// How stale "last seen" may get before a request writes it again: a page view is a read.
pub const SEEN_EVERY_SECS: i64 = 300;

/// Notes that the person is here now, unless that was noted in the last few minutes.
pub async fn seen(db: &DatabaseConnection, user_id: i64, last: Option<i64>) -> Result<(), DbErr> {
    let now = now_unix();
    if last.is_some_and(|t| now - t < SEEN_EVERY_SECS) {
        return Ok(());
    }
    user::Entity::update_many()
        .col_expr(
            user::Column::LastSeenAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a new avatar key; returns the previous one (to delete).
pub async fn replace_avatar_key(
    db: &DatabaseConnection,
    user_id: i64,
    key: Option<String>,
) -> Result<Option<String>, AccountError> {
    let row = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AccountError::NotFound)?;
    let old = row.avatar_key.clone();
    let mut row: user::ActiveModel = row.into();
    row.avatar_key = Set(key);
    row.update(db).await?;
    Ok(old)
}

/// Something that must happen before an account disappears (its workspaces are deleted
/// through this). A failing hook stops the deletion, so nothing is left half-deleted.
#[async_trait::async_trait]
pub trait AccountDeletionHook: Send + Sync + std::fmt::Debug {
    async fn before_account_deletion(&self, by: &Actor, user_id: i64) -> Result<(), String>;
}

/// Deletes an account: hooks first, then sessions and the user row together, then the
/// avatar object. The caller has already re-confirmed the person's identity (or is an admin).
pub async fn delete_account(
    state: &crate::AppState,
    by: &Actor,
    user_id: i64,
) -> Result<(), AccountError> {
    // Checked before anything is deleted (and again with the rows): the last admin stays.
    {
        let txn = state.db.begin().await?;
        let row = user::Entity::find_by_id(user_id)
            .one(&txn)
            .await?
            .ok_or(AccountError::NotFound)?;
        roles::keep_an_admin(&txn, &row).await?;
    }
    for hook in state.deletion_hooks.iter() {
        hook.before_account_deletion(by, user_id)
            .await
            .map_err(AccountError::Internal)?;
    }
    let avatar = delete_user_rows(&state.db, by, user_id).await?;
    // Its sessions went with the rows: its open connections here close now.
    state.live.recheck();
    if let Some(key) = avatar {
        if let Err(e) = state.objects.delete(&key).await {
            // The account is gone either way; an orphaned image is only storage.
            tracing::warn!(%key, "could not delete avatar of deleted account: {e}");
        }
    }
    tracing::info!(user_id, "account deleted");
    Ok(())
}
