//! Sign in with GitHub, link GitHub to an account, and confirm account deletion through
//! GitHub: the OAuth authorization-code flow with `state` (CSRF) and PKCE.
//!
//! - `GET /auth/github/start?mode=login[&next=…]` → GitHub → `GET /auth/github/callback`.
//! - Linking and deleting end in a change to the account, and any page on the web can make a
//!   signed-in browser GET a URL (GitHub skips its consent page for an app already
//!   authorized). So they start only from a same-origin `POST /auth/github/start` with a
//!   form field `mode=link|delete`; a GET for them starts nothing (`?github=use_button`).
//! - In delete mode the callback deletes nothing: it records in the session that GitHub
//!   confirmed who this is and shows `/settings/delete-account`, whose button posts to
//!   `POST /auth/github/delete` within [`DELETE_CONFIRM_TTL_SECS`].
//!
//! Outcomes come back to the pages as fixed codes (`?github=linked`, `?github=taken`, …).

use crate::csrf;
use app::components::outcome::Outcome;
use axum::{
    extract::{Form, Query},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Extension,
};
use oauth2::{
    basic::BasicClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use qingting_core::{
    accounts::{self, AccountError, GithubIdentity},
    audit::{self, Actor, Subject},
    auth_session,
    client_ip::ClientIp,
    redirect::next_or_home,
    store::now_unix,
    AppState,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tower_sessions::Session;

const PENDING_KEY: &str = "github_oauth";
/// A sign-in that is not finished within this many seconds must start again.
const PENDING_TTL_SECS: i64 = 600;
const DELETE_CONFIRMED_KEY: &str = "github_delete_confirmed";
/// How long GitHub's confirmation of the account's identity allows deleting it: long enough
/// to read the confirmation page, short enough that a browser left signed in is not armed.
pub const DELETE_CONFIRM_TTL_SECS: i64 = 300;
/// Our page that shows what deletion removes and asks for the final click.
const DELETE_PAGE: &str = "/settings/delete-account";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Login,
    Link,
    Delete,
}

impl Mode {
    /// Where outcomes of this mode are shown.
    fn page(self) -> &'static str {
        match self {
            Mode::Login => "/login",
            Mode::Link => "/settings/profile",
            Mode::Delete => "/settings/security",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    mode: Mode,
    next: Option<String>,
    started_at: i64,
}

/// GitHub confirmed, in this session, that the signed-in person is `user_id`'s owner.
#[derive(Debug, Serialize, Deserialize)]
struct DeleteConfirmation {
    user_id: i64,
    at: i64,
}

/// The query of a GET start, or the form of a POST start.
#[derive(Debug, Deserialize)]
pub struct StartParams {
    mode: Option<Mode>,
    next: Option<String>,
}

fn outcome(mode: Mode, o: Outcome) -> Response {
    Redirect::to(&format!("{}?{}", mode.page(), o.query())).into_response()
}

/// The OAuth client with its authorization, token and redirect endpoints set.
type GithubClient = BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn client(state: &AppState) -> anyhow::Result<GithubClient> {
    let gh = &state.config.github;
    let (Some(id), Some(secret)) = (&gh.client_id, &gh.client_secret) else {
        anyhow::bail!("GitHub sign-in is not configured");
    };
    Ok(BasicClient::new(ClientId::new(id.clone()))
        .set_client_secret(ClientSecret::new(secret.clone()))
        .set_auth_uri(AuthUrl::new(gh.authorize_url.clone())?)
        .set_token_uri(TokenUrl::new(gh.token_url.clone())?)
        .set_redirect_uri(RedirectUrl::new(state.config.github_callback_url())?))
}

/// `GET /auth/github/start`: sign-in only (the login page links here).
pub async fn start(
    Extension(state): Extension<AppState>,
    session: Session,
    Query(q): Query<StartParams>,
) -> Response {
    let mode = q.mode.unwrap_or(Mode::Login);
    if mode != Mode::Login {
        // Starts nothing: linking and deleting begin from the buttons on our pages.
        return outcome(mode, Outcome::GithubUseButton);
    }
    begin(&state, &session, mode, q.next).await
}

/// `POST /auth/github/start`: any mode, from a page of ours only.
pub async fn start_post(
    Extension(state): Extension<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(f): Form<StartParams>,
) -> Response {
    if let Some(refused) = cross_site(&state, &headers) {
        return refused;
    }
    begin(&state, &session, f.mode.unwrap_or(Mode::Login), f.next).await
}

/// A 403 unless the request provably comes from one of our pages.
fn cross_site(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let reason = csrf::browser_refusal(headers, &state.config.public_origin())?;
    tracing::warn!(reason, "cross-site GitHub request refused");
    Some((StatusCode::FORBIDDEN, "Cross-site request refused.\n").into_response())
}

/// Stores the flow's state and PKCE verifier in the session and sends the browser to GitHub.
async fn begin(state: &AppState, session: &Session, mode: Mode, next: Option<String>) -> Response {
    if !state.config.github.enabled() {
        return outcome(mode, Outcome::GithubDisabled);
    }
    let signed_in = matches!(auth_session::user_id(session).await, Ok(Some(_)));
    match (mode, signed_in) {
        (Mode::Login, true) => return Redirect::to(&next_or_home(next.as_deref())).into_response(),
        (Mode::Link | Mode::Delete, false) => {
            return Redirect::to(&format!(
                "/login?next={}",
                qingting_gateway::url::percent_encode(mode.page())
            ))
            .into_response()
        }
        _ => {}
    }
    let client = match client(state) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("GitHub OAuth misconfigured: {e}");
            return outcome(mode, Outcome::GithubFailed);
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_token) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read:user".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending {
        state: csrf_token.secret().clone(),
        verifier: verifier.secret().clone(),
        mode,
        next,
        started_at: now_unix(),
    };
    if let Err(e) = session.insert(PENDING_KEY, pending).await {
        tracing::error!("cannot store OAuth state: {e}");
        return outcome(mode, Outcome::GithubFailed);
    }
    Redirect::to(url.as_str()).into_response()
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    Extension(state): Extension<AppState>,
    session: Session,
    ip: Option<Extension<ClientIp>>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let address = ip.map(|Extension(ClientIp(ip))| ip.to_string());
    // The pending flow is consumed whatever happens: a state is good for one callback.
    let pending: Option<Pending> = session.remove(PENDING_KEY).await.ok().flatten();
    let Some(pending) = pending else {
        return outcome(Mode::Login, Outcome::GithubStateMismatch);
    };
    let mode = pending.mode;
    let fresh = now_unix() - pending.started_at <= PENDING_TTL_SECS;
    if q.state.as_deref() != Some(pending.state.as_str()) || !fresh {
        tracing::warn!("GitHub callback with a wrong or stale state refused");
        return outcome(mode, Outcome::GithubStateMismatch);
    }
    if q.error.is_some() {
        return outcome(mode, Outcome::GithubDenied);
    }
    let Some(code) = q.code else {
        return outcome(mode, Outcome::GithubFailed);
    };
    let gh = match identify(&state, code, pending.verifier).await {
        Ok(gh) => gh,
        Err(e) => {
            tracing::warn!("GitHub sign-in failed: {e:#}");
            return outcome(mode, Outcome::GithubFailed);
        }
    };
    match mode {
        Mode::Login => match accounts::sign_in_with_github(&state.db, &gh).await {
            Ok((account, created)) => {
                if auth_session::sign_in(&session, account.id).await.is_err() {
                    return outcome(mode, Outcome::GithubFailed);
                }
                let by = Actor::user(&account, address);
                let subject = Subject::user(&account);
                let ok = audit::Outcome::Ok;
                audit::record_alone(
                    &state.db,
                    &by,
                    audit::Action::SignIn,
                    &subject,
                    ok,
                    Some("github"),
                )
                .await;
                tracing::info!(user = %account.username, created, "signed in with GitHub");
                Redirect::to(&next_or_home(pending.next.as_deref())).into_response()
            }
            Err(AccountError::Suspended) => {
                state.metrics.sign_in_failed("suspended");
                let by = Actor::anonymous(address);
                // Filed under the account, so its history shows the attempt.
                let known = accounts::github::find_by_github_id(&state.db, gh.id).await;
                let subject = Subject::named(known.ok().flatten().map(|u| u.id), &gh.login);
                let why = Some("github: suspended");
                let refused = audit::Outcome::Refused;
                audit::record_alone(
                    &state.db,
                    &by,
                    audit::Action::SignIn,
                    &subject,
                    refused,
                    why,
                )
                .await;
                outcome(mode, Outcome::GithubSuspended)
            }
            Err(e) => {
                tracing::error!("GitHub sign-in: {e}");
                outcome(mode, Outcome::GithubFailed)
            }
        },
        Mode::Link => link(&state, &session, address, &gh).await,
        Mode::Delete => record_delete_confirmation(&state, &session, &gh).await,
    }
}

