//! FC errors, parsed from every documented shape into one typed error that says what the
//! caller can do about it (retry, treat as done, give up) and carries the request id.
//!
//! Shapes: FC 3.0 `{"Code","Message","RequestId"}`, the same in lower camel case, FC 2.0
//! `{"errorCode","errorMessage"}`, and XML `<Error><Code/><Message/><RequestId/></Error>`.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FcErrorKind {
    NotFound,
    AlreadyExists,
    /// E.g. `FunctionNotEmpty`: the function still has triggers.
    NotEmpty,
    /// Throttling, concurrency limits, concurrent updates: retry with backoff.
    Throttled,
    /// Credentials, signature, clock skew, permissions.
    Auth,
    /// A request FC considers malformed.
    Invalid,
    /// 5xx.
    Server,
    /// No answer (connection, timeout).
    Transport,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FC {action}: {code} ({status}): {message}{}", request_id.as_deref().map(|r| format!(" [request {r}]")).unwrap_or_default())]
pub struct FcError {
    pub kind: FcErrorKind,
    pub action: String,
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
}

impl FcError {
    /// Worth another attempt (with a fresh date, nonce and signature).
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind,
            FcErrorKind::Throttled | FcErrorKind::Server | FcErrorKind::Transport
        )
    }

    pub fn transport(action: &str, message: String) -> Self {
        Self {
            kind: FcErrorKind::Transport,
            action: action.into(),
            status: 0,
            code: "Transport".into(),
            message,
            request_id: None,
        }
    }
}

fn field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| v.get(*n)?.as_str())
}

fn xml_tag(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))?;
    Some(body[start..start + end].trim().to_string())
}

/// The error an FC answer with a non-2xx `status` stands for.
pub fn parse(action: &str, status: u16, headers: &[(String, String)], body: &[u8]) -> FcError {
    let text = String::from_utf8_lossy(body);
    let (mut code, mut message, mut request_id) = (None, None, None);
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        code = field(&v, &["Code", "code", "errorCode", "ErrorCode"]).map(str::to_string);
        message =
            field(&v, &["Message", "message", "errorMessage", "ErrorMessage"]).map(str::to_string);
        request_id = field(&v, &["RequestId", "requestId"]).map(str::to_string);
    } else if text.contains("<Error>") {
        code = xml_tag(&text, "Code");
        message = xml_tag(&text, "Message");
        request_id = xml_tag(&text, "RequestId");
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let request_id = request_id
        .or_else(|| header("x-fc-request-id"))
        .or_else(|| header("x-acs-request-id"));
    let code = code.unwrap_or_else(|| format!("HTTP{status}"));
    let throttled_header = header("x-ratelimit-user-api")
        .or_else(|| header("x-ratelimit-user"))
        .is_some_and(|v| v.contains("TimeLeft"));
    FcError {
        kind: classify(status, &code, throttled_header),
        action: action.into(),
        status,
        message: message.unwrap_or_else(|| text.chars().take(200).collect()),
        code,
        request_id,
    }
}

fn classify(status: u16, code: &str, throttled_header: bool) -> FcErrorKind {
    use FcErrorKind::*;
    let throttle_codes = [
        "ResourceThrottled",
        "ResourceExhausted",
        "ConcurrentUpdateError",
        "ServiceUnavailable",
    ];
    let auth_codes = [
        "InvalidAccessKeyID",
        "InvalidAccessKeyId",
        "SignatureNotMatch",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "SignatureNonceUsed",
        "InvalidSecurityToken",
    ];
    if code.starts_with("Throttling")
        || throttle_codes.contains(&code)
        || status == 429
        || throttled_header
    {
        Throttled
    } else if auth_codes.contains(&code)
        || code.starts_with("InvalidTimeStamp")
        || status == 401
        || status == 403
    {
        Auth
    } else if code.ends_with("NotFound") || status == 404 {
        NotFound
    } else if code.ends_with("AlreadyExists") || code.ends_with("Exist") || code.ends_with("Exists")
    {
        AlreadyExists
    } else if code.ends_with("NotEmpty") {
        NotEmpty
    } else if status >= 500 {
        if status == 503 {
            Throttled
        } else {
            Server
        }
    } else if status == 400 || code.starts_with("Invalid") || code.starts_with("Missing") {
        Invalid
    } else {
        Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(status: u16, body: &str) -> FcError {
        parse(
            "GetFunction",
            status,
            &[("x-acs-request-id".into(), "hdr-id".into())],
            body.as_bytes(),
        )
    }

    #[test]
    fn every_documented_shape() {
        let e = p(
            404,
            r#"{"Code":"FunctionNotFound","Message":"function not found","RequestId":"1-64e7"}"#,
        );
        assert_eq!(
            (e.kind, e.code.as_str(), e.request_id.as_deref()),
            (FcErrorKind::NotFound, "FunctionNotFound", Some("1-64e7"))
        );
        let e = p(
            409,
            r#"{"code":"FunctionAlreadyExists","message":"exists","requestId":"r2"}"#,
        );
        assert_eq!(
            (e.kind, e.message.as_str(), e.request_id.as_deref()),
            (FcErrorKind::AlreadyExists, "exists", Some("r2"))
        );
        let e = p(
            412,
            r#"{"errorCode":"FunctionNotEmpty","errorMessage":"function 'f' has active triggers"}"#,
        );
        assert_eq!(
            (e.kind, e.request_id.as_deref()),
            (FcErrorKind::NotEmpty, Some("hdr-id"))
        );
        let e = p(403, "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>bad</Message><RequestId>x1</RequestId></Error>");
        assert_eq!(
            (e.kind, e.code.as_str(), e.request_id.as_deref()),
            (FcErrorKind::Auth, "SignatureDoesNotMatch", Some("x1"))
        );
    }

    #[test]
    fn what_is_retried() {
        for (status, code) in [
            (429, "Throttling.User"),
            (503, "ResourceThrottled"),
            (409, "ConcurrentUpdateError"),
            (500, "InternalServerError"),
            (502, "x"),
        ] {
            let e = p(status, &format!(r#"{{"Code":"{code}","Message":"m"}}"#));
            assert!(e.retryable(), "{status} {code}: {:?}", e.kind);
        }
        for (status, code) in [
            (400, "InvalidArgument"),
            (404, "FunctionNotFound"),
            (403, "InvalidTimeStamp.Expired"),
            (409, "FunctionAlreadyExists"),
        ] {
            let e = p(status, &format!(r#"{{"Code":"{code}","Message":"m"}}"#));
            assert!(!e.retryable(), "{status} {code}");
        }
        let e = parse(
            "X",
            400,
            &[("x-ratelimit-user-api".into(), "TimeLeft:3".into())],
            b"{}",
        );
        assert_eq!(e.kind, FcErrorKind::Throttled);
        assert_eq!(p(502, "<html>bad gateway</html>").code, "HTTP502");
    }
}
