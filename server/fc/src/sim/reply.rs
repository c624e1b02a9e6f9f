//! FC's answer shapes: JSON bodies, `x-acs-request-id`, and errors as
//! `{"Code","Message","RequestId"}` with FC's status codes.

use axum::{
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Reject {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Reject {
    pub fn new(status: u16, code: &str, message: String) -> Self {
        Self {
            status,
            code: code.into(),
            message,
        }
    }

    pub fn not_found(code: &str, what: &str) -> Self {
        Self::new(404, code, format!("{what} not found"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidArgument", message.into())
    }
}

fn request_id() -> String {
    format!(
        "1-{:08x}-{}",
        crate::now_unix(),
        hex::encode(rand::random::<[u8; 12]>())
    )
}

fn with_id(mut res: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        res.headers_mut().insert("x-acs-request-id", v);
    }
    res
}

pub fn error(r: &Reject) -> Response {
    let id = request_id();
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    with_id(
        (
            status,
            Json(json!({"Code": r.code, "Message": r.message, "RequestId": id})),
        )
            .into_response(),
        &id,
    )
}

pub fn ok(status: u16, body: Option<Value>) -> Response {
    let id = request_id();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let res = match body {
        Some(v) => (status, Json(v)).into_response(),
        None => status.into_response(),
    };
    with_id(res, &id)
}
