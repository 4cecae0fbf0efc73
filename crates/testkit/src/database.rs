//! A database of its own per test: [`TestDatabase`], a fresh PostgreSQL database (created on
//! the server `DATABASE_URL` names, or on a throwaway cluster when none answers) or SQLite
//! file, dropped when the value is.

use std::fmt;
use std::sync::OnceLock;

use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::cluster::{find_postgres_binaries, start_private_cluster};

/// The server tests use when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@localhost:5432/postgres";

/// The one line a test fails with when no PostgreSQL can be had.
pub const NO_POSTGRES: &str = "PostgreSQL is needed for these tests: set DATABASE_URL to a \
     server you can create databases on, or install PostgreSQL (apt-get install postgresql) so \
     the tests can start a private one";

/// A database of its own for one test: created fresh, dropped when this value is dropped.
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

enum Kind {
    Postgres { admin_url: String, name: String },
    Sqlite { _dir: tempfile::TempDir },
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl TestDatabase {
    /// A fresh PostgreSQL database (see the crate docs for how the server is found).
    ///
    /// # Panics
    /// When no PostgreSQL server can be reached or started, with one line saying what to do.
    pub fn postgres() -> TestDatabase {
        let admin_url = match server() {
            Ok(url) => url.clone(),
            Err(why) => panic!("{why}"),
        };
        let name = format!("test_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("cannot connect to the PostgreSQL test server: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let url = with_database(&admin_url, &name);
        TestDatabase {
            url,
            kind: Kind::Postgres { admin_url, name },
        }
    }

    /// A fresh SQLite database file in a temporary directory of its own.
    ///
    /// # Panics
    /// When no temporary directory can be created.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::Builder::new()
            .prefix("licenses-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let url = format!("sqlite://{}", dir.path().join("licenses.db").display());
        TestDatabase {
            url,
            kind: Kind::Sqlite { _dir: dir },
        }
    }

    /// The database URL, in the forms `database.url` takes (`postgres://…`, `sqlite://PATH`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self.kind, Kind::Postgres { .. })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Kind::Postgres { admin_url, name } = &self.kind {
            let dropped = PgConnection::establish(admin_url)
                .map_err(|e| e.to_string())
                .and_then(|mut admin| {
                    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = dropped {
                eprintln!("warning: could not drop the test database {name}: {e}");
            }
        }
        // SQLite: the temporary directory removes itself.
    }
}

/// `url` with its path (the database name) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_path(&format!("/{name}"));
            u.to_string()
        }
        Err(e) => panic!("DATABASE_URL is not a URL: {e}"),
    }
}

/// The admin URL of the server every test database of this process is created on.
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(find_server)
}

fn find_server() -> Result<String, String> {
    let configured =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    if PgConnection::establish(&configured).is_ok() {
        return Ok(configured);
    }
    let Some(bin) = find_postgres_binaries() else {
        return Err(NO_POSTGRES.to_owned());
    };
    start_private_cluster(&bin).map_err(|why| {
        format!(
            "PostgreSQL at {configured} does not answer, and starting a private one with {} \
             failed: {why}",
            bin.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    #[test]
    fn a_sqlite_database_is_a_file_in_a_directory_removed_on_drop() {
        let db = TestDatabase::sqlite();
        let path = PathBuf::from(db.url().trim_start_matches("sqlite://"));
        let dir = path.parent().map(Path::to_path_buf).expect("a directory");
        assert!(dir.is_dir());
        drop(db);
        assert!(!dir.exists());
    }

    #[test]
    fn a_postgres_database_exists_until_dropped() {
        let db = TestDatabase::postgres();
        let url = db.url().to_owned();
        let name = url.rsplit('/').next().expect("a name").to_owned();
        assert!(name.starts_with("test_"));
        drop(PgConnection::establish(&url).expect("the database exists"));
        drop(db);
        let Err(err) = PgConnection::establish(&url) else {
            panic!("{url} still exists");
        };
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn the_database_name_replaces_the_path() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres?sslmode=disable", "test_1"),
            "postgres://u:p@h:5/test_1?sslmode=disable"
        );
    }
}
