//! Every setting, declared once: its key in the TOML file, its help and whether it is a secret.
//! The command-line flag, the environment variable, `--help`, `qingting config` and the table
//! in docs/configuration.md are all derived from this list and from `Config::default()`.

use super::Config;

/// One setting. The key is its dotted path in the TOML file; the flag and environment
/// variable follow from it (`workspaces.max_running` → `--workspaces-max-running`,
/// `QINGTING_WORKSPACES_MAX_RUNNING`) unless `short` gives the settings people type most a
/// shorter name.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub key: &'static str,
    short: Option<&'static str>,
    /// What it does; the first sentence is the `--help` line.
    pub help: &'static str,
    /// Shown instead of the value when the default is computed or unset.
    default_note: Option<&'static str>,
    /// Masked by `qingting config`, hidden by `--help`.
    pub secret: bool,
}

const fn s(key: &'static str, help: &'static str) -> Setting {
    Setting {
        key,
        short: None,
        help,
        default_note: None,
        secret: false,
    }
}

impl Setting {
    const fn short(mut self, name: &'static str) -> Self {
        self.short = Some(name);
        self
    }
    const fn default_is(mut self, note: &'static str) -> Self {
        self.default_note = Some(note);
        self
    }
    const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// The long flag, without the dashes.
    pub fn flag(&self) -> String {
        match self.short {
            Some(name) => name.to_string(),
            None => self.key.replace(['.', '_'], "-"),
        }
    }

    pub fn env(&self) -> String {
        format!(
            "QINGTING_{}",
            self.flag().replace('-', "_").to_ascii_uppercase()
        )
    }

    /// The TOML section it belongs to (`""` for the top level).
    pub fn section(&self) -> &'static str {
        self.key.rsplit_once('.').map_or("", |(section, _)| section)
    }

    /// The default as people should read it: the value, or what an unset value means.
    pub fn default_text(&self, defaults: &toml::Table) -> String {
        if let Some(note) = self.default_note {
            return note.to_string();
        }
        match lookup(defaults, self.key) {
            Some(v) => render(v),
            None => "unset".into(),
        }
    }

    /// How a flag or environment value is read: lists are comma-separated.
    pub fn is_list(&self, defaults: &toml::Table) -> bool {
        matches!(lookup(defaults, self.key), Some(toml::Value::Array(_)))
    }
}

/// `Config::default()` as a TOML table (unset optional settings are absent).
pub fn defaults() -> toml::Table {
    toml::Table::try_from(Config::default()).expect("the default configuration serializes")
}

pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

pub fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let (parents, leaf) = match key.rsplit_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, key),
    };
    let mut t = table;
    for part in parents.into_iter().flat_map(|p| p.split('.')) {
        t = t.get(part)?.as_table()?;
    }
    t.get(leaf)
}

