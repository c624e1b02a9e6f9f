//! Workspace access tokens: the dashboard, after checking the session and ownership, mints a
//! token for exactly one workspace, valid for at most 60 s and usable once; the gateway (or
//! `qingting-shell`, which holds only the public key) verifies it and sets a host-only cookie.
//!
//! Format: `base64url(json claims) "." base64url(ed25519 signature over the first part)`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::{collections::HashMap, sync::Mutex};

/// Longest lifetime a token may have.
pub const MAX_TTL_SECS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The workspace id this token opens (its audience).
    pub aud: i64,
    /// The user it was issued to.
    pub sub: i64,
    /// The dashboard session it came from, so signing out can end workspace access.
    pub sid: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Random, for single use.
    pub nonce: String,
    /// The browser round trip this token answers: the value of the state cookie the gateway
    /// set before sending the browser to the dashboard. A token that carries the state of the
    /// browser presenting it was not handed over from someone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token is for another workspace")]
    WrongAudience,
    #[error("token lifetime too long")]
    TooLong,
}

pub struct TokenSigner {
    key: SigningKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

impl TokenSigner {
    /// From the 32-byte secret seed (kept by the dashboard only).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn mint(
        &self,
        workspace_id: i64,
        user_id: i64,
        session: &str,
        state: Option<&str>,
        now: i64,
        ttl_secs: i64,
    ) -> String {
        let claims = Claims {
            aud: workspace_id,
            sub: user_id,
            sid: session.into(),
            exp: now + ttl_secs.clamp(1, MAX_TTL_SECS),
            nonce: hex::encode(rand::random::<[u8; 16]>()),
            state: state.filter(|s| is_state(s)).map(str::to_string),
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let sig = self.key.sign(body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier(..)")
    }
}

/// Whether `s` looks like a state value the gateway made (32 hex digits).
pub fn is_state(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A fresh random state value for a browser round trip.
pub fn new_state() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Verifies tokens with the public key only. Single use is kept by a [`UsedTokens`] store
/// every process that redeems tokens for a workspace shares.
pub struct TokenVerifier {
    key: VerifyingKey,
}

impl TokenVerifier {
    pub fn new(public_key: &[u8; 32]) -> Result<Self, TokenError> {
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| TokenError::Malformed)?;
        Ok(Self { key })
    }

    /// Checks signature, expiry and lifetime (not single use: see [`UsedTokens`]).
    pub fn verify_any(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let (body, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let sig: [u8; 64] = URL_SAFE_NO_PAD
            .decode(sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(TokenError::Malformed)?;
        self.key
            .verify(body.as_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = crate::decode_claims(body).ok_or(TokenError::Malformed)?;
        if claims.exp < now {
            return Err(TokenError::Expired);
        }
        if claims.exp - now > MAX_TTL_SECS {
            return Err(TokenError::TooLong);
        }
        Ok(claims)
    }

    /// [`verify_any`](Self::verify_any), and the token must be for `workspace_id`.
    pub fn verify(&self, token: &str, workspace_id: i64, now: i64) -> Result<Claims, TokenError> {
        let claims = self.verify_any(token, now)?;
        if claims.aud != workspace_id {
            return Err(TokenError::WrongAudience);
        }
        Ok(claims)
    }
}

/// A future the [`UsedTokens`] stores answer with.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where used token nonces are remembered until they expire. It must be shared by every
/// process that redeems tokens for the same workspaces (replicas, FC instances), or a leaked
/// token works once per process: the server keeps them in its database, `qingting-shell`
/// asks the dashboard.
pub trait UsedTokens: Send + Sync + std::fmt::Debug {
    /// Records the token (verified: `claims` are its claims) as used until it expires:
    /// `Ok(true)` the first time, `Ok(false)` after. Entries that expired before `now` may be
    /// forgotten.
    fn first_use<'a>(
        &'a self,
        token: &'a str,
        claims: &'a Claims,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, String>>;
}

/// Used nonces in this process's memory: for tests and single-process tools.
#[derive(Debug, Default)]
pub struct MemoryUsedTokens {
    used: Mutex<HashMap<String, i64>>,
}

impl UsedTokens for MemoryUsedTokens {
    fn first_use<'a>(
        &'a self,
        _token: &'a str,
        claims: &'a Claims,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, String>> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        used.retain(|_, e| *e >= now);
        let first = used.insert(claims.nonce.clone(), claims.exp).is_none();
        Box::pin(async move { Ok(first) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn futures_lite_block<T>(f: BoxFuture<'_, T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn state_is_carried_only_when_well_formed() {
        let (s, v) = pair();
        let state = new_state();
        let t = s.mint(42, 1, "sess", Some(&state), 1000, 60);
        assert_eq!(v.verify(&t, 42, 1000).unwrap().state, Some(state));
        let t = s.mint(42, 1, "sess", Some("not-a-state"), 1000, 60);
        assert_eq!(v.verify(&t, 42, 1000).unwrap().state, None);
    }

    fn pair() -> (TokenSigner, TokenVerifier) {
        let s = TokenSigner::from_seed(&[7u8; 32]);
        let v = TokenVerifier::new(&s.public_key()).unwrap();
        (s, v)
    }

    #[test]
    fn good_token_opens_its_workspace_once() {
        let (s, v) = pair();
        let t = s.mint(42, 1, "sess", None, 1000, 60);
        let c = v.verify(&t, 42, 1010).unwrap();
        assert_eq!((c.aud, c.sub, c.sid.as_str()), (42, 1, "sess"));
        let used = MemoryUsedTokens::default();
        assert_eq!(futures_lite_block(used.first_use(&t, &c, 1010)), Ok(true));
        assert_eq!(futures_lite_block(used.first_use(&t, &c, 1011)), Ok(false));
        // Forgotten only once expired, when nobody could present it any more.
        assert_eq!(futures_lite_block(used.first_use(&t, &c, 2000)), Ok(true));
    }

    #[test]
    fn refusals() {
        let (s, v) = pair();
        let t = s.mint(42, 1, "sess", None, 1000, 60);
        assert_eq!(v.verify(&t, 43, 1000), Err(TokenError::WrongAudience));
        assert_eq!(v.verify(&t, 42, 1061), Err(TokenError::Expired));
        // Lifetimes are clamped when minting, and refused when verifying.
        let long = s.mint(42, 1, "sess", None, 1000, 3600);
        assert!(v.verify(&long, 42, 1000).is_ok(), "clamped to 60 s");
        // Another key's token.
        let other = TokenSigner::from_seed(&[8u8; 32]).mint(42, 1, "sess", None, 1000, 60);
        assert_eq!(v.verify(&other, 42, 1000), Err(TokenError::BadSignature));
        // Tampered claims.
        let (body, sig) = t.split_once('.').unwrap();
        let mut claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        claims.aud = 43;
        let forged = format!(
            "{}.{sig}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        assert_eq!(v.verify(&forged, 43, 1000), Err(TokenError::BadSignature));
        for junk in ["", "abc", "a.b", "x.y.z"] {
            assert!(v.verify(junk, 42, 1000).is_err(), "{junk}");
        }
    }
}
