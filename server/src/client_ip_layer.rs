//! Decides each request's client address once and records it as `ClientIp`.

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::Response,
};
use qingting_core::client_ip::{resolve, ClientIp};
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

pub async fn client_ip(
    State(trusted): State<Arc<Vec<IpAddr>>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let xff = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = resolve(peer, xff, &trusted);
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}
