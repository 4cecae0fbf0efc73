//! `[server]`: the two listeners, client timeouts, the body deadline, CORS origins, the
//! public base URLs links are built from, the trusted proxies and the shutdown grace, and the
//! checks of listen addresses, origins, base URLs and networks.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use serde::Deserialize;

use super::Problem;
use super::comma_separated::list_or_comma_separated;

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// The user API listener, `HOST:PORT`; port 0 picks a free port.
    pub user_addr: String,
    /// The management API listener; when equal to `user_addr` (and not port 0), one listener
    /// serves both APIs.
    pub management_addr: String,
    /// How long a client has to send a request's head, and to close after the answer,
    /// before it is answered 408 or disconnected; also how long an idle keep-alive
    /// connection stays open.
    pub client_timeout_ms: u64,
    /// Origins allowed to call the user API from a browser: a list, or one comma-separated
    /// string (as an environment variable gives it).
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub cors_origins: Vec<String>,
    /// How long a stopping server lets the requests in flight finish, in seconds, before it
    /// closes their connections.
    pub shutdown_grace_secs: u64,
    /// The longest a request's whole body may take to arrive, however steadily it trickles
    /// in: past it the request is answered 408 (`body_deadline`) and its connection closed.
    #[serde(default = "default_body_deadline_ms")]
    pub body_deadline_ms: u64,
    /// The public origin of both APIs (`https://licenses.example.com`, maybe with a path
    /// prefix a proxy strips): `links.self`, resource links and `Location` are built from it.
    /// Unset: from the request's own `Host` when the peer is loopback, from the forwarding
    /// headers of a trusted proxy, else from the listener's address (licenses-http `origin`).
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// `[server.user]`: what the user API overrides.
    #[serde(default)]
    pub user: ApiServerSettings,
    /// `[server.management]`: what the management API overrides.
    #[serde(default)]
    pub management: ApiServerSettings,
    /// The proxies (CIDRs such as `10.0.0.0/8`, or single addresses) whose `Forwarded`,
    /// `X-Forwarded-Host` and `X-Forwarded-Proto` headers are believed when no public base
    /// URL is set; a list, or one comma-separated string. None by default.
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub trusted_proxies: Vec<String>,
}

/// `[server.user]` and `[server.management]`: what one API may set apart from the other.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiServerSettings {
    /// This API's public origin, in place of `server.public_base_url`.
    #[serde(default)]
    pub public_base_url: Option<String>,
}

fn default_body_deadline_ms() -> u64 {
    10_000
}

impl ServerSettings {
    pub fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.client_timeout_ms)
    }

    pub fn body_deadline(&self) -> Duration {
        Duration::from_millis(self.body_deadline_ms)
    }

    /// The user API's public base URL: its own, else `server.public_base_url`.
    pub fn user_public_base_url(&self) -> Option<&str> {
        self.user
            .public_base_url
            .as_deref()
            .or(self.public_base_url.as_deref())
    }

    /// The management API's public base URL: its own, else `server.public_base_url`.
    pub fn management_public_base_url(&self) -> Option<&str> {
        self.management
            .public_base_url
            .as_deref()
            .or(self.public_base_url.as_deref())
    }

    /// `server.trusted_proxies` as networks (a single address is a network of one); those
    /// that do not parse are left out ([`Self::validate`] refuses them).
    pub fn trusted_proxies(&self) -> Vec<IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| parse_network(p).ok())
            .collect()
    }

    /// What production refuses of `server.*`: a CORS origin over plain `http://` (a page
    /// served over HTTP can be altered on the way, and would call the API with the user's
    /// token). Called by `production` under production checks.
    pub(super) fn check_for_production(&self, problems: &mut Vec<Problem>) {
        for origin in &self.cors_origins {
            if origin.trim().to_ascii_lowercase().starts_with("http://") {
                problems.push(Problem::new(
                    "server.cors_origins",
                    format!("{origin:?} is plain http://, refused under production: use https://"),
                ));
            }
        }
    }

    /// Whether one listener serves both APIs.
    pub fn shared_listener(&self) -> bool {
        self.user_addr.trim() == self.management_addr.trim() && !self.user_addr.ends_with(":0")
    }

    /// The problems of `server.*`.
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        for (key, addr) in [
            ("server.user_addr", &self.user_addr),
            ("server.management_addr", &self.management_addr),
        ] {
            if let Err(message) = check_listen_addr(addr) {
                problems.push(Problem::new(key, message));
            }
        }
        if self.shutdown_grace_secs == 0 {
            problems.push(Problem::new(
                "server.shutdown_grace_secs",
                "must be at least 1",
            ));
        }
        for origin in &self.cors_origins {
            if let Err(message) = check_origin(origin) {
                problems.push(Problem::new("server.cors_origins", message));
            }
        }
        if self.client_timeout_ms == 0 {
            problems.push(Problem::new(
                "server.client_timeout_ms",
                "must be at least 1",
            ));
        }
        if self.body_deadline_ms == 0 {
            problems.push(Problem::new(
                "server.body_deadline_ms",
                "must be at least 1",
            ));
        }
        for (key, base) in [
            ("server.public_base_url", &self.public_base_url),
            ("server.user.public_base_url", &self.user.public_base_url),
            (
                "server.management.public_base_url",
                &self.management.public_base_url,
            ),
        ] {
            if let Some(base) = base
                && let Err(message) = check_base_url(base)
            {
                problems.push(Problem::new(key, message));
            }
        }
        for proxy in &self.trusted_proxies {
            if let Err(message) = parse_network(proxy) {
                problems.push(Problem::new("server.trusted_proxies", message));
            }
        }
    }
}

