//! A stand-in for GitHub's OAuth web flow and `GET /user`, checking what GitHub checks:
//! the client id and secret, the one-time code, the redirect URI and the PKCE verifier.
//!
//! The consent page lets the person (or a browser test) choose which GitHub user to be, by
//! login and numeric id. Endpoints mirror GitHub's:
//! `GET|POST /login/oauth/authorize`, `POST /login/oauth/access_token`, `GET /user`.

use axum::{
    extract::{Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
    Form, Json, Router,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// The OAuth app registered with the fake.
#[derive(Debug, Clone)]
pub struct FakeGithubConfig {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone)]
struct GithubUser {
    id: i64,
    login: String,
}

#[derive(Debug)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    user: GithubUser,
    issued: Instant,
}

#[derive(Default)]
struct Db {
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, GithubUser>,
}

#[derive(Clone)]
struct AppState {
    config: Arc<FakeGithubConfig>,
    db: Arc<Mutex<Db>>,
}

/// GitHub's codes expire after ten minutes.
const CODE_TTL: Duration = Duration::from_secs(600);

pub fn router(config: FakeGithubConfig) -> Router {
    let state = AppState {
        config: Arc::new(config),
        db: Arc::default(),
    };
    Router::new()
        .route("/", get(|| async { "fake GitHub for QingTing Studio\n" }))
        .route(
            "/login/oauth/authorize",
            get(consent_page).post(consent_answer),
        )
        .route("/login/oauth/access_token", post(access_token))
        .route("/user", get(user))
        .with_state(state)
}

fn random_token(prefix: &str) -> String {
    let bytes: [u8; 20] = rand::random();
    format!(
        "{prefix}{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    scope: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn consent_page(State(st): State<AppState>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.client_id.as_deref() != Some(st.config.client_id.as_str()) {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>Unknown OAuth application</h1>"),
        )
            .into_response();
    }
    let (Some(redirect_uri), Some(challenge)) = (&q.redirect_uri, &q.code_challenge) else {
        return (
            StatusCode::BAD_REQUEST,
            Html("<h1>redirect_uri and code_challenge are required</h1>"),
        )
            .into_response();
    };
    if q.code_challenge_method.as_deref() != Some("S256") {
        return (
            StatusCode::BAD_REQUEST,
            Html("<h1>code_challenge_method must be S256</h1>"),
        )
            .into_response();
    }
    let hidden = |name: &str, v: &str| {
        format!(
            r#"<input type="hidden" name="{name}" value="{}">"#,
            html_escape(v)
        )
    };
    let default_id = 1_000_000 + (rand::random::<u32>() % 1_000_000) as i64;
    let page = format!(
        r#"<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1"><title>Authorize application (fake GitHub)</title></head>
<body style="font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem">
<h1>Authorize QingTing Studio</h1>
<p>This is the in-repo stand-in for GitHub. Choose who you are on "GitHub".</p>
<form method="post" action="/login/oauth/authorize">
{}{}{}{}{}
<p><label>GitHub login <input name="login" id="login" value="octocat" required></label></p>
<p><label>GitHub user id <input name="user_id" id="user_id" value="{default_id}" required inputmode="numeric"></label></p>
<p>Scope: {}</p>
<button type="submit" name="decision" value="authorize">Authorize</button>
<button type="submit" name="decision" value="cancel">Cancel</button>
</form></body></html>"#,
        hidden("client_id", &st.config.client_id),
        hidden("redirect_uri", redirect_uri),
        hidden("state", q.state.as_deref().unwrap_or("")),
        hidden("code_challenge", challenge),
        hidden("scope", q.scope.as_deref().unwrap_or("")),
        html_escape(q.scope.as_deref().unwrap_or("(none)")),
    );
    Html(page).into_response()
}

#[derive(Debug, Deserialize)]
struct ConsentForm {
    client_id: String,
    redirect_uri: String,
    state: String,
    code_challenge: String,
    login: String,
    user_id: String,
    decision: String,
}

fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", q.join("&"))
}

async fn consent_answer(State(st): State<AppState>, Form(f): Form<ConsentForm>) -> Response {
    if f.client_id != st.config.client_id {
        return (StatusCode::NOT_FOUND, "unknown client").into_response();
    }
    if f.decision != "authorize" {
        return Redirect::to(&with_query(
            &f.redirect_uri,
            &[("error", "access_denied"), ("state", &f.state)],
        ))
        .into_response();
    }
    let Ok(id) = f.user_id.trim().parse::<i64>() else {
        return (StatusCode::BAD_REQUEST, "user id must be a number").into_response();
    };
    let code = random_token("");
    st.db.lock().unwrap().codes.insert(
        code.clone(),
        Grant {
            client_id: f.client_id,
            redirect_uri: f.redirect_uri.clone(),
            challenge: f.code_challenge,
            user: GithubUser {
                id,
                login: f.login.trim().to_string(),
            },
            issued: Instant::now(),
        },
    );
    Redirect::to(&with_query(
        &f.redirect_uri,
        &[("code", &code), ("state", &f.state)],
    ))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

/// GitHub answers token errors with 200 and an `error` field.
fn token_error(code: &str, description: &str) -> Response {
    Json(json!({"error": code, "error_description": description})).into_response()
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (id, secret) = s.split_once(':')?;
    let unpct = |x: &str| x.replace("%3A", ":").replace("%25", "%");
    Some((unpct(id), unpct(secret)))
}

async fn access_token(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let (client_id, secret) = match basic_auth(&headers) {
        Some(pair) => pair,
        None => (
            f.client_id.unwrap_or_default(),
            f.client_secret.unwrap_or_default(),
        ),
    };
    if client_id != st.config.client_id || secret != st.config.client_secret {
        return token_error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let mut db = st.db.lock().unwrap();
    // Codes are single-use whatever happens next.
    let Some(grant) = f.code.as_deref().and_then(|c| db.codes.remove(c)) else {
        return token_error(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    };
    if grant.issued.elapsed() > CODE_TTL || grant.client_id != client_id {
        return token_error(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    }
    if f.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return token_error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    let verifier = f.code_verifier.unwrap_or_default();
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if computed != grant.challenge {
        return token_error(
            "invalid_grant",
            "The code_verifier does not match the code_challenge.",
        );
    }
    let token = random_token("gho_");
    db.tokens.insert(token.clone(), grant.user);
    Json(json!({"access_token": token, "token_type": "bearer", "scope": "read:user"}))
        .into_response()
}

async fn user(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
                .or_else(|| v.strip_prefix("bearer "))
        });
    let user = token.and_then(|t| st.db.lock().unwrap().tokens.get(t).cloned());
    match user {
        Some(u) => Json(json!({
            "id": u.id,
            "login": u.login,
            "name": u.login,
            "email": null,
            "type": "User",
        }))
        .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest"})),
        )
            .into_response(),
    }
}

/// Serves the fake on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: FakeGithubConfig,
) -> std::io::Result<()> {
    axum::serve(listener, router(config)).await
}
