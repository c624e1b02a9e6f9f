//! URL pieces every gateway and the dashboard share: which redirect targets are ours, one
//! query parameter, and percent-encoding a path into a query value.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Returns `next` if it is a path on this site, else `None`. The one check every `next=` and
/// redirect target goes through (no open redirect: CVE-2019-10255, CVE-2026-33709).
///
/// Accepted: an absolute path (`/x?y#z`). Rejected: anything with a scheme or authority
/// (`https:evil.com`, `//evil.com`, `///evil.com`), backslashes (browsers read `/\evil.com`
/// as `//evil.com`), control characters and whitespace, which some parsers strip.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace())
        && next.len() <= 2048;
    ok.then_some(next)
}

/// `p` when it is a path on this host, else `/`.
pub fn safe_path(p: &str) -> &str {
    safe_next(p).unwrap_or("/")
}

/// One decoded parameter of a query string or urlencoded form (`+` is a space; a malformed
/// escape is kept as it is).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// What stays readable in an encoded path: letters, digits and `-._~/`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Percent-encodes a path (or any text) as a query value.
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_helpers() {
        assert_eq!(
            query_param("a=1&next=%2Fx%20y", "next").as_deref(),
            Some("/x y")
        );
        assert_eq!(query_param("a=%zz", "a").as_deref(), Some("%zz"));
        assert_eq!(query_param("a=%4", "a").as_deref(), Some("%4"));
        assert_eq!(query_param("a=1+2", "a").as_deref(), Some("1 2"));
        assert_eq!(query_param("a=1", "b"), None);
        assert_eq!(percent_encode("/lab?x=1"), "/lab%3Fx%3D1");
        assert_eq!(percent_encode("/a b&c"), "/a%20b%26c");
        assert_eq!(
            query_param(&format!("n={}", percent_encode("/x?y=1&z")), "n").as_deref(),
            Some("/x?y=1&z")
        );
    }

    #[test]
    fn only_local_paths_are_safe() {
        for p in ["/", "/workspaces", "/a/b?c=d&e=/f#g"] {
            assert_eq!(safe_next(p), Some(p), "{p}");
        }
        for p in [
            "//evil.com",
            "/\\evil.com",
            "https:evil.com",
            "evil",
            "",
            "/\tevil",
        ] {
            assert_eq!(safe_next(p), None, "{p:?}");
        }
        assert_eq!(safe_path("//evil.com"), "/");
    }
}
