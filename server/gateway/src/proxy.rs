//! Forwarding one request to a workspace's IDE, HTTP and WebSocket alike, streaming in both
//! directions. The gateway's and the dashboard's cookies never reach the IDE.

use crate::{
    cookie,
    pool::{Conn, UpstreamPool},
};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;
use std::{
    error::Error as StdError,
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};
use tokio::net::{TcpStream, UnixStream};

/// Where a workspace's IDE listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Upstream {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
    /// A port on the loopback of a workspace's own network namespace, that of the process
    /// `holder` (the workspace is part of the key too: pooled connections of one never serve
    /// another).
    Namespaced {
        workspace: i64,
        holder: crate::netns::Holder,
        port: u16,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the IDE is not reachable: {0}")]
    Unreachable(String),
    #[error("the IDE broke the connection: {0}")]
    Broken(String),
}

/// Headers that describe one hop, never forwarded as they are (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
];

/// What the proxy tells the IDE about the original request.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub client_ip: String,
    pub proto: &'static str,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `req` to the IDE and returns its response. For a WebSocket upgrade the response is
/// the IDE's `101`, and the two upgraded connections are spliced together in the background;
/// `keep_alive` lives as long as that splice (the caller counts open WebSockets with it), and
/// the splice ends when `revoked` completes (the session it was opened for has ended).
pub async fn forward<B, K, R>(
    mut req: Request<B>,
    upstream: &Upstream,
    pool: &UpstreamPool<B>,
    fwd: &Forwarded,
    keep_alive: K,
    revoked: R,
) -> Result<Response<Proxied<B>>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    K: Send + 'static,
    R: std::future::Future<Output = ()> + Send + 'static,
{
    let upgrade = crate::access::is_websocket(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    prepare_headers(&mut req, upgrade, fwd);
    *req.uri_mut() = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .map_err(|_| ProxyError::Unreachable("bad request target".into()))?;

    let (conn, res) = if upgrade {
        // An upgraded connection becomes the WebSocket's own: never kept, and run by a task
        // of its own, which splices it after the upgrade.
        let res = connect_spawned(upstream)
            .await?
            .send_request(req)
            .await
            .map_err(|e| ProxyError::Broken(e.to_string()))?;
        (None, res)
    } else {
        let sent = match pool.take(upstream) {
            Some(mut kept) => match send(&mut kept, req).await {
                Ok(res) => Ok((kept, res)),
                // The IDE had closed it (a restart, its idle timeout): a new one.
                Err(Failure::Unsent(req)) => Err(req),
                Err(Failure::Failed(e)) => return Err(ProxyError::Broken(e)),
            },
            None => Err(req),
        };
        let (conn, res) = match sent {
            Ok(sent) => sent,
            Err(req) => {
                let mut fresh = connect_driven(upstream).await?;
                let res = send(&mut fresh, req).await.map_err(Failure::into_error)?;
                (fresh, res)
            }
        };
        (Some(conn), res)
    };
    let mut res = res.map(|body| Proxied {
        body,
        conn,
        pool: pool.clone(),
        ended: false,
    });

    if let Some(client_upgrade) = client_upgrade {
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            let ide_upgrade = hyper::upgrade::on(&mut res);
            tokio::spawn(async move {
                let _keep_alive = keep_alive;
                match tokio::try_join!(client_upgrade, ide_upgrade) {
                    Ok((client, ide)) => {
                        let mut client = TokioIo::new(client);
                        let mut ide = TokioIo::new(ide);
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut ide) => {}
                            _ = revoked => tracing::debug!("WebSocket closed: its session ended"),
                        }
                    }
                    Err(e) => tracing::debug!("WebSocket upgrade did not complete: {e}"),
                }
            });
            strip_own_set_cookies(res.headers_mut());
            return Ok(res);
        }
    }
    strip_hop_by_hop(res.headers_mut(), false);
    strip_own_set_cookies(res.headers_mut());
    Ok(res)
}

/// The IDE (or code it runs) must not set or shadow our cookies.
fn strip_own_set_cookies(headers: &mut http::HeaderMap) {
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            // A value we cannot read is dropped rather than risk passing one of ours.
            v.to_str()
                .map(|s| !cookie::is_own(s.split('=').next().unwrap_or(s)))
                .unwrap_or(false)
        })
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for v in kept {
        headers.append(header::SET_COOKIE, v);
    }
}

