//! Which source addresses may post webhooks: CIDRs from `[webhooks] allow_from`, matched
//! against the connection's peer or, behind our own proxy (`trust_proxy`), the last
//! `X-Forwarded-For` entry: the address that proxy saw. Earlier entries are whatever the
//! client wrote, so they are never believed.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Allowed networks; empty allows every source.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    nets: Vec<IpNet>,
    /// Refuses every source (a list that could not be read must not open the door).
    closed: bool,
}

impl Allowlist {
    /// `entries`: CIDRs (`10.0.0.0/8`) or single addresses (`2001:db8::1`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let nets = entries
            .iter()
            .map(|entry| {
                let text = entry.trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{text:?} is neither a CIDR nor an IP address"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            nets,
            closed: false,
        })
    }

    /// Allows no source at all.
    pub fn closed() -> Self {
        Self {
            nets: Vec::new(),
            closed: true,
        }
    }

    pub fn is_open(&self) -> bool {
        self.nets.is_empty() && !self.closed
    }

    /// Whether `source` may post. An unknown source passes only an open list.
    pub fn allows(&self, source: Option<IpAddr>) -> bool {
        if self.is_open() {
            return true;
        }
        // A v4 peer on a dual-stack socket shows up as ::ffff:a.b.c.d.
        source.is_some_and(|ip| {
            let ip = ip.to_canonical();
            self.nets.iter().any(|net| net.contains(&ip))
        })
    }
}

/// The address a request comes from: the peer, or with `trust_proxy` the last valid
/// `X-Forwarded-For` entry (falling back to the peer when there is none).
pub fn source(peer: Option<SocketAddr>, headers: &HeaderMap, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|p| p.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Allowlist {
        Allowlist::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn networks_and_addresses_match_their_sources_only() {
        let allow = list(&["10.1.0.0/16", "2001:db8::1", "192.0.2.7"]);
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(allow.allows(ip("10.1.200.3")));
        assert!(allow.allows(ip("::ffff:10.1.0.1")));
        assert!(allow.allows(ip("2001:db8::1")));
        assert!(allow.allows(ip("192.0.2.7")));
        assert!(!allow.allows(ip("10.2.0.1")));
        assert!(!allow.allows(ip("192.0.2.8")));
        assert!(!allow.allows(None));
        assert!(Allowlist::default().allows(None));
        assert!(!Allowlist::closed().allows(ip("10.1.0.1")));
        assert!(Allowlist::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(Allowlist::parse(&["example.com".into()]).is_err());
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy_and_only_its_last_entry() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "10.9.9.9, 203.0.113.5".parse().unwrap());
        assert_eq!(
            source(Some(peer), &headers, false),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            source(Some(peer), &headers, true),
            Some("203.0.113.5".parse().unwrap())
        );
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(
            source(Some(peer), &headers, true),
            Some("127.0.0.1".parse().unwrap())
        );
    }
}
