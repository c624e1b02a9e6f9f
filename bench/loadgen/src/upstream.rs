//! `qingting-loadgen upstream [--tcp ADDR] [--unix PATH]`: the static upstream every path of
//! the gateway bench talks to. `GET` anything answers `200 ok`; a WebSocket upgrade is
//! accepted and every frame echoed back.

use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper::{body::Incoming, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

pub async fn run(args: &[String]) {
    let mut tcp = None;
    let mut unix = None;
    for (a, v) in crate::flag_values(args) {
        match a {
            "--tcp" => tcp = Some(v),
            "--unix" => unix = Some(v),
            other => panic!("unknown argument {other}"),
        }
    }
    let mut tasks = Vec::new();
    if let Some(addr) = tcp {
        let l = tokio::net::TcpListener::bind(&addr)
            .await
            .expect("bind tcp");
        tasks.push(tokio::spawn(async move {
            loop {
                let (s, _) = l.accept().await.expect("accept");
                s.set_nodelay(true).ok();
                tokio::spawn(serve(s));
            }
        }));
    }
    if let Some(path) = unix {
        let _ = std::fs::remove_file(&path);
        let l = tokio::net::UnixListener::bind(&path).expect("bind unix");
        tasks.push(tokio::spawn(async move {
            loop {
                let (s, _) = l.accept().await.expect("accept");
                tokio::spawn(serve(s));
            }
        }));
    }
    assert!(!tasks.is_empty(), "give --tcp ADDR and/or --unix PATH");
    for t in tasks {
        t.await.expect("listener");
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(s: S) {
    let svc = hyper::service::service_fn(answer);
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(s), svc)
        .with_upgrades()
        .await;
}

async fn answer(
    mut req: Request<Incoming>,
) -> Result<Response<http_body_util::Either<Full<Bytes>, Empty<Bytes>>>, std::convert::Infallible> {
    use http_body_util::Either;
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| k.as_bytes().to_vec());
    let Some(key) = key else {
        return Ok(Response::new(Either::Left(Full::new(Bytes::from_static(
            b"ok",
        )))));
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(up) = upgrade.await {
            crate::ws::echo(TokioIo::new(up)).await;
        }
    });
    Ok(Response::builder()
        .status(101)
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-accept", crate::ws::accept_key(&key))
        .body(Either::Right(Empty::new()))
        .expect("response"))
}
