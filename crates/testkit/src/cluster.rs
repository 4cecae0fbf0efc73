//! PostgreSQL clusters of the tests' own, started from the installed binaries: the throwaway
//! one test databases are created on when no server answers, and [`PrivateCluster`], a
//! cluster an outage test may stop, start and restart.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection};

use crate::ports::find_free_port;
use crate::tls::CertifiedKey;

/// The directory holding `initdb` and `postgres`.
pub(crate) fn find_postgres_binaries() -> Option<PathBuf> {
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
pub(crate) fn is_root() -> bool {
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
pub(crate) fn shell(script: &str, args: &[&str]) -> Command {
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

/// A temporary directory `PREFIX…` that outlives this value (its user removes it), owned by
/// `postgres` when this process is root (PostgreSQL and pgbouncer refuse to run as root).
pub(crate) fn postgres_dir(prefix: &str) -> Result<(PathBuf, String), String> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| format!("no temporary directory: {e}"))?
        // Removed by whoever stops what runs there: statics are never dropped.
        .keep();
    let dir_str = dir
        .to_str()
        .ok_or("the temporary directory has a non UTF-8 path")?
        .to_owned();
    if is_root() {
        let chown = Command::new("chown")
            .args(["-R", "postgres:", &dir_str])
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !chown.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!("chown postgres {dir_str} failed"));
        }
    }
    Ok((dir, dir_str))
}

/// A fresh cluster directory (`BASE/data`) made by initdb: trust authentication for the
/// `postgres` user, owned by `postgres` when this process is root. Returns `BASE`, which the
/// caller removes.
fn init_cluster(bin: &Path) -> Result<(PathBuf, String), String> {
    let (base, base_str) = postgres_dir("licenses-pg-")?;
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

/// Starts the throwaway cluster test databases are created on when no server answers: its own
/// directory and free port, stopped and removed by a watchdog once the test process is gone.
/// Returns its admin URL.
pub(crate) fn start_private_cluster(bin: &Path) -> Result<String, String> {
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
    port: u16,
}

impl fmt::Debug for PrivateCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateCluster")
            .field("url", &self.url)
            .field("dir", &self.base)
            .finish_non_exhaustive()
    }
}

