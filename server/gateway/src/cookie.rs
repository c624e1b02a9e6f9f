//! The workspace cookie: what a redeemed token turns into, host-only on the workspace's host.
//! It carries the workspace, the user and the dashboard session it came from (so signing out
//! of the dashboard ends workspace access), and is signed with an HMAC key that only the
//! gateway holds; the workspace's own code never sees it (the proxy strips it).
//!
//! Format: `base64url(json) "." base64url(hmac-sha256(key, first part))`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The workspace cookie's name on plain-http hosts (local development).
pub const NAME: &str = "qingting_ws";
/// Its name on https: the `__Host-` prefix makes browsers refuse it unless it is host-only,
/// `Secure` and `Path=/`, so a neighbouring workspace cannot toss in one of its own.
pub const HOST_NAME: &str = "__Host-qingting_ws";
/// The browser round-trip state cookie (see [`crate::token::Claims::state`]).
pub const STATE_NAME: &str = "qingting_ws_state";
pub const HOST_STATE_NAME: &str = "__Host-qingting_ws_state";
/// How long a browser has to come back from the dashboard with a token for its state.
pub const STATE_TTL_SECS: i64 = 600;

/// The workspace cookie's name for a host served over https (`secure`) or not.
pub fn name(secure: bool) -> &'static str {
    if secure {
        HOST_NAME
    } else {
        NAME
    }
}

/// The state cookie's name for a host served over https (`secure`) or not.
pub fn state_name(secure: bool) -> &'static str {
    if secure {
        HOST_STATE_NAME
    } else {
        STATE_NAME
    }
}

/// Whether a cookie of this name is one of ours (the gateway's or the dashboard's): those
/// never reach the IDE, and the IDE may not set them. Prefixes are compared without regard to
/// case, as browsers do.
pub fn is_own(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    let bare = lower
        .strip_prefix("__host-")
        .or_else(|| lower.strip_prefix("__secure-"))
        .unwrap_or(&lower);
    bare.starts_with("qingting_")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CookieClaims {
    pub ws: i64,
    pub sub: i64,
    pub sid: String,
    pub exp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("malformed workspace cookie")]
    Malformed,
    #[error("workspace cookie signature does not match")]
    BadSignature,
    #[error("workspace cookie expired")]
    Expired,
    #[error("workspace cookie is for another workspace")]
    WrongWorkspace,
}

#[derive(Clone)]
pub struct CookieCodec {
    key: [u8; 32],
}

impl std::fmt::Debug for CookieCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieCodec(..)")
    }
}

impl CookieCodec {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    pub fn encode(&self, claims: &CookieClaims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks the signature (in constant time), the workspace and the expiry.
    pub fn decode(
        &self,
        value: &str,
        workspace: i64,
        now: i64,
    ) -> Result<CookieClaims, CookieError> {
        let (body, tag) = value.split_once('.').ok_or(CookieError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CookieError::Malformed)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| CookieError::BadSignature)?;
        let claims: CookieClaims = crate::decode_claims(body).ok_or(CookieError::Malformed)?;
        if claims.ws != workspace {
            return Err(CookieError::WrongWorkspace);
        }
        if claims.exp < now {
            return Err(CookieError::Expired);
        }
        Ok(claims)
    }
}

/// The value of cookie `name` in a `Cookie` header, if present.
pub fn find<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Every value of cookie `name` in a `Cookie` header (browsers send one per matching path).
pub fn find_all<'a>(cookie_header: &'a str, name: &'a str) -> impl Iterator<Item = String> + 'a {
    cookie_header.split(';').filter_map(move |pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// The `Cookie` header without the gateway's and the dashboard's cookies (see [`is_own`]), or
/// `None` when nothing is left.
pub fn strip_own(cookie_header: &str) -> Option<String> {
    let kept: Vec<&str> = cookie_header
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty() && !is_own(p.split('=').next().unwrap_or(p)))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

fn set_named(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

/// `Set-Cookie` for the workspace cookie: host-only (no `Domain`), HttpOnly, SameSite=Lax.
pub fn set_header(value: &str, max_age_secs: i64, secure: bool) -> String {
    set_named(name(secure), value, max_age_secs, secure)
}

/// `Set-Cookie` that removes the workspace cookie.
pub fn clear_header(secure: bool) -> String {
    set_header("", 0, secure)
}

/// `Set-Cookie` for the round-trip state cookie.
pub fn set_state_header(state: &str, secure: bool) -> String {
    set_named(state_name(secure), state, STATE_TTL_SECS, secure)
}

/// `Set-Cookie` that removes the round-trip state cookie.
pub fn clear_state_header(secure: bool) -> String {
    set_named(state_name(secure), "", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> CookieClaims {
        CookieClaims {
            ws: 7,
            sub: 1,
            sid: "s".into(),
            exp: 1000,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let c = CookieCodec::new([1; 32]);
        let v = c.encode(&claims());
        assert_eq!(c.decode(&v, 7, 999), Ok(claims()));
        assert_eq!(c.decode(&v, 8, 999), Err(CookieError::WrongWorkspace));
        assert_eq!(c.decode(&v, 7, 1001), Err(CookieError::Expired));
        assert_eq!(
            CookieCodec::new([2; 32]).decode(&v, 7, 999),
            Err(CookieError::BadSignature)
        );
        let (body, _) = v.split_once('.').unwrap();
        assert_eq!(c.decode(body, 7, 999), Err(CookieError::Malformed));
        // A body re-signed by nobody: swap in other claims, keep the old tag.
        let forged = CookieClaims { sub: 2, ..claims() };
        let other = c.encode(&forged);
        let tag = v.split_once('.').unwrap().1;
        let mixed = format!("{}.{tag}", other.split_once('.').unwrap().0);
        assert_eq!(c.decode(&mixed, 7, 999), Err(CookieError::BadSignature));
    }

    #[test]
    fn header_helpers() {
        let h = "a=1; qingting_ws=x; qingting_session=y; b=2";
        assert_eq!(find(h, "qingting_ws"), Some("x"));
        assert_eq!(find(h, "c"), None);
        assert_eq!(strip_own(h).as_deref(), Some("a=1; b=2"));
        assert_eq!(strip_own("qingting_ws=x"), None);
        let set = set_header("v", 60, true);
        assert!(set.contains("HttpOnly") && set.contains("Secure") && !set.contains("Domain"));
        assert!(set.starts_with("__Host-qingting_ws=v; Path=/;"), "{set}");
        assert!(set_header("v", 60, false).starts_with("qingting_ws=v;"));
    }

    #[test]
    fn prefixed_names_are_ours_too() {
        let h = "__Host-qingting_ws=x; __host-QINGTING_x=1; __Secure-qingting_session=y; \
                 __Host-qingting_ws_state=s; keep=1";
        assert_eq!(strip_own(h).as_deref(), Some("keep=1"));
        assert!(is_own("__HOST-qingting_ws") && is_own("qingting_session") && !is_own("jupyter"));
    }
}
