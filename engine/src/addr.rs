//! Address patterns (`peer = ...`, `local = ...`) and the endpoints they are matched against.

use crate::glob::Glob;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One side of a socket, as the shim reads it from getsockname/getpeername. Borrowed, so the shim can
/// build it on its stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint<'a> {
    Ip(SocketAddr),
    /// A unix socket's address bytes as the kernel has them: a path, or an abstract name with its
    /// leading NUL (policies and logs write it `@name`).
    Unix(&'a [u8]),
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrPattern {
    /// `10.0.0.0/8`, `127.0.0.1`, `127.0.0.1:6379`, `[::1]:80`: a network plus an optional port.
    Ip {
        net: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
    /// `:6379`: any address on that port.
    Port(u16),
    /// `/run/app/*.sock`, `@abstract-*`.
    Unix(Glob),
}

impl AddrPattern {
    pub fn parse(text: &str) -> Result<AddrPattern, String> {
        let text = text.trim();
        if text.starts_with('/') || text.starts_with('@') {
            return Ok(AddrPattern::Unix(Glob(text.to_string())));
        }
        if let Some(port) = text.strip_prefix(':').filter(|rest| !rest.starts_with(':')) {
            return parse_port(port).map(AddrPattern::Port);
        }
        if let Ok(sa) = text.parse::<SocketAddr>() {
            let prefix = if sa.is_ipv4() { 32 } else { 128 };
            return Ok(AddrPattern::Ip {
                net: sa.ip(),
                prefix,
                port: Some(sa.port()),
            });
        }
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr_text = addr_text.trim_start_matches('[').trim_end_matches(']');
        let net: IpAddr = addr_text.parse().map_err(|_| {
            format!(
                "`{text}` is not an address pattern; expected an IP, IP:port, :port, CIDR \
                 (10.0.0.0/8), [v6]:port, or a unix path glob starting with / or @"
            )
        })?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}`: prefix length must be 0..={max}"))?,
        };
        Ok(AddrPattern::Ip {
            net,
            prefix,
            port: None,
        })
    }

    pub fn matches(&self, ep: &Endpoint) -> bool {
        match (self, ep) {
            (AddrPattern::Port(p), Endpoint::Ip(sa)) => sa.port() == *p,
            (AddrPattern::Ip { net, prefix, port }, Endpoint::Ip(sa)) => {
                port.is_none_or(|p| p == sa.port()) && in_network(*net, *prefix, sa.ip())
            }
            (AddrPattern::Unix(glob), Endpoint::Unix(path)) => match path.split_first() {
                // An abstract name: the kernel's leading NUL is the pattern's `@`.
                Some((0, name)) => glob
                    .0
                    .strip_prefix('@')
                    .is_some_and(|g| crate::glob::glob_match(g.as_bytes(), name)),
                _ => glob.matches(path),
            },
            _ => false,
        }
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse::<u16>()
        .map_err(|_| format!("`:{text}` is not a port; expected :1..65535"))
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`, what dual-stack sockets report) match v4 patterns.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn in_network(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (canonical(net), canonical(ip)) {
        (IpAddr::V4(n), IpAddr::V4(a)) => mask_eq(&n.octets(), &a.octets(), prefix),
        (IpAddr::V6(n), IpAddr::V6(a)) => mask_eq(&n.octets(), &a.octets(), prefix),
        _ => false,
    }
}

fn mask_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = (prefix / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = prefix % 8;
    rest == 0 || {
        let m = 0xffu8 << (8 - rest);
        a[full] & m == b[full] & m
    }
}

/// Helpers for callers that build endpoints from raw bytes.
pub fn ipv4(octets: [u8; 4], port: u16) -> Endpoint<'static> {
    Endpoint::Ip(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(octets)), port))
}
pub fn ipv6(octets: [u8; 16], port: u16) -> Endpoint<'static> {
    Endpoint::Ip(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, ep: Endpoint) -> bool {
        AddrPattern::parse(p).unwrap().matches(&ep)
    }

    #[test]
    fn patterns_match_what_they_say() {
        let redis = ipv4([127, 0, 0, 1], 6379);
        assert!(m("127.0.0.1:6379", redis));
        assert!(!m("127.0.0.1:6380", redis));
        assert!(m("127.0.0.1", redis));
        assert!(m(":6379", redis));
        assert!(m("127.0.0.0/8", redis));
        assert!(!m("10.0.0.0/8", redis));
        assert!(m("0.0.0.0/0", redis));
        let v6 = ipv6(Ipv6Addr::LOCALHOST.octets(), 80);
        assert!(m("[::1]:80", v6));
        assert!(m("::1", v6));
        assert!(!m("127.0.0.1", v6));
        let mapped = ipv6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped().octets(), 80);
        assert!(m("127.0.0.1:80", mapped));
        assert!(m("/run/*.sock", Endpoint::Unix(b"/run/app.sock")));
        assert!(!m("/run/*.sock", redis));
        assert!(!m(":6379", Endpoint::Unix(b"/x")));
        // Abstract names come as the kernel has them, with a leading NUL, and match `@` patterns only.
        assert!(m("@app-*", Endpoint::Unix(b"\0app-1")));
        assert!(!m("@app-*", Endpoint::Unix(b"app-1")));
        assert!(!m("/app*", Endpoint::Unix(b"\0app")));
        assert!(!m("@other", Endpoint::Unix(b"\0app")));
    }

    #[test]
    fn bad_patterns_say_what_was_expected() {
        assert!(
            AddrPattern::parse("localhost:80")
                .unwrap_err()
                .contains("expected")
        );
        assert!(AddrPattern::parse(":99999").is_err());
        assert!(AddrPattern::parse("10.0.0.0/33").is_err());
    }
}