/// The directory of `initdb`, `pg_ctl`, `postgres` and `pg_basebackup`.
fn pg_ctl_binaries() -> Result<PathBuf, String> {
    find_postgres_binaries()
        .filter(|d| d.join("pg_ctl").is_file())
        .ok_or_else(|| {
            "PostgreSQL's binaries (initdb, pg_ctl, postgres) are needed for the outage \
             tests, which start a cluster of their own: install PostgreSQL (apt-get install \
             postgresql)"
                .to_owned()
        })
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
        Self::try_new(settings, &[], "").unwrap_or_else(|why| panic!("{why}"))
    }

    /// [`PrivateCluster::new`], serving TLS (`ssl = on`) with `server`'s certificate and key
    /// (`server.crt` and `server.key` in its data directory, the key readable by the server
    /// only). TCP connections without TLS are rejected (`hostnossl … reject`), so that a
    /// connection that succeeds is known to be encrypted.
    ///
    /// # Panics
    /// As [`PrivateCluster::new`].
    pub fn with_tls(server: &CertifiedKey) -> PrivateCluster {
        Self::try_new(
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'",
            &[
                ("server.crt", server.cert_pem.as_str()),
                ("server.key", server.key_pem.as_str()),
            ],
            "hostnossl all all all reject\n",
        )
        .unwrap_or_else(|why| panic!("{why}"))
    }

    /// A cluster with `settings` in its configuration, `files` in its data directory and
    /// `hba_first` before the lines of its `pg_hba.conf`.
    fn try_new(
        settings: &str,
        files: &[(&str, &str)],
        hba_first: &str,
    ) -> Result<PrivateCluster, String> {
        let bin = pg_ctl_binaries()?;
        let (base, base_str) = init_cluster(&bin)?;
        Self::configure_and_start(bin, base, base_str, settings, files, hba_first)
    }

    /// A streaming replica of `primary`: its data directory copied by `pg_basebackup -R`
    /// (which writes `primary_conninfo` and `standby.signal`), on a port of its own, with
    /// `settings` after the test settings (e.g. `recovery_min_apply_delay = '3s'` for a
    /// replica that lags on purpose). It answers read-only queries (`hot_standby`) and can
    /// be stopped and started like any private cluster.
    ///
    /// # Panics
    /// With one line when `pg_basebackup` fails or the replica cannot start.
    pub fn replica_of(primary: &PrivateCluster, settings: &str) -> PrivateCluster {
        Self::try_replica_of(primary, settings).unwrap_or_else(|why| panic!("{why}"))
    }

    fn try_replica_of(primary: &PrivateCluster, settings: &str) -> Result<PrivateCluster, String> {
        let bin = pg_ctl_binaries()?;
        let (base, base_str) = postgres_dir("licenses-pg-replica-")?;
        let fail = |why: String| {
            let _ = std::fs::remove_dir_all(&base);
            format!("cannot make a streaming replica: {why}")
        };
        let port = primary.port.to_string();
        let bin_str = bin.to_str().ok_or("non UTF-8 PostgreSQL path")?.to_owned();
        let backup = shell(
            r#""$1/pg_basebackup" -h 127.0.0.1 -p "$3" -U postgres -D "$2/data" -R -X stream \
                -c fast --no-sync >"$2/basebackup.log" 2>&1"#,
            &[&bin_str, &base_str, &port],
        )
        .stdin(Stdio::null())
        .status()
        .map_err(|e| fail(format!("cannot run pg_basebackup: {e}")))?;
        if !backup.success() {
            let log = std::fs::read_to_string(base.join("basebackup.log")).unwrap_or_default();
            return Err(fail(format!("pg_basebackup failed: {}", last_line(&log))));
        }
        // A hot standby needs at least the primary's max_connections (the benchmark's primary
        // takes more than the test settings give).
        let connections = crate::query_strings(
            &primary.url,
            "SELECT current_setting('max_connections') AS value",
        );
        let settings = format!(
            "hot_standby = on\nhot_standby_feedback = on\nmax_connections = {}\n{settings}",
            connections.first().map_or("200", String::as_str)
        );
        Self::configure_and_start(bin, base, base_str, &settings, &[], "")
    }

    /// Gives the cluster in `BASE/data` a free port and the test settings, then starts it
    /// under a watchdog.
    fn configure_and_start(
        bin: PathBuf,
        base: PathBuf,
        base_str: String,
        settings: &str,
        files: &[(&str, &str)],
        hba_first: &str,
    ) -> Result<PrivateCluster, String> {
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
        for (name, contents) in files {
            if let Err(why) = write_private_file(&base.join("data").join(name), contents) {
                return Err(fail(why));
            }
        }
        if !hba_first.is_empty() {
            let hba = base.join("data/pg_hba.conf");
            // Rewritten in place: the file keeps its owner.
            let rewritten = std::fs::read_to_string(&hba)
                .and_then(|lines| std::fs::write(&hba, format!("{hba_first}{lines}")));
            if let Err(e) = rewritten {
                return Err(fail(format!("cannot edit pg_hba.conf: {e}")));
            }
        }
        let cluster = PrivateCluster {
            bin: bin.to_str().ok_or("non UTF-8 PostgreSQL path")?.to_owned(),
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            port,
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

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
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

    /// Freezes every process of the cluster (SIGSTOP), as a host that hangs without closing
    /// anything (a VM paused, a machine out of memory): the kernel still accepts connections
    /// and queues what is sent, but nothing answers. The cluster thaws (SIGCONT) when the
    /// guard is dropped, a failed test's too.
    ///
    /// # Panics
    /// When the cluster is not running or the signal cannot be sent.
    pub fn freeze(&self) -> Frozen<'_> {
        self.signal("STOP")
            .unwrap_or_else(|why| panic!("cannot freeze the private PostgreSQL cluster: {why}"));
        Frozen(self)
    }

    /// Sends `signal` to the postmaster, then to each of its children (so that a stopped
    /// postmaster starts none after the list was read).
    fn signal(&self, signal: &str) -> Result<(), String> {
        let pid_file = self.base.join("data/postmaster.pid");
        let postmaster = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next().map(str::to_owned))
            .ok_or_else(|| format!("no postmaster in {}", pid_file.display()))?;
        let mut pids = vec![postmaster.clone()];
        pids.extend(children_of(&postmaster));
        let mut args = vec![signal];
        args.extend(pids.iter().map(String::as_str));
        let status = shell(r#"s=$1; shift; kill -s "$s" "$@""#, &args)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -s {signal} {} failed", pids.join(" ")))
        }
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

/// A frozen [`PrivateCluster`] ([`PrivateCluster::freeze`]), thawed when dropped.
#[must_use = "the cluster thaws when the guard is dropped"]
#[derive(Debug)]
pub struct Frozen<'a>(&'a PrivateCluster);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if let Err(why) = self.0.signal("CONT") {
            eprintln!("warning: cannot thaw the private PostgreSQL cluster: {why}");
        }
    }
}

