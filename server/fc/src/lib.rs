//! Function Compute 3.0 (API 2023-03-30) for the `fc` runtime: the request signer (checked
//! against Alibaba's published test vectors), the operations' JSON shapes, errors parsed from
//! every documented shape, and a client with timeouts and retries.

pub mod client;
pub mod error;
pub mod model;
pub mod signer;
pub mod sim;

pub use client::{endpoint_for, Credentials, FcClient, RetryPolicy};
pub use error::{FcError, FcErrorKind};

/// Current Unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Now as FC writes times: `2026-11-26T10:00:00Z` (UTC, seconds).
pub fn now_iso8601() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
