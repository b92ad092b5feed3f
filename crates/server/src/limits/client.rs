//! Who the client is: the socket peer's address, or, behind a proxy that is configured as
//! trusted, the client address the proxy put in a header (`--trusted-proxy-header`).
//!
//! With a header configured, its hops (`X-Forwarded-For: client, proxy1, proxy2`, every line of
//! it in order) are read from the right: hops that are trusted proxies (`--trusted-proxy`
//! networks) are skipped, and the first other one is the client; a client cannot forge what
//! the proxies appended after its own entry. Without `--trusted-proxy` networks the rightmost hop
//! is the client (one proxy in front). The header is ignored when the peer itself is not a
//! trusted proxy (with networks configured), and when it is absent or a hop is not an address.
//!
//! Rate-limit keys are per address, and per /64 for IPv6 (one subscriber's allocation).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;

/// An IP network, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<IpNet, String> {
        let bad = || format!("{s:?} is not an IP address or network (10.0.0.0/8, fd00::/8)");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => {
                (a.parse::<IpAddr>().map_err(|_| bad())?, Some(p.parse::<u8>().map_err(|_| bad())?))
            }
            None => (s.trim().parse::<IpAddr>().map_err(|_| bad())?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(IpNet { addr, prefix })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match canonical(ip) {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, a dual-stack socket's peers) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, len) = bits(self.addr);
        let (addr, alen) = bits(ip);
        if len != alen {
            return false;
        }
        let shift = u32::from(len - self.prefix.min(len));
        shift >= 128 || (net >> shift) == (addr >> shift)
    }
}

/// Where the client address comes from.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// The header a trusted proxy sets (`X-Forwarded-For`), or none: the socket peer.
    pub header: Option<String>,
    /// The proxies' networks: their hops are skipped, and only their requests' headers count.
    pub trusted: Vec<IpNet>,
}

impl ProxyConfig {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// The client's address of a request from `peer` with `headers`.
    pub fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.map(|p| canonical(p.ip()));
        let Some(name) = &self.header else { return peer };
        if !self.trusted.is_empty() && !peer.is_some_and(|p| self.trusts(p)) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = None;
        for hop in hops.iter().rev() {
            let Some(ip) = hop_address(hop) else { break };
            client = Some(ip);
            if !self.trusts(ip) {
                break;
            }
        }
        client.or(peer)
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip())).map(canonical)
}

/// The rate-limit key of a client address: the address, or its /64 for IPv6.
pub fn key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & !((1u128 << 64) - 1);
            format!("ip:{}/64", Ipv6Addr::from(net))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn networks_parse_and_contain() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.2.3.4".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one: IpNet = "192.168.1.1".parse().unwrap();
        assert!(one.contains("192.168.1.1".parse().unwrap()));
        assert!(!one.contains("192.168.1.2".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn without_a_header_the_peer_is_the_client_whatever_is_sent() {
        let cfg = ProxyConfig::default();
        let ip = cfg.client(peer("203.0.113.9:4000"), &headers(&["1.1.1.1"]));
        assert_eq!(ip, Some("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let cfg = ProxyConfig {
            header: Some("x-forwarded-for".into()),
            trusted: vec!["10.0.0.0/8".parse().unwrap()],
        };
        // The client forged "6.6.6.6"; the proxies appended the real hops after it.
        let h = headers(&["6.6.6.6, 198.51.100.7", "10.0.0.3"]);
        assert_eq!(cfg.client(peer("10.0.0.2:1"), &h), Some("198.51.100.7".parse().unwrap()));
        // A peer that is not a trusted proxy: its header is not believed.
        assert_eq!(cfg.client(peer("198.51.100.50:1"), &h), Some("198.51.100.50".parse().unwrap()));
        // No header, or a hop that is not an address: the peer.
        assert_eq!(cfg.client(peer("10.0.0.2:1"), &HeaderMap::new()), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(cfg.client(peer("10.0.0.2:1"), &headers(&["garbage"])), Some("10.0.0.2".parse().unwrap()));
        // Ports and brackets are accepted.
        let h = headers(&["[2001:db8::5]:443"]);
        assert_eq!(cfg.client(peer("10.0.0.2:1"), &h), Some("2001:db8::5".parse().unwrap()));
    }

    #[test]
    fn with_a_header_and_no_networks_the_rightmost_hop_is_the_client() {
        let cfg = ProxyConfig { header: Some("x-forwarded-for".into()), trusted: vec![] };
        let h = headers(&["6.6.6.6, 198.51.100.7"]);
        assert_eq!(cfg.client(peer("127.0.0.1:1"), &h), Some("198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn ipv6_clients_share_a_key_per_64() {
        assert_eq!(key("2001:db8:1:2:aaaa::1".parse().unwrap()), "ip:2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:bbbb::9".parse().unwrap()), "ip:2001:db8:1:2::/64");
        assert_eq!(key("::ffff:192.0.2.1".parse().unwrap()), "ip:192.0.2.1");
        assert_eq!(key("192.0.2.1".parse().unwrap()), "ip:192.0.2.1");
    }
}
