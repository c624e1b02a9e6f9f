//! Table definitions. Times are Unix seconds (`i64`) on every backend.

pub mod port_share;
pub mod session;
pub mod used_token;
pub mod user;
pub mod workspace;
