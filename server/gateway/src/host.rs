//! `<user>-<workspace>.<domain>` host names, and `<port>-<user>-<workspace>.<domain>` for a
//! port a workspace listens on (its preview). User names start with a letter and have no
//! hyphen, so a leading number is a port and the next hyphen splits user from workspace; every
//! part must match its grammar exactly (reject, don't clean).

use crate::names::{is_username, is_workspace_name};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceHost {
    pub user: String,
    pub workspace: String,
    /// The previewed port, for `<port>-<user>-<workspace>` hosts.
    pub port: Option<u16>,
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
    let (first, rest) = label.split_once('-')?;
    let (port, (user, workspace)) = if first.bytes().all(|b| b.is_ascii_digit()) {
        (Some(preview_port(first)?), rest.split_once('-')?)
    } else {
        (None, (first, rest))
    };
    if !(is_username(user) && is_workspace_name(workspace)) {
        return None;
    }
    Some(WorkspaceHost {
        user: user.into(),
        workspace: workspace.into(),
        port,
    })
}

/// A port as a host label writes it: 1–65535, no leading zero (one spelling per port).
fn preview_port(digits: &str) -> Option<u16> {
    if digits.starts_with('0') {
        return None;
    }
    digits.parse().ok().filter(|p| *p > 0)
}

/// The host of a workspace's port preview (with the dashboard's port, if any).
pub fn format_preview(
    preview: u16,
    user: &str,
    workspace: &str,
    domain: &str,
    port: Option<u16>,
) -> String {
    format!("{preview}-{}", format(user, workspace, domain, port))
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
            port: None,
        })
    }

    #[test]
    fn parses_port_preview_hosts() {
        let mut want = wh("alice", "my-ws");
        want.as_mut().unwrap().port = Some(8000);
        assert_eq!(parse("8000-alice-my-ws.localhost:3000", "localhost"), want);
        assert_eq!(
            format_preview(8000, "alice", "my-ws", "localhost", Some(3000)),
            "8000-alice-my-ws.localhost:3000"
        );
        for h in [
            "0-alice-demo.localhost",     // no port 0
            "08000-alice-demo.localhost", // a second spelling of 8000
            "65536-alice-demo.localhost", // too big
            "8000-alice.localhost",       // no workspace
            "8000-8000-alice-demo.localhost",
            "8000--alice-demo.localhost",
        ] {
            assert_eq!(parse(h, "localhost"), None, "{h}");
        }
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
