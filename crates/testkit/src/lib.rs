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
//!
//! Outage tests need a server they may stop: [`PrivateCluster`] is a cluster of the test's
//! own (initdb + pg_ctl, its own directory and port), never the shared server.

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

/// A fresh cluster directory (`BASE/data`) made by initdb: trust authentication for the
/// `postgres` user, owned by `postgres` when this process is root. Returns `BASE`, which the
/// caller removes.
fn init_cluster(bin: &Path) -> Result<(PathBuf, String), String> {
    let base = tempfile::Builder::new()
        .prefix("licenses-pg-")
        .tempdir()
        .map_err(|e| format!("no temporary directory: {e}"))?
        // Removed by whoever stops the cluster: statics are never dropped.
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
        let _ = std::fs::remove_dir_all(&base);
        return Err(format!("initdb failed: {}", last_line(&log)));
    }
    Ok((base, base_str))
}

/// A free TCP port on 127.0.0.1 (free when asked: nothing holds it afterwards).
/// A port on 127.0.0.1 that was free a moment ago, for a process a test starts.
pub fn free_port() -> u16 {
    find_free_port().expect("a free port on 127.0.0.1")
}

fn find_free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Waits until `url` accepts a connection, for at most 30 s.
fn wait_until_answers(url: &str, base: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match PgConnection::establish(url) {
            Ok(_) => return Ok(()),
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

fn start_private_cluster(bin: &Path) -> Result<String, String> {
    let (base, base_str) = init_cluster(bin)?;
    let bin_str = bin.to_str().ok_or("non UTF-8 PostgreSQL path")?;
    let port = find_free_port()?.to_string();
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
    wait_until_answers(&url, &base)?;
    Ok(url)
}

/// A PostgreSQL cluster of a test's own, to stop, start and restart while the code under test
/// uses it (outage and restart tests). Never the shared server: its own directory, its own
/// port on 127.0.0.1, started with `pg_ctl` from the installed binaries (as the `postgres`
/// user when this process is root). Dropping it stops it (immediate shutdown) and removes
/// its directory; a watchdog does the same if the test process dies first.
///
/// ```no_run
/// let pg = licenses_testkit::PrivateCluster::new(); // initdb, then started
/// let url = pg.url(); // postgres://postgres@127.0.0.1:PORT/postgres
/// pg.restart(); // pg_ctl restart -m fast
/// pg.stop(); // pg_ctl stop -m fast
/// pg.start(); // pg_ctl start
/// ```
pub struct PrivateCluster {
    bin: String,
    base: PathBuf,
    base_str: String,
    url: String,
}

impl fmt::Debug for PrivateCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateCluster")
            .field("url", &self.url)
            .field("dir", &self.base)
            .finish_non_exhaustive()
    }
}

impl PrivateCluster {
    /// Creates the cluster (initdb) and starts it; returns once it accepts connections.
    ///
    /// # Panics
    /// With one line when PostgreSQL's binaries are not installed or the cluster cannot start.
    #[allow(clippy::new_without_default)]
    pub fn new() -> PrivateCluster {
        Self::with_settings("")
    }

    /// [`PrivateCluster::new`], with `settings` (`postgresql.conf` lines) after the test
    /// settings, which they override: the benchmark's cluster is durable (`fsync = on`) and
    /// takes more connections.
    ///
    /// # Panics
    /// As [`PrivateCluster::new`].
    pub fn with_settings(settings: &str) -> PrivateCluster {
        Self::try_new(settings).unwrap_or_else(|why| panic!("{why}"))
    }

