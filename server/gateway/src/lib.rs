//! The workspace gateway, shared by the in-process gateway of the `qingting` server and by
//! `qingting-shell` inside remote workspace images: one implementation of who may reach a
//! workspace and how traffic gets there.
//!
//! - [`host`]: which workspace a `Host` names;
//! - [`token`]: the one-time tokens the dashboard mints (Ed25519; verifiers hold only the
//!   public key);
//! - [`cookie`]: the host-only workspace cookie a redeemed token turns into;
//! - [`access`]: the decision for one request (exchange a token, forward, or send to the
//!   dashboard), including the WebSocket `Origin` check;
//! - [`ide`]: how an IDE is launched (command placeholders, environment);
//! - [`live`]: live connections by session, closed when their session ends;
//! - [`proxy`]: HTTP and WebSocket forwarding to the IDE, streaming, with our own cookies
//!   stripped; [`pool`]: the idle connections it reuses; [`netns`]: connecting inside a
//!   workspace's network namespace (port previews);
//! - [`url`]: which redirect targets are ours, query parameters, percent-encoding;
//! - `conformance` (feature `conformance`): the one test suite both gateways pass.

pub mod access;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod cookie;
pub mod host;
pub mod ide;
pub mod live;
pub mod names;
pub mod netns;
pub mod pool;
pub mod proxy;
pub mod token;
pub mod url;

/// Current Unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The JSON claims in the first part of a token or cookie (`base64url(json)`).
fn decode_claims<T: serde::de::DeserializeOwned>(body: &str) -> Option<T> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}
