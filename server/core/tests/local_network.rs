//! A local workspace's network, with the real sandbox, slirp4netns and firewall: the internet
//! works (a real `pip download` from the package index, names resolved inside), while this
//! host's loopback and addresses, Postgres, a private network next to the host and the
//! firewall itself stay out of reach. A template that says `network = "none"` has no network.

use qingting_core::{
    config::NetworkPolicy,
    templates::Network as TemplateNetwork,
    testing::{
        install_test_ide, local_options, sandbox_available, unix_http, workspace_spec, IdeReaper,
    },
    workspaces::{
        local::{LocalOptions, LocalRuntime, Network, Policy},
        runtime::Runtime,
    },
};
use serde_json::{json, Value};
use std::{process::Command, time::Duration};

fn runtime(data: &std::path::Path, policy: NetworkPolicy) -> LocalRuntime {
    LocalRuntime::new(LocalOptions {
        policy: Policy {
            grace: Duration::from_millis(300),
            ..Policy::default()
        },
        network: policy,
        network_deny: vec!["203.0.113.99".parse().unwrap()],
        ..local_options(data)
    })
    .unwrap()
}

/// Runs `argv` inside workspace `id` (as its terminal would).
async fn exec(rt: &LocalRuntime, id: i64, argv: &[&str]) -> (i64, String) {
    let body = json!({ "argv": argv, "timeout": 120 }).to_string();
    let (status, out) = unix_http(&rt.layout().socket(id), "PUT", "/exec", body.as_bytes())
        .await
        .unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&out).unwrap();
    (
        v["code"].as_i64().unwrap(),
        v["out"].as_str().unwrap().to_string(),
    )
}

/// Whether a TCP connection from inside workspace `id` to `addr` succeeds.
async fn connects(rt: &LocalRuntime, id: i64, addr: &str) -> bool {
    let script = format!(
        "import socket,sys\nh,p='{addr}'.rsplit(':',1)\ntry:\n socket.create_connection((h.strip('[]'),int(p)),timeout=3)\nexcept Exception as e:\n print(e); sys.exit(1)"
    );
    exec(rt, id, &["/usr/bin/python3", "-c", &script]).await.0 == 0
}

/// A web server in a network namespace of its own, on a private address next to the host
/// (as a database or a metadata service would be). Removed on drop.
struct PrivateNeighbour {
    ns: String,
    server: std::process::Child,
    addr: String,
}

impl PrivateNeighbour {
    fn start() -> Option<Self> {
        // Interface names have at most 15 characters.
        let ns = format!("qtn{}", std::process::id() % 10_000_000);
        let sh = |cmd: &str| {
            Command::new("sh")
                .args(["-c", cmd])
                .status()
                .is_ok_and(|s| s.success())
        };
        let octet = std::process::id() % 200 + 20;
        let (host_ip, ns_ip) = (format!("10.213.{octet}.1"), format!("10.213.{octet}.2"));
        let up = sh(&format!(
            "ip netns add {ns} && ip link add {ns}-h type veth peer name {ns}-n \
             && ip link set {ns}-n netns {ns} && ip addr add {host_ip}/30 dev {ns}-h \
             && ip link set {ns}-h up && ip netns exec {ns} ip addr add {ns_ip}/30 dev {ns}-n \
             && ip netns exec {ns} ip link set {ns}-n up && ip netns exec {ns} ip link set lo up"
        ));
        if !up {
            let _ = sh(&format!("ip netns del {ns}; ip link del {ns}-h"));
            return None;
        }
        let server = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "/usr/bin/python3",
                "-m",
                "http.server",
                "8080",
            ])
            .args(["--bind", &ns_ip])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        Some(Self {
            ns,
            server,
            addr: format!("{ns_ip}:8080"),
        })
    }
}

impl Drop for PrivateNeighbour {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!("ip netns del {0}; ip link del {0}-h", self.ns),
            ])
            .status();
    }
}

