//! Test support: a fresh database per test, dropped afterwards.
//!
//! ```no_run
//! let db = licenses_testkit::TestDatabase::postgres(); // or ::sqlite()
//! let url: &str = db.url(); // give it to the code under test
//! // dropped at the end of the test: DROP DATABASE … WITH (FORCE) / the file is removed
//! ```
//!
//! How PostgreSQL is found, once per test process:
//! 1. `DATABASE_URL` (default `postgres://postgres@localhost:5432/postgres`), if that server
//!    answers: each test database is created there with `CREATE DATABASE test_<random>`.
//! 2. Otherwise, if PostgreSQL is installed (`initdb` and `postgres` on `PATH` or under
//!    `/usr/lib/postgresql/*/bin`), a private throwaway cluster: a temporary directory, a
//!    free port on 127.0.0.1, trust authentication, its unix socket in that directory. A small
//!    watchdog stops it and removes the directory once the test process is gone. As root, the
//!    cluster runs as the `postgres` user (initdb and postgres refuse to run as root).
//! 3. Otherwise the test panics with one line saying how to get PostgreSQL.

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};

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

/// The directory holding `initdb` and `postgres`.
fn find_postgres_binaries() -> Option<PathBuf> {
    let complete = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    // The versioned directories first: /usr/local/bin may only hold some of the links.
    let mut versioned: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| complete(d))
        .collect();
    versioned.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(newest) = versioned.pop() {
        return Some(newest);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| complete(d)).map(|d| {
        // initdb may be a link into the real bin directory; postgres must sit beside it.
        std::fs::canonicalize(d.join("initdb"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .filter(|real| complete(real))
            .unwrap_or(d)
    })
}

/// Whether this process runs as root (initdb and postgres refuse to).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// A shell command, run as the `postgres` user when this process is root.
fn shell(script: &str, args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script, "sh"])
            .args(args);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script, "sh"]).args(args);
        c
    }
}

fn start_private_cluster(bin: &Path) -> Result<String, String> {
    let base = tempfile::Builder::new()
        .prefix("licenses-pg-")
        .tempdir()
        .map_err(|e| format!("no temporary directory: {e}"))?
        // The watchdog removes it once the cluster has stopped: statics are never dropped.
        .keep();
    let base_str = base
        .to_str()
        .ok_or("the temporary directory has a non UTF-8 path")?
        .to_owned();
    if is_root() {
        let chown = Command::new("chown")
            .args(["-R", "postgres:", &base_str])
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !chown.success() {
            return Err(format!("chown postgres {base_str} failed"));
        }
    }
    let bin_str = bin.to_str().ok_or("non UTF-8 PostgreSQL path")?;

    let initdb = shell(
        r#""$1/initdb" -D "$2/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
            >"$2/initdb.log" 2>&1"#,
        &[bin_str, &base_str],
    )
    .stdin(Stdio::null())
    .status()
    .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !initdb.success() {
        let log = std::fs::read_to_string(base.join("initdb.log")).unwrap_or_default();
        return Err(format!("initdb failed: {}", last_line(&log)));
    }

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port()
        .to_string();
    let parent = std::process::id().to_string();
    // The cluster and its watchdog, detached: when the test process is gone, stop the cluster
    // (fast shutdown) and remove its directory. `/proc/PID` rather than `kill -0`: the
    // postgres user may not signal a root process, yet it can see it.
    let script = r#"
        "$1/postgres" -D "$2/data" -p "$3" -k "$2" -c listen_addresses=127.0.0.1 \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
            -c max_connections=300 >"$2/postgres.log" 2>&1 &
        pg=$!
        while [ -d "/proc/$4" ] && kill -0 "$pg" 2>/dev/null; do sleep 1; done
        kill -INT "$pg" 2>/dev/null
        wait "$pg"
        rm -rf "$2"
    "#;
    shell(script, &[bin_str, &base_str, &port, &parent])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;

    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match PgConnection::establish(&url) {
            Ok(_) => return Ok(url),
            Err(e) if Instant::now() > deadline => {
                let log = std::fs::read_to_string(base.join("postgres.log")).unwrap_or_default();
                return Err(format!(
                    "it did not answer within 30 s ({e}); its log ends: {}",
                    last_line(&log)
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn last_line(log: &str) -> &str {
    log.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(empty)")
}

#[cfg(test)]
mod tests {
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