/// `GET path` on the IDE itself (its health check); returns the status code.
pub async fn probe(upstream: &Upstream, path: &str) -> Result<u16, ProxyError> {
    let req = Request::get(path)
        .header(header::HOST, "localhost")
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| ProxyError::Unreachable(e.to_string()))?;
    let mut sender = connect_spawned(upstream).await?;
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| ProxyError::Broken(e.to_string()))?;
    Ok(res.status().as_u16())
}

/// Whether the IDE answers `GET path` (any status below 500) within 5 s: the health check of
/// the local runtime's supervisor and of `qingting-shell`.
pub async fn healthy(upstream: &Upstream, path: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(5), probe(upstream, path)).await,
        Ok(Ok(s)) if s < 500
    )
}

/// The response body of a proxied request. It drives its connection while it streams, and
/// hands the connection back to the pool once the response is complete (when dropped after
/// its end); a body dropped before its end takes the connection with it (hyper cannot tell
/// where the next response would start).
pub struct Proxied<B> {
    body: Incoming,
    conn: Option<Conn<B>>,
    pool: UpstreamPool<B>,
    /// The body said it has no more frames (a chunked body's length is never known).
    ended: bool,
}

impl<B: Unpin> Body for Proxied<B> {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(conn) = this.conn.as_mut() {
            conn.drive(cx);
        }
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> Drop for Proxied<B> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.ended || self.body.is_end_stream() {
                self.pool.put(conn);
            }
        }
    }
}

/// Why a request on a kept connection did not get a response.
enum Failure<B> {
    /// The connection had ended before the request went out: here it is back, to send on
    /// another.
    Unsent(Request<B>),
    Failed(String),
}

impl<B> Failure<B> {
    fn into_error(self) -> ProxyError {
        match self {
            Failure::Unsent(_) => ProxyError::Broken("the IDE closed a new connection".into()),
            Failure::Failed(e) => ProxyError::Broken(e),
        }
    }
}

/// Sends `req` on `conn`, driving the connection in this task until the response head is in.
async fn send<B>(conn: &mut Conn<B>, req: Request<B>) -> Result<Response<Incoming>, Failure<B>>
where
    B: Body + Send + 'static,
{
    // The end of the last response may still have to pass through the connection before it
    // takes another request; an ended connection never becomes ready.
    let ready = std::future::poll_fn(|cx| match conn.sender.poll_ready(cx) {
        Poll::Ready(r) => Poll::Ready(r.is_ok()),
        Poll::Pending if conn.drive(cx) => Poll::Pending,
        Poll::Pending => Poll::Ready(false),
    })
    .await;
    if !ready {
        return Err(Failure::Unsent(req));
    }
    let mut response = std::pin::pin!(conn.sender.try_send_request(req));
    let outcome = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = response.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        if conn.drive(cx) {
            return Poll::Pending;
        }
        // The connection ended; its dispatcher has answered the request on the way out.
        match response.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Ready(None),
        }
    })
    .await;
    match outcome {
        Some(Ok(res)) => Ok(res),
        Some(Err(mut e)) => match e.take_message() {
            Some(req) => Err(Failure::Unsent(req)),
            None => Err(Failure::Failed(e.into_error().to_string())),
        },
        None => Err(Failure::Failed("the IDE closed the connection".into())),
    }
}

/// What an IDE connection runs over.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Opens a fresh HTTP/1.1 connection to the IDE, driven by whoever uses it (`Conn`).
async fn connect_driven<B>(upstream: &Upstream) -> Result<Conn<B>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(open(upstream).await?))
        .await
        .map_err(|e| ProxyError::Unreachable(e.to_string()))?;
    Ok(Conn::new(upstream.clone(), sender, Box::pin(conn)))
}

/// Opens a fresh HTTP/1.1 connection to the IDE, run by a task of its own (upgrades, probes).
async fn connect_spawned<B>(
    upstream: &Upstream,
) -> Result<hyper::client::conn::http1::SendRequest<B>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(open(upstream).await?))
        .await
        .map_err(|e| ProxyError::Unreachable(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!("IDE connection ended: {e}");
        }
    });
    Ok(sender)
}

