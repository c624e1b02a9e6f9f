//! Server-side plumbing shared by the server functions: the app state, the session, the
//! client address, and turning errors into responses. Compiled only with `ssr`.

use super::ApiError;
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use qingting_core::{
    accounts::{self, Account, AccountError, Profile},
    audit, auth_session,
    client_ip::ClientIp,
    config::Limit,
    rate_limit::Refused,
    AppState,
};
use tower_sessions::Session;

pub fn state() -> Result<AppState, ApiError> {
    use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from the server-function context");
        ApiError::Internal
    })
}

pub async fn session() -> Result<Session, ApiError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!("no session layer: {e}");
        ApiError::Internal
    })
}

fn request_parts() -> Option<Parts> {
    use_context::<Parts>()
}

/// A plain HTML form post (no WASM yet): answered with redirects, not status codes.
pub fn is_form_post() -> bool {
    request_parts()
        .and_then(|p| {
            p.headers
                .get(header::ACCEPT)?
                .to_str()
                .ok()
                .map(|a| a.contains("text/html"))
        })
        .unwrap_or(false)
}

/// Who acts in this request, for the audit log: `account`, from the client's address.
pub fn actor(account: &Account) -> audit::Actor {
    audit::Actor::user(account, Some(client_ip()))
}

pub fn client_ip() -> String {
    request_parts()
        .and_then(|p| p.extensions.get::<ClientIp>().copied())
        .map(|ClientIp(ip)| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Records the error's status (and `Retry-After`) on the response and returns it.
///
/// Plain form posts keep the redirect that carries the error back to the form; only
/// `Retry-After` is added there.
pub fn fail(err: ApiError) -> ApiError {
    if let Some(res) = use_context::<ResponseOptions>() {
        if let ApiError::RateLimited { retry_after } = &err {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                res.insert_header(header::RETRY_AFTER, v);
            }
        }
        if !is_form_post() {
            res.set_status(StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST));
        }
    }
    err
}

/// Counts one attempt against a limit (shared by every replica).
pub async fn rate_limit(
    state: &AppState,
    bucket: &'static str,
    key: &str,
    limit: Limit,
) -> Result<(), ApiError> {
    state
        .limits
        .check(bucket, key, limit)
        .await
        .map_err(refused)
}

/// A refused attempt as the API says it: 429 with `Retry-After`, or 500 when the counters
/// cannot be read.
pub fn refused(r: Refused) -> ApiError {
    match r {
        Refused::Limited { retry_after_secs } => fail(ApiError::RateLimited {
            retry_after: retry_after_secs,
        }),
        Refused::Unavailable(e) => internal(e),
    }
}

/// Where to go after an auth change: a 302 for plain forms; JS callers get the path back
/// and navigate client-side.
pub fn redirect_for_forms(to: &str) {
    if is_form_post() {
        leptos_axum::redirect(to);
    }
}

/// The signed-in user's row, read at most once per request: rendering a page asks for it
/// from the nav, the page's guard and the page's own data. Provided per request by the
/// server (`provide_context(RequestUser::default())`); without it every ask reads the row.
#[derive(Clone, Default)]
pub struct RequestUser(std::sync::Arc<tokio::sync::Mutex<Option<SeenUser>>>);

/// A session's user id, and that user's row (`None`: deleted).
type SeenUser = (i64, Option<Profile>);

/// The signed-in user's profile, if the session has a user that still exists.
pub async fn signed_in(state: &AppState, session: &Session) -> Result<Option<Profile>, ApiError> {
    let uid = auth_session::user_id(session).await.map_err(internal)?;
    let Some(uid) = uid else { return Ok(None) };
    let memo = use_context::<RequestUser>();
    // Held across the read: the page's resources ask at once, and only the first reads.
    let mut seen = match &memo {
        Some(m) => Some(m.0.lock().await),
        None => None,
    };
    if let Some(Some((id, profile))) = seen.as_deref() {
        if *id == uid {
            return Ok(profile.clone());
        }
    }
    let profile = accounts::profile(&state.db, uid)
        .await
        .map_err(internal)?
        .filter(|p| !p.suspended);
    match &profile {
        // The user was deleted or suspended: the session is worthless.
        None => auth_session::sign_out(session).await.map_err(internal)?,
        Some(p) => {
            if let Err(e) = accounts::seen(&state.db, p.id, p.last_seen_at).await {
                tracing::warn!("cannot note when the user was last seen: {e}");
            }
        }
    }
    if let Some(seen) = seen.as_deref_mut() {
        *seen = Some((uid, profile.clone()));
    }
    Ok(profile)
}

/// The signed-in account, if the session has one that still exists.
pub async fn current_account(
    state: &AppState,
    session: &Session,
) -> Result<Option<Account>, ApiError> {
    Ok(signed_in(state, session).await?.map(|p| Account {
        id: p.id,
        username: p.username,
    }))
}

/// Makes `account` the session's user, with a fresh session id (no fixation).
pub async fn sign_in(session: &Session, account: &Account) -> Result<(), ApiError> {
    auth_session::sign_in(session, account.id)
        .await
        .map_err(internal)
}

pub fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("internal error: {e}");
    fail(ApiError::Internal)
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        let err = match e {
            AccountError::InvalidUsername => ApiError::invalid("username", e.to_string()),
            AccountError::WeakPassword(m) => ApiError::invalid("password", m),
            AccountError::UsernameTaken => ApiError::Conflict(e.to_string()),
            AccountError::InvalidCredentials => ApiError::BadCredentials,
            AccountError::InvalidField { field, message } => ApiError::invalid(field, message),
            AccountError::WrongPassword => ApiError::invalid("current_password", e.to_string()),
            AccountError::NotFound => ApiError::Unauthorized,
            AccountError::GithubTaken
            | AccountError::GithubAlreadyLinked
            | AccountError::LastSignInMethod
            | AccountError::LastAdmin
            | AccountError::OwnAccount => ApiError::Conflict(e.to_string()),
            AccountError::Suspended => ApiError::Suspended,
            AccountError::NoSuchUser(_) => ApiError::NotFound(e.to_string()),
            AccountError::Store(_) | AccountError::Internal(_) => return internal(e),
        };
        fail(err)
    }
}

/// The signed-in admin. Anyone else is told the endpoint does not exist (404): members
/// learn nothing about what admins can do.
pub async fn require_admin(state: &AppState, session: &Session) -> Result<Account, ApiError> {
    let Some(p) = signed_in(state, session).await? else {
        return Err(fail(ApiError::Unauthorized));
    };
    if p.role != accounts::Role::Admin {
        return Err(fail(ApiError::NotFound("Not found.".into())));
    }
    Ok(Account {
        id: p.id,
        username: p.username,
    })
}

/// The signed-in account, or `Unauthorized`.
pub async fn require_account(state: &AppState, session: &Session) -> Result<Account, ApiError> {
    current_account(state, session)
        .await?
        .ok_or_else(|| fail(ApiError::Unauthorized))
}
