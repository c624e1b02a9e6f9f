//! Typed configuration, read once at start-up and passed down (never read from the environment
//! deeper in the code). Every setting's help, flag and environment variable are declared once in
//! [`catalog`]; [`layers`] builds a `Config` from the file, flags and environment; what a
//! setting means in force (defaults that depend on others, validation) is in `effective`.

pub mod catalog;
mod effective;
pub mod layers;

use serde::{Deserialize, Serialize};
use std::{net::IpAddr, path::PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: String,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub change_feed: ChangeFeedKind,
    pub trusted_proxies: Vec<IpAddr>,
    pub site_root: Option<PathBuf>,
    pub session_secret: Option<String>,
    pub session_days: i64,
    pub avatar_max_bytes: u64,
    pub editors_dir: Option<PathBuf>,
    pub templates_file: Option<PathBuf>,
    pub rate_limits: RateLimits,
    pub objects: ObjectStoreConfig,
    pub github: GithubConfig,
    pub workspaces: WorkspacesConfig,
    pub audit: AuditConfig,
    pub metrics: MetricsConfig,
}

/// Prometheus `/metrics`: off unless one of these is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Bearer token that opens `/metrics` on the main address.
    pub token: Option<String>,
    /// A separate address serving `/metrics` without a token (keep it off the internet).
    pub listen: Option<String>,
}

/// The audit log (`crate::audit`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Entries older than this many days are deleted; 0 keeps them forever.
    pub retention_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 365,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkspacesConfig {
    pub domain: Option<String>,
    pub max_per_user: u64,
    pub max_running_per_user: u64,
    /// 0: decided by the runtime (`Config::effective_max_running`).
    pub max_running: u64,
    /// 0: never.
    pub idle_stop_secs: u64,
    pub cookie_hours: i64,
    /// `<template>=<count>` entries: IDEs kept started ahead per template (see `pool_sizes`).
    pub pool: Vec<String>,
    /// Hex seed of the key that signs workspace tokens (generated into the data dir if unset).
    pub token_secret: Option<String>,
    /// Hex key of the workspace cookies (generated into the data dir if unset).
    pub cookie_secret: Option<String>,
    pub runtime: RuntimeKind,
    pub local: LocalRuntimeConfig,
    pub fc: FcRuntimeConfig,
}

/// How replicas on one database hear of each other's changes (`replicas::feed`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChangeFeedKind {
    /// Postgres `NOTIFY`; the `changes` table on MySQL/MariaDB; none on SQLite.
    #[default]
    Auto,
    /// The `changes` table on every server database (for poolers that drop `LISTEN`).
    Table,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    #[default]
    Local,
    Fc,
}

/// Function Compute 3.0 (see docs/deploy-fc.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FcRuntimeConfig {
    pub endpoint: Option<String>,
    pub region: String,
    pub account_id: Option<String>,
    pub access_key_id: Option<String>,
    pub access_key_secret: Option<String>,
    pub security_token: Option<String>,
    pub function_prefix: String,
    pub image_registry: Option<String>,
    pub image_tag: String,
    pub role: Option<String>,
    pub vpc_id: Option<String>,
    pub vswitch_ids: Vec<String>,
    pub security_group_id: Option<String>,
    pub nas_server: Option<String>,
    pub nas_uid_base: i64,
    pub protocol: FcProtocol,
    pub cert_name: String,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// How FC serves the workspace custom domains.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum FcProtocol {
    #[serde(rename = "HTTP")]
    Http,
    #[default]
    #[serde(rename = "HTTPS")]
    Https,
}

impl FcProtocol {
    /// As FC's API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FcProtocol::Http => "HTTP",
            FcProtocol::Https => "HTTPS",
        }
    }
}

impl Default for FcRuntimeConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "cn-hangzhou".into(),
            account_id: None,
            access_key_id: None,
            access_key_secret: None,
            security_token: None,
            function_prefix: "qingting".into(),
            image_registry: None,
            image_tag: "latest".into(),
            role: None,
            vpc_id: None,
            vswitch_ids: Vec::new(),
            security_group_id: None,
            nas_server: None,
            nas_uid_base: 100_000,
            protocol: FcProtocol::Https,
            cert_name: "qingting-workspaces".into(),
            cert_file: None,
            key_file: None,
        }
    }
}

