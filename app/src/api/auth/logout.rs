use crate::api::ApiError;
use leptos::prelude::*;

/// Ends the session (its row is deleted, the cookie cleared); answers the login page.
#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<String, ApiError> {
    use crate::api::server_ctx::{internal, redirect_for_forms, session};
    qingting_core::auth_session::sign_out(&session().await?)
        .await
        .map_err(internal)?;
    let to = "/login".to_string();
    redirect_for_forms(&to);
    Ok(to)
}
