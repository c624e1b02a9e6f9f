//! Which redirect targets are ours. Every `next=` goes through here (no open redirect:
//! CVE-2019-10255, CVE-2026-33709).

/// Returns `next` if it is a path on this site, else `None` (the gateway's one check).
pub use qingting_gateway::url::safe_next;

/// The landing page after sign-in when no usable `next` was given.
pub const HOME: &str = "/workspaces";

/// First path segments of routes that act when the browser arrives (OAuth starts, the API,
/// sign-out, the gateway's token exchange). Landing there after sign-in would turn a crafted
/// "please log in" link into "log in and do X", so `next` never points at them.
const SIDE_EFFECTING: [&str; 4] = ["auth", "api", "logout", "_qingting"];

/// `next` if safe, else the home page.
pub fn next_or_home(next: Option<&str>) -> String {
    next.and_then(safe_next)
        .filter(|n| !side_effecting(n))
        .unwrap_or(HOME)
        .to_string()
}

/// Whether the path of `next` reaches a side-effecting route, however it is spelled.
fn side_effecting(next: &str) -> bool {
    let path = next.split(['?', '#']).next().unwrap_or_default();
    // Decoded and lower-cased so `/%61pi/` or `/API/` cannot slip past the prefix check.
    let path = percent_decode(path).to_ascii_lowercase();
    let mut segments = path.split('/').skip(1);
    let first = segments.next().unwrap_or_default();
    // Browsers resolve `.`/`..` before requesting (`/x/../api/` is `/api/`); no page of ours
    // needs them, so any dot segment is refused rather than resolved here.
    SIDE_EFFECTING.contains(&first) || path.split('/').any(|s| s == "." || s == "..")
}

/// `%XX` escapes decoded; anything malformed is kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

    #[test]
    fn refuses_side_effecting_routes() {
        for p in [
            "/auth/github/start?mode=delete",
            "/auth/github/callback?code=x&state=y",
            "/api/settings/delete-account",
            "/api/logout",
            "/logout",
            "/_qingting/auth?token=x",
            "/API/logout",
            "/%61pi/logout",
            "/%2e%2e/api/logout",
            "/settings/../auth/github/start?mode=link",
            "/settings/%2E%2E/api/logout",
            "/x/./y",
            "/auth",
            "/auth?mode=delete",
            "/api#x",
        ] {
            assert_eq!(next_or_home(Some(p)), HOME, "{p:?}");
        }
    }

    #[test]
    fn keeps_pages_that_only_look_alike() {
        for p in [
            "/settings/profile",
            "/open/alice/ws1?next=%2Fapi%2Fx",
            "/workspaces?tab=api",
            "/authors",
            "/apis/x",
            "/settings/delete-account",
            "/a%2",
            "/%zz",
        ] {
            assert_eq!(next_or_home(Some(p)), p, "{p:?}");
        }
    }
}
