//! `database.url` and the other settings the store is opened with.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How to open the store: the `database.*` settings.
#[derive(Clone)]
pub struct StoreConfig {
    /// `sqlite://PATH` (a relative path is relative to the working directory) or
    /// `postgres://…` / `postgresql://…`.
    pub url: String,
    /// Connections in the pool, and calls that may run on the blocking pool at once.
    pub pool_size: u32,
    /// The longest wait for a free connection before a call answers
    /// [`StoreError::Unavailable`](licenses_app::ports::StoreError::Unavailable).
    pub checkout_timeout: Duration,
    /// `database.replicas`: PostgreSQL streaming replicas of `url`, read from by the calls a
    /// [`ReadScope`](crate::ReadScope) allows. Each gets a pool of `pool_size` connections.
    pub replicas: Vec<String>,
    /// `database.replica_max_lag_ms`: a replica further behind is not read from.
    pub replica_max_lag: Duration,
    /// `database.prepared_statements`: PostgreSQL connections keep their statements prepared
    /// (diesel's statement cache). Off behind a pgbouncer in transaction mode that cannot
    /// keep them (before 1.21): each statement is then sent unnamed.
    pub prepared_statements: bool,
}

impl StoreConfig {
    /// A store on `url` alone, with `pool_size` connections and `checkout_timeout`.
    pub fn new(url: impl Into<String>, pool_size: u32, checkout_timeout: Duration) -> StoreConfig {
        StoreConfig {
            url: url.into(),
            pool_size,
            checkout_timeout,
            replicas: Vec::new(),
            replica_max_lag: Duration::from_secs(1),
            prepared_statements: true,
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &redact(&self.url))
            .field("pool_size", &self.pool_size)
            .field("checkout_timeout", &self.checkout_timeout)
            .field(
                "replicas",
                &self.replicas.iter().map(|r| redact(r)).collect::<Vec<_>>(),
            )
            .field("replica_max_lag", &self.replica_max_lag)
            .field("prepared_statements", &self.prepared_statements)
            .finish()
    }
}

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Postgres => "PostgreSQL",
            Self::Sqlite => "SQLite",
        })
    }
}

/// Why the store could not be opened. Every message is one line and never shows a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// `database.url` is malformed or names an unknown scheme.
    #[error("invalid database.url: {0}")]
    InvalidUrl(String),
    /// The database could not be reached or opened.
    #[error("database unreachable: {0}")]
    Unreachable(String),
    /// Another setting is unusable (e.g. a pool of 0 connections).
    #[error("invalid database settings: {0}")]
    InvalidConfig(String),
}

/// libpq's settings that notice a host gone without a word (powered off, partitioned: no
/// reset ever comes), unless the URL sets them: TCP keepalives probe an idle connection (a
/// pooled one, the listener's) after 30 s and give up after three unanswered probes 10 s
/// apart; `tcp_user_timeout` fails a connection whose sent data stays unacknowledged for 30 s
/// (a query sent to the dead host). Without them Linux waits two hours to probe, and about
/// fifteen minutes of retransmissions. A slow query is neither: its server acknowledges.
pub(crate) const DEAD_HOST: [(&str, &str); 4] = [
    ("keepalives_idle", "30"),
    ("keepalives_interval", "10"),
    ("keepalives_count", "3"),
    ("tcp_user_timeout", "30000"),
];

/// Where the connections go, as parsed from `database.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Postgres {
        /// The URL handed to libpq, with a `connect_timeout` so that a silent host cannot
        /// hold a connection attempt for minutes, and [`DEAD_HOST`]'s settings.
        url: String,
        /// The URL for messages: the password replaced by `***`.
        shown: String,
    },
    Sqlite {
        path: PathBuf,
    },
}

