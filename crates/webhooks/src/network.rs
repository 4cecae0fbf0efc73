//! Where webhooks may go: receivers on the public internet, not the service's own network.
//!
//! Whoever can register an endpoint could otherwise make the service call what only it can
//! reach — the metadata service of a cloud VM (169.254.169.254), a database, an admin page on
//! loopback — and read the answer in the delivery log (server-side request forgery). So,
//! unless `webhooks.allow_private_networks`, an endpoint whose host is a private address is
//! refused when registered ([`check_public_host`]), and a host name is resolved at each
//! connection to public addresses only ([`PublicResolver`]): a name that points to a private
//! address after registration (DNS rebinding) gets no request either.

use std::net::IpAddr;
use std::sync::LazyLock;

use ipnet::IpNet;
use url::{Host, Url};

use crate::EndpointError;

/// Ranges that are not the public internet (IANA special-purpose registries, RFC 6890 and
/// successors): loopback, private, shared, link-local, documentation, benchmarking,
/// multicast, reserved, and their IPv6 counterparts. An IPv4-mapped IPv6 address is checked
/// as its IPv4 address.
const NOT_PUBLIC: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    // IPv4-compatible (deprecated; :: and ::1 among them)
    "::/96",
    // NAT64: on an IPv6-only network these reach IPv4 addresses, private ones included
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

static RANGES: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    NOT_PUBLIC
        .iter()
        .map(|r| r.parse().expect("a range of NOT_PUBLIC parses"))
        .collect()
});

/// Whether `ip` is an address of the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    !RANGES.iter().any(|range| range.contains(&ip))
}

/// Refuses an endpoint whose host is a private address, or `localhost` (a name the resolver
/// answers without DNS). Other names are checked at each connection ([`PublicResolver`]).
pub fn check_public_host(url: &Url) -> Result<(), EndpointError> {
    let private = match url.host() {
        Some(Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => return Err(EndpointError::NoHost),
    };
    if private {
        Err(EndpointError::PrivateAddress)
    } else {
        Ok(())
    }
}

/// The webhook client's DNS: the system resolver (`getaddrinfo`), its private answers dropped;
/// a name with only private addresses fails to resolve, and the attempt is logged as such.
#[cfg(feature = "send")]
#[derive(Debug, Default)]
pub(crate) struct PublicResolver;

#[cfg(feature = "send")]
impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<std::net::SocketAddr> =
                found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} has no public address (private networks are refused: \
                     webhooks.allow_private_networks)"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_public_from_private() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "64:ff9b::a00:5",
            "::a00:5",
            "fec0::1",
        ] {
            assert!(!is_public(ip.parse().expect(ip)), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().expect(ip)), "{ip}");
        }
    }

    #[test]
    fn refuses_private_hosts_only() {
        let check = |u: &str| check_public_host(&Url::parse(u).expect(u));
        for u in [
            "https://127.0.0.1/h",
            "https://10.0.0.8:8443/h",
            "https://[::1]/h",
            "https://[::ffff:192.168.0.1]/h",
            "https://localhost/h",
            "https://LOCALHOST./h",
            "https://api.localhost/h",
            "https://169.254.169.254/latest/meta-data",
        ] {
            assert_eq!(check(u), Err(EndpointError::PrivateAddress), "{u}");
        }
        for u in [
            "https://example.com/h",
            "https://8.8.8.8/h",
            "https://[2606:4700:4700::1111]/h",
            "https://localhost.example.com/h",
        ] {
            assert_eq!(check(u), Ok(()), "{u}");
        }
    }

    /// `localhost` resolves (from /etc/hosts) to loopback only: the resolver answers none.
    #[cfg(feature = "send")]
    #[tokio::test]
    async fn the_resolver_drops_private_answers() {
        use reqwest::dns::Resolve;
        let name = "localhost".parse().expect("a name");
        let refused = PublicResolver
            .resolve(name)
            .await
            .err()
            .expect("no public address");
        assert!(
            refused.to_string().contains("no public address"),
            "{refused}"
        );
    }
}
