//! `POST /api/avatar` (multipart upload, size enforced while streaming) and
//! `GET /avatars/<file>` (served from the object store, cached forever: keys never repeat).

use app::components::outcome::Outcome;
use axum::{
    extract::{Multipart, Path},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Extension, Json,
};
use bytes::BytesMut;
use qingting_core::{
    auth_session,
    avatars::{self, AvatarError},
    objects::valid_key,
    AppState,
};
use serde_json::json;
use tower_sessions::Session;

const SETTINGS: &str = "/settings/profile";

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Stable codes the settings page turns into messages (a URL never carries free text).
fn outcome(e: &AvatarError) -> (Outcome, StatusCode) {
    match e {
        AvatarError::TooLarge { .. } => (Outcome::AvatarTooLarge, StatusCode::PAYLOAD_TOO_LARGE),
        AvatarError::NotAnImage => (Outcome::AvatarNotImage, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        AvatarError::Corrupt(_) => (Outcome::AvatarCorrupt, StatusCode::UNPROCESSABLE_ENTITY),
        AvatarError::TooManyPixels => (
            Outcome::AvatarTooManyPixels,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        AvatarError::TooManyUploads { .. } => {
            (Outcome::AvatarRateLimited, StatusCode::TOO_MANY_REQUESTS)
        }
        AvatarError::Storage(_) => (Outcome::AvatarFailed, StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn refuse(html: bool, e: AvatarError) -> Response {
    let (outcome, status) = outcome(&e);
    if let AvatarError::Storage(detail) = &e {
        tracing::error!("avatar storage failed: {detail}");
    }
    let mut res = if html {
        Redirect::to(&format!("{SETTINGS}?{}", outcome.query())).into_response()
    } else {
        (
            status,
            Json(json!({"error": outcome.code(), "message": e.to_string()})),
        )
            .into_response()
    };
    if let AvatarError::TooManyUploads { retry_after_secs } = e {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    res
}

pub async fn upload(
    Extension(state): Extension<AppState>,
    session: Session,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let html = wants_html(&headers);
    let user_id = match auth_session::user_id(&session).await {
        Ok(Some(id)) => id,
        _ if html => {
            return Redirect::to(&format!("/login?next={}", "%2Fsettings%2Fprofile"))
                .into_response()
        }
        _ => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "unauthorized"})),
            )
                .into_response()
        }
    };
    let max = state.config.avatar_max_bytes;
    let Ok(mut multipart) = multipart else {
        return refuse(html, AvatarError::NotAnImage);
    };
    // Read the `avatar` field chunk by chunk. Past the limit nothing more is kept, but the rest
    // of the body is still read and discarded (up to the route's transport cap): answering
    // while the browser is still sending makes it show "connection reset" instead of our answer.
    let mut data = BytesMut::new();
    let mut found = false;
    let mut too_large = false;
    while let Some(mut field) = match multipart.next_field().await {
        Ok(f) => f,
        Err(e) => return refuse(html, body_error(&e, max)),
    } {
        if found || field.name() != Some("avatar") {
            continue;
        }
        found = true;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) if too_large => drop(chunk),
                Ok(Some(chunk)) if (data.len() + chunk.len()) as u64 > max => {
                    too_large = true;
                    data = BytesMut::new();
                }
                Ok(Some(chunk)) => data.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return refuse(html, body_error(&e, max)),
            }
        }
    }
    if too_large {
        return refuse(
            html,
            AvatarError::TooLarge {
                max_kib: max / 1024,
            },
        );
    }
    if !found || data.is_empty() {
        return refuse(html, AvatarError::NotAnImage);
    }
    match avatars::set_avatar(&state, user_id, data.freeze()).await {
        Ok(_) if html => {
            Redirect::to(&format!("{SETTINGS}?{}", Outcome::AvatarUpdated.query())).into_response()
        }
        Ok(key) => Json(json!({"avatar_url": format!("/{key}")})).into_response(),
        Err(e) => refuse(html, e),
    }
}

/// How much of an oversized upload is read and discarded before the connection is dropped.
pub fn transport_cap(max: u64) -> usize {
    (max.saturating_mul(8)).max(16 * 1024 * 1024) as usize
}

/// A multipart failure: over the transport limit, or a malformed (e.g. cut-short) body.
fn body_error(e: &axum::extract::multipart::MultipartError, max: u64) -> AvatarError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AvatarError::TooLarge {
            max_kib: max / 1024,
        }
    } else {
        AvatarError::NotAnImage
    }
}

pub async fn serve(Extension(state): Extension<AppState>, Path(file): Path<String>) -> Response {
    let key = format!("avatars/{file}");
    if !valid_key(&key) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match state.objects.get(&key).await {
        Ok(Some((bytes, content_type))) => (
            [
                (header::CONTENT_TYPE, content_type),
                (
                    header::CACHE_CONTROL,
                    "public, max-age=31536000, immutable".to_string(),
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(%key, "avatar read failed: {e}");
            StatusCode::BAD_GATEWAY.into_response()
        }
    }
}
