//! Typed configuration, read once at start-up and passed down (never read from the environment
//! deeper in the code). Loading (file, environment, flags) lives in the `server` crate.

use serde::Deserialize;
use std::{net::IpAddr, path::PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds to.
    pub listen: String,
    /// The URL people type into their browser; decides cookie `Secure` and allowed origins.
    pub public_url: String,
    /// Where the database (by default), secrets and later user data live.
    pub data_dir: PathBuf,
    /// `sqlite://…`, `postgres://…` or `mysql://…`. Empty means SQLite in the data dir.
    pub database_url: String,
    /// Peers whose `X-Forwarded-For` is believed; everyone else is identified by the socket.
    pub trusted_proxies: Vec<IpAddr>,
    /// Directory holding the compiled site (WASM, JS, CSS, public assets). Empty: found
    /// next to the binary.
    pub site_root: String,
    /// Session cookie signing key (hex, 64 bytes); generated into the data dir when empty.
    pub session_secret: String,
    /// Days a session stays valid without use.
    pub session_days: i64,
    pub rate_limits: RateLimits,
    /// Largest avatar upload accepted, in bytes (enforced while the body streams in).
    pub avatar_max_bytes: u64,
    pub objects: ObjectStoreConfig,
    pub github: GithubConfig,
    /// Where IDEs are installed (`qingting editors install`); empty: `<data_dir>/editors`.
    pub editors_dir: String,
    /// Operator templates added to (or replacing) the shipped ones; empty: none.
    pub templates_file: String,
    pub workspaces: WorkspacesConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkspacesConfig {
    /// Workspaces are served at `<user>-<workspace>.<domain>`; empty: the public URL's host
    /// (`localhost` by default, which browsers resolve for every subdomain).
    pub domain: String,
    pub max_per_user: u64,
    pub max_running_per_user: u64,
    /// Workspaces running (or starting) at once on this server, whoever owns them; a start
    /// beyond it is refused. 0: one per GiB of the host's memory with the local runtime, no
    /// cap with fc.
    pub max_running: u64,
    /// Stop a workspace after this many seconds without requests or open WebSockets; 0: never.
    pub idle_stop_secs: u64,
    /// How long a workspace cookie stays valid (it also ends with the dashboard session).
    pub cookie_hours: i64,
    /// Where workspaces run: `local` (this machine) or `fc` (Alibaba Cloud Function Compute).
    pub runtime: RuntimeKind,
    pub local: LocalRuntimeConfig,
    pub fc: FcRuntimeConfig,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    #[default]
    Local,
    Fc,
}

/// Function Compute 3.0 (see docs/deploy-fc.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FcRuntimeConfig {
    /// Empty: `https://<account_id>.<region>.fc.aliyuncs.com`. The simulator's URL for trials.
    pub endpoint: String,
    pub region: String,
    pub account_id: String,
    /// Empty: `ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` / `_SECURITY_TOKEN` from the environment.
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: String,
    /// Functions are named `<prefix>-ws-<id>`.
    pub function_prefix: String,
    /// Prepended to a template's `image` when that is a bare name (e.g.
    /// `registry-vpc.cn-hangzhou.aliyuncs.com/qingting`), with `:<image_tag>` appended.
    pub image_registry: String,
    pub image_tag: String,
    /// RAM role the functions assume (`acs:ram::<uid>:role/<name>`).
    pub role: String,
    pub vpc_id: String,
    pub vswitch_ids: Vec<String>,
    pub security_group_id: String,
    /// NAS export for workspace data, e.g. `xxxx.cn-hangzhou.nas.aliyuncs.com:/qingting`;
    /// each workspace mounts only its own `<nas>/<user>/<id>/{files,ide}`.
    pub nas_server: String,
    /// Each user's files are owned by uid and gid `nas_uid_base + <user id>` on the NAS, and
    /// their IDE runs as that uid: tenants never share an identity on the export.
    pub nas_uid_base: i64,
    /// `HTTPS` (with the certificate below) or `HTTP`.
    pub protocol: String,
    pub cert_name: String,
    /// PEM files of the (wildcard) certificate for the workspace domain.
    pub cert_file: String,
    pub key_file: String,
}

