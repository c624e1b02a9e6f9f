//! Where the configuration comes from: the TOML file named by `--config`, and one flag and
//! environment variable per setting, generated from the declarations in
//! `qingting_core::config::catalog` (so `--help` and the docs list exactly what loads).

use anyhow::Context;
use clap::{parser::ValueSource, Arg, ArgAction, ArgMatches};
use qingting_core::config::{
    catalog::{self, Setting, SETTINGS},
    layers::{self, Override},
};
use qingting_core::Config;
use std::path::PathBuf;

/// The file and the flag/environment values given on this run.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    pub overrides: Vec<Override>,
}

pub fn load(sources: &Sources) -> anyhow::Result<Config> {
    let text = match &sources.file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?,
        ),
        None => None,
    };
    layers::load(text.as_deref(), &sources.overrides).map_err(|e| {
        let file = sources.file.as_ref().map(|p| format!(" ({})", p.display()));
        anyhow::anyhow!("invalid configuration{}: {e}", file.unwrap_or_default())
    })
}

const CONFIG: &str = "config";

fn arg(setting: &'static Setting, defaults: &toml::Table) -> Arg {
    let heading = match setting.section() {
        "" => "Settings".to_string(),
        section => format!("Settings [{section}]"),
    };
    let short_help = setting.help.split(". ").next().unwrap_or(setting.help);
    let arg = Arg::new(setting.key)
        .long(setting.flag())
        .env(setting.env())
        .global(true)
        .value_name("VALUE")
        .help_heading(heading)
        .hide_env_values(setting.secret)
        .help(format!(
            "{} [default: {}]",
            short_help.trim_end_matches('.'),
            setting.default_text(defaults)
        ))
        .long_help(format!(
            "{}\n[default: {}] [TOML key: {}]",
            setting.help,
            setting.default_text(defaults),
            setting.key
        ));
    match catalog::lookup(defaults, setting.key) {
        _ if setting.is_list(defaults) => arg.action(ArgAction::Append).value_delimiter(','),
        // `--insecure-no-sandbox` alone means true; the `=` keeps it from eating a subcommand.
        Some(toml::Value::Boolean(_)) => arg
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true"),
        _ => arg,
    }
}

impl clap::Args for Sources {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let defaults = catalog::defaults();
        let cmd = cmd.arg(
            Arg::new(CONFIG)
                .long(CONFIG)
                .env("QINGTING_CONFIG")
                .global(true)
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("TOML file with any of the settings below (docs/configuration.md)"),
        );
        SETTINGS
            .iter()
            .fold(cmd, |cmd, setting| cmd.arg(arg(setting, &defaults)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for Sources {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let overrides = SETTINGS
            .iter()
            .filter(|s| {
                matches!(
                    m.value_source(s.key),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            })
            .map(|s| Override {
                key: s.key,
                value: m
                    .get_many::<String>(s.key)
                    .map(|v| v.cloned().collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Self {
            file: m.get_one::<PathBuf>(CONFIG).cloned(),
            overrides,
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}
