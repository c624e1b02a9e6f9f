//! Profile fields: what a person says about themselves, validated before it is stored.

use super::AccountError;
use crate::store::entity::user;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait, SqlErr};

pub const MAX_DISPLAY_NAME: usize = 64;
pub const MAX_EMAIL: usize = 254;
pub const MAX_BIO: usize = 500;

/// Everything the settings pages show about an account (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: i64,
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub bio: Option<String>,
    pub avatar_key: Option<String>,
    pub github_login: Option<String>,
    pub has_password: bool,
    pub role: super::Role,
    pub suspended: bool,
    pub last_seen_at: Option<i64>,
}

impl From<user::Model> for Profile {
    fn from(m: user::Model) -> Self {
        Self {
            id: m.id,
            username: m.username,
            display_name: m.display_name,
            email: m.email,
            bio: m.bio,
            avatar_key: m.avatar_key,
            github_login: m.github_login,
            has_password: m.password_hash.is_some(),
            role: super::Role::of(&m.role),
            suspended: m.suspended_at.is_some(),
            last_seen_at: m.last_seen_at,
        }
    }
}

/// New profile values; empty strings clear a field.
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    /// The new user name (the same one to keep it).
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub bio: String,
}

pub async fn profile(
    db: &DatabaseConnection,
    user_id: i64,
) -> Result<Option<Profile>, AccountError> {
    Ok(user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .map(Into::into))
}

pub async fn update_profile(
    db: &DatabaseConnection,
    user_id: i64,
    input: ProfileInput,
) -> Result<Profile, AccountError> {
    let display_name = optional(&input.display_name);
    let email = optional(&input.email);
    let bio = input.bio.trim().replace("\r\n", "\n");
    let bio = (!bio.is_empty()).then_some(bio);
    if let Some(d) = &display_name {
        if d.chars().count() > MAX_DISPLAY_NAME || d.chars().any(char::is_control) {
            return Err(AccountError::InvalidField {
                field: "display_name",
                message: format!(
                    "Display names are at most {MAX_DISPLAY_NAME} characters on one line."
                ),
            });
        }
    }
    if let Some(e) = &email {
        if !valid_email(e) {
            return Err(AccountError::InvalidField {
                field: "email",
                message: "That does not look like an e-mail address (name@example.com).".into(),
            });
        }
    }
    if let Some(b) = &bio {
        if b.chars().count() > MAX_BIO || b.chars().any(|c| c.is_control() && c != '\n') {
            return Err(AccountError::InvalidField {
                field: "bio",
                message: format!("The bio is at most {MAX_BIO} characters."),
            });
        }
    }
    let username = input.username.trim().to_string();
    super::validate_username(&username)?;
    let row = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(AccountError::NotFound)?;
    if username != row.username && super::find_by_username(db, &username).await?.is_some() {
        return Err(AccountError::UsernameTaken);
    }
    let mut row: user::ActiveModel = row.into();
    row.username = Set(username);
    row.display_name = Set(display_name);
    row.email = Set(email);
    row.bio = Set(bio);
    match row.update(db).await {
        Ok(m) => Ok(m.into()),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(AccountError::UsernameTaken)
        }
        Err(e) => Err(e.into()),
    }
}

fn optional(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A deliberately plain shape check: one `@`, a non-empty local part, a dotted domain, no
/// spaces. Deliverability is not our business; typos like `alice@` are.
pub fn valid_email(e: &str) -> bool {
    if e.len() > MAX_EMAIL || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

#[cfg(test)]
mod tests {
    use super::valid_email;

    #[test]
    fn email_shapes() {
        for ok in ["a@b.co", "first.last+tag@mail.example.org"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a@@b.co", "a b@c.co", "a@b..co", "a@.b.co", "a@b.co.",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
