//! `[database]`: where the store is and how its connection pool behaves, the check of its URL,
//! and [`redacted_url`], the one way a database URL (which may hold a password) is shown.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problem;
use super::comma_separated::list_or_comma_separated;

/// `[database]`
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` (embedded) or `postgres://…`. May hold a password: use
    /// [`redacted_url`] to show it. Its query parameters go to libpq as given: `sslmode`
    /// (`require`, `verify-ca`, `verify-full`), `sslrootcert`, `sslcert`, `sslkey`.
    pub url: String,
    /// Connections in the pool.
    pub pool_size: u32,
    /// Longest wait for a free connection before a request is answered 503.
    pub checkout_timeout_ms: u64,
    /// Apply pending migrations when serving starts.
    pub migrate_on_start: bool,
    /// Allows a PostgreSQL server that is not on loopback without TLS (`sslmode` other than
    /// `require`, `verify-ca`, `verify-full`) under production checks, which refuse it
    /// otherwise. For a private network that encrypts below TLS.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// PostgreSQL streaming replicas of `url`: GET requests read from the healthy ones
    /// (docs/operations.md, "Scaling out"). May hold passwords, like `url`.
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub replicas: Vec<String>,
    /// A direct connection to the primary for the wake-up listener (`LISTEN`), where
    /// `database.url` goes through pgbouncer in transaction mode; unset: `database.url`.
    #[serde(default)]
    pub listen_url: Option<String>,
    /// PostgreSQL connections keep their statements prepared; false behind a pgbouncer in
    /// transaction mode that cannot keep them (before 1.21).
    pub prepared_statements: bool,
    /// A replica further behind the primary than this is not read from; below 120,000 (the
    /// lag is measured over the primary's positions of the last two minutes).
    pub replica_max_lag_ms: u64,
    /// For this long after a write, reads with the same credentials (API key or user token)
    /// are served only by a replica that has replayed the write, else by the primary: the
    /// read-your-writes window of clients that do not send `Licenses-Consistency` back.
    pub read_your_writes_ms: u64,
}

impl DatabaseSettings {
    pub fn checkout_timeout(&self) -> Duration {
        Duration::from_millis(self.checkout_timeout_ms)
    }

    pub fn replica_max_lag(&self) -> Duration {
        Duration::from_millis(self.replica_max_lag_ms)
    }

    pub fn read_your_writes(&self) -> Duration {
        Duration::from_millis(self.read_your_writes_ms)
    }

    /// The file of an embedded SQLite database, `None` for PostgreSQL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.url.strip_prefix("sqlite://")?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty()).then(|| PathBuf::from(path))
    }

    /// The problems of `database.*`, in the order of the keys.
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if let Err(message) = check_database_url(&self.url) {
            problems.push(Problem::new("database.url", message));
        }
        if self.pool_size == 0 {
            problems.push(Problem::new("database.pool_size", "must be at least 1"));
        }
        if self.checkout_timeout_ms == 0 {
            problems.push(Problem::new(
                "database.checkout_timeout_ms",
                "must be at least 1",
            ));
        }
        for (i, replica) in self.replicas.iter().enumerate() {
            let key = "database.replicas";
            let n = i + 1;
            if !(replica.starts_with("postgres://") || replica.starts_with("postgresql://")) {
                problems.push(Problem::new(
                    key,
                    format!(
                        "replica {n}: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB, got {}",
                        redacted_url(replica)
                    ),
                ));
            } else if let Err(message) = check_database_url(replica) {
                problems.push(Problem::new(key, format!("replica {n}: {message}")));
            } else if self.sqlite_path().is_some() {
                problems.push(Problem::new(
                    key,
                    "replicas need a PostgreSQL database.url (they are its streaming replicas)",
                ));
            }
        }
        if let Some(url) = &self.listen_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                problems.push(Problem::new(
                    "database.listen_url",
                    format!(
                        "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB (the primary, not \
                         through pgbouncer), got {}",
                        redacted_url(url)
                    ),
                ));
            } else if let Err(message) = check_database_url(url) {
                problems.push(Problem::new("database.listen_url", message));
            }
        }
        let history = licenses_store::REPLICA_LAG_HISTORY.as_millis();
        if self.replica_max_lag_ms == 0 || u128::from(self.replica_max_lag_ms) >= history {
            // The lag is measured over the primary's positions of the last `history`.
            problems.push(Problem::new(
                "database.replica_max_lag_ms",
                format!("must be at least 1 and below {history}"),
            ));
        }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redacted_url(&self.url))
            .field("pool_size", &self.pool_size)
            .field("checkout_timeout_ms", &self.checkout_timeout_ms)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("allow_plaintext", &self.allow_plaintext)
            .field(
                "replicas",
                &self
                    .replicas
                    .iter()
                    .map(|r| redacted_url(r))
                    .collect::<Vec<_>>(),
            )
            .field("listen_url", &self.listen_url.as_deref().map(redacted_url))
            .field("prepared_statements", &self.prepared_statements)
            .field("replica_max_lag_ms", &self.replica_max_lag_ms)
            .field("read_your_writes_ms", &self.read_your_writes_ms)
            .finish()
    }
}

