//! Sign in with GitHub, link GitHub to an account, and confirm account deletion through
//! GitHub: the OAuth authorization-code flow with `state` (CSRF) and PKCE.
//!
//! `GET /auth/github/start?mode=login|link|delete[&next=…]` → GitHub → `GET /auth/github/callback`.
//! Outcomes come back to the pages as fixed codes (`?github=linked`, `?github=taken`, …).

use axum::{
    extract::Query,
    response::{IntoResponse, Redirect, Response},
    Extension,
};
use oauth2::{
    basic::BasicClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use qingting_core::{
    accounts::{self, AccountError, GithubIdentity},
    auth_session,
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

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    mode: Option<Mode>,
    next: Option<String>,
}

fn outcome(mode: Mode, code: &str) -> Response {
    Redirect::to(&format!("{}?github={code}", mode.page())).into_response()
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
    Ok(BasicClient::new(ClientId::new(gh.client_id.clone()))
        .set_client_secret(ClientSecret::new(gh.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(gh.authorize_url.clone())?)
        .set_token_uri(TokenUrl::new(gh.token_url.clone())?)
        .set_redirect_uri(RedirectUrl::new(state.config.github_callback_url())?))
}

pub async fn start(
    Extension(state): Extension<AppState>,
    session: Session,
    Query(q): Query<StartQuery>,
) -> Response {
    let mode = q.mode.unwrap_or(Mode::Login);
    if !state.config.github.enabled() {
        return outcome(mode, "disabled");
    }
    let signed_in = matches!(auth_session::user_id(&session).await, Ok(Some(_)));
    match (mode, signed_in) {
        (Mode::Login, true) => {
            return Redirect::to(&next_or_home(q.next.as_deref())).into_response()
        }
        (Mode::Link | Mode::Delete, false) => {
            return Redirect::to(&format!("/login?next={}", urlencode(mode.page()))).into_response()
        }
        _ => {}
    }
    let client = match client(&state) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("GitHub OAuth misconfigured: {e}");
            return outcome(mode, "failed");
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read:user".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending {
        state: csrf.secret().clone(),
        verifier: verifier.secret().clone(),
        mode,
        next: q.next,
        started_at: now_unix(),
    };
    if let Err(e) = session.insert(PENDING_KEY, pending).await {
        tracing::error!("cannot store OAuth state: {e}");
        return outcome(mode, "failed");
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
    Query(q): Query<CallbackQuery>,
) -> Response {
    // The pending flow is consumed whatever happens: a state is good for one callback.
    let pending: Option<Pending> = session.remove(PENDING_KEY).await.ok().flatten();
    let Some(pending) = pending else {
        return outcome(Mode::Login, "state_mismatch");
    };
    let mode = pending.mode;
    let fresh = now_unix() - pending.started_at <= PENDING_TTL_SECS;
    if q.state.as_deref() != Some(pending.state.as_str()) || !fresh {
        tracing::warn!("GitHub callback with a wrong or stale state refused");
        return outcome(mode, "state_mismatch");
    }
    if q.error.is_some() {
        return outcome(mode, "denied");
    }
    let Some(code) = q.code else {
        return outcome(mode, "failed");
    };
    let gh = match identify(&state, code, pending.verifier).await {
        Ok(gh) => gh,
        Err(e) => {
            tracing::warn!("GitHub sign-in failed: {e:#}");
            return outcome(mode, "failed");
        }
    };
    match mode {
        Mode::Login => match accounts::sign_in_with_github(&state.db, &gh).await {
            Ok((account, created)) => {
                if auth_session::sign_in(&session, account.id).await.is_err() {
                    return outcome(mode, "failed");
                }
                tracing::info!(user = %account.username, created, "signed in with GitHub");
                Redirect::to(&next_or_home(pending.next.as_deref())).into_response()
            }
            Err(e) => {
                tracing::error!("GitHub sign-in: {e}");
                outcome(mode, "failed")
            }
        },
        Mode::Link => {
            let Ok(Some(uid)) = auth_session::user_id(&session).await else {
                return outcome(Mode::Login, "failed");
            };
            match accounts::bind_github(&state.db, uid, &gh).await {
                Ok(()) => {
                    let _ = auth_session::sign_in(&session, uid).await;
                    outcome(mode, "linked")
                }
                Err(AccountError::GithubTaken) => outcome(mode, "taken"),
                Err(AccountError::GithubAlreadyLinked) => outcome(mode, "already_linked"),
                Err(e) => {
                    tracing::error!("GitHub link: {e}");
                    outcome(mode, "failed")
                }
            }
        }
        Mode::Delete => {
            let Ok(Some(uid)) = auth_session::user_id(&session).await else {
                return outcome(Mode::Login, "failed");
            };
            match accounts::github::find_by_github_id(&state.db, gh.id).await {
                Ok(Some(u)) if u.id == uid => {}
                Ok(_) => return outcome(mode, "mismatch"),
                Err(_) => return outcome(mode, "failed"),
            }
            if let Err(e) = accounts::delete_account(&state, uid).await {
                tracing::error!("account deletion: {e}");
                return outcome(mode, "failed");
            }
            let _ = auth_session::sign_out(&session).await;
            Redirect::to("/login?account=deleted").into_response()
        }
    }
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

fn urlencode(s: &str) -> String {
    s.replace('%', "%25")
        .replace('/', "%2F")
        .replace('?', "%3F")
        .replace('&', "%26")
        .replace('=', "%3D")
}
