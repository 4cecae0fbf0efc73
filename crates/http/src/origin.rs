//! Where links point: the public origin (`scheme://host[:port]`) that `links.self`, every
//! resource's link and the `Location` of a 201 are built from.
//!
//! A request's `Host` and `X-Forwarded-Host` headers are chosen by whoever sends it: building
//! links from them lets anyone make the service hand out links to another host (cache
//! poisoning, phishing through a trusted API). So, per API:
//! 1. with a public base URL configured (`server.public_base_url`, or the API's own
//!    `server.user.public_base_url` / `server.management.public_base_url`), links use it,
//!    always, whatever the request says;
//! 2. without one, a request from a trusted proxy (its peer address in
//!    `server.trusted_proxies`) is linked as the proxy says: `Forwarded`, `X-Forwarded-Proto`
//!    and `X-Forwarded-Host`, then `Host`;
//! 3. a request from loopback (a developer's curl, a test) is linked to its own `Host`,
//!    over plain HTTP; forwarding headers are ignored;
//! 4. any other request is linked to the address the listener is bound to: its `Host` is
//!    not trusted.
//!
//! A host taken from a header must be a plain `host[:port]` authority, else the next rule
//! applies.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::Uri;
use actix_web::http::header;
use actix_web::http::uri::Authority;
use ipnet::IpNet;

/// The public origins of the APIs of one application, as application data
/// (`web::Data<PublicOrigins>`): read by [`crate::Links::new`].
#[derive(Debug, Clone, Default)]
pub struct PublicOrigins {
    /// Per API prefix (`/api/license/v4`), its public base URL, without a trailing `/`.
    apis: Vec<(String, String)>,
    /// Used for an API without a base of its own.
    default: Option<String>,
    trusted_proxies: Vec<IpNet>,
}

impl PublicOrigins {
    /// No base URL, no trusted proxy: rules 3 and 4 only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The base URL of every API that has none of its own (`server.public_base_url`).
    pub fn with_default(mut self, base: Option<&str>) -> Self {
        self.default = base.map(trimmed);
        self
    }

    /// The base URL of the API mounted under `prefix`, when it has its own.
    pub fn with_api(mut self, prefix: &str, base: Option<&str>) -> Self {
        if let Some(base) = base {
            self.apis.push((prefix.to_owned(), trimmed(base)));
        }
        self
    }

    /// The peers whose forwarding headers are believed (`server.trusted_proxies`).
    pub fn with_trusted_proxies(mut self, proxies: Vec<IpNet>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Whether `peer` is a trusted proxy.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// The client a request comes from: its peer address, or, when the peer is a trusted
    /// proxy, the address the proxies say they had it from — the last `X-Forwarded-For` entry
    /// that is not itself a trusted proxy (entries to its left were written by the client and
    /// prove nothing). Unparsable entries end the walk at the last address known good.
    pub fn client_addr(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let mut client = peer;
        if !self.is_trusted(peer) {
            return client;
        }
        let Some(list) = forwarded_for else {
            return client;
        };
        for entry in list.rsplit(',') {
            let Ok(ip) = entry.trim().parse::<IpAddr>() else {
                return client;
            };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }

    /// The public base URL configured for the API under `prefix` (its own, else the
    /// default), if any.
    pub fn base_url(&self, prefix: &str) -> Option<&str> {
        self.apis
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, base)| base.as_str())
            .or(self.default.as_deref())
    }

    /// The origin the links of the API under `prefix` get in answer to `req`.
    pub fn origin(&self, req: &HttpRequest, prefix: &str) -> String {
        if let Some((_, base)) = self.apis.iter().find(|(p, _)| p == prefix) {
            return base.clone();
        }
        if let Some(base) = &self.default {
            return base.clone();
        }
        let peer = req.peer_addr().map(|a| a.ip());
        if peer.is_some_and(|ip| self.is_trusted(ip)) {
            let info = req.connection_info();
            if let Some(host) = sane_host(info.host())
                && matches!(info.scheme(), "http" | "https")
            {
                return format!("{}://{host}", info.scheme());
            }
        }
        // In process (no socket: a test request) counts as loopback.
        if peer.is_none_or(|ip| ip.to_canonical().is_loopback()) {
            let own = req
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .or_else(|| req.uri().authority().map(Authority::as_str))
                .and_then(sane_host);
            return format!("http://{}", own.unwrap_or(req.app_config().host()));
        }
        format!("http://{}", req.app_config().local_addr())
    }
}

/// `base` without its trailing `/`.
fn trimmed(base: &str) -> String {
    base.trim().trim_end_matches('/').to_owned()
}

