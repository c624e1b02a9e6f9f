//! The access decision, case by case.

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
        port: None,
        open_to_signed_in: false,
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
        set_cookies[1].starts_with("qingting_ws_state=;") && set_cookies[1].contains("Max-Age=0")
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
    assert!(location.starts_with("http://localhost:3000/open/alice/demo?next=/tree%3Fa%3Db&state="));
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

#[tokio::test]
async fn a_shared_port_admits_other_signed_in_users_and_nothing_else_does() {
    let (s, g, mut t) = setup();
    t.port = Some(8000);
    // Bob (user 2) redeems a token the dashboard minted for him.
    let tok = s.mint(5, 2, "sid2", None, 1000, 60);
    let exchange = format!("{AUTH_PATH}?token={tok}&next=%2F");
    let d = get(&g, &t, &exchange, &from_dashboard()).await;
    assert!(
        matches!(d, Decision::Refuse { status: 403, .. }),
        "private: {d:?}"
    );

    t.open_to_signed_in = true;
    let tok = s.mint(5, 2, "sid2", None, 1000, 60);
    let exchange = format!("{AUTH_PATH}?token={tok}&next=%2F");
    let Decision::Exchanged { set_cookies, .. } = get(&g, &t, &exchange, &from_dashboard()).await
    else {
        panic!("shared: the exchange should succeed");
    };
    let bobs = headers(&[(header::COOKIE, &cookie_of(&set_cookies))]);
    let d = get(&g, &t, "/", &bobs).await;
    assert!(
        matches!(d, Decision::Forward { ref claims } if claims.sub == 2),
        "{d:?}"
    );

    // The same cookie on the IDE's host (or a port not shared): sent to sign in.
    t.open_to_signed_in = false;
    t.port = None;
    let d = get(&g, &t, "/", &bobs).await;
    assert!(matches!(d, Decision::SignIn { .. }), "{d:?}");
    // The sign-in round trip of a preview host carries its port.
    t.port = Some(8000);
    let Decision::SignIn { location, .. } = get(&g, &t, "/x", &HeaderMap::new()).await else {
        panic!("sign in");
    };
    assert!(location.ends_with("&port=8000"), "{location}");
}

#[tokio::test]
async fn the_ides_host_takes_changes_only_from_its_own_pages() {
    let (s, g, t) = setup();
    let tok = s.mint(5, 1, "sid1", None, 1000, 60);
    let Decision::Exchanged { set_cookies, .. } = get(
        &g,
        &t,
        &format!("{AUTH_PATH}?token={tok}&next=%2F"),
        &from_dashboard(),
    )
    .await
    else {
        panic!("exchange");
    };
    let cookie = cookie_of(&set_cookies);
    let with = |origin: Option<&str>| {
        let mut h = headers(&[(header::COOKIE, &cookie)]);
        if let Some(o) = origin {
            h.append(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    };
    // A shared port's page of another user is the same site: its POST carries the cookie.
    let evil = with(Some("http://8000-mallory-x.localhost:3000"));
    let d = req(&g, &t, Method::POST, "/api/contents", &evil).await;
    assert!(matches!(d, Decision::Refuse { status: 403, .. }), "{d:?}");
    // Reads pass (the page cannot see the answer), and so do the IDE's own pages and
    // clients that send no Origin.
    assert!(matches!(
        get(&g, &t, "/x", &evil).await,
        Decision::Forward { .. }
    ));
    let own = with(Some("http://alice-demo.localhost:3000"));
    assert!(matches!(
        req(&g, &t, Method::POST, "/api/contents", &own).await,
        Decision::Forward { .. }
    ));
    assert!(matches!(
        req(&g, &t, Method::PUT, "/f", &with(None)).await,
        Decision::Forward { .. }
    ));
    // A preview host is the app's own business.
    let mut preview = t.clone();
    preview.port = Some(8000);
    preview.origin = "http://8000-alice-demo.localhost:3000".into();
    let tok = s.mint(5, 1, "sid1", None, 1000, 60);
    let Decision::Exchanged { set_cookies, .. } = get(
        &g,
        &preview,
        &format!("{AUTH_PATH}?token={tok}&next=%2F"),
        &from_dashboard(),
    )
    .await
    else {
        panic!("exchange");
    };
    let mut h = headers(&[(header::COOKIE, &cookie_of(&set_cookies))]);
    h.append(
        header::ORIGIN,
        HeaderValue::from_static("http://elsewhere.example"),
    );
    assert!(matches!(
        req(&g, &preview, Method::POST, "/api", &h).await,
        Decision::Forward { .. }
    ));
}
