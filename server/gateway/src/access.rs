//! Who may reach a workspace: the decision for one request to a workspace host, made the same
//! way by the in-process gateway and by `qingting-shell`.
//!
//! 1. `GET /_qingting/auth?token=…&next=…` redeems a one-time token for this workspace and its
//!    owner and answers with the host-only workspace cookie and a redirect to `next`;
//! 2. any other request needs a valid workspace cookie of the owner; without one the browser
//!    goes to the dashboard (which checks its session and mints a token), and a bad or stale
//!    cookie is cleared on the way so the round trip never loops;
//! 3. WebSocket upgrades must come from the workspace's own origin.

use crate::{
    cookie::{self, CookieClaims, CookieCodec},
    token::{Claims, TokenVerifier},
};
use http::{header, HeaderMap, Method, Uri};

/// The token exchange path on every workspace host.
pub const AUTH_PATH: &str = "/_qingting/auth";

/// The workspace a request is for.
#[derive(Debug, Clone)]
pub struct Target {
    pub workspace_id: i64,
    pub owner_id: i64,
    /// `scheme://host[:port]` of the workspace, as browsers send it in `Origin`.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A token was redeemed: set the cookie and redirect.
    Exchanged {
        set_cookie: String,
        location: String,
        claims: Claims,
    },
    /// Forward to the IDE, on behalf of the session in `claims` (callers that can see the
    /// dashboard's sessions also check that it is still alive).
    Forward { claims: CookieClaims },
    /// No valid credential: go to the dashboard for a token, then back to `next`.
    SignIn { clear_cookie: bool, next: String },
    /// Refused outright.
    Refuse {
        status: u16,
        message: &'static str,
        clear_cookie: bool,
    },
}

#[derive(Debug)]
pub struct Guard {
    tokens: TokenVerifier,
    cookies: CookieCodec,
    secure: bool,
    cookie_ttl_secs: i64,
}

impl Guard {
    pub fn new(
        tokens: TokenVerifier,
        cookies: CookieCodec,
        secure: bool,
        cookie_ttl_secs: i64,
    ) -> Self {
        Self {
            tokens,
            cookies,
            secure,
            cookie_ttl_secs,
        }
    }

    pub fn secure(&self) -> bool {
        self.secure
    }

    pub fn decide(
        &self,
        target: &Target,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        now: i64,
    ) -> Decision {
        if uri.path() == AUTH_PATH {
            return self.exchange(target, uri, now);
        }
        // Every value sent under our name: a stray one (set by the IDE for a sub-path, say) must
        // not hide the good one, or the sign-in round trip would loop.
        let presented: Vec<String> = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|h| cookie::find_all(h, cookie::NAME))
            .collect();
        let next = if method == Method::GET {
            uri.path_and_query()
                .map(|p| safe_path(p.as_str()))
                .unwrap_or("/")
                .to_string()
        } else {
            "/".to_string()
        };
        if presented.is_empty() {
            return Decision::SignIn {
                clear_cookie: false,
                next,
            };
        }
        let valid = presented.iter().find_map(|v| {
            self.cookies
                .decode(v, target.workspace_id, now)
                .ok()
                .filter(|c| c.sub == target.owner_id)
        });
        let Some(claims) = valid else {
            return Decision::SignIn {
                clear_cookie: true,
                next,
            };
        };
        if is_websocket(headers) && !origin_matches(headers, &target.origin) {
            return Decision::Refuse {
                status: 403,
                message: "WebSocket connections are accepted only from the workspace's own pages.",
                clear_cookie: false,
            };
        }
        Decision::Forward { claims }
    }

    fn exchange(&self, target: &Target, uri: &Uri, now: i64) -> Decision {
        let query = uri.query().unwrap_or("");
        let token = query_param(query, "token");
        let next = query_param(query, "next");
        let refuse = Decision::Refuse {
            status: 403,
            message: "This workspace link has expired or was already used. Open the workspace again from your dashboard.",
            clear_cookie: true,
        };
        let Some(token) = token else { return refuse };
        let claims = match self.tokens.redeem(&token, target.workspace_id, now) {
            Ok(c) if c.sub == target.owner_id => c,
            _ => return refuse,
        };
        let value = self.cookies.encode(&CookieClaims {
            ws: target.workspace_id,
            sub: claims.sub,
            sid: claims.sid.clone(),
            exp: now + self.cookie_ttl_secs,
        });
        Decision::Exchanged {
            set_cookie: cookie::set_header(&value, self.cookie_ttl_secs, self.secure),
            location: safe_path(next.as_deref().unwrap_or("/")).to_string(),
            claims,
        }
    }
}

pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn origin_matches(headers: &HeaderMap, origin: &str) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.eq_ignore_ascii_case(origin))
}

