//! ACS3-HMAC-SHA256, the V3 request signature of Alibaba Cloud's OpenAPI (FC 3.0 uses it).
//!
//! CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n
//! SignedHeaders \n hex(sha256(body)); StringToSign = "ACS3-HMAC-SHA256\n" +
//! hex(sha256(CanonicalRequest)); Signature = hex(hmac_sha256(secret, StringToSign)).
//! Every canonical header line ends with `\n`, so the canonical request has an empty line after
//! the headers. The same code verifies signatures (the FC simulator) and makes them (the client).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 3986 percent-encoding: unreserved characters stay, everything else is `%XY` (uppercase).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An encoded path: each `/`-separated segment percent-encoded.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// Parameters sorted by name (then value), each side encoded, `name=value` joined by `&`.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut enc: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    enc.sort();
    enc.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Which headers are signed: `host`, `content-type` and every `x-acs-*` header.
pub fn is_signed_header(lower_name: &str) -> bool {
    lower_name == "host" || lower_name == "content-type" || lower_name.starts_with("x-acs-")
}

/// The parts of a request that the signature covers.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (already encoded or plain ASCII; see [`canonical_uri`]).
    pub canonical_uri: String,
    pub query: Vec<(String, String)>,
    /// (name, value) pairs; names in any case.
    pub headers: Vec<(String, String)>,
    /// Lowercase names of the headers to sign, sorted.
    pub signed_headers: Vec<String>,
    pub payload_hash: String,
}

