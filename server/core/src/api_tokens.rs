//! Personal API tokens: named, expiring, revocable, scoped. The secret (`qt_` and 43
//! characters of randomness) is shown once; only its SHA-256 is stored, so a leaked database
//! opens nothing. Used as `Authorization: Bearer` on the JSON API, never from a cookie.

use crate::{
    accounts::Account,
    audit::{self, Actor, Subject},
    store::{
        entity::{api_token, session, user},
        now_unix,
    },
};
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "qt_";
pub const MAX_NAME: usize = 64;
/// Longest life a token can be given, in days.
pub const MAX_DAYS: u32 = 366;
/// Tokens one account may hold at once.
pub const MAX_PER_USER: u64 = 50;
/// A browser session opened through a token (`qingting ws open`) lasts this long at most.
pub const OPEN_SESSION_SECS: i64 = 12 * 3600;
/// Session key naming the token a session was opened through (revoking it ends them).
pub const TOKEN_ID_KEY: &str = "tid";

/// What a token may do. `workspaces` includes `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// See the account, its workspaces and the templates.
    Read,
    /// Also create, start, stop, delete and open workspaces.
    Workspaces,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Workspaces => "workspaces",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "read" => Some(Scope::Read),
            "workspaces" => Some(Scope::Workspaces),
            _ => None,
        }
    }

    /// Whether a token with `granted` may do what needs `self`.
    pub fn allowed_by(self, granted: &[Scope]) -> bool {
        granted
            .iter()
            .any(|g| *g == self || (*g == Scope::Workspaces && self == Scope::Read))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("You can have at most {MAX_PER_USER} tokens. Revoke one first.")]
    TooMany,
    #[error("No such token.")]
    NotFound,
    /// Unknown, expired, revoked, or its account is suspended or gone: one answer for all.
    #[error("The token is not valid (unknown, expired or revoked).")]
    Rejected,
    #[error("storage error: {0}")]
    Store(#[from] DbErr),
}

/// A token as its owner sees it in a list (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    /// `qt_` and the secret's first characters.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<api_token::Model> for TokenInfo {
    fn from(m: api_token::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            prefix: m.prefix,
            scopes: parse_scopes(&m.scopes),
            created_at: m.created_at,
            expires_at: m.expires_at,
            last_used_at: m.last_used_at,
        }
    }
}

fn parse_scopes(s: &str) -> Vec<Scope> {
    s.split(',').filter_map(Scope::parse).collect()
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new token's secret: `qt_` and 43 letters and digits drawn evenly (about 256 bits).
fn new_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::from(PREFIX);
    let mut buf = [0u8; 64];
    while s.len() < PREFIX.len() + 43 {
        rand::rngs::OsRng.fill_bytes(&mut buf);
        // Bytes from 248 up would favour the first letters; they are drawn again.
        for b in buf.iter().filter(|b| **b < 248) {
            if s.len() == PREFIX.len() + 43 {
                break;
            }
            s.push(ALPHABET[usize::from(*b) % ALPHABET.len()] as char);
        }
    }
    s
}

/// Checks a new token's fields: the message names what is wrong.
pub fn validate(name: &str, scopes: &[Scope], days: u32) -> Result<(), TokenError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(TokenError::Invalid(format!(
            "A token's name is 1 to {MAX_NAME} characters on one line."
        )));
    }
    if scopes.is_empty() {
        return Err(TokenError::Invalid(
            "Choose what the token may do: read, workspaces or both.".into(),
        ));
    }
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(TokenError::Invalid(format!(
            "A token lasts 1 to {MAX_DAYS} days."
        )));
    }
    Ok(())
}

/// Creates a token for `owner`; returns it and its secret (shown once, never again).
pub async fn create(
    db: &DatabaseConnection,
    by: &Actor,
    owner: &Account,
    name: &str,
    scopes: &[Scope],
    days: u32,
) -> Result<(TokenInfo, String), TokenError> {
    validate(name, scopes, days)?;
    let name = name.trim();
    let txn = db.begin().await?;
    let held = api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(owner.id))
        .count(&txn)
        .await?;
    if held >= MAX_PER_USER {
        return Err(TokenError::TooMany);
    }
    let secret = new_secret();
    let now = now_unix();
    let mut scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    scopes.sort_unstable();
    scopes.dedup();
    let row = api_token::ActiveModel {
        user_id: Set(owner.id),
        name: Set(name.to_string()),
        prefix: Set(secret[..PREFIX.len() + 6].to_string()),
        hash: Set(hash(&secret)),
        scopes: Set(scopes.join(",")),
        created_at: Set(now),
        expires_at: Set(now + i64::from(days) * 86_400),
        last_used_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let detail = format!("{} ({})", row.prefix, row.scopes);
    audit::record(
        &txn,
        by,
        audit::Action::TokenCreate,
        &Subject::of(owner, name),
        audit::Outcome::Ok,
        Some(&detail),
    )
    .await?;
    txn.commit().await?;
    Ok((row.into(), secret))
}

