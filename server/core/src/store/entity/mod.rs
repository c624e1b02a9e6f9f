//! Table definitions. Times are Unix seconds (`i64`) on every backend.

pub mod api_token;
pub mod audit_event;
pub mod change;
pub mod known_sign_in;
pub mod lease;
pub mod port_share;
pub mod rate_window;
pub mod session;
pub mod used_token;
pub mod user;
pub mod workspace;
