//! Just enough WebSocket (RFC 6455) for the bench: the handshake key, an echo loop for the
//! upstream, and a client that times round trips of small text frames.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Reads one frame (payloads under 126 bytes, as the bench sends): (opcode, payload).
async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.ok()?;
    let masked = head[1] & 0x80 != 0;
    let len = (head[1] & 0x7f) as usize;
    assert!(len < 126, "the bench sends small frames only");
    let mut mask = [0u8; 4];
    if masked {
        s.read_exact(&mut mask).await.ok()?;
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.ok()?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Some((head[0] & 0x0f, payload))
}

fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![0x80 | opcode, payload.len() as u8];
    match mask {
        Some(m) => {
            f[1] |= 0x80;
            f.extend_from_slice(&m);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// Echoes every data frame back (server frames are not masked) until the peer closes.
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    while let Some((op, payload)) = read_frame(&mut s).await {
        if op == 0x8 || s.write_all(&frame(op, &payload, None)).await.is_err() {
            return;
        }
    }
}

/// `qingting-loadgen wsping --tcp ADDR --host H [--header 'K: V']… [--path P] [--count N]`:
/// opens one WebSocket and prints the round-trip percentiles of N small text frames as JSON.
pub async fn ping(args: &[String]) {
    let (mut tcp, mut host, mut path, mut count) =
        (None, "localhost".to_string(), "/".to_string(), 2000);
    let mut headers = String::new();
    for (a, v) in crate::flag_values(args) {
        match a {
            "--tcp" => tcp = Some(v),
            "--host" => host = v,
            "--path" => path = v,
            "--count" => count = v.parse().expect("a number"),
            "--header" => headers += &format!("{v}\r\n"),
            other => panic!("unknown argument {other}"),
        }
    }
    let mut s = tokio::net::TcpStream::connect(tcp.expect("--tcp ADDR"))
        .await
        .expect("connect");
    s.set_nodelay(true).ok();
    let origin = format!("http://{host}");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{headers}\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("send handshake");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.expect("read handshake");
        head.push(b[0]);
    }
    let status = String::from_utf8_lossy(&head);
    assert!(status.starts_with("HTTP/1.1 101"), "no upgrade: {status}");
    let mut rtts = Vec::with_capacity(count);
    for i in 0..count {
        let msg = format!("ping {i}");
        let t = Instant::now();
        s.write_all(&frame(0x1, msg.as_bytes(), Some([1, 2, 3, 4])))
            .await
            .expect("send");
        let (_, back) = read_frame(&mut s).await.expect("echo");
        assert_eq!(back, msg.as_bytes());
        rtts.push(t.elapsed());
    }
    rtts.sort();
    let pct = |p: f64| rtts[((rtts.len() as f64 * p) as usize).min(rtts.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{{\"count\":{count},\"p50_us\":{:.1},\"p95_us\":{:.1},\"p99_us\":{:.1}}}",
        us(pct(0.5)),
        us(pct(0.95)),
        us(pct(0.99))
    );
}