async fn link(
    state: &AppState,
    session: &Session,
    address: Option<String>,
    gh: &GithubIdentity,
) -> Response {
    let mode = Mode::Link;
    let Ok(Some(uid)) = auth_session::user_id(session).await else {
        return outcome(Mode::Login, Outcome::GithubFailed);
    };
    let Ok(Some(account)) = accounts::find_by_id(&state.db, uid).await else {
        return outcome(Mode::Login, Outcome::GithubFailed);
    };
    let by = Actor::user(&account, address);
    match accounts::bind_github(&state.db, &by, uid, gh).await {
        Ok(()) => {
            let _ = auth_session::sign_in(session, uid).await;
            outcome(mode, Outcome::GithubLinked)
        }
        Err(AccountError::GithubTaken) => outcome(mode, Outcome::GithubTaken),
        Err(AccountError::GithubAlreadyLinked) => outcome(mode, Outcome::GithubAlreadyLinked),
        Err(e) => {
            tracing::error!("GitHub link: {e}");
            outcome(mode, Outcome::GithubFailed)
        }
    }
}

/// GitHub said who this is: if it is the account's own GitHub, remember that (deleting
/// nothing yet) and show our confirmation page.
async fn record_delete_confirmation(
    state: &AppState,
    session: &Session,
    gh: &GithubIdentity,
) -> Response {
    let mode = Mode::Delete;
    let Ok(Some(uid)) = auth_session::user_id(session).await else {
        return outcome(Mode::Login, Outcome::GithubFailed);
    };
    match accounts::github::find_by_github_id(&state.db, gh.id).await {
        Ok(Some(u)) if u.id == uid => {}
        Ok(_) => return outcome(mode, Outcome::GithubMismatch),
        Err(_) => return outcome(mode, Outcome::GithubFailed),
    }
    let confirmed = DeleteConfirmation {
        user_id: uid,
        at: now_unix(),
    };
    if let Err(e) = session.insert(DELETE_CONFIRMED_KEY, confirmed).await {
        tracing::error!("cannot store the deletion confirmation: {e}");
        return outcome(mode, Outcome::GithubFailed);
    }
    Redirect::to(DELETE_PAGE).into_response()
}

