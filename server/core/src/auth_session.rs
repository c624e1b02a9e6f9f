//! The signed-in user of a dashboard session: one place that reads and writes it, for the
//! server functions and the plain HTTP handlers (OAuth callback, uploads) alike.

use crate::store::session_store::USER_ID_KEY;
use tower_sessions::{session::Error, Session};

/// The user id stored in the session, if any.
pub async fn user_id(session: &Session) -> Result<Option<i64>, Error> {
    session.get(USER_ID_KEY).await
}

/// Makes `user_id` the session's user under a fresh session id (no fixation).
pub async fn sign_in(session: &Session, user_id: i64) -> Result<(), Error> {
    session.cycle_id().await?;
    session.insert(USER_ID_KEY, user_id).await
}

/// Ends the session: its row is deleted and the cookie cleared.
pub async fn sign_out(session: &Session) -> Result<(), Error> {
    session.flush().await
}