impl Default for FcRuntimeConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            region: "cn-hangzhou".into(),
            account_id: String::new(),
            access_key_id: String::new(),
            access_key_secret: String::new(),
            security_token: String::new(),
            function_prefix: "qingting".into(),
            image_registry: String::new(),
            image_tag: "latest".into(),
            role: String::new(),
            vpc_id: String::new(),
            vswitch_ids: Vec::new(),
            security_group_id: String::new(),
            nas_server: String::new(),
            nas_uid_base: 100_000,
            protocol: "HTTPS".into(),
            cert_name: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
        }
    }
}

impl Default for WorkspacesConfig {
    fn default() -> Self {
        Self {
            domain: String::new(),
            max_per_user: 10,
            max_running_per_user: 3,
            max_running: 0,
            idle_stop_secs: 30 * 60,
            cookie_hours: 12,
            runtime: RuntimeKind::Local,
            local: LocalRuntimeConfig::default(),
            fc: FcRuntimeConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalRuntimeConfig {
    /// Run IDEs without bubblewrap where the host cannot sandbox. Never on a shared machine.
    pub insecure_no_sandbox: bool,
    /// Workspace `id` runs as uid `uid_base + id` (on the host when the server runs as root,
    /// inside the sandbox's user namespace otherwise).
    pub uid_base: u32,
    /// An IDE's log is rotated to `.1` at this size while it runs (two files at most).
    pub log_max_bytes: u64,
}

impl Default for LocalRuntimeConfig {
    fn default() -> Self {
        Self {
            insecure_no_sandbox: false,
            uid_base: 200_000,
            log_max_bytes: 8 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ObjectBackend {
    /// A directory (`objects.dir`, default `<data_dir>/objects`).
    #[default]
    Dir,
    /// S3 or an S3-compatible service (`objects.s3`).
    S3,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectStoreConfig {
    pub backend: ObjectBackend,
    pub dir: String,
    pub s3: S3Config,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Empty for AWS itself; e.g. `https://s3.oss-cn-hangzhou.aliyuncs.com` for Alibaba OSS.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Key prefix inside the bucket.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `bucket` in the path instead of the host name (MinIO, moto, s3s-fs); OSS needs `false`.
    pub path_style: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            region: "us-east-1".into(),
            bucket: String::new(),
            prefix: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            path_style: false,
        }
    }
}

/// GitHub OAuth app. Sign-in with GitHub is offered only when `client_id` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubConfig {
    pub client_id: String,
    pub client_secret: String,
    pub authorize_url: String,
    pub token_url: String,
    /// REST API base (`GET {api_url}/user`).
    pub api_url: String,
}

impl Default for GithubConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: String::new(),
            authorize_url: "https://github.com/login/oauth/authorize".into(),
            token_url: "https://github.com/login/oauth/access_token".into(),
            api_url: "https://api.github.com".into(),
        }
    }
}

impl GithubConfig {
    pub fn enabled(&self) -> bool {
        !self.client_id.is_empty()
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Attempts allowed in one window.
    pub max: u32,
    /// Window length in seconds.
    pub per_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Login attempts per client address.
    pub login_per_ip: Limit,
    /// Login attempts per account name, whatever the address.
    pub login_per_account: Limit,
    /// Registrations per client address.
    pub register_per_ip: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_per_ip: Limit {
                max: 20,
                per_seconds: 60,
            },
            login_per_account: Limit {
                max: 10,
                per_seconds: 300,
            },
            register_per_ip: Limit {
                max: 10,
                per_seconds: 3600,
            },
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3000".into(),
            public_url: "http://localhost:3000".into(),
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            trusted_proxies: Vec::new(),
            site_root: String::new(),
            session_secret: String::new(),
            session_days: 14,
            rate_limits: RateLimits::default(),
            avatar_max_bytes: 2 * 1024 * 1024,
            objects: ObjectStoreConfig::default(),
            github: GithubConfig::default(),
            editors_dir: String::new(),
            templates_file: String::new(),
            workspaces: WorkspacesConfig::default(),
        }
    }
}