/// `POST /auth/github/delete`: the confirmation page's button. Deletes the signed-in account
/// if GitHub confirmed it in this session within [`DELETE_CONFIRM_TTL_SECS`].
pub async fn delete_account(
    Extension(state): Extension<AppState>,
    session: Session,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = cross_site(&state, &headers) {
        return refused;
    }
    let Ok(Some(uid)) = auth_session::user_id(&session).await else {
        return Redirect::to("/login?next=%2Fsettings%2Fsecurity").into_response();
    };
    // Single use: taken out whatever happens next.
    let confirmed: Option<DeleteConfirmation> =
        session.remove(DELETE_CONFIRMED_KEY).await.ok().flatten();
    if !confirmed.is_some_and(|c| confirms(&c, uid, now_unix())) {
        return outcome(Mode::Delete, Outcome::GithubConfirmExpired);
    }
    let Ok(Some(account)) = accounts::find_by_id(&state.db, uid).await else {
        return outcome(Mode::Delete, Outcome::GithubFailed);
    };
    let by = Actor::user(&account, ip.map(|Extension(ClientIp(ip))| ip.to_string()));
    if let Err(e) = accounts::delete_account(&state, &by, uid).await {
        tracing::error!("account deletion: {e}");
        return outcome(Mode::Delete, Outcome::GithubFailed);
    }
    let _ = auth_session::sign_out(&session).await;
    Redirect::to(&format!("/login?{}", Outcome::AccountDeleted.query())).into_response()
}

/// Whether `c` is GitHub's word for `user_id`, given recently enough.
fn confirms(c: &DeleteConfirmation, user_id: i64, now: i64) -> bool {
    let age = now - c.at;
    c.user_id == user_id && (0..=DELETE_CONFIRM_TTL_SECS).contains(&age)
}

/// Exchanges the code (with the PKCE verifier) and asks GitHub who this is.
async fn identify(
    state: &AppState,
    code: String,
    verifier: String,
) -> anyhow::Result<GithubIdentity> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()?;
    let token = client(state)?
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&http)
        .await?;
    #[derive(Deserialize)]
    struct User {
        id: i64,
        login: String,
    }
    let user: User = http
        .get(format!(
            "{}/user",
            state.config.github.api_url.trim_end_matches('/')
        ))
        .bearer_auth(token.access_token().secret())
        .header("accept", "application/vnd.github+json")
        .header("user-agent", "QingTing-Studio")
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(GithubIdentity {
        id: user.id,
        login: user.login,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmation_is_for_one_user_and_a_short_time() {
        let c = DeleteConfirmation {
            user_id: 7,
            at: 1_000,
        };
        assert!(confirms(&c, 7, 1_000));
        assert!(confirms(&c, 7, 1_000 + DELETE_CONFIRM_TTL_SECS));
        assert!(!confirms(&c, 7, 1_001 + DELETE_CONFIRM_TTL_SECS));
        assert!(!confirms(&c, 8, 1_000), "another user");
        assert!(!confirms(&c, 7, 999), "from the future");
    }
}
