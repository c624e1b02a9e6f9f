use crate::api::ApiError;
use leptos::prelude::*;

/// Changes (or, for GitHub-only accounts, sets) the password. The session id rotates and
/// every other session of the user is signed out.
#[server(prefix = "/api", endpoint = "settings/change-password")]
pub async fn change_password(
    current_password: Option<String>,
    new_password: String,
) -> Result<(), ApiError> {
    use crate::api::server_ctx::{
        actor, client_ip, internal, rate_limit, require_account, session, state,
    };
    use qingting_core::{accounts, auth_session, store::session_store::revoke_user_sessions};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    let limits = &state.config.rate_limits;
    rate_limit(&state, "password-ip", &client_ip(), limits.login_per_ip).await?;
    rate_limit(
        &state,
        "password-account",
        &account.username,
        limits.login_per_account,
    )
    .await?;
    accounts::change_password(
        &state.db,
        &actor(&account),
        account.id,
        current_password.as_deref().unwrap_or(""),
        &new_password,
    )
    .await?;
    auth_session::sign_in(&session, account.id)
        .await
        .map_err(internal)?;
    let revoked = revoke_user_sessions(&state.db, account.id, session.id().as_ref())
        .await
        .map_err(internal)?;
    state.live.recheck();
    tracing::info!(user = %account.username, revoked, "password changed; other sessions revoked");
    Ok(())
}

/// Unlinks GitHub (refused when it is the only way to sign in).
#[server(prefix = "/api", endpoint = "settings/unlink-github")]
pub async fn unlink_github() -> Result<(), ApiError> {
    use crate::api::server_ctx::{actor, internal, require_account, session, state};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    qingting_core::accounts::unbind_github(&state.db, &actor(&account), account.id).await?;
    qingting_core::auth_session::sign_in(&session, account.id)
        .await
        .map_err(internal)?;
    Ok(())
}

/// Deletes the account after re-checking the password; answers the page to go to.
/// (Accounts without a password confirm through GitHub instead: `/auth/github/start?mode=delete`.)
#[server(prefix = "/api", endpoint = "settings/delete-account")]
pub async fn delete_account(password: String) -> Result<String, ApiError> {
    use crate::api::server_ctx::{
        actor, client_ip, internal, rate_limit, redirect_for_forms, require_account, session, state,
    };
    use qingting_core::{accounts, auth_session};
    let (state, session) = (state()?, session().await?);
    let account = require_account(&state, &session).await?;
    rate_limit(
        &state,
        "password-ip",
        &client_ip(),
        state.config.rate_limits.login_per_ip,
    )
    .await?;
    accounts::confirm_password(&state.db, account.id, &password).await?;
    accounts::delete_account(&state, &actor(&account), account.id).await?;
    auth_session::sign_out(&session).await.map_err(internal)?;
    let to = "/login?account=deleted".to_string();
    redirect_for_forms(&to);
    Ok(to)
}