impl Config {
    /// The database URL in force: the configured one, or SQLite under the data dir.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("qingting.db").display()
            )
        } else {
            self.database_url.clone()
        }
    }

    /// Whether cookies must carry `Secure`.
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// `scheme://host[:port]` of the public URL, as browsers send it in `Origin`.
    pub fn public_origin(&self) -> String {
        let url = self.public_url.trim_end_matches('/');
        match url.find("://") {
            Some(i) => match url[i + 3..].find('/') {
                Some(j) => url[..i + 3 + j].to_string(),
                None => url.to_string(),
            },
            None => url.to_string(),
        }
    }

    /// Rejects settings that would fail later in a confusing way.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(format!(
                "public URL must start with http:// or https://, got {:?}",
                self.public_url
            ));
        }
        if self.session_days < 1 {
            return Err("session_days must be at least 1".into());
        }
        for (name, l) in [
            ("login_per_ip", self.rate_limits.login_per_ip),
            ("login_per_account", self.rate_limits.login_per_account),
            ("register_per_ip", self.rate_limits.register_per_ip),
        ] {
            if l.max == 0 || l.per_seconds == 0 {
                return Err(format!(
                    "rate_limits.{name}: max and per_seconds must be positive"
                ));
            }
        }
        if self.avatar_max_bytes < 1024 {
            return Err("avatar_max_bytes must be at least 1024".into());
        }
        if self.objects.backend == ObjectBackend::S3 && self.objects.s3.bucket.is_empty() {
            return Err("objects.s3.bucket is required when objects.backend = \"s3\"".into());
        }
        let w = &self.workspaces;
        if w.max_per_user == 0 || w.max_running_per_user == 0 {
            return Err("workspaces.max_per_user and max_running_per_user must be positive".into());
        }
        if w.cookie_hours < 1 {
            return Err("workspaces.cookie_hours must be at least 1".into());
        }
        if w.local.log_max_bytes < 4096 {
            return Err("workspaces.local.log_max_bytes must be at least 4096".into());
        }
        if !w.domain.is_empty()
            && !w
                .domain
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(format!(
                "workspaces.domain {:?} is not a host name",
                w.domain
            ));
        }
        if w.runtime == RuntimeKind::Fc {
            let fc = &w.fc;
            if fc.endpoint.is_empty() && fc.account_id.is_empty() {
                return Err("workspaces.fc: set account_id (and region), or endpoint".into());
            }
            if !matches!(fc.protocol.as_str(), "HTTP" | "HTTPS") {
                return Err("workspaces.fc.protocol must be HTTP or HTTPS".into());
            }
            if fc.protocol == "HTTPS" && (fc.cert_file.is_empty() || fc.key_file.is_empty()) {
                return Err("workspaces.fc: HTTPS needs cert_file and key_file".into());
            }
        }
        if self.github.enabled() && self.github.client_secret.is_empty() {
            return Err("github.client_secret is required when github.client_id is set".into());
        }
        Ok(())
    }

    /// The directory object store's root.
    pub fn objects_dir(&self) -> PathBuf {
        if self.objects.dir.is_empty() {
            self.data_dir.join("objects")
        } else {
            PathBuf::from(&self.objects.dir)
        }
    }

    /// The host-wide cap on running workspaces in force (see `workspaces.max_running`).
    pub fn effective_max_running(&self) -> u64 {
        match (self.workspaces.max_running, self.workspaces.runtime) {
            (0, RuntimeKind::Local) => crate::workspaces::local::default_max_running(),
            (0, RuntimeKind::Fc) => u64::MAX,
            (n, _) => n,
        }
    }

    /// Where IDEs are installed.
    pub fn editors_dir(&self) -> PathBuf {
        if self.editors_dir.is_empty() {
            self.data_dir.join("editors")
        } else {
            PathBuf::from(&self.editors_dir)
        }
    }

    /// The public URL's host, without port.
    fn public_host(&self) -> &str {
        let origin = self
            .public_url
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or("");
        let host = origin.split('/').next().unwrap_or("");
        match host.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    }

    /// The public URL's port, when it names one.
    fn public_port(&self) -> Option<u16> {
        let origin = self
            .public_url
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or("");
        origin.split('/').next()?.rsplit_once(':')?.1.parse().ok()
    }

    /// The domain workspaces live under.
    pub fn workspace_domain(&self) -> String {
        if self.workspaces.domain.is_empty() {
            self.public_host().to_ascii_lowercase()
        } else {
            self.workspaces.domain.to_ascii_lowercase()
        }
    }

    /// Whether workspace hosts are the same *site* as the dashboard (one registrable domain,
    /// by the public suffix list, as browsers decide it). Same-site workspaces can set
    /// cookies for the dashboard's domain and are treated as its neighbours by `SameSite`;
    /// production belongs on a registrable domain of its own (docs/security.md).
    pub fn workspaces_same_site(&self) -> bool {
        let site = |host: &str| -> String {
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            psl::domain_str(&host).unwrap_or(&host).to_string()
        };
        let workspace_host = format!("user-workspace.{}", self.workspace_domain());
        site(self.public_host()) == site(&workspace_host)
    }

    /// `scheme://<user>-<ws>.<domain>[:port]`: where a workspace is opened.
    pub fn workspace_origin(&self, user: &str, workspace: &str) -> String {
        let scheme = if self.is_https() { "https" } else { "http" };
        let host = qingting_gateway::host::format(
            user,
            workspace,
            &self.workspace_domain(),
            self.public_port(),
        );
        format!("{scheme}://{host}")
    }

    /// Where GitHub sends people back to.
    pub fn github_callback_url(&self) -> String {
        format!("{}/auth/github/callback", self.public_origin())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_drops_path_and_slash() {
        let mut c = Config::default();
        assert_eq!(c.public_origin(), "http://localhost:3000");
        c.public_url = "https://studio.example.com/base/".into();
        assert_eq!(c.public_origin(), "https://studio.example.com");
        assert!(c.is_https());
    }

    #[test]
    fn workspace_urls_follow_the_public_url() {
        let mut c = Config::default();
        assert_eq!(c.workspace_domain(), "localhost");
        assert_eq!(
            c.workspace_origin("alice", "demo"),
            "http://alice-demo.localhost:3000"
        );
        c.public_url = "https://studio.example.com".into();
        c.workspaces.domain = "ws.example.com".into();
        assert_eq!(
            c.workspace_origin("alice", "demo"),
            "https://alice-demo.ws.example.com"
        );
        c.workspaces.domain = "bad domain".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn same_site_workspace_domains_are_recognised() {
        let mut c = Config::default();
        let cases = [
            ("https://studio.example.com", "", true),
            ("https://studio.example.com", "ws.example.com", true),
            (
                "https://studio.example.com",
                "example-workspaces.net",
                false,
            ),
            ("https://studio.example.co.uk", "ws.example.co.uk", true),
            ("https://studio.example.co.uk", "other.co.uk", false),
            ("http://localhost:3000", "", false),
        ];
        for (public, domain, same) in cases {
            c.public_url = public.into();
            c.workspaces.domain = domain.into();
            assert_eq!(c.workspaces_same_site(), same, "{public} / {domain:?}");
        }
    }

    #[test]
    fn default_database_is_sqlite_in_data_dir() {
        let c = Config::default();
        assert_eq!(
            c.effective_database_url(),
            "sqlite://./data/qingting.db?mode=rwc"
        );
    }

    #[test]
    fn validate_rejects_bad_values() {
        let mut c = Config::default();
        assert!(c.validate().is_ok());
        c.public_url = "localhost:3000".into();
        assert!(c.validate().is_err());
        c = Config::default();
        c.rate_limits.login_per_ip.max = 0;
        assert!(c.validate().is_err());
    }
}
