//! What FC checks before it looks at a request: the required headers, the credential, the
//! date window, the body hash, the signature (over exactly the headers the Authorization
//! header names) and nonce reuse. Failures answer in FC's error shape and codes.

use super::reply::Reject;
use crate::signer;
use std::collections::HashMap;

/// `x-acs-date` must be within this many seconds of now.
const DATE_WINDOW_SECS: i64 = 15 * 60;

pub struct Checked {
    pub action: String,
    pub nonce: String,
}

/// `headers`: lowercase name → values; `raw_path` as sent (already encoded).
pub fn check(
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HashMap<String, Vec<String>>,
    body: &[u8],
    access_key_id: &str,
    secret: &str,
) -> Result<Checked, Reject> {
    let one = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    };
    for required in [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
        "authorization",
    ] {
        if one(required).is_none_or(str::is_empty) {
            return Err(Reject::new(
                400,
                "MissingRequiredHeader",
                format!("required HTTP header {required} was not provided"),
            ));
        }
    }
    let version = one("x-acs-version").unwrap_or_default();
    if version != crate::client::API_VERSION {
        return Err(Reject::new(
            400,
            "InvalidVersion",
            format!("API version {version} is not supported; use 2023-03-30"),
        ));
    }
    let auth =
        signer::parse_authorization(one("authorization").unwrap_or_default()).ok_or_else(|| {
            Reject::new(
                400,
                "InvalidAuthorization",
                "the Authorization header is malformed".into(),
            )
        })?;
    if auth.access_key_id != access_key_id {
        return Err(Reject::new(
            403,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.".into(),
        ));
    }
    let date = one("x-acs-date").unwrap_or_default();
    match parse_iso8601(date) {
        Some(t) if (t - crate::now_unix()).abs() <= DATE_WINDOW_SECS => {}
        Some(_) => {
            return Err(Reject::new(
                403,
                "InvalidTimeStamp.Expired",
                format!("Specified time stamp or date value is expired: {date}"),
            ))
        }
        None => {
            return Err(Reject::new(
                400,
                "InvalidTimeStamp.Format",
                format!("Specified time stamp or date value is not well formatted: {date}"),
            ))
        }
    }
    let body_hash = signer::sha256_hex(body);
    if one("x-acs-content-sha256") != Some(body_hash.as_str()) {
        return Err(Reject::new(
            400,
            "ContentSHA256Mismatch",
            "x-acs-content-sha256 does not match the request body".into(),
        ));
    }
    // Everything FC requires to be signed must be in the list.
    for (name, _) in headers.iter() {
        if signer::is_signed_header(name) && !auth.signed_headers.iter().any(|h| h == name) {
            return Err(Reject::new(
                403,
                "SignatureDoesNotMatch",
                format!("header {name} must be signed"),
            ));
        }
    }
    let flat: Vec<(String, String)> = headers
        .iter()
        .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
        .collect();
    let query: Vec<(String, String)> = raw_query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect();
    let req = signer::Request {
        method,
        canonical_uri: if raw_path.is_empty() {
            "/".into()
        } else {
            raw_path.to_string()
        },
        query,
        headers: flat,
        signed_headers: auth.signed_headers.clone(),
        payload_hash: body_hash,
    };
    if !signer::signatures_equal(&req.signature(secret), &auth.signature) {
        return Err(Reject::new(
            403,
            "SignatureDoesNotMatch",
            format!("The request signature does not conform to Aliyun standards. server string to sign is:{}", req.string_to_sign()),
        ));
    }
    Ok(Checked {
        action: one("x-acs-action").unwrap_or_default().to_string(),
        nonce: one("x-acs-signature-nonce").unwrap_or_default().to_string(),
    })
}

/// Percent-decoding; `+` is a space in query strings only.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `yyyy-MM-ddTHH:mm:ssZ` → Unix seconds.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            super::parse_iso8601("2023-08-24T06:07:08Z"),
            Some(1692857228)
        );
        assert_eq!(super::parse_iso8601("2023-13-24T06:07:08Z"), None);
        assert_eq!(super::parse_iso8601("2023-08-24 06:07:08"), None);
    }
}
