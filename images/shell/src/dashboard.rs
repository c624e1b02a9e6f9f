//! What the shell asks the dashboard, having no database of its own: whether a token was
//! used before (single use across every instance and replica) and whether dashboard sessions
//! are still alive (signing out ends workspace access here too). See the server's
//! `gateway::shell_api`.

use qingting_gateway::{
    live::{SessionKey, SessionProbe},
    token::{BoxFuture, Claims, UsedTokens},
};
use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long a positive session answer is trusted before asking again.
const SESSION_CACHE: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Dashboard {
    consume_url: String,
    alive_url: String,
    http: reqwest::Client,
    recently_alive: Mutex<HashMap<SessionKey, Instant>>,
}

impl Dashboard {
    pub fn new(dashboard_url: &str) -> anyhow::Result<Self> {
        let base = dashboard_url.trim_end_matches('/');
        Ok(Self {
            consume_url: format!("{base}/_qingting/tokens/consume"),
            alive_url: format!("{base}/_qingting/sessions/alive"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            recently_alive: Mutex::default(),
        })
    }

    async fn consume(&self, token: &str) -> Result<bool, String> {
        let res = self
            .http
            .post(&self.consume_url)
            .header("content-type", "text/plain")
            .body(token.to_string())
            .send()
            .await
            .map_err(|e| format!("dashboard unreachable: {e}"))?;
        match res.status().as_u16() {
            204 => Ok(true),
            409 => Ok(false),
            s => Err(format!("dashboard answered {s}")),
        }
    }

    async fn ask_alive(&self, sessions: &[SessionKey]) -> Result<HashSet<SessionKey>, String> {
        let res = self
            .http
            .post(&self.alive_url)
            .json(sessions)
            .send()
            .await
            .map_err(|e| format!("dashboard unreachable: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("dashboard answered {}", res.status()));
        }
        let alive: Vec<SessionKey> = res.json().await.map_err(|e| e.to_string())?;
        Ok(alive.into_iter().collect())
    }

    /// Whether one session is alive, a positive answer trusted for [`SESSION_CACHE`]. When
    /// the dashboard cannot answer, the workspace cookie (short-lived on FC) stands: an outage
    /// of the dashboard does not take every open workspace down with it.
    pub async fn session_alive(&self, key: &SessionKey) -> bool {
        let cached = self
            .recently_alive
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .is_some_and(|t| t.elapsed() < SESSION_CACHE);
        if cached {
            return true;
        }
        let alive = match self.ask_alive(std::slice::from_ref(key)).await {
            Ok(set) => set.contains(key),
            Err(e) => {
                tracing::warn!("cannot check the session with the dashboard: {e}");
                return true;
            }
        };
        let mut cache = self
            .recently_alive
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, t| t.elapsed() < SESSION_CACHE);
        if alive {
            cache.insert(key.clone(), Instant::now());
        }
        alive
    }
}

impl UsedTokens for Dashboard {
    /// The dashboard is sent the whole token: it checks the signature before it records
    /// anything, so nobody without a token can use one up. Without an answer the exchange is
    /// refused (fail closed).
    fn first_use<'a>(
        &'a self,
        token: &'a str,
        _claims: &'a Claims,
        _now: i64,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(self.consume(token))
    }
}

impl SessionProbe for Dashboard {
    fn alive<'a>(
        &'a self,
        sessions: &'a [SessionKey],
    ) -> BoxFuture<'a, Result<HashSet<SessionKey>, String>> {
        Box::pin(self.ask_alive(sessions))
    }
}