impl Default for WorkspacesConfig {
    fn default() -> Self {
        Self {
            domain: None,
            max_per_user: 10,
            max_running_per_user: 3,
            max_running: 0,
            idle_stop_secs: 30 * 60,
            cookie_hours: 12,
            pool: Vec::new(),
            token_secret: None,
            cookie_secret: None,
            runtime: RuntimeKind::Local,
            local: LocalRuntimeConfig::default(),
            fc: FcRuntimeConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalRuntimeConfig {
    pub insecure_no_sandbox: bool,
    pub uid_base: u32,
    pub log_max_bytes: u64,
    pub network: NetworkPolicy,
    /// Ranges a workspace never reaches, besides the private, loopback and link-local ones and
    /// the host's own addresses, which are always refused.
    pub network_deny: Vec<crate::ip_range::IpRange>,
}

/// Whether local workspaces get outbound network access.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NetworkPolicy {
    /// As each template says (`network = "internet"` or `"none"`).
    #[default]
    Template,
    /// No workspace has a network, whatever its template says.
    None,
}

impl Default for LocalRuntimeConfig {
    fn default() -> Self {
        Self {
            insecure_no_sandbox: false,
            uid_base: 200_000,
            log_max_bytes: 8 * 1024 * 1024,
            network: NetworkPolicy::Template,
            network_deny: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ObjectBackend {
    #[default]
    Dir,
    S3,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectStoreConfig {
    pub backend: ObjectBackend,
    pub dir: Option<PathBuf>,
    pub s3: S3Config,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub prefix: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub path_style: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            bucket: String::new(),
            prefix: String::new(),
            access_key_id: None,
            secret_access_key: None,
            path_style: false,
        }
    }
}

/// GitHub OAuth app. Sign-in with GitHub is offered only when `client_id` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub authorize_url: String,
    pub token_url: String,
    pub api_url: String,
}

impl Default for GithubConfig {
    fn default() -> Self {
        Self {
            client_id: None,
            client_secret: None,
            authorize_url: "https://github.com/login/oauth/authorize".into(),
            token_url: "https://github.com/login/oauth/access_token".into(),
            api_url: "https://api.github.com".into(),
        }
    }
}

impl GithubConfig {
    pub fn enabled(&self) -> bool {
        self.client_id.is_some()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Attempts allowed in one window.
    pub max: u32,
    /// Window length in seconds.
    pub per_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    pub login_per_ip: Limit,
    pub login_per_account: Limit,
    pub register_per_ip: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        let limit = |max, per_seconds| Limit { max, per_seconds };
        Self {
            login_per_ip: limit(20, 60),
            login_per_account: limit(10, 300),
            register_per_ip: limit(10, 3600),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3000".into(),
            public_url: "http://localhost:3000".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            change_feed: ChangeFeedKind::Auto,
            trusted_proxies: Vec::new(),
            site_root: None,
            session_secret: None,
            session_days: 14,
            avatar_max_bytes: 2 * 1024 * 1024,
            editors_dir: None,
            templates_file: None,
            rate_limits: RateLimits::default(),
            objects: ObjectStoreConfig::default(),
            github: GithubConfig::default(),
            workspaces: WorkspacesConfig::default(),
            audit: AuditConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

#[cfg(test)]
impl Config {
    /// Every optional setting given a value, so that a walk over the printed configuration
    /// meets every key.
    pub(crate) fn fill_optional_for_tests(&mut self) {
        let text = || Some("x".to_string());
        let path = || Some(PathBuf::from("x"));
        self.database_url = text();
        self.site_root = path();
        self.session_secret = text();
        self.editors_dir = path();
        self.templates_file = path();
        self.objects.dir = path();
        let s3 = &mut self.objects.s3;
        (s3.endpoint, s3.access_key_id, s3.secret_access_key) = (text(), text(), text());
        (self.github.client_id, self.github.client_secret) = (text(), text());
        self.workspaces.domain = text();
        (self.workspaces.token_secret, self.workspaces.cookie_secret) = (text(), text());
        let fc = &mut self.workspaces.fc;
        (fc.endpoint, fc.account_id, fc.access_key_id) = (text(), text(), text());
        (fc.access_key_secret, fc.security_token, fc.image_registry) = (text(), text(), text());
        (fc.role, fc.vpc_id, fc.security_group_id, fc.nas_server) =
            (text(), text(), text(), text());
        (fc.cert_file, fc.key_file) = (path(), path());
        (self.metrics.token, self.metrics.listen) = (text(), text());
    }
}
