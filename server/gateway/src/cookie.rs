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

/// The cookie's name on every workspace host.
pub const NAME: &str = "qingting_ws";

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

/// The `Cookie` header without the gateway's and the dashboard's cookies (anything named
/// `qingting_*`), or `None` when nothing is left.
pub fn strip_own(cookie_header: &str) -> Option<String> {
    let kept: Vec<&str> = cookie_header
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with("qingting_"))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// `Set-Cookie` for the workspace cookie: host-only (no `Domain`), HttpOnly, SameSite=Lax.
pub fn set_header(value: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{NAME}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

/// `Set-Cookie` that removes the workspace cookie.
pub fn clear_header(secure: bool) -> String {
    set_header("", 0, secure)
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
    }
}
