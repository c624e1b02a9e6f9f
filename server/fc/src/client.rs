//! The FC 3.0 client: typed operations over signed HTTPS requests, with timeouts on every
//! call and retries (fresh date, nonce and signature each time) for throttling, 5xx and
//! transport errors.

use crate::{
    error::{self, FcError},
    model::*,
    signer,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

pub const API_VERSION: &str = "2023-03-30";

#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, never the token.
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and (for STS)
    /// `ALIBABA_CLOUD_SECURITY_TOKEN`.
    pub fn from_env() -> Option<Self> {
        let id = std::env::var("ALIBABA_CLOUD_ACCESS_KEY_ID")
            .ok()
            .filter(|s| !s.is_empty())?;
        let secret = std::env::var("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
            .ok()
            .filter(|s| !s.is_empty())?;
        Some(Self {
            access_key_id: id,
            access_key_secret: secret,
            security_token: std::env::var("ALIBABA_CLOUD_SECURITY_TOKEN")
                .ok()
                .filter(|s| !s.is_empty()),
        })
    }
}

/// `https://<account>.<region>.fc.aliyuncs.com`, FC 3.0's endpoint for an account and region.
pub fn endpoint_for(region: &str, account_id: &str) -> String {
    format!("https://{account_id}.{region}.fc.aliyuncs.com")
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Per attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FcClient {
    http: reqwest::Client,
    endpoint: String,
    host: String,
    creds: Credentials,
    pub retry: RetryPolicy,
}

/// What one call sends.
struct Call {
    action: &'static str,
    method: reqwest::Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Value>,
}

fn path_segment(s: &str) -> String {
    signer::percent_encode(s)
}

impl FcClient {
    /// `endpoint`: `https://host[:port]` (see [`endpoint_for`]); the simulator's is `http://…`.
    pub fn new(endpoint: &str, creds: Credentials) -> Self {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let host = endpoint
            .split_once("://")
            .map(|(_, h)| h)
            .unwrap_or(&endpoint)
            .to_string();
        Self {
            http: reqwest::Client::builder().build().expect("HTTP client"),
            endpoint,
            host,
            creds,
            retry: RetryPolicy::default(),
        }
    }

    fn call(action: &'static str, method: reqwest::Method, path: String) -> Call {
        Call {
            action,
            method,
            path,
            query: Vec::new(),
            body: None,
        }
    }

    /// Sends `call`, retrying what is worth retrying; `Ok(None)` for an empty answer.
    async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<Option<T>, FcError> {
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 1;
        loop {
            match self.send_once(&call).await {
                Err(e) if e.retryable() && attempt < self.retry.attempts => {
                    tracing::warn!(
                        action = call.action,
                        attempt,
                        "FC call failed, retrying: {e}"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry.max_backoff);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn send_once<T: DeserializeOwned>(&self, call: &Call) -> Result<Option<T>, FcError> {
        let body = call
            .body
            .as_ref()
            .map(|b| b.to_string())
            .unwrap_or_default();
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host.clone()),
            ("x-acs-action".into(), call.action.into()),
            ("x-acs-version".into(), API_VERSION.into()),
            ("x-acs-date".into(), crate::now_iso8601()),
            (
                "x-acs-signature-nonce".into(),
                hex::encode(rand::random::<[u8; 16]>()),
            ),
            (
                "x-acs-content-sha256".into(),
                signer::sha256_hex(body.as_bytes()),
            ),
            ("accept".into(), "application/json".into()),
        ];
        if call.body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        if let Some(t) = &self.creds.security_token {
            headers.push(("x-acs-security-token".into(), t.clone()));
        }
        let signed = signer::signed_headers_of(&headers);
        let req = signer::Request {
            method: call.method.as_str(),
            // Path segments were encoded when the path was built: never encode twice.
            canonical_uri: call.path.clone(),
            query: call.query.clone(),
            headers: headers.clone(),
            signed_headers: signed,
            payload_hash: signer::sha256_hex(body.as_bytes()),
        };
        let auth = req.authorization(&self.creds.access_key_id, &self.creds.access_key_secret);
        let mut url = format!("{}{}", self.endpoint, call.path);
        if !call.query.is_empty() {
            url.push('?');
            url.push_str(&signer::canonical_query(&call.query));
        }
        let mut builder = self
            .http
            .request(call.method.clone(), &url)
            .timeout(self.retry.timeout);
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            builder = builder.header(k, v);
        }
        builder = builder.header("authorization", auth);
        if call.body.is_some() {
            builder = builder.body(body);
        }
        let res = builder
            .send()
            .await
            .map_err(|e| FcError::transport(call.action, e.to_string()))?;
        let status = res.status().as_u16();
        let res_headers: Vec<(String, String)> = res
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| FcError::transport(call.action, e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(error::parse(call.action, status, &res_headers, &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| FcError {
                kind: error::FcErrorKind::Other,
                action: call.action.into(),
                status,
                code: "BadResponse".into(),
                message: format!("unexpected answer: {e}"),
                request_id: None,
            })
    }

    async fn expect<T: DeserializeOwned>(&self, call: Call) -> Result<T, FcError> {
        let action = call.action;
        self.send(call).await?.ok_or_else(|| FcError {
            kind: error::FcErrorKind::Other,
            action: action.into(),
            status: 200,
            code: "EmptyResponse".into(),
            message: "FC answered without a body".into(),
            request_id: None,
        })
    }

    async fn no_content(&self, call: Call) -> Result<(), FcError> {
        self.send::<Value>(call).await.map(|_| ())
    }

    fn with_body(mut c: Call, body: &impl serde::Serialize) -> Call {
        c.body = Some(serde_json::to_value(body).expect("serializable"));
        c
    }

    fn fn_path(name: &str, rest: &str) -> String {
        format!("/{API_VERSION}/functions/{}{rest}", path_segment(name))
    }

    pub async fn create_function(&self, input: &CreateFunctionInput) -> Result<Function, FcError> {
        let c = Self::call(
            "CreateFunction",
            reqwest::Method::POST,
            format!("/{API_VERSION}/functions"),
        );
        self.expect(Self::with_body(c, input)).await
    }

    pub async fn get_function(&self, name: &str) -> Result<Function, FcError> {
        self.expect(Self::call(
            "GetFunction",
            reqwest::Method::GET,
            Self::fn_path(name, ""),
        ))
        .await
    }

    pub async fn update_function(
        &self,
        name: &str,
        input: &UpdateFunctionInput,
    ) -> Result<Function, FcError> {
        let c = Self::call(
            "UpdateFunction",
            reqwest::Method::PUT,
            Self::fn_path(name, ""),
        );
        self.expect(Self::with_body(c, input)).await
    }

    pub async fn delete_function(&self, name: &str) -> Result<(), FcError> {
        self.no_content(Self::call(
            "DeleteFunction",
            reqwest::Method::DELETE,
            Self::fn_path(name, ""),
        ))
        .await
    }

    pub async fn create_trigger(
        &self,
        function: &str,
        input: &CreateTriggerInput,
    ) -> Result<Trigger, FcError> {
        let c = Self::call(
            "CreateTrigger",
            reqwest::Method::POST,
            Self::fn_path(function, "/triggers"),
        );
        self.expect(Self::with_body(c, input)).await
    }

    pub async fn list_triggers(&self, function: &str) -> Result<ListTriggersOutput, FcError> {
        self.expect(Self::call(
            "ListTriggers",
            reqwest::Method::GET,
            Self::fn_path(function, "/triggers"),
        ))
        .await
    }

    pub async fn delete_trigger(&self, function: &str, trigger: &str) -> Result<(), FcError> {
        let path = Self::fn_path(function, &format!("/triggers/{}", path_segment(trigger)));
        self.no_content(Self::call("DeleteTrigger", reqwest::Method::DELETE, path))
            .await
    }

    pub async fn create_custom_domain(
        &self,
        input: &CreateCustomDomainInput,
    ) -> Result<CustomDomain, FcError> {
        let c = Self::call(
            "CreateCustomDomain",
            reqwest::Method::POST,
            format!("/{API_VERSION}/custom-domains"),
        );
        self.expect(Self::with_body(c, input)).await
    }

    pub async fn get_custom_domain(&self, domain: &str) -> Result<CustomDomain, FcError> {
        let path = format!("/{API_VERSION}/custom-domains/{}", path_segment(domain));
        self.expect(Self::call("GetCustomDomain", reqwest::Method::GET, path))
            .await
    }

    pub async fn delete_custom_domain(&self, domain: &str) -> Result<(), FcError> {
        let path = format!("/{API_VERSION}/custom-domains/{}", path_segment(domain));
        self.no_content(Self::call(
            "DeleteCustomDomain",
            reqwest::Method::DELETE,
            path,
        ))
        .await
    }

    fn qualified(mut c: Call, qualifier: &str) -> Call {
        c.query.push(("qualifier".into(), qualifier.into()));
        c
    }

    pub async fn put_provision_config(
        &self,
        function: &str,
        qualifier: &str,
        input: &PutProvisionConfigInput,
    ) -> Result<ProvisionConfig, FcError> {
        let c = Self::call(
            "PutProvisionConfig",
            reqwest::Method::PUT,
            Self::fn_path(function, "/provision-config"),
        );
        self.expect(Self::with_body(Self::qualified(c, qualifier), input))
            .await
    }

    pub async fn get_provision_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<ProvisionConfig, FcError> {
        let c = Self::call(
            "GetProvisionConfig",
            reqwest::Method::GET,
            Self::fn_path(function, "/provision-config"),
        );
        self.expect(Self::qualified(c, qualifier)).await
    }

    pub async fn delete_provision_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<(), FcError> {
        let c = Self::call(
            "DeleteProvisionConfig",
            reqwest::Method::DELETE,
            Self::fn_path(function, "/provision-config"),
        );
        self.no_content(Self::qualified(c, qualifier)).await
    }

    pub async fn list_instances(&self, function: &str) -> Result<ListInstancesOutput, FcError> {
        self.expect(Self::call(
            "ListInstances",
            reqwest::Method::GET,
            Self::fn_path(function, "/instances"),
        ))
        .await
    }

    pub async fn disable_function_invocation(
        &self,
        function: &str,
        input: &DisableFunctionInvocationInput,
    ) -> Result<(), FcError> {
        let c = Self::call(
            "DisableFunctionInvocation",
            reqwest::Method::POST,
            Self::fn_path(function, "/invoke/disable"),
        );
        self.no_content(Self::with_body(c, input)).await
    }

    pub async fn enable_function_invocation(&self, function: &str) -> Result<(), FcError> {
        self.no_content(Self::call(
            "EnableFunctionInvocation",
            reqwest::Method::POST,
            Self::fn_path(function, "/invoke/enable"),
        ))
        .await
    }
}
