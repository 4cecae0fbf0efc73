//! `[database]`: where the store is and how its connection pool behaves, the check of its URL,
//! and [`redacted_url`], the one way a database URL (which may hold a password) is shown.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problem;

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
}

impl DatabaseSettings {
    pub fn checkout_timeout(&self) -> Duration {
        Duration::from_millis(self.checkout_timeout_ms)
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
    fn production_needs_a_database_url() {
        let m = message(load(&sources("production")));
        assert!(m.contains("database.url"), "{m}");
    }
}