impl Request<'_> {
    fn header(&self, lower: &str) -> Option<String> {
        // Several values of one header: sorted, joined with `,`.
        let mut vals: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(lower))
            .map(|(_, v)| v.trim())
            .collect();
        if vals.is_empty() {
            return None;
        }
        vals.sort();
        Some(vals.join(","))
    }

    pub fn canonical_request(&self) -> String {
        let mut headers = String::new();
        for name in &self.signed_headers {
            headers.push_str(name);
            headers.push(':');
            headers.push_str(&self.header(name).unwrap_or_default());
            headers.push('\n');
        }
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method.to_ascii_uppercase(),
            self.canonical_uri,
            canonical_query(&self.query),
            headers,
            self.signed_headers.join(";"),
            self.payload_hash
        )
    }

    pub fn string_to_sign(&self) -> String {
        format!(
            "{ALGORITHM}\n{}",
            sha256_hex(self.canonical_request().as_bytes())
        )
    }

    pub fn signature(&self, secret: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(self.string_to_sign().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub fn authorization(&self, access_key_id: &str, secret: &str) -> String {
        format!(
            "{ALGORITHM} Credential={access_key_id},SignedHeaders={},Signature={}",
            self.signed_headers.join(";"),
            self.signature(secret)
        )
    }
}

/// The signed-header list for a set of headers: the signable ones, lowercase, sorted, unique.
pub fn signed_headers_of(headers: &[(String, String)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| is_signed_header(n))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A parsed `Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_authorization(value: &str) -> Option<Authorization> {
    let rest = value.strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
    let (mut id, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => id = Some(v.to_string()),
            "SignedHeaders" => signed = Some(v.split(';').map(str::to_string).collect()),
            "Signature" => sig = Some(v.to_string()),
            _ => return None,
        }
    }
    Some(Authorization {
        access_key_id: id?,
        signed_headers: signed?,
        signature: sig?,
    })
}

/// Constant-time comparison of two signatures.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn ecs_request(date: &str, nonce: &str) -> Request<'static> {
        let headers = h(&[
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", date),
            ("x-acs-signature-nonce", nonce),
            ("x-acs-content-sha256", EMPTY),
            ("user-agent", "not signed"),
        ]);
        Request {
            method: "POST",
            canonical_uri: canonical_uri("/"),
            query: h(&[
                ("RegionId", "cn-shanghai"),
                (
                    "ImageId",
                    "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
                ),
            ]),
            signed_headers: signed_headers_of(&headers),
            headers,
            payload_hash: sha256_hex(b""),
        }
    }

    /// Official vector #1 (FC "签名机制" page), every intermediate value.
    #[test]
    fn official_vector_1() {
        let r = ecs_request("2023-10-26T10:22:32Z", "3156853299f313e23d1673dc12e1703d");
        assert_eq!(r.payload_hash, EMPTY);
        assert_eq!(
            canonical_query(&r.query),
            "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
        );
        assert_eq!(
            r.signed_headers.join(";"),
            "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
        );
        assert_eq!(
            r.canonical_request(),
            "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\nhost:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\nx-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-acs-date:2023-10-26T10:22:32Z\nx-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\nx-acs-version:2014-05-26\n\nhost;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            r.string_to_sign(),
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            r.signature("YourAccessKeySecret"),
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
        assert_eq!(
            r.authorization("YourAccessKeyId", "YourAccessKeySecret"),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    /// Official vector #2 (ROA signature page): same request, other date and nonce.
    #[test]
    fn official_vector_2() {
        let r = ecs_request("2023-10-26T09:01:01Z", "d410180a5abf7fe235dd9b74aca91fc0");
        assert_eq!(
            sha256_hex(r.canonical_request().as_bytes()),
            "29622f5feb1e9fcaaa2e276a72889c975f7b16f00e02be1ca34965b18cd85015"
        );
        assert_eq!(
            r.signature("YourAccessKeySecret"),
            "e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
        );
    }

    fn fc_headers(action: &str, extra: &[(&str, &str)], payload: &str) -> Vec<(String, String)> {
        let mut v = h(&[
            ("host", "fcv3.cn-hangzhou.aliyuncs.com"),
            ("x-acs-action", action),
            ("x-acs-version", "2023-03-30"),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-content-sha256", payload),
            ("accept", "application/json"),
        ]);
        v.extend(h(extra));
        v
    }

    /// FC path with a JSON body (derived vector A of the reference).
    #[test]
    fn fc_json_body_vector() {
        let body = br#"{"functionName":"ws-alice-001","handler":"index.handler","runtime":"custom-container"}"#;
        let hash = sha256_hex(body);
        assert_eq!(
            hash,
            "6d607522ddbd09296102c6efba3e965aa575fad9c2029baf17f084e7ae036cc3"
        );
        let headers = fc_headers(
            "CreateFunction",
            &[("content-type", "application/json; charset=utf-8")],
            &hash,
        );
        let r = Request {
            method: "POST",
            canonical_uri: canonical_uri("/2023-03-30/functions"),
            query: vec![],
            signed_headers: signed_headers_of(&headers),
            headers,
            payload_hash: hash,
        };
        assert_eq!(
            r.signed_headers.join(";"),
            "content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
        );
        assert_eq!(
            sha256_hex(r.canonical_request().as_bytes()),
            "026e470e3a071f501afd9488434806c69c3a0e24401191e88e0bf37878d3daad"
        );
        assert_eq!(
            r.signature("YourAccessKeySecret"),
            "0c334bf0e9d4247b21515b181c047069bfde267dad488ca071906943b03bb738"
        );
    }

    /// FC path with a query string and no body (derived vector B of the reference).
    #[test]
    fn fc_query_vector() {
        let headers = fc_headers("GetProvisionConfig", &[], EMPTY);
        let r = Request {
            method: "GET",
            canonical_uri: canonical_uri("/2023-03-30/functions/ws-alice-001/provision-config"),
            query: h(&[("qualifier", "LATEST")]),
            signed_headers: signed_headers_of(&headers),
            headers,
            payload_hash: EMPTY.into(),
        };
        assert_eq!(
            sha256_hex(r.canonical_request().as_bytes()),
            "1302d4e2ba9b2cabe4f481874cbc4c1a92f8b7b7a639b88a9a5ac3ab0d73c85b"
        );
        assert_eq!(
            r.signature("YourAccessKeySecret"),
            "ca1d56eef81af2b9fc6574f4cc2816373f252ad885760cfb70591d8148444032"
        );
    }

    #[test]
    fn encoding_and_parsing() {
        assert_eq!(percent_encode("a b*c~/é"), "a%20b%2Ac~%2F%C3%A9");
        assert_eq!(
            canonical_uri("/2023-03-30/functions/a b"),
            "/2023-03-30/functions/a%20b"
        );
        let auth = "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date,Signature=abc";
        let p = parse_authorization(auth).unwrap();
        assert_eq!(p.access_key_id, "AK");
        assert_eq!(p.signed_headers, vec!["host", "x-acs-date"]);
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=x").is_none());
        assert!(signatures_equal("abc", "abc") && !signatures_equal("abc", "abd"));
    }
}
