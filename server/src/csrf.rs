//! Cross-site request refusal for the API: server functions change state, so they accept
//! only POST from our own origin. Browsers always send `Origin` (or `Sec-Fetch-Site`) on such
//! requests; non-browser clients send neither and are not a CSRF vector.

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::sync::Arc;

pub const API_PREFIX: &str = "/api/";
/// Read-only API endpoints answered to GET (EventSource can only GET).
const GET_ENDPOINTS: [&str; 1] = ["/api/workspaces/events"];

pub async fn guard(State(origin): State<Arc<str>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // The JSON API takes a bearer token only, never a cookie: nothing for a forged
    // cross-site request to ride on.
    let bearer_only = path.starts_with(crate::api_v1::PREFIX)
        && path[crate::api_v1::PREFIX.len()..].starts_with('/');
    if path.starts_with(API_PREFIX)
        && !bearer_only
        && !(req.method() == Method::GET && GET_ENDPOINTS.contains(&path))
    {
        if req.method() != Method::POST {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "POST")],
                "Use POST.\n",
            )
                .into_response();
        }
        if let Some(reason) = refusal(req.headers(), &origin) {
            tracing::warn!(path = %req.uri().path(), reason, "cross-site request refused");
            return (StatusCode::FORBIDDEN, "Cross-site request refused.\n").into_response();
        }
    }
    next.run(req).await
}

/// For browser-only flows that start a change outside `/api/` (GitHub link, deletion): the
/// same decision, and a request without either header is refused too, since every browser
/// that can run the flow sends one on a POST.
pub(crate) fn browser_refusal(h: &HeaderMap, origin: &str) -> Option<&'static str> {
    if !h.contains_key(header::ORIGIN) && !h.contains_key("sec-fetch-site") {
        return Some("no origin");
    }
    refusal(h, origin)
}

fn refusal(h: &HeaderMap, origin: &str) -> Option<&'static str> {
    if let Some(o) = h.get(header::ORIGIN) {
        return (o.as_bytes() != origin.as_bytes()).then_some("origin mismatch");
    }
    match h.get("sec-fetch-site").map(|v| v.as_bytes()) {
        None | Some(b"same-origin") | Some(b"none") => None,
        Some(_) => Some("sec-fetch-site"),
    }
}