impl Target {
    pub(crate) fn parse(url: &str, checkout_timeout: Duration) -> Result<Target, OpenError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(OpenError::InvalidUrl(
                    "sqlite:// needs a file path, e.g. sqlite://data/licenses.db".into(),
                ));
            }
            return Ok(Target::Sqlite {
                path: PathBuf::from(path),
            });
        }
        let scheme = url.split_once("://").map(|(s, _)| s);
        match scheme {
            Some("postgres" | "postgresql") => {
                let mut parsed = url::Url::parse(url)
                    .map_err(|e| OpenError::InvalidUrl(format!("{} ({e})", redact(url))))?;
                // libpq's unit is whole seconds, and it treats less than 2 as 2.
                let connect = checkout_timeout.as_secs().max(2).to_string();
                let defaults = [("connect_timeout", connect.as_str())]
                    .into_iter()
                    .chain(DEAD_HOST);
                for (key, value) in defaults {
                    if !parsed.query_pairs().any(|(k, _)| k == key) {
                        parsed.query_pairs_mut().append_pair(key, value);
                    }
                }
                Ok(Target::Postgres {
                    url: parsed.to_string(),
                    shown: redact(url),
                })
            }
            Some(other) => Err(OpenError::InvalidUrl(format!(
                "unknown scheme {other:?}: use sqlite://PATH or postgres://USER@HOST/DB"
            ))),
            None => Err(OpenError::InvalidUrl(
                "expected sqlite://PATH or postgres://USER@HOST/DB".into(),
            )),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Postgres { .. } => Backend::Postgres,
            Self::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// The target for messages and logs.
    pub(crate) fn shown(&self) -> String {
        match self {
            Self::Postgres { shown, .. } => shown.clone(),
            Self::Sqlite { path } => format!("sqlite://{}", path.display()),
        }
    }
}

/// `url` with its password, if any, replaced by `***`; a URL that does not parse is hidden
/// whole past its scheme, since it may hold a password.
pub(crate) fn redact(url: &str) -> String {
    if url.starts_with("sqlite://") {
        return url.to_owned();
    }
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                // Cannot fail for a URL that has a password (it has a host).
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://***"),
            None => "***".to_owned(),
        },
    }
}

/// A message on one line: libpq's span several.
pub(crate) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(500);

    #[test]
    fn sqlite_urls_name_a_path() {
        assert_eq!(
            Target::parse("sqlite://data/licenses.db", T),
            Ok(Target::Sqlite {
                path: "data/licenses.db".into()
            })
        );
        assert_eq!(
            Target::parse("sqlite:///var/lib/x.db", T),
            Ok(Target::Sqlite {
                path: "/var/lib/x.db".into()
            })
        );
        assert!(matches!(
            Target::parse("sqlite://", T),
            Err(OpenError::InvalidUrl(_))
        ));
    }

    #[test]
    fn postgres_urls_get_timeouts_for_a_silent_host_and_hide_their_password() {
        let Ok(Target::Postgres { url, shown }) =
            Target::parse("postgresql://app:s3cret@db:5432/licenses", T)
        else {
            panic!("a postgres target");
        };
        assert_eq!(
            url,
            "postgresql://app:s3cret@db:5432/licenses?connect_timeout=2&keepalives_idle=30&\
             keepalives_interval=10&keepalives_count=3&tcp_user_timeout=30000"
        );
        assert_eq!(shown, "postgresql://app:***@db:5432/licenses");
        // What the URL sets stands.
        let Ok(Target::Postgres { url, .. }) = Target::parse(
            "postgres://db/x?connect_timeout=9&keepalives_idle=5&tcp_user_timeout=0",
            T,
        ) else {
            panic!("a postgres target");
        };
        assert_eq!(
            url,
            "postgres://db/x?connect_timeout=9&keepalives_idle=5&tcp_user_timeout=0&\
             keepalives_interval=10&keepalives_count=3"
        );
    }

    #[test]
    fn unknown_schemes_and_garbage_are_invalid_without_leaking() {
        for url in [
            "mysql://a:b@c/d",
            "licenses.db",
            "",
            "postgres://a:s3cret@[bad/x",
        ] {
            match Target::parse(url, T) {
                Err(OpenError::InvalidUrl(m)) => {
                    assert!(!m.contains("s3cret"), "{m}");
                    assert!(!m.contains('\n'));
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn messages_fit_on_one_line() {
        assert_eq!(
            one_line("connection refused\n\tIs the server running?\n"),
            "connection refused Is the server running?"
        );
    }
}
