use crate::api::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The settings pages' view of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileView {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub github_login: Option<String>,
    pub has_password: bool,
    /// Whether GitHub sign-in is configured on this instance.
    pub github_enabled: bool,
    /// The avatar upload limit, in KiB.
    pub avatar_max_kib: u64,
}

#[server(prefix = "/api", endpoint = "settings/profile")]
pub async fn my_profile() -> Result<ProfileView, ApiError> {
    use crate::api::server_ctx::{internal, require_account, session, state};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    let p = qingting_core::accounts::profile(&state.db, account.id)
        .await
        .map_err(internal)?
        .ok_or(ApiError::Unauthorized)?;
    Ok(ProfileView {
        username: p.username,
        display_name: p.display_name.unwrap_or_default(),
        email: p.email.unwrap_or_default(),
        bio: p.bio.unwrap_or_default(),
        avatar_url: p.avatar_key.map(|k| format!("/{k}")),
        github_login: p.github_login,
        has_password: p.has_password,
        github_enabled: state.config.github.enabled(),
        avatar_max_kib: state.config.avatar_max_bytes / 1024,
    })
}

/// Saves the profile form; empty fields clear optional values.
#[server(prefix = "/api", endpoint = "settings/save-profile")]
pub async fn save_profile(
    username: String,
    display_name: String,
    email: String,
    bio: String,
) -> Result<(), ApiError> {
    use crate::api::server_ctx::{require_account, session, state};
    use qingting_core::accounts::{update_profile, ProfileInput};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    update_profile(
        &state.db,
        account.id,
        ProfileInput {
            username,
            display_name,
            email,
            bio,
        },
    )
    .await?;
    // A new user name moves the workspaces to new host names: the gateway forgets the old.
    state.workspaces.owner_changed(account.id);
    Ok(())
}

#[server(prefix = "/api", endpoint = "settings/remove-avatar")]
pub async fn remove_avatar() -> Result<(), ApiError> {
    use crate::api::server_ctx::{internal, require_account, session, state};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    qingting_core::avatars::remove_avatar(&state, account.id)
        .await
        .map_err(internal)
}