fn host_can_reach(addr: &str) -> bool {
    for _ in 0..50 {
        if std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1))
            .is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_networked_workspace_reaches_the_internet_and_nothing_near_it() {
    if !sandbox_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let _reaper = IdeReaper(data.path().to_path_buf());
    let mut template = install_test_ide(&data.path().join("editors"));
    template.network = TemplateNetwork::Internet;
    let rt = runtime(data.path(), NetworkPolicy::Template);
    let report = rt.isolation();
    eprintln!("isolation: {report}");
    let root = unsafe { libc::geteuid() } == 0;
    if !matches!(rt.network(), Network::Firewalled { .. }) {
        // Without root the kernel may refuse the firewall (gVisor does); then no workspace
        // gets a network, which the report says. As root it must work.
        assert!(!root, "the network must be available as root: {report}");
        assert_eq!(report["network"]["mode"], "none", "{report}");
        return;
    }
    assert!(report["network"]["refused"]
        .to_string()
        .contains("203.0.113.99/32"));

    let ws = workspace_spec(1, &template);
    let st = rt.provision(&ws).await.unwrap();
    rt.start(&ws, &st).await.unwrap();

    // Names resolve through the workspace's own forwarder, and a real package downloads.
    let (_, resolv) = exec(&rt, 1, &["cat", "/etc/resolv.conf"]).await;
    assert!(resolv.contains("nameserver 10.0.2.3"), "{resolv}");
    let (code, out) = exec(
        &rt,
        1,
        &[
            "/usr/bin/python3",
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-cache-dir",
            "--dest",
            "/tmp/dl",
            "six==1.16.0",
        ],
    )
    .await;
    assert_eq!(code, 0, "pip download failed inside the workspace:\n{out}");
    assert!(out.contains("six-1.16.0"), "{out}");

    // Its own loopback is its own (a Jupyter kernel's channels, a dev server).
    let (code, out) = exec(
        &rt,
        1,
        &[
            "/bin/sh",
            "-c",
            "python3 -m http.server 8765 --bind 127.0.0.1 >/dev/null 2>&1 &",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    // The server takes a moment to listen (longer on a loaded machine).
    let mut reached = false;
    for _ in 0..50 {
        reached = connects(&rt, 1, "127.0.0.1:8765").await;
        if reached {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(reached, "its own loopback");

    // Nothing on this host: a port on its loopback, the same port on its own addresses,
    // Postgres, and the slirp gateway (which would be the host's loopback).
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut near = vec![
        format!("127.0.0.1:{port}"),
        format!("10.0.2.2:{port}"),
        "127.0.0.1:5432".to_string(),
        "10.0.2.2:5432".to_string(),
        "203.0.113.99:443".to_string(),
    ];
    for addr in qingting_core::workspaces::local::host_addresses() {
        if !addr.is_loopback() {
            let a = if addr.is_ipv4() {
                addr.to_string()
            } else {
                format!("[{addr}]")
            };
            assert!(host_can_reach(&format!("{a}:{port}")) || addr.is_ipv6());
            near.push(format!("{a}:{port}"));
        }
    }
    for addr in &near {
        assert!(!connects(&rt, 1, addr).await, "a workspace reached {addr}");
    }

    // Nor a private network next to the host, which the host itself reaches.
    if root {
        let neighbour = PrivateNeighbour::start().expect("a network namespace for the test");
        assert!(
            host_can_reach(&neighbour.addr),
            "the host reaches its neighbour"
        );
        assert!(
            !connects(&rt, 1, &neighbour.addr).await,
            "a workspace reached the private {}",
            neighbour.addr
        );
    }

    // The firewall is out of the workspace's hands.
    let (code, out) = exec(&rt, 1, &["nft", "flush", "ruleset"]).await;
    assert_ne!(code, 0, "a workspace flushed its firewall: {out}");
    assert!(!connects(&rt, 1, &format!("127.0.0.1:{port}")).await);

    // Stop ends its network stack too.
    let slirp = std::fs::read_to_string(data.path().join("run/1.net.pid")).unwrap();
    let slirp_pid: i32 = slirp.split_whitespace().next().unwrap().parse().unwrap();
    rt.stop(&ws, &Value::Null).await.unwrap();
    let ended = || {
        std::fs::read_to_string(format!("/proc/{slirp_pid}/stat"))
            .map_or(true, |s| s.contains(") Z"))
    };
    for _ in 0..100 {
        if ended() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ended(), "slirp4netns outlived its workspace");
    rt.destroy(&ws, &Value::Null).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_network_a_workspace_reaches_nothing() {
    if !sandbox_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let _reaper = IdeReaper(data.path().to_path_buf());
    let mut template = install_test_ide(&data.path().join("editors"));
    template.network = TemplateNetwork::Internet;
    // The operator turned the network off: the template's wish does not count.
    let rt = runtime(data.path(), NetworkPolicy::None);
    assert_eq!(rt.isolation()["network"]["mode"], "none");
    let ws = workspace_spec(1, &template);
    let st = rt.provision(&ws).await.unwrap();
    rt.start(&ws, &st).await.unwrap();
    let (code, out) = exec(
        &rt,
        1,
        &[
            "/usr/bin/python3",
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--dest",
            "/tmp/dl",
            "--retries",
            "0",
            "--timeout",
            "3",
            "six==1.16.0",
        ],
    )
    .await;
    assert_ne!(code, 0, "{out}");
    assert!(!data.path().join("run/1.net.pid").exists());
    rt.destroy(&ws, &Value::Null).await.unwrap();
}
