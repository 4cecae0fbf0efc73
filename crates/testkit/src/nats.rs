//! A real `nats-server -js` for the tests: its own loopback port and store directory, killed
//! on drop. CI installs the Debian package `nats-server` (.ci/run).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// How long a server may take to start answering.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A `nats-server -js` of the test's own; see the module.
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    /// The JetStream store (`-sd`), kept across [`NatsServer::restart`].
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// A server on a free loopback port, answering when this returns.
    pub fn start() -> Self {
        let mut server = Self {
            port: 0,
            dir: tempfile::tempdir().expect("temp dir for the JetStream store"),
            child: None,
        };
        // A port found free may be taken before the server binds it: try a few.
        let mut last_failure = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("nats-server did not start: {last_failure}");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: as a crash would), and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Stops the server and starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The port may linger a moment after the kill.
                Err(failure) if Instant::now() < deadline => {
                    eprintln!("nats-server restart: {failure}; trying again");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(failure) => panic!("nats-server did not restart: {failure}"),
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// Starts the process and waits until it answers with its INFO line; on failure the
    /// process is gone and the error holds the end of its log.
    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|err| format!("log file: {err}"))?;
        let child = Command::new(nats_server())
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.dir.path().join("jetstream"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|err| err.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|err| format!("running {}: {err}", nats_server().display()))?;
        self.child = Some(child);

        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("exited ({status}): {}", self.log_tail()));
            }
            if self.answers() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "no INFO within {START_DEADLINE:?}: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server greets a new connection with its INFO line once it is ready for clients
    /// (JetStream is enabled before the listener opens).
    fn answers(&self) -> bool {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO ")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `NATS_SERVER` if set, else `nats-server` on the PATH, else the Debian package's path.
fn nats_server() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}
