//! Who may reach a workspace: the decision for one request to a workspace host, made the same
//! way by the in-process gateway and by `qingting-shell`.
//!
//! 1. `GET /_qingting/auth?token=…&next=…` redeems a one-time token for this workspace and its
//!    owner and answers with the host-only workspace cookie and a redirect to `next`. The
//!    token must come from this browser's own round trip (its state cookie) or from the
//!    dashboard's pages (`Referer`); otherwise the person is asked first (a link someone else
//!    handed over would sign them in to that person's workspace), and their answer comes back
//!    as a same-origin `POST` of the same form;
//! 2. any other request needs a valid workspace cookie of the owner; without one the browser
//!    goes to the dashboard (which checks its session and mints a token), and a bad or stale
//!    cookie is cleared on the way so the round trip never loops;
//! 3. WebSocket upgrades must come from the workspace's own origin.
//!
//! A host that names no workspace is decided as a workspace nobody can open, so strangers get
//! the same answers for made-up and real names.

use crate::{
    cookie::{self, CookieClaims, CookieCodec},
    token::{self, Claims, TokenVerifier, UsedTokens},
    url::{percent_encode, query_param, safe_path},
};
use http::{header, HeaderMap, Method, Uri};
use std::sync::Arc;

/// The token exchange path on every workspace host.
pub const AUTH_PATH: &str = "/_qingting/auth";
/// The largest token exchange form a gateway reads.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// The workspace a request is for.
#[derive(Debug, Clone)]
pub struct Target {
    pub workspace_id: i64,
    pub owner_id: i64,
    /// The owner's name and the workspace's, as the host names them.
    pub user: String,
    pub workspace: String,
    /// `scheme://host[:port]` of the workspace, as browsers send it in `Origin`.
    pub origin: String,
}

impl Target {
    /// A host that names no workspace: nothing opens it, and it is answered like one that
    /// exists (no existence oracle).
    pub fn nobody(user: &str, workspace: &str, origin: &str) -> Self {
        Self {
            workspace_id: -1,
            owner_id: -1,
            user: user.to_string(),
            workspace: workspace.to_string(),
            origin: origin.to_string(),
        }
    }
}

/// One request, as far as the decision needs it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    /// The urlencoded body of a `POST` to [`AUTH_PATH`] (see [`wants_form`]).
    pub form: Option<&'a str>,
}

/// Whether the decision needs the request's body: a `POST` to the token exchange.
pub fn wants_form(method: &Method, uri: &Uri) -> bool {
    method == Method::POST && uri.path() == AUTH_PATH
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A token was redeemed: set the cookies and redirect.
    Exchanged {
        set_cookies: Vec<String>,
        location: String,
        claims: Claims,
    },
    /// A valid token that did not come from this browser's round trip nor from the
    /// dashboard: ask first (see [`confirm_page`]).
    Confirm { token: String, next: String },
    /// Forward to the IDE, on behalf of the session in `claims` (callers that can see the
    /// dashboard's sessions also check that it is still alive).
    Forward { claims: CookieClaims },
    /// No valid credential: go to the dashboard (`location`) for a token, then back.
    SignIn {
        set_cookies: Vec<String>,
        location: String,
    },
    /// Refused outright.
    Refuse {
        status: u16,
        message: &'static str,
        clear_cookie: bool,
    },
}

const EXPIRED: &str =
    "This workspace link has expired or was already used. Open the workspace again from your dashboard.";

#[derive(Debug)]
pub struct Guard {
    tokens: TokenVerifier,
    used: Arc<dyn UsedTokens>,
    cookies: CookieCodec,
    secure: bool,
    cookie_ttl_secs: i64,
    /// `scheme://host[:port]` of the dashboard (no trailing slash).
    dashboard: String,
}

impl Guard {
    pub fn new(
        tokens: TokenVerifier,
        used: Arc<dyn UsedTokens>,
        cookies: CookieCodec,
        secure: bool,
        cookie_ttl_secs: i64,
        dashboard: &str,
    ) -> Self {
        Self {
            tokens,
            used,
            cookies,
            secure,
            cookie_ttl_secs,
            dashboard: dashboard.trim_end_matches('/').to_string(),
        }
    }

    pub fn secure(&self) -> bool {
        self.secure
    }

    pub fn dashboard(&self) -> &str {
        &self.dashboard
    }

    /// The tokens this guard verifies (for a dashboard that consumes them on another's behalf).
    pub fn tokens(&self) -> &TokenVerifier {
        &self.tokens
    }

