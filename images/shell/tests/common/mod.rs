//! Shared by the shell's tests: a process killed on drop, a free port, and a stand-in
//! dashboard that answers the used-token endpoint as the server does.
#![allow(dead_code)]

use axum::{body::Bytes, http::StatusCode, routing::post, Router};
use qingting_gateway::token::{MemoryUsedTokens, TokenVerifier, UsedTokens};
use std::{
    process::Child,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The dashboard's used-token endpoint, as the server answers it; counts its calls.
pub async fn stand_in_dashboard(signer_public: [u8; 32]) -> (String, Arc<AtomicUsize>) {
    let verifier = Arc::new(TokenVerifier::new(&signer_public).unwrap());
    let used = Arc::new(MemoryUsedTokens::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new().route(
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
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), calls)
}
