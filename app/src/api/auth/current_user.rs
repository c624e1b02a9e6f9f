use crate::api::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the browser may know about the signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub username: String,
}

/// The signed-in user, or `None`.
#[server(prefix = "/api", endpoint = "me")]
pub async fn current_user() -> Result<Option<UserView>, ApiError> {
    use crate::api::server_ctx::{current_account, session, state};
    let (state, session) = (state()?, session().await?);
    Ok(current_account(&state, &session).await?.map(|a| UserView {
        id: a.id,
        username: a.username,
    }))
}
