//! A real pgbouncer (the Debian package) in front of a PostgreSQL server, on a free port, in
//! transaction mode: what a deployment that pools connections runs.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::cluster::{
    last_line, postgres_dir, sbin, shell, stop_daemon, wait_listening, watch_daemon,
};
use crate::ports::find_free_port;

/// pgbouncer in transaction mode in front of `127.0.0.1:PORT`, with `pool_size` server
/// connections at most: a client's transactions may each run on another server connection.
/// Trust authentication, user `postgres`; its admin console answers `SHOW …` for user
/// `postgres` ([`Pgbouncer::show`]). Dropping it stops it; a watchdog stops it if the test
/// process dies first.
///
/// ```no_run
/// let pg = licenses_testkit::PrivateCluster::new();
/// let bouncer = licenses_testkit::Pgbouncer::transaction_mode(pg.url(), 2);
/// let url = bouncer.url(); // postgres://postgres@127.0.0.1:PORT/postgres
/// ```
pub struct Pgbouncer {
    dir: PathBuf,
    port: u16,
}

impl fmt::Debug for Pgbouncer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pgbouncer")
            .field("port", &self.port)
            .field("dir", &self.dir)
            .finish()
    }
}

impl Pgbouncer {
    /// Starts pgbouncer in front of the server of `server_url` (a `postgres://…@127.0.0.1:
    /// PORT/…` URL) and returns once it accepts connections.
    ///
    /// # Panics
    /// With one line when pgbouncer is not installed or does not start.
    pub fn transaction_mode(server_url: &str, pool_size: u32) -> Pgbouncer {
        Self::try_start(server_url, pool_size).unwrap_or_else(|why| panic!("{why}"))
    }

    fn try_start(server_url: &str, pool_size: u32) -> Result<Pgbouncer, String> {
        let bin = sbin("pgbouncer").ok_or(
            "pgbouncer is needed for the pgbouncer tests: install it (apt-get install pgbouncer)",
        )?;
        let server = url::Url::parse(server_url).map_err(|e| format!("{server_url}: {e}"))?;
        let server_port = server.port().unwrap_or(5432);
        let (dir, dir_str) = postgres_dir("licenses-pgbouncer-")?;
        let port = find_free_port()?;
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port={server_port}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir = {dir_str}\n\
             auth_type = trust\nauth_file = {dir_str}/users.txt\npool_mode = transaction\n\
             default_pool_size = {pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n\
             max_client_conn = 500\nadmin_users = postgres\n\
             ignore_startup_parameters = extra_float_digits,options\n\
             logfile = {dir_str}/pgbouncer.log\npidfile = {dir_str}/pgbouncer.pid\n"
        );
        let written = std::fs::write(dir.join("pgbouncer.ini"), ini)
            .and_then(|()| std::fs::write(dir.join("users.txt"), "\"postgres\" \"\"\n"));
        if let Err(e) = written {
            return Err(format!("cannot configure pgbouncer: {e}"));
        }
        let bin_str = bin.to_str().ok_or("non UTF-8 pgbouncer path")?;
        let started = shell(
            r#""$1" -d "$2/pgbouncer.ini" >"$2/start.log" 2>&1"#,
            &[bin_str, &dir_str],
        )
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run pgbouncer: {e}"))?;
        let bouncer = Pgbouncer { dir, port };
        if !started.success() {
            return Err(format!("pgbouncer did not start: {}", bouncer.log()));
        }
        watch_daemon(&dir_str, "pgbouncer")?;
        wait_listening(port, "pgbouncer").map_err(|why| format!("{why}: {}", bouncer.log()))?;
        Ok(bouncer)
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("pgbouncer.log"))
            .or_else(|_| std::fs::read_to_string(self.dir.join("start.log")))
            .unwrap_or_default();
        last_line(&log).to_owned()
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`, through pgbouncer.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// What the admin console answers to `SHOW what` (e.g. `STATS`), as `psql` prints it
    /// unaligned: a header line, then one line per row, `|` between the columns.
    ///
    /// # Panics
    /// When psql cannot ask.
    pub fn show(&self, what: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-X",
                "-A",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "pgbouncer",
                "-c",
                &format!("SHOW {what}"),
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        assert!(
            out.status.success(),
            "SHOW {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The sum of column `column` over the rows of `SHOW what` whose `database` is `database`.
    pub fn stat(&self, what: &str, database: &str, column: &str) -> u64 {
        let text = self.show(what);
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split('|').collect();
        let (Some(db), Some(col)) = (
            header.iter().position(|h| *h == "database"),
            header.iter().position(|h| *h == column),
        ) else {
            panic!("SHOW {what} has no {column} column: {text}");
        };
        lines
            .map(|l| l.split('|').collect::<Vec<_>>())
            .filter(|row| row.get(db) == Some(&database))
            .filter_map(|row| row.get(col).and_then(|v| v.parse::<u64>().ok()))
            .sum()
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        stop_daemon(&self.dir, "pgbouncer");
    }
}
