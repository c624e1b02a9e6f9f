//! What the settings mean in force: values that follow from others, and the checks that
//! reject a configuration before it fails later in a confusing way.

use super::*;

impl Config {
    /// The database URL in force: the configured one, or SQLite under the data dir.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("qingting.db").display()
            ),
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
        if self.metrics.token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err("metrics.token must be at least 16 characters (it guards /metrics)".into());
        }
        if self.avatar_max_bytes < 1024 {
            return Err("avatar_max_bytes must be at least 1024".into());
        }
        let s3 = &self.objects.s3;
        if self.objects.backend == ObjectBackend::S3
            && (s3.bucket.is_empty()
                || s3.access_key_id.is_none()
                || s3.secret_access_key.is_none())
        {
            return Err(
                "objects.s3.bucket, access_key_id and secret_access_key are required when objects.backend = \"s3\"".into(),
            );
        }
        let w = &self.workspaces;
        if w.max_per_user == 0 || w.max_running_per_user == 0 {
            return Err("workspaces.max_per_user and max_running_per_user must be positive".into());
        }
        if w.cookie_hours < 1 {
            return Err("workspaces.cookie_hours must be at least 1".into());
        }
        self.pool_sizes()?;
        if w.local.log_max_bytes < 4096 {
            return Err("workspaces.local.log_max_bytes must be at least 4096".into());
        }
        if let Some(domain) = &w.domain {
            let label = |l: &str| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            };
            if !domain.split('.').all(label) {
                return Err(format!("workspaces.domain {domain:?} is not a host name"));
            }
        }
        if w.runtime == RuntimeKind::Fc {
            let fc = &w.fc;
            if fc.endpoint.is_none() && fc.account_id.is_none() {
                return Err("workspaces.fc: set account_id (and region), or endpoint".into());
            }
            if fc.protocol == FcProtocol::Https && (fc.cert_file.is_none() || fc.key_file.is_none())
            {
                return Err("workspaces.fc: HTTPS needs cert_file and key_file".into());
            }
        }
        if self.github.enabled() && self.github.client_secret.is_none() {
            return Err("github.client_secret is required when github.client_id is set".into());
        }
        Ok(())
    }

    /// The directory object store's root.
    pub fn objects_dir(&self) -> PathBuf {
        match &self.objects.dir {
            Some(dir) => dir.clone(),
            None => self.data_dir.join("objects"),
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

    /// `workspaces.pool` as (template, count) pairs, counts above 0 only, each template once.
    pub fn pool_sizes(&self) -> Result<Vec<(String, u32)>, String> {
        let mut sizes: Vec<(String, u32)> = Vec::new();
        for entry in &self.workspaces.pool {
            let bad = || {
                format!("workspaces.pool: {entry:?} is not `<template>=<count>` (e.g. `jupyter-python=2`)")
            };
            let (template, count) = entry.split_once('=').ok_or_else(bad)?;
            let (template, count) = (template.trim(), count.trim());
            let count: u32 = count.parse().map_err(|_| bad())?;
            if template.is_empty() || count > 1000 {
                return Err(bad());
            }
            if sizes.iter().any(|(t, _)| t == template) {
                return Err(format!("workspaces.pool: {template} is named twice"));
            }
            if count > 0 {
                sizes.push((template.to_string(), count));
            }
        }
        Ok(sizes)
    }

    /// Where IDEs are installed.
    pub fn editors_dir(&self) -> PathBuf {
        match &self.editors_dir {
            Some(dir) => dir.clone(),
            None => self.data_dir.join("editors"),
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
        match &self.workspaces.domain {
            Some(domain) => domain.to_ascii_lowercase(),
            None => self.public_host().to_ascii_lowercase(),
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

    /// `scheme://<user>-<ws>.<domain>[:port]`: where a workspace is opened; with `preview`,
    /// `scheme://<preview>-<user>-<ws>.<domain>[:port]`, where that port of it is.
    pub fn workspace_origin(&self, user: &str, workspace: &str, preview: Option<u16>) -> String {
        let scheme = if self.is_https() { "https" } else { "http" };
        let (domain, port) = (self.workspace_domain(), self.public_port());
        let host = match preview {
            Some(p) => qingting_gateway::host::format_preview(p, user, workspace, &domain, port),
            None => qingting_gateway::host::format(user, workspace, &domain, port),
        };
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
            c.workspace_origin("alice", "demo", None),
            "http://alice-demo.localhost:3000"
        );
        c.public_url = "https://studio.example.com".into();
        c.workspaces.domain = Some("ws.example.com".into());
        assert_eq!(
            c.workspace_origin("alice", "demo", None),
            "https://alice-demo.ws.example.com"
        );
        assert_eq!(
            c.workspace_origin("alice", "demo", Some(8000)),
            "https://8000-alice-demo.ws.example.com"
        );
        c.workspaces.domain = Some("bad domain".into());
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
            c.workspaces.domain = (!domain.is_empty()).then(|| domain.into());
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

    #[test]
    fn pool_sizes_are_read_and_bad_entries_refused() {
        let mut c = Config::default();
        c.workspaces.pool = vec!["jupyter-python=2".into(), " vscode-node = 0 ".into()];
        assert_eq!(c.pool_sizes().unwrap(), vec![("jupyter-python".into(), 2)]);
        for bad in ["jupyter-python", "=2", "x=-1", "x=two", "x=1001"] {
            c.workspaces.pool = vec![bad.into()];
            let e = c.validate().unwrap_err();
            assert!(e.contains("<template>=<count>"), "{bad}: {e}");
        }
        c.workspaces.pool = vec!["a=1".into(), "a=2".into()];
        assert!(c.validate().unwrap_err().contains("named twice"));
        // Function Compute pools functions created ahead (started when taken).
        c.workspaces.pool = vec!["a=1".into()];
        c.workspaces.runtime = RuntimeKind::Fc;
        c.workspaces.fc.endpoint = Some("http://127.0.0.1:1".into());
        c.workspaces.fc.protocol = FcProtocol::Http;
        assert_eq!(c.pool_sizes().unwrap(), vec![("a".into(), 1)]);
    }
}
