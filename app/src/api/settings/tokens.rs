//! The signed-in user's personal API tokens: list, create (the secret is answered once),
//! revoke. Managed from the dashboard only: a token cannot mint tokens.

use crate::api::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    /// `qt_` and the secret's first characters.
    pub prefix: String,
    /// `read` or `read, workspaces`.
    pub access: String,
    /// Whole days left (0: under a day).
    pub expires_in_days: i64,
    /// Whole days since its last use; `None`: never used.
    pub used_days_ago: Option<i64>,
}

/// A token just made: its secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub secret: String,
    pub token: TokenRow,
}

#[cfg(feature = "ssr")]
fn row(t: qingting_core::api_tokens::TokenInfo) -> TokenRow {
    let now = qingting_core::store::now_unix();
    let access = t
        .scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    TokenRow {
        id: t.id,
        name: t.name,
        prefix: t.prefix,
        access: if access == "workspaces" {
            "read, workspaces".into()
        } else {
            access
        },
        expires_in_days: (t.expires_at - now).max(0) / 86_400,
        used_days_ago: t.last_used_at.map(|u| (now - u).max(0) / 86_400),
    }
}

#[server(prefix = "/api", endpoint = "settings/tokens")]
pub async fn my_tokens() -> Result<Vec<TokenRow>, ApiError> {
    use crate::api::server_ctx::{internal, require_account, session, state};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    let list = qingting_core::api_tokens::list(&state.db, &account)
        .await
        .map_err(internal)?;
    Ok(list.into_iter().map(row).collect())
}

/// `access`: `read` (see) or `workspaces` (also create, start, stop, delete and open);
/// `days`: 1 to 366.
#[server(prefix = "/api", endpoint = "settings/create-token")]
pub async fn create_token(name: String, access: String, days: u32) -> Result<NewToken, ApiError> {
    use crate::api::server_ctx::{actor, fail, require_account, session, state};
    use qingting_core::api_tokens::{self, Scope, TokenError};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    let Some(scope) = Scope::parse(&access) else {
        return Err(fail(ApiError::invalid(
            "access",
            "Access is read or workspaces.",
        )));
    };
    let made =
        api_tokens::create(&state.db, &actor(&account), &account, &name, &[scope], days).await;
    match made {
        Ok((info, secret)) => Ok(NewToken {
            secret,
            token: row(info),
        }),
        Err(TokenError::Invalid(m)) => {
            let field = if m.contains("name") {
                "name"
            } else if m.contains("days") {
                "days"
            } else {
                "access"
            };
            Err(fail(ApiError::invalid(field, m)))
        }
        Err(e @ TokenError::TooMany) => Err(fail(ApiError::Conflict(e.to_string()))),
        Err(e) => Err(crate::api::server_ctx::internal(e)),
    }
}

#[server(prefix = "/api", endpoint = "settings/revoke-token")]
pub async fn revoke_token(id: i64) -> Result<(), ApiError> {
    use crate::api::server_ctx::{actor, fail, internal, require_account, session, state};
    use qingting_core::api_tokens::{self, TokenError};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    match api_tokens::revoke(&state.db, &actor(&account), &account, id).await {
        // The browser sessions the token opened ended with it.
        Ok(()) => {
            state.live.recheck();
            Ok(())
        }
        Err(e @ TokenError::NotFound) => Err(fail(ApiError::NotFound(e.to_string()))),
        Err(e) => Err(internal(e)),
    }
}
