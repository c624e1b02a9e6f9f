//! The workspace gateway's decisions, shared by the in-process gateway and `qingting-shell`:
//! which workspace a host names, and the short-lived tokens that hand a signed-in user's
//! access to one workspace host.

pub mod host;
pub mod token;
