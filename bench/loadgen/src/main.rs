//! `qingting-loadgen --tcp 127.0.0.1:3000 | --unix PATH  --host H --path P [--header 'K: V']…
//!  [--connections 16] [--seconds 10]`
//! (also `qingting-loadgen upstream …`, the bench's static upstream, and
//! `qingting-loadgen wsping …`, WebSocket round trips: see `upstream.rs` and `ws.rs`)
//!
//! Sends GET requests on keep-alive HTTP/1.1 connections for the given time and prints one
//! line of JSON: requests, errors, requests/s and latency percentiles in milliseconds. Used by
//! bench/workspaces.py to compare the gateway with direct access to the same IDE socket (wrk
//! cannot speak to a Unix socket).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};

mod upstream;
mod ws;

#[derive(Clone)]
struct Opts {
    tcp: Option<String>,
    unix: Option<String>,
    host: String,
    path: String,
    headers: Vec<(String, String)>,
    connections: usize,
    seconds: u64,
}

fn parse() -> Opts {
    let mut o = Opts {
        tcp: None,
        unix: None,
        host: "localhost".into(),
        path: "/".into(),
        headers: Vec::new(),
        connections: 16,
        seconds: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--tcp" => o.tcp = Some(v()),
            "--unix" => o.unix = Some(v()),
            "--host" => o.host = v(),
            "--path" => o.path = v(),
            "--header" => {
                let h = v();
                let (k, val) = h.split_once(':').expect("--header 'Name: value'");
                o.headers.push((k.trim().into(), val.trim().into()));
            }
            "--connections" => o.connections = v().parse().expect("a number"),
            "--seconds" => o.seconds = v().parse().expect("a number"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        o.tcp.is_some() != o.unix.is_some(),
        "give exactly one of --tcp and --unix"
    );
    o
}

async fn connect(o: &Opts) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    macro_rules! hs {
        ($s:expr) => {{
            let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new($s))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            tx
        }};
    }
    match (&o.tcp, &o.unix) {
        (Some(addr), _) => {
            let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.set_nodelay(true).ok();
            hs!(s)
        }
        (_, Some(path)) => hs!(tokio::net::UnixStream::connect(path)
            .await
            .expect("connect")),
        _ => unreachable!(),
    }
}

async fn worker(o: Opts, until: Instant) -> (Vec<Duration>, u64) {
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut tx = connect(&o).await;
    while Instant::now() < until {
        let mut req = http::Request::get(&o.path).header("host", &o.host);
        for (k, v) in &o.headers {
            req = req.header(k, v);
        }
        let req = req.body(Empty::new()).expect("request");
        let t = Instant::now();
        let ok = match tx.send_request(req).await {
            Ok(res) => {
                let ok = res.status().as_u16() < 400;
                ok && res.into_body().collect().await.is_ok()
            }
            Err(_) => false,
        };
        if ok {
            lat.push(t.elapsed());
        } else {
            errors += 1;
            tx = connect(&o).await;
        }
        if tx.ready().await.is_err() {
            tx = connect(&o).await;
        }
    }
    (lat, errors)
}

/// `--flag value` pairs, for the subcommands' small parsers.
fn flag_values(args: &[String]) -> impl Iterator<Item = (&str, String)> {
    args.chunks(2).map(|pair| match pair {
        [flag, value] => (flag.as_str(), value.clone()),
        [flag] => panic!("{flag} needs a value"),
        _ => unreachable!("chunks of two"),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = |multi: bool| {
        let mut b = if multi {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        b.enable_all().build().expect("runtime")
    };
    match args.first().map(String::as_str) {
        // One thread, like a single nginx worker: no cross-thread wake-ups in the reference.
        Some("upstream") => rt(false).block_on(upstream::run(&args[1..])),
        Some("wsping") => rt(false).block_on(ws::ping(&args[1..])),
        _ => rt(true).block_on(load()),
    }
}

async fn load() {
    let o = parse();
    let start = Instant::now();
    let until = start + Duration::from_secs(o.seconds);
    let tasks: Vec<_> = (0..o.connections)
        .map(|_| tokio::spawn(worker(o.clone(), until)))
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("worker");
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "{{\"requests\":{},\"errors\":{},\"rps\":{:.0},\"p50_ms\":{:.3},\"p95_ms\":{:.3},\"p99_ms\":{:.3}}}",
        all.len(),
        errors,
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.95),
        pct(0.99)
    );
}