/// `url` with its password (if any) replaced by `***`, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Setting a password fails only for URLs that cannot have one.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) if !url.contains('@') => url.to_owned(),
        Err(_) => "(a URL that does not parse)".to_owned(),
    }
}

fn check_database_url(url: &str) -> Result<(), String> {
    const EXPECTED: &str = "expected sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB";
    let url = url.trim();
    if url.is_empty() {
        return Err(format!("is not set ({EXPECTED})"));
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        return if path.split('?').next().unwrap_or_default().is_empty() {
            Err(format!("{EXPECTED}: the SQLite path is empty"))
        } else {
            Ok(())
        };
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return url::Url::parse(url)
            .map(drop)
            .map_err(|e| format!("{EXPECTED}: {e}"));
    }
    Err(format!("{EXPECTED}, got {}", redacted_url(url)))
}

#[cfg(test)]
mod tests {
    use crate::settings::load;
    use crate::settings::test_sources::{message, sources, with_vars};

    #[test]
    fn a_password_never_shows_in_errors() {
        let m = message(load(&with_vars(
            "local",
            &[("LICENSES__DATABASE__URL", "mysql://u:hunter2@h/db")],
        )));
        assert!(m.contains("database.url"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
    }

    #[test]
    fn query_parameters_are_kept_and_only_the_password_is_hidden() {
        let url = "postgres://app:hunter2@db.internal:5432/licenses?sslmode=verify-full&\
                   sslrootcert=/etc/ssl/db-ca.pem";
        let s = load(&with_vars("local", &[("LICENSES__DATABASE__URL", url)])).expect("loads");
        assert_eq!(s.database.url, url, "passed through as given");
        assert!(!s.database.allow_plaintext, "off by default");
        assert_eq!(
            super::redacted_url(url),
            "postgres://app:***@db.internal:5432/licenses?sslmode=verify-full&\
             sslrootcert=/etc/ssl/db-ca.pem"
        );
    }

    #[test]
    fn replicas_are_postgresql_urls_of_a_postgresql_primary_and_never_show_a_password() {
        let s = load(&with_vars(
            "local",
            &[
                ("LICENSES__DATABASE__URL", "postgres://app@primary/licenses"),
                (
                    "LICENSES__DATABASE__REPLICAS",
                    "postgres://app:hunter2@replica-1/licenses,postgres://app@replica-2/licenses",
                ),
                ("LICENSES__DATABASE__REPLICA_MAX_LAG_MS", "250"),
            ],
        ))
        .expect("loads");
        assert_eq!(s.database.replicas.len(), 2);
        assert_eq!(s.database.replica_max_lag_ms, 250);
        assert!(!format!("{:?}", s.database).contains("hunter2"));

        let m = message(load(&with_vars(
            "local",
            &[("LICENSES__DATABASE__REPLICAS", "mysql://u:hunter2@h/db")],
        )));
        assert!(m.contains("database.replicas: replica 1"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
        let m = message(load(&with_vars(
            "local",
            &[(
                "LICENSES__DATABASE__REPLICAS",
                "postgres://replica/licenses",
            )],
        )));
        assert!(m.contains("need a PostgreSQL database.url"), "{m}");
        for lag in ["0", "120000"] {
            let m = message(load(&with_vars(
                "local",
                &[("LICENSES__DATABASE__REPLICA_MAX_LAG_MS", lag)],
            )));
            assert!(m.contains("database.replica_max_lag_ms"), "{lag}: {m}");
        }
    }

    #[test]
    fn production_needs_a_database_url() {
        let m = message(load(&sources("production")));
        assert!(m.contains("database.url"), "{m}");
    }
}
