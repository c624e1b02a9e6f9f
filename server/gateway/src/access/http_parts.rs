//! The HTTP pieces every gateway needs around the decision: reading the token exchange's form,
//! recognising WebSocket upgrades and origins, and writing redirects with cookies.

use super::wants_form;
use http::{header, HeaderMap};
use http_body_util::{BodyExt, Limited};

/// The largest token exchange form a gateway reads.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// The token exchange's form was larger than [`MAX_FORM_BYTES`].
#[derive(Debug)]
pub struct FormTooLarge;

/// Splits off the body the decision needs: a `POST` to [`super::AUTH_PATH`] is read (at most
/// [`MAX_FORM_BYTES`]) and returned as text with no body left to forward; every other body is
/// handed back untouched, to stream to the IDE.
pub async fn take_form<B>(
    parts: &http::request::Parts,
    body: B,
) -> Result<(Option<String>, Option<B>), FormTooLarge>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if !wants_form(&parts.method, &parts.uri) {
        return Ok((None, Some(body)));
    }
    let bytes = Limited::new(body, MAX_FORM_BYTES)
        .collect()
        .await
        .map_err(|_| FormTooLarge)?
        .to_bytes();
    Ok((Some(String::from_utf8_lossy(&bytes).into_owned()), None))
}

pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

pub(super) fn origin_matches(headers: &HeaderMap, origin: &str) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.eq_ignore_ascii_case(origin))
}

/// A `302 Found` to `location` (what the security rules and browsers expect for these hops).
pub fn found<B: Default>(location: &str) -> http::Response<B> {
    let mut res = http::Response::new(B::default());
    *res.status_mut() = http::StatusCode::FOUND;
    if let Ok(v) = http::HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// A `302 Found` to `location` setting `cookies` (the answer to an exchange or a sign-in).
pub fn found_with_cookies<B: Default>(location: &str, cookies: &[String]) -> http::Response<B> {
    let mut res = found(location);
    for c in cookies {
        append_cookie(&mut res, c);
    }
    res
}

/// Appends a `Set-Cookie` header.
pub fn append_cookie<B>(res: &mut http::Response<B>, value: &str) {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}
