use crate::api::ApiError;
use leptos::prelude::*;

/// Signs in with a password; answers the page to go to next (`next` if it is ours).
#[server(prefix = "/api", endpoint = "login")]
pub async fn login(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<String, ApiError> {
    use crate::api::server_ctx::{
        client_ip, rate_limit, redirect_for_forms, refused, session, sign_in, state,
    };
    use qingting_core::{
        accounts,
        audit::{self, Action, Actor, Outcome, Subject},
        redirect::next_or_home,
    };

    let (state, session) = (state()?, session().await?);
    let limits = &state.config.rate_limits;
    let ip = client_ip();
    let username = username.trim().to_string();
    let limited = match rate_limit(&state, "login-ip", &ip, limits.login_per_ip).await {
        // Per account *and* address: a guesser must not be able to lock the owner out.
        Ok(()) => state
            .limits
            .check_login(&username, &ip, limits.login_per_account)
            .await
            .map_err(refused),
        Err(e) => Err(e),
    };
    if let Err(e) = limited {
        state.metrics.sign_in_failed("rate_limited");
        return Err(e);
    }

    let account = match accounts::authenticate(&state.db, &username, &password).await {
        Ok(a) => a,
        Err(e) => {
            state.metrics.sign_in_failed(match e {
                accounts::AccountError::Suspended => "suspended",
                _ => "bad_credentials",
            });
            // Filed under the account when there is one, so its owner's history shows it.
            let known = accounts::find_by_username(&state.db, &username).await;
            let subject = Subject::named(known.ok().flatten().map(|a| a.id), &username);
            let by = Actor::anonymous(Some(ip.clone()));
            let why = e.to_string();
            let refused = Outcome::Refused;
            audit::record_alone(
                &state.db,
                &by,
                Action::SignIn,
                &subject,
                refused,
                Some(&why),
            )
            .await;
            return Err(e.into());
        }
    };
    sign_in(&session, &account).await?;
    let by = Actor::user(&account, Some(ip.clone()));
    let ok = Outcome::Ok;
    audit::record_alone(
        &state.db,
        &by,
        Action::SignIn,
        &Subject::user(&account),
        ok,
        None,
    )
    .await;
    if let Err(e) = state.limits.remember_sign_in(&username, &ip).await {
        // The sign-in stands; this address just gets no exemption from the overall limit.
        tracing::warn!("cannot remember the sign-in address: {e}");
    }
    tracing::info!(user = %account.username, "signed in");
    let to = next_or_home(next.as_deref());
    redirect_for_forms(&to);
    Ok(to)
}
