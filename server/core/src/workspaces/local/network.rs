//! Outbound network for a local workspace, without the host in reach.
//!
//! The sandbox keeps its own network namespace. Before anything of the workspace's runs in it,
//! the sandbox's first process (still holding `CAP_NET_ADMIN` over that namespace) loads a
//! firewall that refuses, on anything but the sandbox's own loopback interface, the host's
//! loopback and addresses, private, shared and link-local ranges (cloud metadata included)
//! and whatever the operator lists; then it drops its capabilities and starts the IDE, which
//! can never change the rules. Only then does this server attach slirp4netns, a user-mode
//! network stack: the namespace gets a `tap0` with `10.0.2.100`, a gateway that is not the
//! host (`--disable-host-loopback`), and a DNS forwarder at `10.0.2.3` (the only private
//! address a workspace may reach, on port 53).
//! slirp4netns itself runs sandboxed (`--enable-sandbox --enable-seccomp`), as a process of
//! its own that this server stops with the IDE.

use super::process::ProcId;
use crate::ip_range::IpRange;
use std::{
    io::Read,
    net::IpAddr,
    os::{fd::AsRawFd, unix::process::CommandExt},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

/// Where the sandbox's first process finds the rules, and the file it creates (in the
/// workspace's run dir) once they are in force.
pub const RULES_IN_SANDBOX: &str = "/run/firewall.nft";
pub const READY_MARK: &str = "net-ready";
/// slirp4netns's DNS forwarder, as the workspace sees it.
pub const DNS: &str = "10.0.2.3";

/// Never reachable from a workspace, whatever the configuration says.
pub const ALWAYS_DENIED: [&str; 13] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::1/128",
    "::ffff:0:0/96",
    "fc00::/7",
    "fe80::/10",
];

/// What the firewall refuses: the fixed ranges, the host's addresses (read now: they can
/// change while the server runs) and the operator's.
pub fn denied(extra: &[IpRange]) -> Vec<IpRange> {
    let mut out: Vec<IpRange> = ALWAYS_DENIED
        .iter()
        .map(|r| r.parse().expect("fixed ranges parse"))
        .collect();
    for addr in host_addresses() {
        if !out.iter().any(|r| r.contains(addr)) {
            out.push(IpRange::host(addr));
        }
    }
    out.extend_from_slice(extra);
    out
}

/// The nftables rules the sandbox loads.
pub fn rules(denied: &[IpRange]) -> String {
    let list = |v4: bool| {
        denied
            .iter()
            .filter(|r| r.addr.is_ipv4() == v4)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "table inet qingting {{\n\
         \tchain out {{\n\
         \t\ttype filter hook output priority 0; policy accept;\n\
         \t\toifname \"lo\" accept\n\
         \t\tip daddr {DNS} udp dport 53 accept\n\
         \t\tip daddr {DNS} tcp dport 53 accept\n\
         \t\tip daddr {{ {} }} reject\n\
         \t\tip6 daddr {{ {} }} reject\n\
         \t}}\n\
         }}\n",
        list(true),
        list(false)
    )
}

/// The resolver configuration a workspace sees.
pub fn resolv_conf() -> String {
    format!("# QingTing Studio: the workspace's DNS forwarder\nnameserver {DNS}\n")
}

