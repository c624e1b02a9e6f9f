//! Builds the one `Config`: defaults, then the TOML file, then environment/flags.

use crate::cli::Options;
use anyhow::Context;
use qingting_core::Config;

pub fn load(opts: &Options) -> anyhow::Result<Config> {
    let mut config = match &opts.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str::<Config>(&text)
                .with_context(|| format!("invalid config file {}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(v) = &opts.listen {
        config.listen = v.clone();
    }
    if let Some(v) = &opts.public_url {
        config.public_url = v.clone();
    }
    if let Some(v) = &opts.data_dir {
        config.data_dir = v.clone();
    }
    if let Some(v) = &opts.database_url {
        config.database_url = v.clone();
    }
    if !opts.trusted_proxies.is_empty() {
        config.trusted_proxies = opts.trusted_proxies.clone();
    }
    if let Some(v) = &opts.site_root {
        config.site_root = v.clone();
    }
    if let Some(v) = &opts.github_client_id {
        config.github.client_id = v.clone();
    }
    if let Some(v) = &opts.github_client_secret {
        config.github.client_secret = v.clone();
    }
    if let Some(v) = &opts.s3_access_key_id {
        config.objects.s3.access_key_id = v.clone();
    }
    if let Some(v) = &opts.s3_secret_access_key {
        config.objects.s3.secret_access_key = v.clone();
    }
    if let Some(v) = &opts.editors_dir {
        config.editors_dir = v.clone();
    }
    if opts.insecure_no_sandbox {
        config.workspaces.local.insecure_no_sandbox = true;
    }
    if let Some(v) = opts.max_running {
        config.workspaces.max_running = v;
    }
    config
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    Ok(config)
}

fn mask_opt(s: &str) -> &'static str {
    if s.is_empty() {
        ""
    } else {
        "********"
    }
}

/// The effective configuration as TOML-ish text, with secrets masked.
pub fn describe(c: &Config) -> String {
    let mask = |s: &str| {
        if s.is_empty() {
            "(generated in data dir)".to_string()
        } else {
            "********".into()
        }
    };
    let db = c.effective_database_url();
    let db = match db.find('@') {
        // Credentials in a database URL are secrets too.
        Some(at) => format!(
            "{}://********{}",
            db.split("://").next().unwrap_or(""),
            &db[at..]
        ),
        None => db,
    };
    format!(
        "listen = {:?}\npublic_url = {:?}\ndata_dir = {:?}\ndatabase_url = {:?}\n\
         trusted_proxies = {:?}\nsite_root = {:?}\nsession_secret = {:?}\nsession_days = {}\n\
         rate_limits = {:?}\navatar_max_bytes = {}\nobjects.backend = {:?}\nobjects.s3 = {{ endpoint = {:?}, region = {:?}, bucket = {:?}, path_style = {}, access_key_id = {:?}, secret_access_key = {:?} }}\ngithub = {{ client_id = {:?}, client_secret = {:?}, authorize_url = {:?} }}\n",
        c.listen,
        c.public_url,
        c.data_dir.display().to_string(),
        db,
        c.trusted_proxies
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>(),
        c.site_root,
        mask(&c.session_secret),
        c.session_days,
        c.rate_limits,
        c.avatar_max_bytes,
        c.objects.backend,
        c.objects.s3.endpoint,
        c.objects.s3.region,
        c.objects.s3.bucket,
        c.objects.s3.path_style,
        mask_opt(&c.objects.s3.access_key_id),
        mask_opt(&c.objects.s3.secret_access_key),
        c.github.client_id,
        mask_opt(&c.github.client_secret),
        c.github.authorize_url,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "listen = \"0.0.0.0:8080\"\npublic_url = \"https://studio.example.com\"\n\
             [rate_limits]\nlogin_per_ip = {{ max = 3, per_seconds = 10 }}"
        )
        .unwrap();
        let opts = Options {
            config: Some(f.path().to_path_buf()),
            listen: Some("127.0.0.1:9000".into()),
            ..Default::default()
        };
        let c = load(&opts).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000");
        assert_eq!(c.public_url, "https://studio.example.com");
        assert_eq!(c.rate_limits.login_per_ip.max, 3);
        assert_eq!(c.data_dir, std::path::PathBuf::from("./data"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "lisen = \"x\"").unwrap();
        let opts = Options {
            config: Some(f.path().to_path_buf()),
            ..Default::default()
        };
        assert!(load(&opts).is_err());
        let opts = Options {
            public_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(load(&opts).is_err());
    }

    #[test]
    fn describe_masks_secrets() {
        let c = Config {
            database_url: "postgres://u:hunter2@db/q".into(),
            session_secret: "abcd".into(),
            ..Default::default()
        };
        let d = describe(&c);
        assert!(!d.contains("hunter2") && !d.contains("abcd"), "{d}");
    }
}
