//! The fake refuses what GitHub refuses: wrong client credentials, unknown or reused codes,
//! a different redirect URI, a wrong PKCE verifier, and API calls without a token.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use reqwest::{redirect::Policy, Client};
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://app.test/auth/github/callback";

async fn start() -> (String, Client) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let cfg = qingting_fake_github::FakeGithubConfig {
        client_id: "cid".into(),
        client_secret: "sec".into(),
    };
    tokio::spawn(qingting_fake_github::serve(l, cfg));
    (
        base,
        Client::builder().redirect(Policy::none()).build().unwrap(),
    )
}

/// Consents as (login, id) and returns the code.
async fn code(base: &str, c: &Client, verifier: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let res = c
        .post(format!("{base}/login/oauth/authorize"))
        .form(&[
            ("client_id", "cid"),
            ("redirect_uri", REDIRECT),
            ("state", "st"),
            ("code_challenge", challenge.as_str()),
            ("login", "octocat"),
            ("user_id", "42"),
            ("decision", "authorize"),
        ])
        .send()
        .await
        .unwrap();
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        loc.starts_with(REDIRECT) && loc.contains("state=st"),
        "{loc}"
    );
    loc.split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string()
}

async fn exchange(base: &str, c: &Client, form: &[(&str, &str)]) -> serde_json::Value {
    c.post(format!("{base}/login/oauth/access_token"))
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn token_exchange_checks_everything() {
    let (base, c) = start().await;
    let v = "verifier-0123456789-0123456789-0123456789-abc";

    // The consent page refuses unknown clients and missing PKCE.
    let res = c.get(format!("{base}/login/oauth/authorize?client_id=other&redirect_uri=x&code_challenge=y&code_challenge_method=S256")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = c
        .get(format!(
            "{base}/login/oauth/authorize?client_id=cid&redirect_uri=x"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let k = code(&base, &c, v).await;
    let bad_secret = exchange(
        &base,
        &c,
        &[
            ("client_id", "cid"),
            ("client_secret", "nope"),
            ("code", &k),
            ("redirect_uri", REDIRECT),
            ("code_verifier", v),
        ],
    )
    .await;
    assert_eq!(bad_secret["error"], "incorrect_client_credentials");

    let k = code(&base, &c, v).await;
    let bad_redirect = exchange(
        &base,
        &c,
        &[
            ("client_id", "cid"),
            ("client_secret", "sec"),
            ("code", &k),
            ("redirect_uri", "http://evil.test/cb"),
            ("code_verifier", v),
        ],
    )
    .await;
    assert_eq!(bad_redirect["error"], "redirect_uri_mismatch");

    let k = code(&base, &c, v).await;
    let bad_verifier = exchange(
        &base,
        &c,
        &[
            ("client_id", "cid"),
            ("client_secret", "sec"),
            ("code", &k),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "something-else"),
        ],
    )
    .await;
    assert_eq!(bad_verifier["error"], "invalid_grant");
    let reused = exchange(
        &base,
        &c,
        &[
            ("client_id", "cid"),
            ("client_secret", "sec"),
            ("code", &k),
            ("redirect_uri", REDIRECT),
            ("code_verifier", v),
        ],
    )
    .await;
    assert_eq!(
        reused["error"], "bad_verification_code",
        "codes are single-use"
    );

    let k = code(&base, &c, v).await;
    let ok = exchange(
        &base,
        &c,
        &[
            ("client_id", "cid"),
            ("client_secret", "sec"),
            ("code", &k),
            ("redirect_uri", REDIRECT),
            ("code_verifier", v),
        ],
    )
    .await;
    let token = ok["access_token"].as_str().expect("a token").to_string();

    let res = c.get(format!("{base}/user")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let user: serde_json::Value = c
        .get(format!("{base}/user"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (user["id"].as_i64(), user["login"].as_str()),
        (Some(42), Some("octocat"))
    );

    // Cancelling sends the person back with access_denied.
    let res = c
        .post(format!("{base}/login/oauth/authorize"))
        .form(&[
            ("client_id", "cid"),
            ("redirect_uri", REDIRECT),
            ("state", "st"),
            ("code_challenge", "x"),
            ("login", "a"),
            ("user_id", "1"),
            ("decision", "cancel"),
        ])
        .send()
        .await
        .unwrap();
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .contains("error=access_denied"));
}
