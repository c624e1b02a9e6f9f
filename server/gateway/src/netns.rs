//! Connecting to a port inside a workspace's own network namespace (a port preview).
//!
//! A socket belongs to the namespace it was created in. So a short-lived thread enters the
//! namespace (which changes only that thread's view), creates the socket and hands it back;
//! the connect itself then runs on the async runtime like any other, so a slow or flooded app
//! ties up no thread. Before entering, the thread checks that the namespace is the one of the
//! process it was told about (same pid *and* start time: a pid reused since is refused) and
//! that it is not this server's own namespace, which would mean the host's loopback.

use std::{
    fs::File,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::{
        fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd},
        unix::fs::MetadataExt,
    },
};
use tokio::net::{TcpSocket, TcpStream};

/// The process whose network namespace to enter, identified by pid and start time (field 22
/// of `/proc/<pid>/stat`, in clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Holder {
    pub pid: i32,
    pub start: u64,
}

impl Holder {
    pub fn of(pid: i32) -> Option<Self> {
        Some(Self {
            pid,
            start: start_time(pid)?,
        })
    }
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Connects to `port` on the loopback of `holder`'s network namespace: `127.0.0.1`, or `::1`
/// when nothing listens there (what `localhost` means to Node and Vite).
pub async fn connect(holder: Holder, port: u16) -> io::Result<TcpStream> {
    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    match connect_to(holder, v4).await {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => connect_to(
            holder,
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        )
        .await
        .map_err(|_| e),
        other => other,
    }
}

async fn connect_to(holder: Holder, addr: SocketAddr) -> io::Result<TcpStream> {
    let fd = socket_in(holder, addr.is_ipv4()).await?;
    // SAFETY: a fresh, unconnected, non-blocking TCP socket that nothing else owns.
    let socket = unsafe { TcpSocket::from_raw_fd(fd.into_raw_fd()) };
    socket.connect(addr).await
}

async fn socket_in(holder: Holder, v4: bool) -> io::Result<OwnedFd> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-socket".into())
        .spawn(move || {
            let _ = tx.send(enter_and_create(holder, v4));
        })?;
    rx.await
        .map_err(|_| io::Error::other("the namespace thread ended"))?
}

/// On a thread of its own, which ends right after.
fn enter_and_create(holder: Holder, v4: bool) -> io::Result<OwnedFd> {
    let gone = || io::Error::new(io::ErrorKind::NotFound, "the workspace's process has ended");
    let ns = File::open(format!("/proc/{}/ns/net", holder.pid)).map_err(|_| gone())?;
    // Opened first, checked second: if the pid was reused before the open, the start time
    // differs now.
    if start_time(holder.pid) != Some(holder.start) {
        return Err(gone());
    }
    let theirs = ns.metadata()?;
    let own = std::fs::metadata("/proc/thread-self/ns/net")?;
    if (theirs.dev(), theirs.ino()) == (own.dev(), own.ino()) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "refusing the server's own network namespace",
        ));
    }
    // SAFETY: setns and socket on this thread only; the fd is checked before it is owned.
    unsafe {
        if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
            return Err(io::Error::last_os_error());
        }
        let domain = if v4 { libc::AF_INET } else { libc::AF_INET6 };
        let fd = libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_servers_own_namespace_and_a_stale_process_are_refused() {
        let me = Holder::of(std::process::id() as i32).unwrap();
        let e = connect(me, 9).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        let stale = Holder {
            start: me.start + 1,
            ..me
        };
        assert_eq!(
            connect(stale, 9).await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
