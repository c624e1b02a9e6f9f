//! `<user>-<workspace>.<domain>` host names. User names have no hyphen, so the first hyphen
//! splits the label; both halves must match their grammars exactly (reject, don't clean).

use crate::names::{is_username, is_workspace_name};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceHost {
    pub user: String,
    pub workspace: String,
}

/// The workspace a `Host` header names under `domain`, or `None` (the dashboard, or junk).
/// Only the `Host` the client connected with may be passed here, never `X-Forwarded-Host`
/// from an untrusted peer.
pub fn parse(host: &str, domain: &str) -> Option<WorkspaceHost> {
    let host = host.trim().to_ascii_lowercase();
    // Strip a port, but not from a bracketed IPv6 literal (which is never a workspace).
    let name = match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(']') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host.as_str(),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let label = name
        .strip_suffix(domain.to_ascii_lowercase().as_str())?
        .strip_suffix('.')?;
    if label.contains('.') {
        return None;
    }
    let (user, workspace) = label.split_once('-')?;
    if !(is_username(user) && is_workspace_name(workspace)) {
        return None;
    }
    Some(WorkspaceHost {
        user: user.into(),
        workspace: workspace.into(),
    })
}

/// The host of a workspace (with the dashboard's port, if any).
pub fn format(user: &str, workspace: &str, domain: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{user}-{workspace}.{domain}:{p}"),
        None => format!("{user}-{workspace}.{domain}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wh(u: &str, w: &str) -> Option<WorkspaceHost> {
        Some(WorkspaceHost {
            user: u.into(),
            workspace: w.into(),
        })
    }

    #[test]
    fn parses_workspace_hosts() {
        assert_eq!(
            parse("alice-demo.localhost:3000", "localhost"),
            wh("alice", "demo")
        );
        assert_eq!(
            parse("alice-my-ws.studio.example.com", "studio.example.com"),
            wh("alice", "my-ws")
        );
        assert_eq!(
            parse("ALICE-Demo.localhost", "localhost"),
            wh("alice", "demo")
        );
        assert_eq!(
            parse("alice-demo.localhost.", "localhost"),
            wh("alice", "demo")
        );
        assert_eq!(
            format("alice", "demo", "localhost", Some(3000)),
            "alice-demo.localhost:3000"
        );
    }

    #[test]
    fn refuses_everything_else() {
        for h in [
            "localhost:3000",            // the dashboard
            "alice.localhost",           // no workspace part
            "alice-.localhost",          // empty workspace
            "-demo.localhost",           // empty user
            "al-demo.localhost",         // user too short
            "alice-demo.evil.localhost", // nested label
            "alice-demo.localhost.evil", // other domain
            "alice-demo.notlocalhost",   // suffix without a dot boundary
            "alice-de_mo.localhost",     // bad workspace grammar
            "alice-demo.localhost:x",    // junk port
            "[::1]:3000",
            "",
        ] {
            assert_eq!(parse(h, "localhost"), None, "{h}");
        }
    }
}