/// The owner's tokens, newest first.
pub async fn list(db: &DatabaseConnection, owner: &Account) -> Result<Vec<TokenInfo>, DbErr> {
    Ok(api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(owner.id))
        .order_by_desc(api_token::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Revokes one of the owner's tokens: it fails from the next request on, and browser
/// sessions opened through it end.
pub async fn revoke(
    db: &DatabaseConnection,
    by: &Actor,
    owner: &Account,
    id: i64,
) -> Result<(), TokenError> {
    let txn = db.begin().await?;
    let row = api_token::Entity::find_by_id(id)
        .filter(api_token::Column::UserId.eq(owner.id))
        .one(&txn)
        .await?
        .ok_or(TokenError::NotFound)?;
    api_token::Entity::delete_by_id(id).exec(&txn).await?;
    end_sessions_opened_by(&txn, owner.id, id).await?;
    audit::record(
        &txn,
        by,
        audit::Action::TokenRevoke,
        &Subject::of(owner, &row.name),
        audit::Outcome::Ok,
        Some(&row.prefix),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Deletes the browser sessions `qingting ws open` made through token `id`.
async fn end_sessions_opened_by(
    c: &impl sea_orm::ConnectionTrait,
    user_id: i64,
    id: i64,
) -> Result<(), DbErr> {
    let sessions = session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .all(c)
        .await?;
    for s in sessions {
        let data: serde_json::Value = serde_json::from_str(&s.data).unwrap_or_default();
        if data.get(TOKEN_ID_KEY).and_then(|v| v.as_i64()) == Some(id) {
            session::Entity::delete_by_id(s.id).exec(c).await?;
        }
    }
    Ok(())
}

/// Deletes every token of an account (its deletion), in the caller's transaction.
pub async fn delete_all(c: &impl sea_orm::ConnectionTrait, user_id: i64) -> Result<(), DbErr> {
    api_token::Entity::delete_many()
        .filter(api_token::Column::UserId.eq(user_id))
        .exec(c)
        .await?;
    Ok(())
}

/// Who a bearer secret speaks for, and what it may do.
#[derive(Debug, Clone)]
pub struct Bearer {
    pub account: Account,
    pub token_id: i64,
    pub scopes: Vec<Scope>,
    /// Unix seconds: nothing opened through it outlives this.
    pub expires_at: i64,
}

/// Checks a bearer secret: known, not expired, its account there and not suspended.
/// Notes its use (at most once a minute per token, so reads stay reads).
pub async fn authenticate(db: &DatabaseConnection, secret: &str) -> Result<Bearer, TokenError> {
    if !secret.starts_with(PREFIX) || secret.len() > 128 {
        return Err(TokenError::Rejected);
    }
    let row = api_token::Entity::find()
        .filter(api_token::Column::Hash.eq(hash(secret)))
        .one(db)
        .await?
        .ok_or(TokenError::Rejected)?;
    let now = now_unix();
    if row.expires_at <= now {
        return Err(TokenError::Rejected);
    }
    let owner = user::Entity::find_by_id(row.user_id)
        .one(db)
        .await?
        .filter(|u| u.suspended_at.is_none())
        .ok_or(TokenError::Rejected)?;
    crate::accounts::seen(db, owner.id, owner.last_seen_at).await?;
    if row.last_used_at.is_none_or(|t| now - t >= 60) {
        // By id, not by the row read: revoked meanwhile, it simply updates nothing.
        api_token::Entity::update_many()
            .col_expr(
                api_token::Column::LastUsedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(api_token::Column::Id.eq(row.id))
            .exec(db)
            .await?;
    }
    Ok(Bearer {
        account: owner.into(),
        token_id: row.id,
        scopes: parse_scopes(&row.scopes),
        expires_at: row.expires_at,
    })
}

/// A dashboard session for a browser the token's owner opens a workspace in (`qingting ws
/// open`): the workspace cookie lives only as long as it does. It never reaches the browser
/// as a dashboard cookie; it ends after [`OPEN_SESSION_SECS`] or when the token expires,
/// whichever is first, with the token's revocation, or
/// with everything else that ends the owner's sessions. Returns its id.
pub async fn open_session(db: &DatabaseConnection, bearer: &Bearer) -> Result<String, TokenError> {
    use crate::store::{session_store::USER_ID_KEY, DbSessionStore};
    use tower_sessions::{
        session::{Id, Record},
        SessionStore,
    };
    let mut record = Record {
        id: Id::default(),
        data: [
            (
                USER_ID_KEY.to_string(),
                serde_json::json!(bearer.account.id),
            ),
            (TOKEN_ID_KEY.to_string(), serde_json::json!(bearer.token_id)),
        ]
        .into(),
        expiry_date: time::OffsetDateTime::from_unix_timestamp(
            (now_unix() + OPEN_SESSION_SECS).min(bearer.expires_at),
        )
        .map_err(|e| TokenError::Store(DbErr::Custom(e.to_string())))?,
    };
    DbSessionStore::new(db.clone())
        .create(&mut record)
        .await
        .map_err(|e| TokenError::Store(DbErr::Custom(e.to_string())))?;
    Ok(record.id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_distinct_and_url_safe() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), PREFIX.len() + 43);
        assert!(a[PREFIX.len()..].chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn workspaces_includes_read_but_not_the_other_way() {
        assert!(Scope::Read.allowed_by(&[Scope::Workspaces]));
        assert!(!Scope::Workspaces.allowed_by(&[Scope::Read]));
        assert!(validate("ci", &[], 30).is_err());
        assert!(validate("", &[Scope::Read], 30).is_err());
        assert!(validate("ci", &[Scope::Read], 0).is_err());
        assert!(validate("ci", &[Scope::Read], 367).is_err());
        assert!(validate("ci", &[Scope::Read], 30).is_ok());
    }
}