    /// Records a token's nonce as used (for a dashboard that consumes on another's behalf).
    pub async fn first_use(&self, token: &str, claims: &Claims, now: i64) -> Result<bool, String> {
        self.used.first_use(token, claims, now).await
    }

    pub async fn decide(&self, target: &Target, req: Incoming<'_>, now: i64) -> Decision {
        if req.uri.path() == AUTH_PATH {
            return self.exchange(target, req, now).await;
        }
        // Every value sent under our name: a stray one (set by the IDE for a sub-path, say) must
        // not hide the good one, or the sign-in round trip would loop.
        let presented = self.presented(req.headers, cookie::name(self.secure));
        let next = if req.method == Method::GET {
            req.uri
                .path_and_query()
                .map(|p| safe_path(p.as_str()))
                .unwrap_or("/")
                .to_string()
        } else {
            "/".to_string()
        };
        let valid = presented.iter().find_map(|v| {
            self.cookies
                .decode(v, target.workspace_id, now)
                .ok()
                .filter(|c| c.sub == target.owner_id)
        });
        let Some(claims) = valid else {
            return self.sign_in(target, req.headers, &next, !presented.is_empty());
        };
        if is_websocket(req.headers) && !origin_matches(req.headers, &target.origin) {
            return Decision::Refuse {
                status: 403,
                message: "WebSocket connections are accepted only from the workspace's own pages.",
                clear_cookie: false,
            };
        }
        Decision::Forward { claims }
    }

    fn presented(&self, headers: &HeaderMap, name: &str) -> Vec<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|h| cookie::find_all(h, name).collect::<Vec<_>>())
            .collect()
    }

    /// To the dashboard for a token (and then to `next`), with a state cookie that ties the
    /// token to this browser; `clear` also clears the workspace cookie.
    pub fn sign_in(
        &self,
        target: &Target,
        headers: &HeaderMap,
        next: &str,
        clear: bool,
    ) -> Decision {
        let state = self
            .presented(headers, cookie::state_name(self.secure))
            .into_iter()
            .find(|s| token::is_state(s))
            .unwrap_or_else(token::new_state);
        let mut set_cookies = vec![cookie::set_state_header(&state, self.secure)];
        if clear {
            set_cookies.push(cookie::clear_header(self.secure));
        }
        Decision::SignIn {
            set_cookies,
            location: format!(
                "{}/open/{}/{}?next={}&state={state}",
                self.dashboard,
                target.user,
                target.workspace,
                percent_encode(next)
            ),
        }
    }

    async fn exchange(&self, target: &Target, req: Incoming<'_>, now: i64) -> Decision {
        let refuse = |status, message| Decision::Refuse {
            status,
            message,
            clear_cookie: true,
        };
        let posted = req.method == Method::POST;
        let params = if posted {
            req.form.unwrap_or("")
        } else {
            req.uri.query().unwrap_or("")
        };
        let token = query_param(params, "token").unwrap_or_default();
        let next = safe_path(query_param(params, "next").as_deref().unwrap_or("/")).to_string();
        let claims = match self.tokens.verify(&token, target.workspace_id, now) {
            Ok(c) if c.sub == target.owner_id => c,
            _ => return refuse(403, EXPIRED),
        };
        let vouched = if posted {
            // The answer of the confirmation page, which only this origin serves.
            if !origin_matches(req.headers, &target.origin) {
                return refuse(403, "Cross-site request refused.");
            }
            true
        } else {
            self.sent_by_dashboard(req.headers) || self.state_matches(req.headers, &claims)
        };
        if !vouched {
            return Decision::Confirm { token, next };
        }
        match self.used.first_use(&token, &claims, now).await {
            Ok(true) => {}
            Ok(false) => return refuse(403, EXPIRED),
            Err(e) => {
                tracing::error!("cannot record a used workspace token: {e}");
                return refuse(
                    503,
                    "Signing in to the workspace is not possible right now. Try again in a moment.",
                );
            }
        }
        let value = self.cookies.encode(&CookieClaims {
            ws: target.workspace_id,
            sub: claims.sub,
            sid: claims.sid.clone(),
            exp: now + self.cookie_ttl_secs,
        });
        Decision::Exchanged {
            set_cookies: vec![
                cookie::set_header(&value, self.cookie_ttl_secs, self.secure),
                cookie::clear_state_header(self.secure),
            ],
            location: next,
            claims,
        }
    }

    /// The browser was sent here by a page of the dashboard (browsers send at least the
    /// origin as `Referer` on cross-origin navigations unless a page asks them not to, and
    /// the dashboard does not).
    fn sent_by_dashboard(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .map(origin_of)
            .is_some_and(|o| o.eq_ignore_ascii_case(&self.dashboard))
    }

    fn state_matches(&self, headers: &HeaderMap, claims: &Claims) -> bool {
        let Some(want) = claims.state.as_deref() else {
            return false;
        };
        self.presented(headers, cookie::state_name(self.secure))
            .iter()
            .any(|s| s == want)
    }
}

