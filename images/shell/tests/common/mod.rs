//! Shared by the shell's tests: a process killed on drop, a free port, waiting for a shell to
//! serve, and a stand-in dashboard that answers the used-token and session endpoints as the
//! server does.
#![allow(dead_code)]

use axum::{body::Bytes, http::StatusCode, routing::post, Json, Router};
use qingting_gateway::token::{MemoryUsedTokens, TokenVerifier, UsedTokens};
use std::{
    collections::HashSet,
    process::Child,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

/// The stand-in IDE every gateway test runs behind.
pub const TEST_IDE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../server/core/tests/fixtures/test_ide.py"
);

pub struct Kill(pub Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port for a shell under test: the server's tests' picker, which keeps clear of the
/// ports the kernel hands to outgoing connections.
pub use qingting_core::testing::free_port;

/// Waits until the shell at `base` answers its health check; fails after 30 s.
pub async fn wait_until_serving(client: &reqwest::Client, base: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while client
        .get(format!("{base}/_qingting/health"))
        .send()
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the shell at {base} never answered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The dashboard as the shell sees it: the used-token and session endpoints, answered as the
/// server answers them.
pub struct StandInDashboard {
    pub url: String,
    /// How many tokens the shell asked to use up.
    pub consumed: Arc<AtomicUsize>,
    /// Session ids that have ended (signed out).
    pub ended: Arc<Mutex<HashSet<String>>>,
}

pub async fn stand_in_dashboard(signer_public: [u8; 32]) -> StandInDashboard {
    let verifier = Arc::new(TokenVerifier::new(&signer_public).unwrap());
    let used = Arc::new(MemoryUsedTokens::default());
    let consumed = Arc::new(AtomicUsize::new(0));
    let ended: Arc<Mutex<HashSet<String>>> = Arc::default();
    let counter = consumed.clone();
    let gone = ended.clone();
    let app = Router::new()
        .route(
            "/_qingting/tokens/consume",
            post(move |body: Bytes| {
                let (verifier, used, counter) = (verifier.clone(), used.clone(), counter.clone());
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let token = String::from_utf8_lossy(&body).to_string();
                    let now = qingting_gateway::now_unix();
                    let Ok(claims) = verifier.verify_any(&token, now) else {
                        return StatusCode::BAD_REQUEST;
                    };
                    match used.first_use(&token, &claims, now).await {
                        Ok(true) => StatusCode::NO_CONTENT,
                        Ok(false) => StatusCode::CONFLICT,
                        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
                    }
                }
            }),
        )
        .route(
            "/_qingting/sessions/alive",
            post(move |Json(asked): Json<Vec<(String, i64)>>| {
                let gone = gone.clone();
                async move {
                    let gone = gone.lock().unwrap();
                    let alive: Vec<(String, i64)> = asked
                        .into_iter()
                        .filter(|(sid, _)| !gone.contains(sid))
                        .collect();
                    Json(alive)
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    StandInDashboard {
        url: format!("http://{addr}"),
        consumed,
        ended,
    }
}
