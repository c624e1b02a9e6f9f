//! Roles and suspension: what an operator decides about an account. Each change writes its
//! audit entry in the same transaction.

use super::{Account, AccountError};
use crate::{
    audit::{self, Actor, Subject},
    store::{
        entity::{lease, session, user},
        now_unix,
    },
};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait,
    DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait, IsolationLevel,
    PaginatorTrait, QueryFilter, TransactionTrait,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees and acts on every account and workspace, and the instance.
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Anything but `admin` is a member: a value this version does not know grants nothing.
    pub fn of(s: &str) -> Self {
        match s {
            "admin" => Role::Admin,
            _ => Role::Member,
        }
    }
}

/// The lease row whose lock makes "is this the first account?" and "is this the last admin?"
/// one question at a time.
const FIRST_ACCOUNT_LOCK: &str = "workspace-limits";

/// Begins the transaction that writes a new account, and says which role it gets: the
/// first account of an instance is its admin. Two first registrations at once cannot both
/// see an empty table: the second waits for the first's commit on a lock row.
pub(super) async fn begin_new_account(
    db: &DatabaseConnection,
) -> Result<(DatabaseTransaction, Role), DbErr> {
    let txn = begin_read_committed(db).await?;
    if user::Entity::find().count(&txn).await? > 0 {
        return Ok((txn, Role::Member));
    }
    lock_admins(&txn).await?;
    let role = match user::Entity::find().count(&txn).await? {
        0 => Role::Admin,
        _ => Role::Member,
    };
    Ok((txn, role))
}

/// Takes the lock row that makes admin-count checks one at a time across replicas.
async fn lock_admins(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    lease::Entity::update_many()
        .col_expr(
            lease::Column::Holder,
            Expr::col(lease::Column::Holder).into(),
        )
        .filter(lease::Column::Name.eq(FIRST_ACCOUNT_LOCK))
        .exec(txn)
        .await?;
    Ok(())
}

/// Admins who can sign in (not suspended).
async fn active_admins(c: &impl ConnectionTrait) -> Result<u64, DbErr> {
    user::Entity::find()
        .filter(user::Column::Role.eq(Role::Admin.as_str()))
        .filter(user::Column::SuspendedAt.is_null())
        .count(c)
        .await
}

/// Refuses a change that takes `row` out of the admins who can sign in when it is the last
/// of them, while other accounts remain (with none left, the next registration is the admin).
pub(super) async fn keep_an_admin(
    txn: &DatabaseTransaction,
    row: &user::Model,
) -> Result<(), AccountError> {
    if Role::of(&row.role) != Role::Admin || row.suspended_at.is_some() {
        return Ok(());
    }
    lock_admins(txn).await?;
    let others = user::Entity::find()
        .filter(user::Column::Id.ne(row.id))
        .count(txn)
        .await?;
    if others > 0 && active_admins(txn).await? <= 1 {
        return Err(AccountError::LastAdmin);
    }
    Ok(())
}

/// Begins a transaction whose reads see what other replicas committed while it waited for a
/// lock (MySQL's repeatable read would answer from an older snapshot).
async fn begin_read_committed(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let isolation = match db.get_database_backend() {
        DbBackend::Sqlite => None,
        _ => Some(IsolationLevel::ReadCommitted),
    };
    db.begin_with_config(isolation, None).await
}

pub async fn role_of(db: &impl ConnectionTrait, user_id: i64) -> Result<Option<Role>, DbErr> {
    Ok(user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .map(|u| Role::of(&u.role)))
}

/// Makes `username` an admin or a member. The last admin cannot step down: the instance
/// would have nobody to run it from the browser.
pub async fn set_role(
    db: &DatabaseConnection,
    by: &Actor,
    username: &str,
    role: Role,
) -> Result<Account, AccountError> {
    let txn = begin_read_committed(db).await?;
    // First, so that two demotions at once cannot both see the other still an admin.
    lock_admins(&txn).await?;
    let row = user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(&txn)
        .await?
        .ok_or_else(|| AccountError::NoSuchUser(username.to_string()))?;
    let account = Account::from(row.clone());
    if Role::of(&row.role) == role {
        return Ok(account);
    }
    if role == Role::Member {
        keep_an_admin(&txn, &row).await?;
    }
    let mut active: user::ActiveModel = row.into();
    active.role = Set(role.as_str().into());
    active.update(&txn).await?;
    audit::record(
        &txn,
        by,
        audit::Action::RoleChange,
        &Subject::user(&account),
        audit::Outcome::Ok,
        Some(role.as_str()),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(user = %account.username, role = role.as_str(), by = %by.name, "role changed");
    Ok(account)
}

/// Suspends an account (it cannot sign in, and every session of it ends at once, which
/// ends its access to its workspaces through every gateway), or lets it back in.
pub async fn set_suspended(
    db: &DatabaseConnection,
    by: &Actor,
    user_id: i64,
    suspended: bool,
) -> Result<Account, AccountError> {
    if suspended && by.id == Some(user_id) {
        return Err(AccountError::OwnAccount);
    }
    let txn = begin_read_committed(db).await?;
    lock_admins(&txn).await?;
    let row = user::Entity::find_by_id(user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| AccountError::NoSuchUser(format!("#{user_id}")))?;
    let account = Account::from(row.clone());
    if row.suspended_at.is_some() == suspended {
        return Ok(account);
    }
    if suspended {
        keep_an_admin(&txn, &row).await?;
    }
    let mut active: user::ActiveModel = row.into();
    active.suspended_at = Set(suspended.then(now_unix));
    active.update(&txn).await?;
    if suspended {
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
    }
    let action = match suspended {
        true => audit::Action::Suspend,
        false => audit::Action::Resume,
    };
    audit::record(
        &txn,
        by,
        action,
        &Subject::user(&account),
        audit::Outcome::Ok,
        None,
    )
    .await?;
    txn.commit().await?;
    tracing::info!(user = %account.username, suspended, by = %by.name, "suspension changed");
    Ok(account)
}
