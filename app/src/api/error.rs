//! The one error type every server function returns; it travels to the browser as JSON and
//! its `Display` is the message people see.

use serde::{Deserialize, Serialize};
use server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    /// Bad input; `field` names the form field when there is one.
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    #[error("Please sign in to continue.")]
    Unauthorized,
    /// Same message whether the user exists or the password is wrong.
    #[error("Wrong user name or password.")]
    BadCredentials,
    /// Right password, but an admin suspended the account.
    #[error("This account is suspended. Ask an administrator of this instance.")]
    Suspended,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// A per-user quota (e.g. running workspaces), not a rate: retrying does not help.
    #[error("{0}")]
    LimitReached(String),
    #[error("Too many attempts. Try again in {retry_after} seconds.")]
    RateLimited { retry_after: u64 },
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// Failures of the call itself (network, encoding), raised by the server-function layer.
    #[error("The request failed: {0}")]
    Transport(String),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Invalid { .. } | ApiError::Transport(_) => 400,
            ApiError::Unauthorized | ApiError::BadCredentials => 401,
            ApiError::Suspended => 403,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::RateLimited { .. } | ApiError::LimitReached(_) => 429,
            ApiError::Internal => 500,
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let err = match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => ApiError::Invalid {
                field: None,
                message: format!("Incomplete or malformed form: {m}"),
            },
            other => ApiError::Transport(other.to_string()),
        };
        // On the server this runs inside the request (bad arguments): answer 400, not 500.
        #[cfg(feature = "ssr")]
        let err = super::server_ctx::fail(err);
        err
    }
}