/// A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
fn parse_network(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("expected a network such as 10.0.0.0/8 or an address, got {value:?}"))
}

/// A public base URL: `http(s)://host[:port]`, maybe with a path; no user, query or fragment.
fn check_base_url(base: &str) -> Result<(), String> {
    let bad = || format!("expected a URL such as https://licenses.example.com, got {base:?}");
    let url = url::Url::parse(base.trim()).map_err(|_| bad())?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if ok { Ok(()) } else { Err(bad()) }
}

fn check_listen_addr(addr: &str) -> Result<(), String> {
    let expected = || format!("expected HOST:PORT such as 127.0.0.1:8080, got {addr:?}");
    if addr.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = addr.rsplit_once(':').ok_or_else(expected)?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if host_ok && port.parse::<u16>().is_ok() {
        Ok(())
    } else {
        Err(expected())
    }
}

fn check_origin(origin: &str) -> Result<(), String> {
    let bad = || format!("expected an origin such as https://app.example.com, got {origin:?}");
    let url = url::Url::parse(origin).map_err(|_| bad())?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if bare { Ok(()) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use crate::settings::load;
    use crate::settings::test_sources::{message, sources, with_vars};

    #[test]
    fn base_urls_per_api_override_the_shared_one() {
        let s = load(&with_vars(
            "local",
            &[
                (
                    "LICENSES__SERVER__PUBLIC_BASE_URL",
                    "https://api.example.com",
                ),
                (
                    "LICENSES__SERVER__MANAGEMENT__PUBLIC_BASE_URL",
                    "https://bss.example.com/licenses",
                ),
                ("LICENSES__SERVER__TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7"),
            ],
        ))
        .expect("loads")
        .server;
        assert_eq!(s.user_public_base_url(), Some("https://api.example.com"));
        assert_eq!(
            s.management_public_base_url(),
            Some("https://bss.example.com/licenses")
        );
        let nets: Vec<String> = s
            .trusted_proxies()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32"]);
        let local = load(&sources("local")).expect("loads").server;
        assert_eq!(local.user_public_base_url(), None);
        assert_eq!(local.body_deadline_ms, 10_000);
        assert!(local.trusted_proxies().is_empty());
    }

    #[test]
    fn bad_base_urls_networks_and_deadlines_name_their_key() {
        for (var, value, key) in [
            (
                "LICENSES__SERVER__PUBLIC_BASE_URL",
                "api.example.com",
                "server.public_base_url",
            ),
            (
                "LICENSES__SERVER__USER__PUBLIC_BASE_URL",
                "https://a.example/?x=1",
                "server.user.public_base_url",
            ),
            (
                "LICENSES__SERVER__MANAGEMENT__PUBLIC_BASE_URL",
                "https://me:pw@a.example",
                "server.management.public_base_url",
            ),
            (
                "LICENSES__SERVER__TRUSTED_PROXIES",
                "10.0.0.0/33",
                "server.trusted_proxies",
            ),
            (
                "LICENSES__SERVER__TRUSTED_PROXIES",
                "proxy.internal",
                "server.trusted_proxies",
            ),
            (
                "LICENSES__SERVER__BODY_DEADLINE_MS",
                "0",
                "server.body_deadline_ms",
            ),
        ] {
            let m = message(load(&with_vars("local", &[(var, value)])));
            assert!(m.contains(key), "{var}={value}: {m}");
        }
    }

    #[test]
    fn production_refuses_cors_origins_over_http() {
        let base = [
            ("LICENSES__DATABASE__URL", "postgres://db/licenses"),
            (
                "LICENSES__AUTH__MANAGEMENT_KEYS",
                "bss:0000000000000000000000000000000000000000000000000000000000000000",
            ),
            (
                "LICENSES__AUTH__USER_TOKENS__SECRET",
                "a-real-secret-from-the-vault-0123456789",
            ),
        ];
        let with = |origins: &str| {
            let mut vars = base.to_vec();
            vars.push(("LICENSES__SERVER__CORS_ORIGINS", origins));
            load(&with_vars("production", &vars)).expect("loads")
        };
        let m = with("https://app.example.com,http://old.example.com")
            .check_for_serving()
            .expect_err("http origin")
            .to_string();
        assert!(
            m.contains("server.cors_origins: \"http://old.example.com\" is plain http://"),
            "{m}"
        );
        assert!(!m.contains("app.example.com"), "{m}");
        // Outside production an http origin (a developer's page) is fine.
        let local = load(&with_vars(
            "local",
            &[("LICENSES__SERVER__CORS_ORIGINS", "http://localhost:3000")],
        ))
        .expect("loads");
        local.check_for_serving().expect("local may use http");
    }

    #[test]
    fn equal_addresses_share_one_listener_unless_port_zero() {
        let mut s = load(&sources("local")).expect("loads").server;
        assert!(!s.shared_listener());
        s.management_addr = s.user_addr.clone();
        assert!(s.shared_listener());
        s.user_addr = "127.0.0.1:0".into();
        s.management_addr = "127.0.0.1:0".into();
        assert!(!s.shared_listener());
    }
}
