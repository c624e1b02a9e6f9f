//! Which redirect targets are ours. Every `next=` goes through here (no open redirect:
//! CVE-2019-10255, CVE-2026-33709).

/// Returns `next` if it is a path on this site, else `None` (the gateway's one check).
pub use qingting_gateway::access::safe_next;

/// The landing page after sign-in when no usable `next` was given.
pub const HOME: &str = "/workspaces";

/// `next` if safe, else the home page.
pub fn next_or_home(next: Option<&str>) -> String {
    next.and_then(safe_next).unwrap_or(HOME).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_local_paths() {
        for p in ["/", "/workspaces", "/a/b?c=d&e=/f#g", "/login?next=%2Fx"] {
            assert_eq!(safe_next(p), Some(p), "{p}");
        }
    }

    #[test]
    fn rejects_other_sites() {
        for p in [
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "https:evil.com",
            "https://evil.com",
            "http://localhost:3000/x",
            "javascript:alert(1)",
            "evil.com",
            "",
            "/\tevil",
            "/ /evil.com",
            "/\n/evil.com",
        ] {
            assert_eq!(safe_next(p), None, "{p:?}");
        }
    }

    #[test]
    fn falls_back_home() {
        assert_eq!(next_or_home(Some("//evil.com")), "/workspaces");
        assert_eq!(next_or_home(None), "/workspaces");
        assert_eq!(next_or_home(Some("/x")), "/x");
    }
}
