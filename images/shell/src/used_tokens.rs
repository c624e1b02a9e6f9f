//! Single use of workspace tokens across instances: the shell has no database, so it asks the
//! dashboard (`POST /_qingting/tokens/consume`), which keeps used nonces where every replica
//! and every instance sees them. Without an answer the exchange is refused (fail closed).

use qingting_gateway::token::{BoxFuture, Claims, UsedTokens};
use std::time::Duration;

#[derive(Debug)]
pub struct DashboardUsedTokens {
    url: String,
    http: reqwest::Client,
}

impl DashboardUsedTokens {
    pub fn new(dashboard_url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            url: format!(
                "{}/_qingting/tokens/consume",
                dashboard_url.trim_end_matches('/')
            ),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }
}

impl DashboardUsedTokens {
    async fn consume(&self, token: &str) -> Result<bool, String> {
        let res = self
            .http
            .post(&self.url)
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
}

impl UsedTokens for DashboardUsedTokens {
    /// The dashboard is sent the whole token: it checks the signature before it records
    /// anything, so nobody without a token can use one up.
    fn first_use<'a>(
        &'a self,
        token: &'a str,
        _claims: &'a Claims,
        _now: i64,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(self.consume(token))
    }
}