/// A `302 Found` to `location` (what the security rules and browsers expect for these hops).
pub fn found<B: Default>(location: &str) -> http::Response<B> {
    let mut res = http::Response::new(B::default());
    *res.status_mut() = http::StatusCode::FOUND;
    if let Ok(v) = http::HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Appends a `Set-Cookie` header.
pub fn append_cookie<B>(res: &mut http::Response<B>, value: &str) {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

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

/// One percent-decoded query parameter.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
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

/// Percent-encodes a query value.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::TokenSigner;
    use http::HeaderValue;

    fn setup() -> (TokenSigner, Guard, Target) {
        let signer = TokenSigner::from_seed(&[3; 32]);
        let guard = Guard::new(
            TokenVerifier::new(&signer.public_key()).unwrap(),
            CookieCodec::new([9; 32]),
            false,
            3600,
        );
        let target = Target {
            workspace_id: 5,
            owner_id: 1,
            origin: "http://alice-demo.localhost:3000".into(),
        };
        (signer, guard, target)
    }

    fn get(
        g: &Guard,
        t: &Target,
        uri: &str,
        cookie: Option<&str>,
        ws_origin: Option<&str>,
    ) -> Decision {
        let mut h = HeaderMap::new();
        if let Some(c) = cookie {
            h.insert(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        if let Some(o) = ws_origin {
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        g.decide(t, &Method::GET, &uri.parse().unwrap(), &h, 1000)
    }

    #[test]
    fn token_exchange_then_cookie_forwarding() {
        let (s, g, t) = setup();
        let tok = s.mint(5, 1, "sid1", 1000, 60);
        let d = get(
            &g,
            &t,
            &format!("{AUTH_PATH}?token={tok}&next=%2Flab%3Fx%3D1"),
            None,
            None,
        );
        let Decision::Exchanged {
            set_cookie,
            location,
            ..
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(location, "/lab?x=1");
        let value = set_cookie.split(';').next().unwrap();
        // The same token never works twice.
        let again = get(&g, &t, &format!("{AUTH_PATH}?token={tok}"), None, None);
        assert!(matches!(again, Decision::Refuse { status: 403, .. }));
        match get(&g, &t, "/lab", Some(&format!("other=1; {value}")), None) {
            Decision::Forward { claims } => {
                assert_eq!((claims.sub, claims.sid.as_str()), (1, "sid1"))
            }
            d => panic!("{d:?}"),
        }
        // WebSocket from our own origin passes; from elsewhere it does not.
        assert!(matches!(
            get(
                &g,
                &t,
                "/ws",
                Some(value),
                Some("http://alice-demo.localhost:3000")
            ),
            Decision::Forward { .. }
        ));
        assert!(matches!(
            get(
                &g,
                &t,
                "/ws",
                Some(value),
                Some("http://evil.localhost:3000")
            ),
            Decision::Refuse { status: 403, .. }
        ));
    }

    #[test]
    fn tokens_for_others_and_open_redirects_are_refused() {
        let (s, g, t) = setup();
        // Minted for another user, or another workspace.
        for tok in [s.mint(5, 2, "x", 1000, 60), s.mint(6, 1, "x", 1000, 60)] {
            let d = get(&g, &t, &format!("{AUTH_PATH}?token={tok}"), None, None);
            assert!(matches!(d, Decision::Refuse { .. }), "{d:?}");
        }
        for next in [
            "%2F%2Fevil.com",
            "%2F%5Cevil.com",
            "https%3Aevil.com",
            "evil",
        ] {
            let tok = s.mint(5, 1, "x", 1000, 60);
            let d = get(
                &g,
                &t,
                &format!("{AUTH_PATH}?token={tok}&next={next}"),
                None,
                None,
            );
            let Decision::Exchanged { location, .. } = d else {
                panic!()
            };
            assert_eq!(location, "/", "{next}");
        }
    }

    #[test]
    fn missing_or_bad_cookie_goes_to_sign_in() {
        let (_, g, t) = setup();
        assert_eq!(
            get(&g, &t, "/tree?a=b", None, None),
            Decision::SignIn {
                clear_cookie: false,
                next: "/tree?a=b".into()
            }
        );
        assert_eq!(
            get(&g, &t, "/", Some("qingting_ws=garbage.x"), None),
            Decision::SignIn {
                clear_cookie: true,
                next: "/".into()
            }
        );
        // A cookie for this workspace signed for another user (its owner changed) is stale.
        let other = CookieCodec::new([9; 32]).encode(&CookieClaims {
            ws: 5,
            sub: 2,
            sid: "s".into(),
            exp: 5000,
        });
        assert!(matches!(
            get(&g, &t, "/", Some(&format!("qingting_ws={other}")), None),
            Decision::SignIn {
                clear_cookie: true,
                ..
            }
        ));
    }

    #[test]
    fn a_stray_cookie_does_not_hide_the_good_one() {
        let (s, g, t) = setup();
        let tok = s.mint(5, 1, "sid1", 1000, 60);
        let Decision::Exchanged { set_cookie, .. } =
            get(&g, &t, &format!("{AUTH_PATH}?token={tok}"), None, None)
        else {
            panic!()
        };
        let good = set_cookie.split(';').next().unwrap();
        let both = format!("qingting_ws=stray; {good}");
        assert!(matches!(
            get(&g, &t, "/", Some(&both), None),
            Decision::Forward { .. }
        ));
    }

    #[test]
    fn query_helpers() {
        assert_eq!(
            query_param("a=1&next=%2Fx%20y", "next").as_deref(),
            Some("/x y")
        );
        assert_eq!(query_param("a=%zz", "a").as_deref(), Some("%zz"));
        assert_eq!(query_param("a=%4", "a").as_deref(), Some("%4"));
        assert_eq!(percent_encode("/lab?x=1"), "/lab%3Fx%3D1");
    }
}