    fn try_new(settings: &str) -> Result<PrivateCluster, String> {
        let bin = find_postgres_binaries()
            .filter(|d| d.join("pg_ctl").is_file())
            .ok_or_else(|| {
                "PostgreSQL's binaries (initdb, pg_ctl, postgres) are needed for the outage \
                 tests, which start a cluster of their own: install PostgreSQL (apt-get install \
                 postgresql)"
                    .to_owned()
            })?;
        let (base, base_str) = init_cluster(&bin)?;
        let fail = |why: String| {
            let _ = std::fs::remove_dir_all(&base);
            format!("cannot start a private PostgreSQL cluster: {why}")
        };
        let port = find_free_port().map_err(fail)?;
        // The settings live in the cluster's own configuration, so that pg_ctl restart and
        // start keep them.
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = \
             '{base_str}'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             max_connections = 200\n{settings}\n"
        );
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .open(base.join("data/postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()));
        if let Err(e) = appended {
            return Err(fail(format!("cannot configure it: {e}")));
        }
        let cluster = PrivateCluster {
            bin: bin.to_str().ok_or("non UTF-8 PostgreSQL path")?.to_owned(),
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            base,
            base_str,
        };
        // The watchdog: once the test process is gone (or the directory removed), stop the
        // cluster and remove its directory.
        let parent = std::process::id().to_string();
        shell(
            r#"while [ -d "/proc/$3" ] && [ -d "$2/data" ]; do sleep 1; done
               "$1/pg_ctl" -D "$2/data" -m immediate stop >/dev/null 2>&1
               rm -rf "$2""#,
            &[&cluster.bin, &cluster.base_str, &parent],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the cluster's watchdog: {e}"))?;
        cluster.try_start()?;
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the cluster's own database, the
    /// test's to use.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the cluster (`pg_ctl stop -m fast`: sessions are ended, transactions in flight
    /// rolled back) and returns once it no longer accepts connections.
    ///
    /// # Panics
    /// When pg_ctl fails.
    pub fn stop(&self) {
        self.pg_ctl("stop -m fast -w -t 60")
            .unwrap_or_else(|why| panic!("cannot stop the private PostgreSQL cluster: {why}"));
    }

    /// Starts the stopped cluster and returns once it accepts connections.
    ///
    /// # Panics
    /// When it does not start within 60 s.
    pub fn start(&self) {
        self.try_start()
            .unwrap_or_else(|why| panic!("cannot start the private PostgreSQL cluster: {why}"));
    }

    fn try_start(&self) -> Result<(), String> {
        self.pg_ctl(r#"start -w -t 60 -l "$2/postgres.log""#)?;
        wait_until_answers(&self.url, &self.base)
    }

    /// `pg_ctl restart -m fast`: sessions are ended, transactions in flight rolled back, and
    /// the cluster is back when this returns.
    ///
    /// # Panics
    /// When it does not come back within 60 s.
    pub fn restart(&self) {
        self.pg_ctl(r#"restart -m fast -w -t 60 -l "$2/postgres.log""#)
            .and_then(|()| wait_until_answers(&self.url, &self.base))
            .unwrap_or_else(|why| panic!("cannot restart the private PostgreSQL cluster: {why}"));
    }

    /// Runs `pg_ctl -D DATA ARGS` (ARGS may use `$2`, the cluster's directory).
    fn pg_ctl(&self, args: &str) -> Result<(), String> {
        let script = format!(r#""$1/pg_ctl" -D "$2/data" {args} >>"$2/pg_ctl.log" 2>&1"#);
        let status = shell(&script, &[&self.bin, &self.base_str])
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.base.join("pg_ctl.log")).unwrap_or_default();
            let pg = std::fs::read_to_string(self.base.join("postgres.log")).unwrap_or_default();
            Err(format!(
                "pg_ctl {args} failed: {}; the server log ends: {}",
                last_line(&log),
                last_line(&pg)
            ))
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if let Err(why) = self.pg_ctl("stop -m immediate -w -t 60") {
            // Already stopped by the test, most likely.
            if !why.contains("not running") && !why.contains("Is server running") {
                eprintln!("warning: {why}");
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.base) {
            eprintln!(
                "warning: cannot remove the private cluster's directory {}: {e}",
                self.base.display()
            );
        }
    }
}

/// Runs `sql` against the PostgreSQL database at `url` every few milliseconds, on one
/// connection, until it returns a row (true) or `within` has passed (false): how a test
/// waits for a state of the database it cannot see through the service.
///
/// # Panics
/// When the database does not answer or the query fails.
pub fn wait_for_row(url: &str, sql: &str, within: Duration) -> bool {
    let mut conn =
        PgConnection::establish(url).unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let rows = diesel::sql_query(sql)
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        if rows > 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// The column `value` (text) of every row `sql` returns (`SELECT order_id AS value …`), from
/// the PostgreSQL database at `url`: how a test counts what was stored, behind the service's
/// back.
///
/// # Panics
/// When the database does not answer or the query fails.
pub fn query_strings(url: &str, sql: &str) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let mut conn =
        PgConnection::establish(url).unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    diesel::sql_query(sql)
        .load::<Row>(&mut conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|r| r.value)
        .collect()
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
    fn a_private_cluster_stops_starts_and_restarts() {
        let pg = PrivateCluster::new();
        let url = pg.url().to_owned();
        let dir = pg.base.clone();
        let one = "SELECT '1' AS value";
        assert_eq!(query_strings(&url, one), ["1"]);
        let mut held = PgConnection::establish(&url).expect("a session");
        pg.restart();
        assert!(
            diesel::sql_query("SELECT 1").execute(&mut held).is_err(),
            "a restart ends the sessions"
        );
        assert_eq!(query_strings(&url, one), ["1"]);
        pg.stop();
        assert!(PgConnection::establish(&url).is_err(), "stopped");
        pg.start();
        assert_eq!(query_strings(&url, one), ["1"]);
        drop(pg);
        assert!(!dir.exists(), "its directory is removed");
        assert!(PgConnection::establish(&url).is_err(), "stopped for good");
    }

    #[test]
    fn the_database_name_replaces_the_path() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres?sslmode=disable", "test_1"),
            "postgres://u:p@h:5/test_1?sslmode=disable"
        );
    }
}
