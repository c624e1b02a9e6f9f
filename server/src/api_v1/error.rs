//! The JSON API's one error shape: `{"code": "...", "message": "..."}` (and `field` when a
//! request field is at fault), with the status that goes with the code.

use app::api::ApiError;
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use qingting_core::api_tokens::TokenError;
use serde_json::json;

#[derive(Debug)]
pub struct V1Error {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    retry_after: Option<u64>,
}

impl V1Error {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This endpoint does not take that method (docs/api.md lists them).",
        )
    }

    pub fn invalid(field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            field: field.map(str::to_string),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid", message)
        }
    }

    /// Our fault: logged, and said without details.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("API internal error: {e}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side. Please try again.",
        )
    }
}

impl From<ApiError> for V1Error {
    fn from(e: ApiError) -> Self {
        let message = e.to_string();
        match e {
            ApiError::Invalid { field, .. } => Self::invalid(field.as_deref(), message),
            ApiError::Transport(_) => Self::invalid(None, message),
            ApiError::Unauthorized | ApiError::BadCredentials => Self::unauthorized(message),
            ApiError::Suspended => Self::new(StatusCode::FORBIDDEN, "suspended", message),
            ApiError::NotFound(_) => Self::not_found(message),
            ApiError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", message),
            ApiError::LimitReached(_) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "limit_reached", message)
            }
            ApiError::RateLimited { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            },
            ApiError::Internal => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
        }
    }
}

impl From<TokenError> for V1Error {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid(m) => Self::invalid(None, m),
            TokenError::TooMany => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            TokenError::NotFound => Self::not_found(e.to_string()),
            TokenError::Rejected => Self::unauthorized(e.to_string()),
            TokenError::Store(e) => Self::internal(e),
        }
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let Some(f) = &self.field {
            body["field"] = json!(f);
        }
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}