fn render(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// The settings table of docs/configuration.md (a test keeps the two equal).
pub fn markdown_table() -> String {
    let defaults = defaults();
    let mut out =
        String::from("| key | flag / environment | default | meaning |\n|---|---|---|---|\n");
    for s in SETTINGS {
        let list = if s.is_list(&defaults) {
            " (comma-separated)"
        } else {
            ""
        };
        out += &format!(
            "| `{}` | `--{}` / `{}`{list} | {} | {} |\n",
            s.key,
            s.flag(),
            s.env(),
            md_default(&s.default_text(&defaults)),
            s.help.replace('\n', " ").replace('|', "\\|"),
        );
    }
    out
}

fn md_default(text: &str) -> String {
    if text.starts_with(['"', '[', '{'])
        || text.bytes().all(|b| b.is_ascii_digit())
        || text == "true"
        || text == "false"
    {
        format!("`{text}`")
    } else {
        text.to_string()
    }
}

pub static SETTINGS: &[Setting] = &[
    s("listen", "Address the HTTP server binds to (`0.0.0.0:3000` for every interface).")
        .short("listen"),
    s("public_url", "The URL people open. Its origin is the only one allowed to call the API; `https://` turns on `Secure` and `__Host-` cookies.")
        .short("public-url"),
    s("data_dir", "Directory for the SQLite database, `secrets/`, objects and IDE logs.")
        .short("data-dir"),
    s("database_url", "`sqlite://…`, `postgres://user:pass@host/db` or `mysql://user:pass@host/db`.")
        .short("database-url")
        .default_is("SQLite at `<data_dir>/qingting.db`")
        .secret(),
    s("change_feed", "How replicas on one database hear of each other's changes: `auto` (Postgres `NOTIFY`, a polled `changes` table on MySQL/MariaDB, nothing on SQLite, which is one replica) or `table` (the table on Postgres too, e.g. behind a pooler that drops `LISTEN`); docs/deploy-fc.md."),
    s("trusted_proxies", "Peers whose `X-Forwarded-For` decides the client address (rate limits, logs); everyone else is identified by the socket.")
        .short("trusted-proxies"),
    s("site_root", "Directory with the compiled site (`pkg/qingting.js`, `.wasm`, `.css`) to serve.")
        .short("site-root")
        .default_is("embedded in a release binary, else found next to it"),
    s("session_secret", "Hex, at least 64 bytes: signs the session cookie. Set the same value on every replica.")
        .default_is("generated into `<data_dir>/secrets/session.key`")
        .secret(),
    s("session_days", "A session expires after this many days without use."),
    s("avatar_max_bytes", "Largest avatar upload accepted, in bytes (enforced while the body streams in)."),
    s("editors_dir", "Where `qingting editors install` puts the IDEs (docs/runtimes.md).")
        .short("editors-dir")
        .default_is("`<data_dir>/editors`"),
    s("templates_file", "Operator templates added to (or replacing) the shipped ones (docs/runtimes.md#templates).")
        .default_is("shipped templates only"),
    s("rate_limits.login_per_ip.max", "Sign-in attempts from one client address per window."),
    s("rate_limits.login_per_ip.per_seconds", "Window of `login_per_ip`, in seconds."),
    s("rate_limits.login_per_account.max", "Sign-in attempts for one user name from one address per window; over all addresses ten times this, and addresses that signed in to the account before are exempt."),
    s("rate_limits.login_per_account.per_seconds", "Window of `login_per_account`, in seconds."),
    s("rate_limits.register_per_ip.max", "Registrations from one client address per window."),
    s("rate_limits.register_per_ip.per_seconds", "Window of `register_per_ip`, in seconds."),
    s("objects.backend", "Where avatars are kept: `dir` or `s3` (S3, Alibaba OSS, MinIO; docs/accounts.md)."),
    s("objects.dir", "Root of the `dir` object store.").default_is("`<data_dir>/objects`"),
    s("objects.s3.endpoint", "S3-compatible endpoint, e.g. `https://s3.oss-cn-hangzhou.aliyuncs.com` for OSS.")
        .default_is("AWS S3"),
    s("objects.s3.region", "S3 region."),
    s("objects.s3.bucket", "Bucket (required with `backend = \"s3\"`)."),
    s("objects.s3.prefix", "Key prefix inside the bucket."),
    s("objects.s3.access_key_id", "S3 access key id.")
        .short("s3-access-key-id")
        .default_is("none (required with `backend = \"s3\"`)")
        .secret(),
    s("objects.s3.secret_access_key", "S3 secret access key.")
        .short("s3-secret-access-key")
        .default_is("none (required with `backend = \"s3\"`)")
        .secret(),
    s("objects.s3.path_style", "Bucket in the path instead of the host name (MinIO, moto, s3s-fs); OSS needs `false`."),
    s("github.client_id", "GitHub OAuth app client id; sign-in with GitHub is offered only when set (docs/accounts.md).")
        .short("github-client-id")
        .default_is("GitHub sign-in off"),
    s("github.client_secret", "GitHub OAuth app client secret (required with `client_id`).")
        .short("github-client-secret")
        .secret(),
    s("github.authorize_url", "GitHub's authorization page."),
    s("github.token_url", "GitHub's token endpoint."),
    s("github.api_url", "GitHub's REST API base (`GET {api_url}/user`)."),
    s("metrics.token", "Bearer token that opens Prometheus `/metrics` on the main address (docs/operations.md, Metrics).")
        .default_is("none (`/metrics` answers 404)")
        .secret(),
    s("metrics.listen", "A separate address that serves `/metrics` without a token, e.g. `127.0.0.1:9464`; keep it off the internet.")
        .default_is("none"),
    s("audit.retention_days", "Audit log entries older than this many days are deleted (by the leading replica, hourly); 0 keeps them forever (docs/operations.md, Audit log)."),
    s("workspaces.domain", "Workspaces live at `<user>-<ws>.<domain>` (with the public URL's scheme and port). Needs a wildcard DNS record in production, on a registrable domain of its own (start-up warns when it is the dashboard's own site; docs/security.md).")
        .default_is("the public URL's host"),
    s("workspaces.max_per_user", "Workspaces one user may have."),
    s("workspaces.max_running_per_user", "Of which running (or starting) at once."),
    s("workspaces.max_running", "Workspaces running (or starting) at once on this server, whoever owns them; a user's create or start beyond it waits in line (`queued`) and starts by itself when room frees up. 0: one per GiB of the host's memory with the local runtime, no cap with `fc`.")
        .short("max-running"),
    s("workspaces.idle_stop_secs", "Stop a workspace after this many seconds without requests or open WebSockets; 0: never."),
    s("workspaces.pool", "Workspaces prepared ahead, per template, so a new one is up at once: comma-separated `<template>=<count>` (e.g. `jupyter-python=4, vscode-python=2`); 0 or absent: none. Local runtime: started ahead, counted against `max_running`, giving way to users' starts. Function Compute: functions created ahead and started when taken (docs/deploy-fc.md).")
        .default_is("no pool"),
    s("workspaces.cookie_hours", "Lifetime of a workspace cookie (it also ends with the dashboard session)."),
    s("workspaces.token_secret", "Hex, 32 bytes: the seed of the key that signs workspace tokens. Set the same value on every replica.")
        .default_is("generated into `<data_dir>/secrets/workspace-token.key`")
        .secret(),
    s("workspaces.cookie_secret", "Hex, 32 bytes: the key of workspace cookies. Set the same value on every replica.")
        .default_is("generated into `<data_dir>/secrets/workspace-cookie.key`")
        .secret(),
    s("workspaces.runtime", "Where workspaces run: `local` (this machine) or `fc` (Alibaba Cloud Function Compute 3.0, docs/deploy-fc.md)."),
    s("workspaces.local.insecure_no_sandbox", "Run IDEs without bubblewrap where the host cannot sandbox. Never on a machine shared with people you do not trust.")
        .short("insecure-no-sandbox"),
    s("workspaces.local.uid_base", "Workspace `id` runs as uid `uid_base + id`: on the host when the server runs as root, inside the sandbox's user namespace otherwise."),
    s("workspaces.local.log_max_bytes", "An IDE's log (`<data_dir>/logs/ws-<id>.log`) is rotated to `.1` at this size while it runs, so it keeps at most twice this; at least 4096."),
    s("workspaces.local.network", "Outbound network for workspaces: `template` (as each template's `network` says; the shipped ones say `internet`) or `none` (no workspace has a network). Needs slirp4netns and nftables; docs/runtimes.md explains the firewall."),
    s("workspaces.local.network_deny", "More address ranges no workspace may reach (comma-separated, e.g. `203.0.113.0/24, 2001:db8::/32`), besides the loopback, private, link-local and carrier-grade NAT ranges and the host's own addresses, which are always refused."),
    s("workspaces.fc.endpoint", "FC API endpoint, e.g. the simulator's URL for trials.")
        .default_is("`https://<account_id>.<region>.fc.aliyuncs.com`"),
    s("workspaces.fc.region", "FC region."),
    s("workspaces.fc.account_id", "Alibaba Cloud account id (names the endpoint)."),
    s("workspaces.fc.access_key_id", "AccessKey id for the FC API.")
        .default_is("`ALIBABA_CLOUD_ACCESS_KEY_ID` from the environment")
        .secret(),
    s("workspaces.fc.access_key_secret", "AccessKey secret for the FC API.")
        .default_is("`ALIBABA_CLOUD_ACCESS_KEY_SECRET` from the environment")
        .secret(),
    s("workspaces.fc.security_token", "STS token that goes with temporary keys.")
        .default_is("`ALIBABA_CLOUD_SECURITY_TOKEN` from the environment")
        .secret(),
    s("workspaces.fc.function_prefix", "Functions are named `<prefix>-ws-<id>`."),
    s("workspaces.fc.image_registry", "Prepended to a template's `image` when that is a bare name (e.g. `registry-vpc.cn-hangzhou.aliyuncs.com/qingting`), with `:<image_tag>` appended.")
        .default_is("images used as the templates name them"),
    s("workspaces.fc.image_tag", "Tag appended to bare image names."),
    s("workspaces.fc.role", "RAM role the functions assume (`acs:ram::<uid>:role/<name>`).")
        .default_is("none"),
    s("workspaces.fc.vpc_id", "VPC the functions join (needed to reach the NAS).").default_is("none"),
    s("workspaces.fc.vswitch_ids", "VSwitches in that VPC."),
    s("workspaces.fc.security_group_id", "Security group in that VPC.").default_is("none"),
    s("workspaces.fc.nas_server", "NAS export for workspace data, e.g. `xxxx.cn-hangzhou.nas.aliyuncs.com:/qingting`; each workspace mounts only its own `<nas>/<user>/<id>/{files,ide}`.")
        .default_is("no NAS: files live as long as the instance"),
    s("workspaces.fc.nas_uid_base", "User N's files on the NAS and their IDE use uid and gid `nas_uid_base + N`: tenants never share an identity on the export."),
    s("workspaces.fc.protocol", "`HTTPS` (with the certificate below) or `HTTP` for the workspace custom domains."),
    s("workspaces.fc.cert_name", "Name of the certificate on FC."),
    s("workspaces.fc.cert_file", "PEM file of the (wildcard) certificate for the workspace domain (required with `HTTPS`).")
        .default_is("none"),
    s("workspaces.fc.key_file", "PEM file of its private key (required with `HTTPS`).")
        .default_is("none"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every leaf of the configuration, as `Config::default()` and a file setting every
    /// optional key print it.
    fn leaves(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => leaves(t, &key, out),
                _ => out.push(key),
            }
        }
    }

    #[test]
    fn every_setting_is_declared_once_and_every_declaration_exists() {
        let mut all = Config::default();
        all.fill_optional_for_tests();
        let mut keys = Vec::new();
        leaves(&toml::Table::try_from(&all).unwrap(), "", &mut keys);
        let declared: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        for k in &keys {
            assert!(declared.contains(&k.as_str()), "{k} is not in SETTINGS");
        }
        for d in &declared {
            assert!(
                keys.iter().any(|k| k == d),
                "{d} is declared but not a setting"
            );
            assert_eq!(declared.iter().filter(|x| *x == d).count(), 1, "{d} twice");
        }
        let flags: std::collections::HashSet<String> = SETTINGS.iter().map(|s| s.flag()).collect();
        assert_eq!(flags.len(), SETTINGS.len(), "two settings share a flag");
    }

    #[test]
    fn docs_table_matches_the_declarations() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- settings:begin -->\n", "<!-- settings:end -->");
        let start = doc
            .find(begin)
            .expect("docs/configuration.md has the settings markers")
            + begin.len();
        let stop = doc.find(end).unwrap();
        assert!(
            doc[start..stop] == markdown_table(),
            "docs/configuration.md's table differs from the declarations; \
             `qingting config --markdown` prints the table to paste between the markers"
        );
    }

    #[test]
    fn flags_and_variables_follow_the_key() {
        let s = find("workspaces.fc.region").unwrap();
        assert_eq!(s.flag(), "workspaces-fc-region");
        assert_eq!(s.env(), "QINGTING_WORKSPACES_FC_REGION");
        assert_eq!(
            find("workspaces.max_running").unwrap().env(),
            "QINGTING_MAX_RUNNING"
        );
        assert_eq!(find("workspaces.fc").map(|s| s.key), None);
    }
}
