//! Workspace templates: which editor, which language environment, resource limits, the IDE's
//! command line and health path. Shipped defaults in `templates/builtin.toml`; an operator file
//! adds templates or replaces shipped ones by id.

use crate::editors::Editor;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// `^[a-z][a-z0-9-]{0,30}$`; also the container image's name for remote runtimes.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub editor: Editor,
    pub language: String,
    /// Container image (name or full reference) for remote runtimes.
    #[serde(default)]
    pub image: String,
    pub memory_mb: u64,
    pub max_processes: u32,
    pub health_path: String,
    pub command: Vec<String>,
    /// Outbound network for the local runtime (the operator can turn it off for all).
    #[serde(default)]
    pub network: Network,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The internet, through a user-mode network stack and a firewall that keeps the host,
    /// other workspaces and private ranges out of reach (docs/runtimes.md).
    #[default]
    Internet,
    /// No network at all (only the workspace's own loopback).
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    #[serde(rename = "template", default)]
    templates: Vec<Template>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read templates file {path}: {error}")]
    Read { path: String, error: String },
    #[error("invalid templates file {path}: {error}")]
    Parse { path: String, error: String },
    #[error("template {id:?}: {problem}")]
    Invalid { id: String, problem: String },
}

const PLACEHOLDERS: [&str; 4] = ["{editors}", "{files}", "{ide}", "{socket}"];

fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    (1..=31).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl Template {
    fn check(&self) -> Result<(), TemplateError> {
        let bad = |problem: &str| {
            Err(TemplateError::Invalid {
                id: self.id.clone(),
                problem: problem.into(),
            })
        };
        if !valid_id(&self.id) {
            return bad("id must match ^[a-z][a-z0-9-]{0,30}$");
        }
        if self.name.trim().is_empty() {
            return bad("name is empty");
        }
        if self.command.is_empty() {
            return bad("command is empty");
        }
        if !self.command.iter().any(|a| a.contains("{socket}")) {
            return bad("command must listen on {socket}");
        }
        for arg in &self.command {
            let mut rest = arg.as_str();
            while let Some(i) = rest.find('{') {
                let tail = &rest[i..];
                match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
                    Some(p) => rest = &tail[p.len()..],
                    None => {
                        return bad(&format!(
                            "unknown placeholder in {arg:?} (use {PLACEHOLDERS:?})"
                        ))
                    }
                }
            }
        }
        if !self.health_path.starts_with('/') {
            return bad("health_path must start with /");
        }
        if self.memory_mb < 128 || self.max_processes < 16 {
            return bad("memory_mb must be at least 128 and max_processes at least 16");
        }
        Ok(())
    }

    /// The command with its placeholders filled in.
    pub fn argv(&self, editors: &Path, files: &Path, ide: &Path, socket: &Path) -> Vec<String> {
        qingting_gateway::ide::fill(&self.command, editors, files, ide, socket)
    }
}

fn parse(text: &str, path: &str) -> Result<Vec<Template>, TemplateError> {
    let file: TemplateFile = toml::from_str(text).map_err(|e| TemplateError::Parse {
        path: path.into(),
        error: e.to_string(),
    })?;
    for t in &file.templates {
        t.check()?;
    }
    Ok(file.templates)
}

/// The shipped templates.
pub fn builtin() -> Vec<Template> {
    parse(include_str!("../templates/builtin.toml"), "builtin.toml")
        .expect("shipped templates are valid")
}

/// Shipped templates plus the operator's file (whose templates replace shipped ones by id).
pub fn load(operator_file: Option<&Path>) -> Result<Vec<Template>, TemplateError> {
    let mut all = builtin();
    if let Some(path) = operator_file {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TemplateError::Read {
            path: p.clone(),
            error: e.to_string(),
        })?;
        for t in parse(&text, &p)? {
            match all.iter_mut().find(|x| x.id == t.id) {
                Some(slot) => *slot = t,
                None => all.push(t),
            }
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_templates_cover_the_required_environments() {
        let t = builtin();
        let ids: Vec<&str> = t.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["vscode-python", "vscode-node", "jupyter-python"]);
        let jp = &t[2];
        assert_eq!(jp.editor, Editor::Jupyter);
        let argv = jp.argv(
            Path::new("/e"),
            Path::new("/w/files"),
            Path::new("/w/ide"),
            Path::new("/s/ide.sock"),
        );
        assert_eq!(argv[0], "/e/jupyter/bin/jupyter-lab");
        assert!(argv.contains(&"--ServerApp.sock=/s/ide.sock".to_string()));
        assert!(argv.contains(&"--ServerApp.root_dir=/w/files".to_string()));
    }

    #[test]
    fn operator_file_adds_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.toml");
        std::fs::write(
            &f,
            r#"
[[template]]
id = "jupyter-python"
name = "Jupyter (big)"
editor = "jupyter"
language = "python"
memory_mb = 8192
max_processes = 256
health_path = "/api/status"
command = ["{editors}/jupyter/bin/jupyter", "lab", "--ServerApp.sock={socket}"]

[[template]]
id = "vscode-go"
name = "VS Code · Go"
editor = "vscode"
language = "go"
memory_mb = 4096
max_processes = 512
health_path = "/healthz"
command = ["{editors}/code-server/node_modules/.bin/code-server", "--socket", "{socket}", "{files}"]
"#,
        )
        .unwrap();
        let all = load(Some(&f)).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(
            all.iter()
                .find(|t| t.id == "jupyter-python")
                .unwrap()
                .memory_mb,
            8192
        );
        assert!(all.iter().any(|t| t.id == "vscode-go"));
    }

    #[test]
    fn invalid_templates_are_refused_with_the_reason() {
        let base = |extra: &str| {
            format!(
                "[[template]]\nid = \"ok\"\nname = \"n\"\neditor = \"vscode\"\nlanguage = \"x\"\nmemory_mb = 512\n\
                 max_processes = 64\nhealth_path = \"/healthz\"\n{extra}\n"
            )
        };
        let cases = [
            (
                base("command = [\"ide\", \"--port\", \"8080\"]"),
                "{socket}",
            ),
            (
                base("command = [\"ide\", \"{socket}\", \"{home}\"]"),
                "unknown placeholder",
            ),
            (base("command = []"), "command is empty"),
            (base("command = [\"{socket}\"]\nimage = 3"), "invalid"),
            (
                base("command = [\"{socket}\"]")
                    .replace("editor = \"vscode\"", "editor = \"emacs\""),
                "invalid",
            ),
            (
                base("command = [\"{socket}\"]").replace("id = \"ok\"", "id = \"Bad_Id\""),
                "id must match",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text, "t.toml").unwrap_err().to_string();
            assert!(err.contains(want), "{err} should mention {want}");
        }
    }
}
