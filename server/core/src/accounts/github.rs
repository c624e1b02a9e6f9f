//! GitHub identities on accounts. Linked by GitHub's numeric user id only, never by e-mail
//! or login (GHSA-9r87-mvcw-x35f): logins can be renamed and re-registered by someone else.

use super::{roles, validate_username, Account, AccountError};
use crate::{
    audit::{self, Actor, Subject},
    store::{entity::user, now_unix},
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    SqlErr, TransactionTrait,
};

/// Who GitHub says the person is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubIdentity {
    pub id: i64,
    pub login: String,
}

/// The account linked to this GitHub id, or a new one (second value `true`) named after the
/// GitHub login, made valid and unique. A suspended account is refused.
pub async fn sign_in_with_github(
    db: &DatabaseConnection,
    gh: &GithubIdentity,
) -> Result<(Account, bool), AccountError> {
    if let Some(u) = find_by_github_id(db, gh.id).await? {
        if u.suspended_at.is_some() {
            return Err(AccountError::Suspended);
        }
        return Ok((u.into(), false));
    }
    let base = username_from_login(&gh.login);
    for attempt in 0..50u32 {
        let candidate = candidate(&base, attempt);
        if super::find_by_username(db, &candidate).await?.is_some() {
            continue;
        }
        let (txn, role) = roles::begin_new_account(db).await?;
        let row = user::ActiveModel {
            username: Set(candidate),
            password_hash: Set(None),
            created_at: Set(now_unix()),
            github_id: Set(Some(gh.id)),
            github_login: Set(Some(gh.login.clone())),
            role: Set(role.as_str().into()),
            ..Default::default()
        };
        match row.insert(&txn).await {
            Ok(m) => {
                txn.commit().await?;
                return Ok((m.into(), true));
            }
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                drop(txn);
                // Either the name was taken meanwhile (try the next) or the same GitHub user
                // signed in twice at once (use that account).
                if let Some(u) = find_by_github_id(db, gh.id).await? {
                    if u.suspended_at.is_some() {
                        return Err(AccountError::Suspended);
                    }
                    return Ok((u.into(), false));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(AccountError::Internal(
        "could not find a free user name".into(),
    ))
}

/// Links `gh` to a signed-in account.
pub async fn bind_github(
    db: &DatabaseConnection,
    by: &Actor,
    user_id: i64,
    gh: &GithubIdentity,
) -> Result<(), AccountError> {
    if let Some(other) = find_by_github_id(db, gh.id).await? {
        return if other.id == user_id {
            Ok(())
        } else {
            Err(AccountError::GithubTaken)
        };
    }
    let row = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AccountError::NotFound)?;
    if row.github_id.is_some() {
        return Err(AccountError::GithubAlreadyLinked);
    }
    let account = Account::from(row.clone());
    let mut row: user::ActiveModel = row.into();
    row.github_id = Set(Some(gh.id));
    row.github_login = Set(Some(gh.login.clone()));
    let txn = db.begin().await?;
    match row.update(&txn).await {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(AccountError::GithubTaken)
        }
        Err(e) => return Err(e.into()),
    }
    audit::record(
        &txn,
        by,
        audit::Action::GithubLink,
        &Subject::user(&account),
        audit::Outcome::Ok,
        Some(&gh.login),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Unlinks GitHub, unless that would leave the account without a way to sign in.
pub async fn unbind_github(
    db: &DatabaseConnection,
    by: &Actor,
    user_id: i64,
) -> Result<(), AccountError> {
    let row = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AccountError::NotFound)?;
    if row.password_hash.is_none() {
        return Err(AccountError::LastSignInMethod);
    }
    let account = Account::from(row.clone());
    let login = row.github_login.clone();
    let mut row: user::ActiveModel = row.into();
    row.github_id = Set(None);
    row.github_login = Set(None);
    let txn = db.begin().await?;
    row.update(&txn).await?;
    audit::record(
        &txn,
        by,
        audit::Action::GithubUnlink,
        &Subject::user(&account),
        audit::Outcome::Ok,
        login.as_deref(),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

pub async fn find_by_github_id(
    db: &DatabaseConnection,
    github_id: i64,
) -> Result<Option<user::Model>, AccountError> {
    Ok(user::Entity::find()
        .filter(user::Column::GithubId.eq(github_id))
        .one(db)
        .await?)
}

/// `Octo-Cat_99` → `octocat99`; made to start with a letter and fit 3..=31 characters.
fn username_from_login(login: &str) -> String {
    let mut s: String = login
        .chars()
        .filter_map(|c| {
            let c = c.to_ascii_lowercase();
            (c.is_ascii_lowercase() || c.is_ascii_digit()).then_some(c)
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s.insert_str(0, "gh");
    }
    while s.len() < 3 {
        s.push('0');
    }
    s.truncate(27); // room for a numeric suffix
    s
}

fn candidate(base: &str, attempt: u32) -> String {
    let name = if attempt == 0 {
        base.to_string()
    } else {
        format!("{base}{}", attempt + 1)
    };
    debug_assert!(validate_username(&name).is_ok(), "{name}");
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_from_github_logins_are_valid() {
        for (login, want) in [
            ("octocat", "octocat"),
            ("Octo-Cat_99", "octocat99"),
            ("42", "gh42"),
            ("a", "a00"),
            ("-", "gh0"),
            (&"x".repeat(39), &"x".repeat(27)),
        ] {
            let got = username_from_login(login);
            assert_eq!(got, want);
            assert!(validate_username(&got).is_ok());
            assert!(validate_username(&candidate(&got, 49)).is_ok());
        }
    }
}