/// Connects to the IDE's socket (never through a symlink) or port.
async fn open(upstream: &Upstream) -> Result<Box<dyn Io>, ProxyError> {
    let unreachable = |e: std::io::Error| ProxyError::Unreachable(e.to_string());
    let timed_out = |_| ProxyError::Unreachable("connect timed out".into());
    Ok(match upstream {
        Upstream::Unix(path) => Box::new(
            tokio::time::timeout(CONNECT_TIMEOUT, connect_unix_nofollow(path))
                .await
                .map_err(timed_out)?
                .map_err(unreachable)?,
        ),
        Upstream::Tcp(addr) => {
            let s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
                .await
                .map_err(timed_out)?
                .map_err(unreachable)?;
            s.set_nodelay(true).ok();
            Box::new(s)
        }
        Upstream::Namespaced { holder, port, .. } => {
            let s = tokio::time::timeout(CONNECT_TIMEOUT, crate::netns::connect(*holder, *port))
                .await
                .map_err(timed_out)?
                .map_err(unreachable)?;
            s.set_nodelay(true).ok();
            Box::new(s)
        }
    })
}

/// Connects to the socket at `path` only if `path` itself is a socket, never through a
/// symlink: the directory holding it belongs to the workspace, whose code could otherwise
/// replace its socket with a link to another workspace's IDE, and this process (which can
/// reach every socket) would follow it.
async fn connect_unix_nofollow(path: &Path) -> std::io::Result<UnixStream> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    use std::os::unix::io::AsRawFd;
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    if !handle.metadata()?.file_type().is_socket() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a socket", path.display()),
        ));
    }
    // The socket exactly as opened above, whatever happens to the name meanwhile.
    let stream = UnixStream::connect(format!("/proc/self/fd/{}", handle.as_raw_fd())).await;
    drop(handle);
    stream
}

