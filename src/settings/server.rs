//! `[server]`: the two listeners, client timeouts, CORS origins and the shutdown grace, and the
//! checks of listen addresses and origins.

use std::net::SocketAddr;
use std::time::Duration;

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
}

impl ServerSettings {
    pub fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.client_timeout_ms)
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
    }
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
    use crate::settings::test_sources::sources;

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
