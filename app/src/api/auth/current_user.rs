use crate::api::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the browser may know about the signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub display_name: Option<String>,
    /// `/avatars/<key>` when the user has uploaded one.
    pub avatar_url: Option<String>,
    /// Whether the admin pages are theirs.
    pub is_admin: bool,
}

impl UserView {
    /// The name to show: the display name if set, else the user name.
    pub fn shown_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.username)
    }
}

/// The signed-in user, or `None`.
#[server(prefix = "/api", endpoint = "me")]
pub async fn current_user() -> Result<Option<UserView>, ApiError> {
    use crate::api::server_ctx::{session, signed_in, state};
    let (state, session) = (state()?, session().await?);
    Ok(signed_in(&state, &session).await?.map(|p| UserView {
        id: p.id,
        username: p.username,
        display_name: p.display_name,
        avatar_url: p.avatar_key.map(|k| format!("/{k}")),
        is_admin: p.role == qingting_core::accounts::Role::Admin,
    }))
}

/// Sign-in options the login page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInChoices {
    pub github: bool,
}

#[server(prefix = "/api", endpoint = "sign-in-options")]
pub async fn sign_in_options() -> Result<SignInChoices, ApiError> {
    let state = crate::api::server_ctx::state()?;
    Ok(SignInChoices {
        github: state.config.github.enabled(),
    })
}