/// `host` if it is a plain `host[:port]`: no user info, path, or anything else a link would
/// carry along.
fn sane_host(host: &str) -> Option<&str> {
    let authority: Authority = host.parse().ok()?;
    let plain = !host.contains('@') && authority.as_str() == host;
    // The whole of it must make an origin.
    (plain && format!("http://{host}/").parse::<Uri>().is_ok()).then_some(host)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const PREFIX: &str = "/api/x";

    fn from(peer: &str) -> TestRequest {
        TestRequest::get()
            .uri("/api/x/things")
            .peer_addr(peer.parse().expect("a socket address"))
            .insert_header((header::HOST, "evil.example"))
            .insert_header(("X-Forwarded-Host", "forwarded.example"))
            .insert_header(("X-Forwarded-Proto", "https"))
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_forwarded_it() {
        let origins =
            PublicOrigins::new().with_trusted_proxies(vec!["10.0.0.0/8".parse().expect("cidr")]);
        let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
        // Not a trusted peer: its headers are ignored.
        assert_eq!(
            origins.client_addr(ip("203.0.113.9"), Some("198.51.100.1")),
            ip("203.0.113.9")
        );
        // A trusted proxy: the last address it did not add itself.
        assert_eq!(
            origins.client_addr(ip("10.0.0.2"), Some("1.2.3.4, 198.51.100.1, 10.0.0.3")),
            ip("198.51.100.1")
        );
        assert_eq!(origins.client_addr(ip("10.0.0.2"), None), ip("10.0.0.2"));
        assert_eq!(
            origins.client_addr(ip("10.0.0.2"), Some("junk, 198.51.100.7")),
            ip("198.51.100.7")
        );
        assert_eq!(
            origins.client_addr(ip("10.0.0.2"), Some("198.51.100.7, junk")),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn a_configured_base_wins_over_every_header() {
        let origins = PublicOrigins::new()
            .with_default(Some("https://api.example.com/"))
            .with_api("/api/y", Some("https://y.example.com"))
            .with_trusted_proxies(vec!["10.0.0.0/8".parse().expect("cidr")]);
        for peer in ["127.0.0.1:1", "10.1.2.3:1", "203.0.113.9:1"] {
            let req = from(peer).to_http_request();
            assert_eq!(origins.origin(&req, PREFIX), "https://api.example.com");
            assert_eq!(origins.origin(&req, "/api/y"), "https://y.example.com");
        }
    }

    #[test]
    fn forwarding_headers_only_from_a_trusted_proxy() {
        let origins =
            PublicOrigins::new().with_trusted_proxies(vec!["10.0.0.0/8".parse().expect("cidr")]);
        let proxied = from("10.1.2.3:4444").to_http_request();
        assert_eq!(
            origins.origin(&proxied, PREFIX),
            "https://forwarded.example"
        );
        // Loopback: its own Host, never the forwarding headers.
        let local = from("127.0.0.1:4444").to_http_request();
        assert_eq!(origins.origin(&local, PREFIX), "http://evil.example");
        let local6 = from("[::1]:4444").to_http_request();
        assert_eq!(origins.origin(&local6, PREFIX), "http://evil.example");
        // Anyone else: not even its Host.
        let stranger = from("203.0.113.9:4444").to_http_request();
        let origin = origins.origin(&stranger, PREFIX);
        assert!(
            !origin.contains("evil") && !origin.contains("forwarded"),
            "{origin}"
        );
        assert_eq!(
            origin,
            format!("http://{}", stranger.app_config().local_addr())
        );
    }

    #[test]
    fn a_host_that_is_not_a_plain_authority_is_not_used() {
        let origins = PublicOrigins::new();
        for bad in [
            "evil.example/path",
            "user@evil.example",
            "a b",
            "evil.example?x",
        ] {
            let req = TestRequest::get()
                .peer_addr("127.0.0.1:1".parse().expect("addr"))
                .insert_header((header::HOST, bad))
                .to_http_request();
            let origin = origins.origin(&req, PREFIX);
            assert!(
                !origin.contains("evil") && !origin.contains(' '),
                "{bad}: {origin}"
            );
        }
        assert!(sane_host("localhost:8080").is_some());
        assert!(sane_host("[::1]:8080").is_some());
    }

    #[test]
    fn proxies_match_by_network() {
        let origins = PublicOrigins::new().with_trusted_proxies(vec![
            "10.0.0.0/8".parse().expect("cidr"),
            "2001:db8::/32".parse().expect("cidr"),
        ]);
        assert!(origins.is_trusted("10.200.0.1".parse().expect("ip")));
        assert!(origins.is_trusted("::ffff:10.0.0.1".parse().expect("ip")));
        assert!(origins.is_trusted("2001:db8::5".parse().expect("ip")));
        assert!(!origins.is_trusted("11.0.0.1".parse().expect("ip")));
    }
}