/// `scheme://host[:port]` of an absolute URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// The page that asks before a handed-over link signs someone in to a workspace. Its button
/// posts the same token back from this origin; it may not be framed (clickjacking).
pub fn confirm_page(target: &Target, token: &str, next: &str) -> String {
    let e = html_escape;
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Open this workspace? · QingTing Studio</title>
<style>body{{font-family:system-ui,sans-serif;background:#f4f6f8;color:#1d2733;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}}
main{{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0002;padding:2rem;max-width:34rem;width:calc(100% - 3rem)}}
button{{background:#0f7b6c;color:#fff;border:0;border-radius:8px;padding:.6rem 1.2rem;font-size:1rem;cursor:pointer}}</style>
</head><body><main><h1>Open workspace <code>{user}/{ws}</code>?</h1>
<p>This link signs you in to the workspace <strong>{ws}</strong> of <strong>{user}</strong>. It did not come from your own QingTing dashboard. If someone sent it to you, do not continue unless you are <strong>{user}</strong>.</p>
<form method="post" action="{path}"><input type="hidden" name="token" value="{token}"><input type="hidden" name="next" value="{next}">
<button type="submit" id="continue-to-workspace">Continue to {user}/{ws}</button></form></main></body></html>"#,
        user = e(&target.user),
        ws = e(&target.workspace),
        path = AUTH_PATH,
        token = e(token),
        next = e(next),
    )
}

/// Headers every page the gateway renders itself carries: never framed, never cached.
pub const PAGE_HEADERS: [(&str, &str); 3] = [
    ("content-security-policy", "frame-ancestors 'none'"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
];

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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

/// A `302 Found` to `location` setting `cookies` (the answer to an exchange or a sign-in).
pub fn found_with_cookies<B: Default>(location: &str, cookies: &[String]) -> http::Response<B> {
    let mut res = found(location);
    for c in cookies {
        append_cookie(&mut res, c);
    }
    res
}

/// Appends a `Set-Cookie` header.
pub fn append_cookie<B>(res: &mut http::Response<B>, value: &str) {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{MemoryUsedTokens, TokenSigner};
    use http::HeaderValue;

    const DASHBOARD: &str = "http://localhost:3000";

    fn setup() -> (TokenSigner, Guard, Target) {
        let signer = TokenSigner::from_seed(&[3; 32]);
        let guard = Guard::new(
            TokenVerifier::new(&signer.public_key()).unwrap(),
            Arc::new(MemoryUsedTokens::default()),
            CookieCodec::new([9; 32]),
            false,
            3600,
            DASHBOARD,
        );
        let target = Target {
            workspace_id: 5,
            owner_id: 1,
            user: "alice".into(),
            workspace: "demo".into(),
            origin: "http://alice-demo.localhost:3000".into(),
        };
        (signer, guard, target)
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    async fn req(g: &Guard, t: &Target, method: Method, uri: &str, h: &HeaderMap) -> Decision {
        let uri: Uri = uri.parse().unwrap();
        let form = uri.query().map(str::to_string);
        let incoming = Incoming {
            method: &method,
            uri: &uri,
            headers: h,
            form: (method == Method::POST).then_some(form.as_deref().unwrap_or("")),
        };
        g.decide(t, incoming, 1000).await
    }

    async fn get(g: &Guard, t: &Target, uri: &str, h: &HeaderMap) -> Decision {
        req(g, t, Method::GET, uri, h).await
    }

    fn from_dashboard() -> HeaderMap {
        headers(&[(header::REFERER, "http://localhost:3000/workspaces")])
    }

    fn cookie_of(set_cookies: &[String]) -> String {
        set_cookies[0].split(';').next().unwrap().to_string()
    }

    #[tokio::test]
    async fn token_exchange_then_cookie_forwarding() {
        let (s, g, t) = setup();
        let tok = s.mint(5, 1, "sid1", None, 1000, 60);
        let d = get(
            &g,
            &t,
            &format!("{AUTH_PATH}?token={tok}&next=%2Flab%3Fx%3D1"),
            &from_dashboard(),
        )
        .await;
        let Decision::Exchanged {
            set_cookies,
            location,
            ..
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(location, "/lab?x=1");
        let value = cookie_of(&set_cookies);
        // The same token never works twice.
        let again = get(
            &g,
            &t,
            &format!("{AUTH_PATH}?token={tok}"),
            &from_dashboard(),
        )
        .await;
        assert!(matches!(again, Decision::Refuse { status: 403, .. }));
        let h = headers(&[(header::COOKIE, &format!("other=1; {value}"))]);
        match get(&g, &t, "/lab", &h).await {
            Decision::Forward { claims } => {
                assert_eq!((claims.sub, claims.sid.as_str()), (1, "sid1"))
            }
            d => panic!("{d:?}"),
        }
        // WebSocket from our own origin passes; from elsewhere it does not.
        let ws = |origin: &str| {
            headers(&[
                (header::COOKIE, &value),
                (header::UPGRADE, "websocket"),
                (header::ORIGIN, origin),
            ])
        };
        assert!(matches!(
            get(&g, &t, "/ws", &ws("http://alice-demo.localhost:3000")).await,
            Decision::Forward { .. }
        ));
        assert!(matches!(
            get(&g, &t, "/ws", &ws("http://evil.localhost:3000")).await,
            Decision::Refuse { status: 403, .. }
        ));
    }

    #[tokio::test]
    async fn a_handed_over_link_asks_first() {
        let (s, g, t) = setup();
        let tok = s.mint(5, 1, "sid1", None, 1000, 60);
        let url = format!("{AUTH_PATH}?token={tok}&next=%2Flab");
        // No Referer, or someone else's page: ask, and do not use the token up.
        for h in [
            HeaderMap::new(),
            headers(&[(header::REFERER, "https://evil.example/x")]),
            headers(&[(header::REFERER, "http://localhost:3000.evil.example/")]),
        ] {
            assert_eq!(
                get(&g, &t, &url, &h).await,
                Decision::Confirm {
                    token: tok.clone(),
                    next: "/lab".into()
                }
            );
        }
        let body = format!("{AUTH_PATH}?token={tok}&next=%2Flab");
        // The answer must come from the workspace's own page.
        let cross = headers(&[(header::ORIGIN, "https://evil.example")]);
        assert!(matches!(
            req(&g, &t, Method::POST, &body, &cross).await,
            Decision::Refuse { status: 403, .. }
        ));
        let own = headers(&[(header::ORIGIN, "http://alice-demo.localhost:3000")]);
        assert!(matches!(
            req(&g, &t, Method::POST, &body, &own).await,
            Decision::Exchanged { .. }
        ));
        let page = confirm_page(&t, "a\"b", "/x");
        assert!(page.contains("a&quot;b") && page.contains("alice/demo"));
    }

    #[tokio::test]
    async fn the_browsers_own_round_trip_needs_no_question() {
        let (s, g, t) = setup();
        let Decision::SignIn {
            set_cookies,
            location,
        } = get(&g, &t, "/tree?a=b", &HeaderMap::new()).await
        else {
            panic!()
        };
        let state_cookie = cookie_of(&set_cookies);
        let state = state_cookie.split_once('=').unwrap().1.to_string();
        assert_eq!(
            location,
            format!("{DASHBOARD}/open/alice/demo?next=/tree%3Fa%3Db&state={state}")
        );
        // The dashboard mints with that state; the same browser comes back with its cookie.
        let tok = s.mint(5, 1, "sid1", Some(&state), 1000, 60);
        let h = headers(&[(header::COOKIE, &state_cookie)]);
        let d = get(&g, &t, &format!("{AUTH_PATH}?token={tok}"), &h).await;
        let Decision::Exchanged { set_cookies, .. } = d else {
            panic!("{d:?}")
        };
        assert!(
            set_cookies[1].starts_with("qingting_ws_state=;")
                && set_cookies[1].contains("Max-Age=0")
        );
        // Another browser (another state) is asked.
        let tok = s.mint(5, 1, "sid1", Some(&token::new_state()), 1000, 60);
        assert!(matches!(
            get(&g, &t, &format!("{AUTH_PATH}?token={tok}"), &h).await,
            Decision::Confirm { .. }
        ));
        // A second request while the first round trip is under way keeps the same state.
        let Decision::SignIn { location, .. } = get(&g, &t, "/", &h).await else {
            panic!()
        };
        assert!(location.ends_with(&format!("state={state}")));
    }

    #[tokio::test]
    async fn tokens_for_others_and_open_redirects_are_refused() {
        let (s, g, t) = setup();
        // Minted for another user, or another workspace.
        for tok in [
            s.mint(5, 2, "x", None, 1000, 60),
            s.mint(6, 1, "x", None, 1000, 60),
        ] {
            let d = get(
                &g,
                &t,
                &format!("{AUTH_PATH}?token={tok}"),
                &from_dashboard(),
            )
            .await;
            assert!(matches!(d, Decision::Refuse { .. }), "{d:?}");
        }
        for next in [
            "%2F%2Fevil.com",
            "%2F%5Cevil.com",
            "https%3Aevil.com",
            "evil",
        ] {
            let tok = s.mint(5, 1, "x", None, 1000, 60);
            let d = get(
                &g,
                &t,
                &format!("{AUTH_PATH}?token={tok}&next={next}"),
                &from_dashboard(),
            )
            .await;
            let Decision::Exchanged { location, .. } = d else {
                panic!()
            };
            assert_eq!(location, "/", "{next}");
        }
    }

    #[tokio::test]
    async fn missing_or_bad_cookie_goes_to_sign_in() {
        let (_, g, t) = setup();
        let d = get(&g, &t, "/tree?a=b", &HeaderMap::new()).await;
        let Decision::SignIn {
            set_cookies,
            location,
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(set_cookies.len(), 1, "only the state cookie");
        assert!(
            location.starts_with("http://localhost:3000/open/alice/demo?next=/tree%3Fa%3Db&state=")
        );
        let h = headers(&[(header::COOKIE, "qingting_ws=garbage.x")]);
        let Decision::SignIn { set_cookies, .. } = get(&g, &t, "/", &h).await else {
            panic!()
        };
        assert!(set_cookies[1].starts_with("qingting_ws=;"), "cleared");
        // A cookie for this workspace signed for another user (its owner changed) is stale.
        let other = CookieCodec::new([9; 32]).encode(&CookieClaims {
            ws: 5,
            sub: 2,
            sid: "s".into(),
            exp: 5000,
        });
        let h = headers(&[(header::COOKIE, &format!("qingting_ws={other}"))]);
        assert!(matches!(
            get(&g, &t, "/", &h).await,
            Decision::SignIn { ref set_cookies, .. } if set_cookies.len() == 2
        ));
    }

    #[tokio::test]
    async fn made_up_and_real_workspaces_answer_alike() {
        let (s, g, real) = setup();
        let nobody = Target::nobody("alice", "demo", &real.origin);
        let tok = s.mint(5, 1, "x", None, 1000, 60);
        let state = headers(&[(
            header::COOKIE,
            "qingting_ws_state=0123456789abcdef0123456789abcdef",
        )]);
        for (uri, method) in [
            ("/tree?a=b".to_string(), Method::GET),
            ("/_qingting/start".to_string(), Method::POST),
            (AUTH_PATH.to_string(), Method::GET),
            (format!("{AUTH_PATH}?token=junk"), Method::GET),
            (format!("{AUTH_PATH}?token={tok}x"), Method::GET),
        ] {
            let a = req(&g, &real, method.clone(), &uri, &state).await;
            let b = req(&g, &nobody, method, &uri, &state).await;
            assert_eq!(a, b, "{uri}");
        }
    }

    #[tokio::test]
    async fn a_stray_cookie_does_not_hide_the_good_one() {
        let (s, g, t) = setup();
        let tok = s.mint(5, 1, "sid1", None, 1000, 60);
        let Decision::Exchanged { set_cookies, .. } = get(
            &g,
            &t,
            &format!("{AUTH_PATH}?token={tok}"),
            &from_dashboard(),
        )
        .await
        else {
            panic!()
        };
        let good = cookie_of(&set_cookies);
        let both = headers(&[(header::COOKIE, &format!("qingting_ws=stray; {good}"))]);
        assert!(matches!(
            get(&g, &t, "/", &both).await,
            Decision::Forward { .. }
        ));
    }

    #[test]
    fn origins_of_urls() {
        assert_eq!(
            origin_of("https://a.example:8443/x/y"),
            "https://a.example:8443"
        );
        assert_eq!(origin_of("https://a.example"), "https://a.example");
    }
}
