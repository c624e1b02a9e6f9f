use crate::api::ApiError;
use leptos::prelude::*;

/// Ends the session (its row is deleted, the cookie cleared); answers the login page.
#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<String, ApiError> {
    use crate::api::server_ctx::{actor, current_account, internal, redirect_for_forms, session};
    use qingting_core::audit::{self, Action, Outcome, Subject};
    let session = session().await?;
    // Whose session it was, read before it goes; signing out without one is no event.
    let account = match crate::api::server_ctx::state() {
        Ok(state) => current_account(&state, &session)
            .await
            .ok()
            .flatten()
            .map(|a| (state, a)),
        Err(_) => None,
    };
    qingting_core::auth_session::sign_out(&session)
        .await
        .map_err(internal)?;
    if let Some((state, a)) = account {
        // The session's open IDE connections close now, not at the next sweep.
        state.live.recheck();
        let (by, subject) = (actor(&a), Subject::user(&a));
        audit::record_alone(&state.db, &by, Action::SignOut, &subject, Outcome::Ok, None).await;
    }
    let to = "/login".to_string();
    redirect_for_forms(&to);
    Ok(to)
}