/// Every address of this host's interfaces.
pub fn host_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we only read, then free once.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let sa = (*cur).ifa_addr;
            if !sa.is_null() {
                match i32::from((*sa).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(sa as *const libc::sockaddr_in);
                        out.push(IpAddr::from(
                            u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                        ));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(sa as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// A process inside the sandbox `sandbox_pid` started that is in the sandbox's network
/// namespace: the first of its descendants, breadth first, whose namespace is not this
/// server's. (Usually bubblewrap's own child; some kernels, gVisor among them, report that one
/// in the host's namespace, and then the next level down is the answer.)
pub fn namespace_holder(sandbox_pid: i32) -> Option<i32> {
    let own = std::fs::read_link("/proc/self/ns/net").ok()?;
    let mut level = vec![sandbox_pid];
    for _ in 0..4 {
        let next: Vec<i32> = level
            .into_iter()
            .flat_map(super::process::children)
            .collect();
        if let Some(found) = next
            .iter()
            .copied()
            .find(|c| std::fs::read_link(format!("/proc/{c}/ns/net")).is_ok_and(|ns| ns != own))
        {
            return Some(found);
        }
        level = next;
    }
    None
}

/// Waits until the sandbox's firewall is in force, then connects its namespace to the
/// outside through slirp4netns, recorded in `pidfile` at once (so a server that dies now
/// still finds it); returns once the namespace is configured.
pub async fn attach(
    sandbox: ProcId,
    ready_mark: &Path,
    pidfile: &Path,
    limit: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + limit;
    while !ready_mark.exists() {
        if !sandbox.alive() {
            return Err("the sandbox ended before its firewall was in force".into());
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the sandbox's firewall was not in force in time".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let holder = namespace_holder(sandbox.pid).ok_or("the sandbox has no namespace holder")?;
    let (mut ready, ready_w) = std::io::pipe().map_err(|e| e.to_string())?;
    let fd = ready_w.as_raw_fd();
    let mut cmd = Command::new("slirp4netns");
    cmd.args([
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        "--enable-sandbox",
        "--enable-seccomp",
        "--ready-fd=3",
    ])
    .arg(holder.to_string())
    .arg("tap0")
    .env_clear()
    .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Its own session: never the server's terminal, killed as a group.
            if libc::setsid() < 0 || libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = tokio::process::Command::from(cmd)
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| format!("cannot start slirp4netns: {e}"))?;
    drop(ready_w);
    let proc = child
        .id()
        .and_then(|p| ProcId::of(p as i32))
        .ok_or("slirp4netns exited at once")?;
    if let Err(e) = proc.save(pidfile) {
        stop(Some(proc));
        return Err(format!("cannot record slirp4netns: {e}"));
    }
    // It writes "1" once tap0 is configured, or closes the pipe when it fails.
    let wait = tokio::task::spawn_blocking(move || {
        let mut b = [0u8; 1];
        matches!(ready.read(&mut b), Ok(1))
    });
    match tokio::time::timeout_at(deadline, wait).await {
        Ok(Ok(true)) => Ok(()),
        _ => {
            stop(Some(proc));
            Err("slirp4netns could not connect the workspace's network".into())
        }
    }
}

/// Stops a workspace's slirp4netns.
pub fn stop(proc: Option<ProcId>) {
    if let Some(p) = proc.filter(ProcId::alive) {
        // SAFETY: plain signals to a process group we started (and just checked is ours).
        unsafe {
            libc::kill(-p.pid, libc::SIGKILL);
            libc::kill(p.pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_refuse_the_fixed_ranges_the_host_and_the_operators_list() {
        let extra: IpRange = "203.0.113.0/24".parse().unwrap();
        let d = denied(&[extra]);
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "192.168.1.1",
            "fd00::1",
            "::1",
        ] {
            assert!(d.iter().any(|r| r.contains(ip.parse().unwrap())), "{ip}");
        }
        for ip in host_addresses() {
            assert!(d.iter().any(|r| r.contains(ip)), "host address {ip}");
        }
        assert!(d.contains(&extra));
        assert!(!d.iter().any(|r| r.contains("8.8.8.8".parse().unwrap())));
        let text = rules(&d);
        assert!(text.contains("ip daddr 10.0.2.3 udp dport 53 accept"));
        // The workspace's own loopback (a Jupyter kernel's channels, a dev server) is its own.
        assert!(text.find("oifname \"lo\" accept").unwrap() < text.find("reject").unwrap());
        assert!(text.contains("203.0.113.0/24"));
        assert!(text.contains("ip6 daddr { ::1/128,"));
        // DNS is accepted before the private ranges are refused.
        assert!(text.find("dport 53").unwrap() < text.find("reject").unwrap());
    }
}