fn prepare_headers<B>(req: &mut Request<B>, upgrade: bool, fwd: &Forwarded) {
    let headers = req.headers_mut();
    strip_hop_by_hop(headers, upgrade);
    // Our cookies (the workspace cookie; the dashboard's never comes here, but be sure).
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(cookie::strip_own)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(header::COOKIE, v);
        }
    }
    // The IDE learns the client from us alone, never from what the client claimed.
    for h in [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-real-ip",
        "forwarded",
    ] {
        headers.remove(h);
    }
    let client = (!fwd.client_ip.is_empty()).then(|| HeaderValue::from_str(&fwd.client_ip).ok());
    if let Some(Some(v)) = client {
        headers.insert("x-forwarded-for", v.clone());
        headers.insert("x-real-ip", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(fwd.proto));
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

fn strip_hop_by_hop(headers: &mut http::HeaderMap, keep_upgrade: bool) {
    // Headers the Connection header names are hop-by-hop too.
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !(keep_upgrade && s == "upgrade"))
        .collect();
    for h in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(h);
    }
    if !keep_upgrade {
        headers.remove(header::UPGRADE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cookies_and_spoofed_forwarding_headers_never_pass() {
        let mut req = Request::builder()
            .uri("/x")
            .header("cookie", "qingting_ws=secret; theme=dark")
            .header("cookie", "qingting_session=s")
            .header("x-forwarded-for", "6.6.6.6")
            .header("connection", "keep-alive, x-private")
            .header("x-private", "1")
            .body(())
            .unwrap();
        let fwd = Forwarded {
            client_ip: "10.0.0.1".into(),
            proto: "https",
        };
        prepare_headers(&mut req, false, &fwd);
        let h = req.headers();
        assert_eq!(h.get_all("cookie").iter().count(), 1);
        assert_eq!(h["cookie"], "theme=dark");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert!(h.get("x-private").is_none() && h.get("connection").is_none());
    }

    #[test]
    fn the_ide_cannot_set_our_cookies() {
        let mut h = http::HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("qingting_ws=x; Path=/lab"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("_xsrf=1; Path=/"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static(" QINGTING_session=y"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("__Host-qingting_ws=z; Path=/; Secure"),
        );
        strip_own_set_cookies(&mut h);
        let left: Vec<_> = h.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(left, ["_xsrf=1; Path=/"]);
    }

    #[tokio::test]
    async fn a_symlinked_socket_is_refused() {
        let dir = std::env::temp_dir().join(format!("qt-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let real = dir.join("real.sock");
        let _ = std::fs::remove_file(&real);
        let _listener = tokio::net::UnixListener::bind(&real).unwrap();
        let link = dir.join("link.sock");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(connect_unix_nofollow(&real).await.is_ok());
        assert!(connect_unix_nofollow(&link).await.is_err());
        let plain = dir.join("plain");
        std::fs::write(&plain, "x").unwrap();
        assert!(connect_unix_nofollow(&plain).await.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An upstream on a Unix socket that answers 200 and counts the connections it accepts.
    async fn counting_upstream(
        path: &Path,
    ) -> (
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
        tokio::task::JoinHandle<()>,
    ) {
        use std::sync::{atomic::Ordering, Arc};
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (accepted, task)
    }

    /// A scratch directory (the caller removes it), the IDE's socket path in it as an
    /// upstream, and an empty connection pool.
    fn scratch_upstream<B>(tag: &str) -> (std::path::PathBuf, Upstream, UpstreamPool<B>) {
        let dir = std::env::temp_dir().join(format!("qt-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let upstream = Upstream::Unix(dir.join("ide.sock"));
        (dir, upstream, UpstreamPool::default())
    }

    fn no_client() -> Forwarded {
        Forwarded {
            client_ip: String::new(),
            proto: "http",
        }
    }

    async fn get(upstream: &Upstream, pool: &UpstreamPool<http_body_util::Full<Bytes>>) -> u16 {
        use http_body_util::BodyExt;
        let req = Request::get("/x")
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        let res = forward(
            req,
            upstream,
            pool,
            &no_client(),
            (),
            std::future::pending(),
        )
        .await
        .unwrap();
        let status = res.status().as_u16();
        res.into_body().collect().await.unwrap();
        status
    }

    #[tokio::test]
    async fn connections_are_reused_and_a_restarted_ide_gets_new_ones() {
        use std::sync::atomic::Ordering;
        let (dir, upstream, pool) = scratch_upstream("pool");
        let path = dir.join("ide.sock");

        let (accepted, first) = counting_upstream(&path).await;
        for _ in 0..5 {
            assert_eq!(get(&upstream, &pool).await, 200);
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for five requests"
        );
        assert_eq!(pool.kept(&upstream), 1);

        // The IDE restarts: its old connections close, the next request opens a new one.
        first.abort();
        let _ = first.await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (accepted, _second) = counting_upstream(&path).await;
        assert_eq!(get(&upstream, &pool).await, 200);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);

        pool.forget(&upstream);
        assert_eq!(pool.kept(&upstream), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A request body that sends one chunk and then never ends (an upload the IDE answers
    /// before reading it all).
    struct EndlessUpload(bool);

    impl Body for EndlessUpload {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.0 {
                return Poll::Pending;
            }
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"part")))))
        }
    }

    #[tokio::test]
    async fn a_connection_whose_upload_was_answered_early_is_not_kept() {
        use http_body_util::BodyExt;
        let (dir, upstream, pool) = scratch_upstream("upload");
        let (accepted, _task) = counting_upstream(&dir.join("ide.sock")).await;
        let req = Request::post("/upload")
            .header(header::TRANSFER_ENCODING, "chunked")
            .body(EndlessUpload(false))
            .unwrap();
        let res = forward(
            req,
            &upstream,
            &pool,
            &no_client(),
            (),
            std::future::pending(),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.into_body().collect().await.unwrap();
        assert_eq!(
            pool.kept(&upstream),
            0,
            "its request never finished going out"
        );
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn upgrades_keep_their_headers() {
        let mut req = Request::builder()
            .uri("/ws")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .body(())
            .unwrap();
        let fwd = Forwarded {
            client_ip: "1.1.1.1".into(),
            proto: "http",
        };
        prepare_headers(&mut req, true, &fwd);
        assert_eq!(req.headers()["upgrade"], "websocket");
        assert_eq!(req.headers()["connection"], "upgrade");
    }
}
