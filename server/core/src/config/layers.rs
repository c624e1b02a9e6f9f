//! Builds the one `Config` from its layers: defaults, then the TOML file, then flags and
//! environment variables (clap has already put the flag above the variable). Every layer goes
//! through the same deserializer, so a bad value names its key whichever layer it came from.

use super::{catalog, Config};

/// A value from a flag or an environment variable, for the setting `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub key: &'static str,
    pub value: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    File(String),
    #[error("--{flag} / {env}: {message}")]
    Override {
        flag: String,
        env: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// `file`: the TOML file's text, if there is one.
pub fn load(file: Option<&str>, overrides: &[Override]) -> Result<Config, LoadError> {
    let defaults = catalog::defaults();
    let mut table = defaults.clone();
    if let Some(text) = file {
        // Parsed as a `Config` first for messages with line numbers and unknown keys.
        toml::from_str::<Config>(text).map_err(|e| LoadError::File(e.to_string()))?;
        let file: toml::Table = toml::from_str(text).map_err(|e| LoadError::File(e.to_string()))?;
        merge(&mut table, file);
    }
    for o in overrides {
        let setting = catalog::find(o.key).expect("overrides name declared settings");
        let err = |message: String| LoadError::Override {
            flag: setting.flag(),
            env: setting.env(),
            message,
        };
        let value = typed(
            o,
            catalog::lookup(&defaults, o.key),
            setting.is_list(&defaults),
        )
        .map_err(err)?;
        set(&mut table, o.key, value);
        // Each override is checked on its own so its message names its flag.
        toml::Value::Table(table.clone())
            .try_into::<Config>()
            .map_err(|e| err(e.to_string()))?;
    }
    // An empty optional setting (`QINGTING_DATABASE_URL=`, `domain = ""`) means unset.
    for s in catalog::SETTINGS {
        if catalog::lookup(&defaults, s.key).is_none()
            && catalog::lookup(&table, s.key).and_then(|v| v.as_str()) == Some("")
        {
            remove(&mut table, s.key);
        }
    }
    let config: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| LoadError::Invalid(e.to_string()))?;
    config.validate().map_err(LoadError::Invalid)?;
    Ok(config)
}

/// A flag's text as the TOML value of the setting's type (the default's type; text when the
/// setting is unset by default).
fn typed(o: &Override, default: Option<&toml::Value>, list: bool) -> Result<toml::Value, String> {
    use toml::Value;
    let v = o.value.trim();
    Ok(match default {
        _ if list => Value::Array(
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.into()))
                .collect(),
        ),
        Some(Value::Integer(_)) => Value::Integer(
            v.parse()
                .map_err(|_| format!("expected a whole number, got {v:?}"))?,
        ),
        Some(Value::Boolean(_)) => Value::Boolean(match v.to_ascii_lowercase().as_str() {
            "" | "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(format!("expected true or false, got {v:?}")),
        }),
        _ => Value::String(o.value.clone()),
    })
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn set(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut t = table;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            t.insert(part.to_string(), value);
            return;
        }
        let entry = t
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry.as_table_mut().expect("declared sections are tables");
    }
}

fn remove(table: &mut toml::Table, key: &str) {
    match key.split_once('.') {
        Some((head, rest)) => {
            if let Some(toml::Value::Table(t)) = table.get_mut(head) {
                remove(t, rest);
            }
        }
        None => {
            table.remove(key);
        }
    }
}

/// The effective configuration as TOML, every setting included, secrets masked.
pub fn describe(config: &Config) -> String {
    let mut table = toml::Table::try_from(config).expect("the configuration serializes");
    for s in catalog::SETTINGS.iter().filter(|s| s.secret) {
        if catalog::lookup(&table, s.key).is_some() {
            let masked = match s.key {
                // The database URL stays readable; only its credentials are hidden.
                "database_url" => mask_url_credentials(&config.effective_database_url()),
                _ => "********".into(),
            };
            set(&mut table, s.key, toml::Value::String(masked));
        }
    }
    if config.database_url.is_none() {
        set(
            &mut table,
            "database_url",
            toml::Value::String(config.effective_database_url()),
        );
    }
    toml::to_string(&table).expect("a table prints as TOML")
}

