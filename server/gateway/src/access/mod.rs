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

mod http_parts;
mod page;
#[cfg(test)]
mod tests;

use http_parts::origin_matches;
pub use http_parts::{
    append_cookie, found, found_with_cookies, is_websocket, take_form, FormTooLarge, MAX_FORM_BYTES,
};
pub use page::{confirm_page, html_escape, PAGE_HEADERS};

/// The token exchange path on every workspace host.
pub const AUTH_PATH: &str = "/_qingting/auth";

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
    /// The port a preview host (`<port>-<user>-<workspace>`) shows; `None` for the IDE.
    pub port: Option<u16>,
    /// Every signed-in user may open it, not only the owner (a port its owner shared).
    pub open_to_signed_in: bool,
}

impl Target {
    /// Whether user `sub` may open this host.
    pub fn admits(&self, sub: i64) -> bool {
        sub == self.owner_id || (self.open_to_signed_in && sub > 0)
    }

    /// A host that names no workspace: nothing opens it, and it is answered like one that
    /// exists (no existence oracle).
    pub fn nobody(user: &str, workspace: &str, origin: &str) -> Self {
        Self {
            workspace_id: -1,
            owner_id: -1,
            user: user.to_string(),
            workspace: workspace.to_string(),
            origin: origin.to_string(),
            port: None,
            open_to_signed_in: false,
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
                .filter(|c| target.admits(c.sub))
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
        // A page on another workspace host is the same site (a port preview someone shared,
        // say), so the browser sends this host's SameSite=Lax cookie along with its requests.
        // The IDE's own host takes requests that change something only from its own pages.
        let unsafe_method = !matches!(*req.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let foreign = req.headers.contains_key(header::ORIGIN)
            && !origin_matches(req.headers, &target.origin);
        if target.port.is_none() && unsafe_method && foreign {
            return Decision::Refuse {
                status: 403,
                message: "Requests that change something are accepted only from the workspace's own pages.",
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
        let port = target
            .port
            .map(|p| format!("&port={p}"))
            .unwrap_or_default();
        Decision::SignIn {
            set_cookies,
            location: format!(
                "{}/open/{}/{}?next={}&state={state}{port}",
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
            Ok(c) if target.admits(c.sub) => c,
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
