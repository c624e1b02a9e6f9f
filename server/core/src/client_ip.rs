//! Who is asking: the socket peer, or the last untrusted hop of `X-Forwarded-For` when the
//! peer is a configured proxy. Never taken from a header of an untrusted peer, so a client
//! cannot pick its own rate-limit bucket.

use std::net::IpAddr;

/// The client address decided for this request (inserted into request extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Walks `X-Forwarded-For` from the right, skipping trusted proxies; the first other hop is
/// the client. An unparsable hop stops the walk at the last trusted address.
pub fn resolve(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut client = peer;
    if let Some(xff) = forwarded_for {
        for hop in xff.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !trusted.contains(&ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_header_is_ignored() {
        assert_eq!(resolve(ip("1.2.3.4"), Some("9.9.9.9"), &[]), ip("1.2.3.4"));
    }

    #[test]
    fn trusted_peer_uses_last_untrusted_hop() {
        let trusted = [ip("127.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            resolve(
                ip("127.0.0.1"),
                Some("6.6.6.6, 5.5.5.5, 10.0.0.2"),
                &trusted
            ),
            ip("5.5.5.5")
        );
        assert_eq!(resolve(ip("127.0.0.1"), None, &trusted), ip("127.0.0.1"));
        assert_eq!(
            resolve(ip("127.0.0.1"), Some("garbage"), &trusted),
            ip("127.0.0.1")
        );
    }
}