fn mask_url_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://********{}", &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(key: &'static str, value: &str) -> Override {
        Override {
            key,
            value: value.into(),
        }
    }

    #[test]
    fn overrides_beat_the_file_which_beats_defaults() {
        let file = "listen = \"0.0.0.0:8080\"\npublic_url = \"https://studio.example.com\"\n\
                    [rate_limits]\nlogin_per_ip = { max = 3, per_seconds = 10 }";
        let c = load(Some(file), &[o("listen", "127.0.0.1:9000")]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000");
        assert_eq!(c.public_url, "https://studio.example.com");
        assert_eq!(c.rate_limits.login_per_ip.max, 3);
        assert_eq!(c.rate_limits.login_per_account.max, 10);
        assert_eq!(c.data_dir, std::path::PathBuf::from("./data"));
    }

    #[test]
    fn overrides_are_typed_by_their_setting() {
        let c = load(
            None,
            &[
                o("workspaces.max_running", "7"),
                o("workspaces.local.insecure_no_sandbox", "true"),
                o("trusted_proxies", "10.0.0.5, ::1"),
                o("rate_limits.login_per_ip.max", "5"),
                o("workspaces.fc.protocol", "HTTP"),
                o("database_url", "postgres://db/q"),
            ],
        )
        .unwrap();
        assert_eq!(c.workspaces.max_running, 7);
        assert!(c.workspaces.local.insecure_no_sandbox);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.rate_limits.login_per_ip.max, 5);
        assert_eq!(c.rate_limits.login_per_ip.per_seconds, 60);
        assert_eq!(c.workspaces.fc.protocol, super::super::FcProtocol::Http);
        assert_eq!(c.database_url.as_deref(), Some("postgres://db/q"));
        let c = load(
            Some("[workspaces]\ndomain = \"\""),
            &[o("database_url", "")],
        )
        .unwrap();
        assert_eq!((c.database_url, c.workspaces.domain), (None, None));
    }

    #[test]
    fn bad_values_name_their_flag_or_key() {
        let e = load(None, &[o("workspaces.max_running", "many")]).unwrap_err();
        assert!(e.to_string().contains("--max-running"), "{e}");
        let e = load(None, &[o("trusted_proxies", "not-an-ip")]).unwrap_err();
        assert!(e.to_string().contains("--trusted-proxies"), "{e}");
        let e = load(None, &[o("workspaces.fc.protocol", "FTP")]).unwrap_err();
        assert!(
            e.to_string().contains("QINGTING_WORKSPACES_FC_PROTOCOL"),
            "{e}"
        );
        let e = load(Some("lisen = \"x\""), &[]).unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
        let e = load(None, &[o("public_url", "ftp://x")]).unwrap_err();
        assert!(e.to_string().contains("public URL"), "{e}");
    }

    #[test]
    fn describe_lists_every_setting_with_secrets_masked() {
        let c = load(
            None,
            &[
                o("database_url", "postgres://u:hunter2@db/q"),
                o("session_secret", "abcd"),
                o("github.client_secret", "gh-secret"),
                o("workspaces.fc.access_key_secret", "fc-secret"),
            ],
        )
        .unwrap();
        let d = describe(&c);
        for secret in ["hunter2", "abcd", "gh-secret", "fc-secret"] {
            assert!(!d.contains(secret), "{secret} in {d}");
        }
        assert!(d.contains("postgres://********@db/q"), "{d}");
        let table: toml::Table = toml::from_str(&describe(&Config::default())).unwrap();
        let defaults = catalog::defaults();
        for s in catalog::SETTINGS {
            if catalog::lookup(&defaults, s.key).is_some() {
                assert!(
                    catalog::lookup(&table, s.key).is_some(),
                    "{} missing",
                    s.key
                );
            }
        }
    }
}