/// The processes whose parent is `parent`, from `/proc/PID/stat` (its fourth field, after
/// the command name in parentheses, which may hold anything).
fn children_of(parent: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid = entry.file_name().into_string().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (_, after_name) = stat.rsplit_once(')')?;
            let ppid = after_name.split_whitespace().nth(1)?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// Writes a file only its owner may read (PostgreSQL refuses a key others can read), owned
/// by `postgres` when this process is root.
fn write_private_file(path: &Path, contents: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    std::fs::write(path, contents).map_err(|e| format!("cannot write {shown}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot chmod {shown}: {e}"))?;
    if is_root() {
        let chown = Command::new("chown")
            .arg("postgres:")
            .arg(path)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !chown.success() {
            return Err(format!("chown postgres {shown} failed"));
        }
    }
    Ok(())
}

/// A Debian package's program (`/usr/sbin/NAME`, not on every test's `PATH`), else the first
/// on `PATH`.
pub(crate) fn sbin(name: &str) -> Option<PathBuf> {
    let installed = PathBuf::from("/usr/sbin").join(name);
    if installed.is_file() {
        return Some(installed);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Stops the daemon of `DIR/NAME.pid` and removes `DIR` once the test process is gone (or
/// `DIR` was removed by its owner first).
pub(crate) fn watch_daemon(dir: &str, name: &str) -> Result<(), String> {
    let parent = std::process::id().to_string();
    shell(
        r#"while [ -d "/proc/$2" ] && [ -d "$1" ]; do sleep 1; done
           [ -f "$1/$3.pid" ] && kill "$(cat "$1/$3.pid")" 2>/dev/null
           rm -rf "$1""#,
        &[dir, &parent, name],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .map(drop)
    .map_err(|e| format!("cannot start {name}'s watchdog: {e}"))
}

/// Waits until `127.0.0.1:port` accepts connections, for at most 10 s.
pub(crate) fn wait_listening(port: u16, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{what} did not listen within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Stops the daemon of `DIR/NAME.pid` and removes `DIR`.
pub(crate) fn stop_daemon(dir: &Path, name: &str) {
    if let Ok(pid) = std::fs::read_to_string(dir.join(format!("{name}.pid"))) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
    let _ = std::fs::remove_dir_all(dir);
}

pub(crate) fn last_line(log: &str) -> &str {
    log.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(empty)")
}

#[cfg(test)]
mod tests {
    use diesel::RunQueryDsl;

    use super::*;
    use crate::query_strings;

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
    fn a_replica_streams_the_primarys_writes_and_refuses_its_own() {
        // More connections than the test settings give: a hot standby needs as many.
        let primary = PrivateCluster::with_settings("max_connections = 250");
        let replica = PrivateCluster::replica_of(&primary, "");
        assert_ne!(primary.url(), replica.url());
        let recovery = "SELECT pg_is_in_recovery()::text AS value";
        assert_eq!(query_strings(replica.url(), recovery), ["true"]);
        assert_eq!(query_strings(primary.url(), recovery), ["false"]);
        let mut p = PgConnection::establish(primary.url()).expect("the primary");
        diesel::sql_query("CREATE TABLE t AS SELECT 42 AS v")
            .execute(&mut p)
            .expect("written on the primary");
        let deadline = Instant::now() + Duration::from_secs(30);
        let exists = "SELECT (to_regclass('t') IS NOT NULL)::text AS value";
        while query_strings(replica.url(), exists) != ["true"] {
            assert!(
                Instant::now() < deadline,
                "the write never reached the replica"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            query_strings(replica.url(), "SELECT v::text AS value FROM t"),
            ["42"]
        );
        let mut r = PgConnection::establish(replica.url()).expect("the replica");
        assert!(
            diesel::sql_query("CREATE TABLE u (v int)")
                .execute(&mut r)
                .is_err(),
            "a replica is read-only"
        );
    }
}
