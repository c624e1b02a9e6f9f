use crate::api::ApiError;
use leptos::prelude::*;

/// Creates an account and signs it in; answers the page to go to next.
#[server(prefix = "/api", endpoint = "register")]
pub async fn register(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<String, ApiError> {
    use crate::api::server_ctx::{
        client_ip, rate_limit, redirect_for_forms, session, sign_in, state,
    };
    use qingting_core::{accounts, redirect::next_or_home};

    let (state, session) = (state()?, session().await?);
    rate_limit(
        &state,
        "register-ip",
        &client_ip(),
        state.config.rate_limits.register_per_ip,
    )
    .await?;
    let account = accounts::register(&state.db, username.trim(), &password).await?;
    sign_in(&session, &account).await?;
    tracing::info!(user = %account.username, "registered");
    let to = next_or_home(next.as_deref());
    redirect_for_forms(&to);
    Ok(to)
}
