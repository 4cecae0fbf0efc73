//! The `licenses` binary as a test runs it: [`ServiceProcess`], `licenses serve` on two free
//! ports of 127.0.0.1, ready when it is returned, its output kept, killed when dropped; and
//! [`isolated_command`], the binary with none of the test's own configuration variables, for
//! the one-shot commands (`migrate`, `import`, …).
//!
//! ```no_run
//! use licenses_testkit::ServiceProcess;
//!
//! let mut service = ServiceProcess::builder("target/debug/licenses")
//!     .env("APP_ENV", "test")
//!     .env("LICENSES__DATABASE__URL", "sqlite:///tmp/licenses.db")
//!     .spawn(); // waits until the management listener answers /health/ready 200
//! let ready = format!("{}/health/ready", service.management_url);
//! service.terminate(); // SIGTERM; or service.kill(), SIGKILL
//! let status = service.try_wait(); // Some(status) once it has exited
//! let lines = service.stdout_lines(); // what it wrote, line by line
//! ```
//!
//! Set `TEST_LOG=1` to see what the service writes, as it writes it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ports::free_port;

/// How long the service may take to answer `/health/ready` after it is started.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// How long one readiness probe may take (connect, send, read the status line).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `binary` as a [`Command`] that inherits none of the test's `APP_ENV`, `LICENSES…` or
/// `RUST_LOG` variables: only what the test sets reaches it.
pub fn isolated_command(binary: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        let inherited_config = name
            .to_str()
            .is_some_and(|n| n.starts_with("LICENSES") || n == "APP_ENV" || n == "RUST_LOG");
        if inherited_config {
            command.env_remove(name);
        }
    }
    command
}

/// How a [`ServiceProcess`] is started: [`ServiceProcess::builder`], then the variables and
/// working directory the test wants, then [`ServiceBuilder::spawn`].
#[derive(Debug)]
pub struct ServiceBuilder {
    binary: PathBuf,
    command: Command,
    /// The user and management ports, when the test chose them.
    ports: Option<(u16, u16)>,
}

impl ServiceBuilder {
    /// Sets a variable of the service's environment (`APP_ENV`, `LICENSES__…`, `RUST_LOG`).
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> ServiceBuilder {
        self.command.env(key, value);
        self
    }

    /// Listens on these ports of 127.0.0.1 rather than on two free ones: for a service
    /// restarted where a load balancer expects it. Equal ports make one listener serve both
    /// APIs.
    #[must_use]
    pub fn ports(mut self, user: u16, management: u16) -> ServiceBuilder {
        self.ports = Some((user, management));
        self
    }

    /// Runs the service in `dir` (where it looks for `config/` unless `LICENSES_CONFIG_DIR`
    /// says otherwise).
    #[must_use]
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> ServiceBuilder {
        self.command.current_dir(dir);
        self
    }

    /// Starts `BINARY serve` with its user and management listeners on two free ports of
    /// 127.0.0.1, and returns once the management listener answers `GET /health/ready` with
    /// 200.
    ///
    /// # Panics
    /// When the binary cannot be started, exits before it is ready, or is not ready within
    /// 60 s (it is killed then); the message holds what it wrote to standard error and the
    /// last lines of its standard output.
    pub fn spawn(self) -> ServiceProcess {
        let ServiceBuilder {
            binary,
            mut command,
            ports,
        } = self;
        let (user_port, management_port) = ports.unwrap_or_else(|| {
            let user_port = free_port();
            let mut management_port = free_port();
            while management_port == user_port {
                management_port = free_port();
            }
            (user_port, management_port)
        });
        let user = SocketAddr::from(([127, 0, 0, 1], user_port));
        let management = SocketAddr::from(([127, 0, 0, 1], management_port));
        command
            .arg("serve")
            .env("LICENSES__SERVER__USER_ADDR", user.to_string())
            .env("LICENSES__SERVER__MANAGEMENT_ADDR", management.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = OutputLines::read(child.stdout.take());
        let stderr = OutputLines::read(child.stderr.take());
        let mut service = ServiceProcess {
            child,
            user_url: format!("http://{user}"),
            management_url: format!("http://{management}"),
            stdout,
            stderr,
        };
        service.wait_until_ready(management);
        service
    }
}

/// A running `licenses serve`, ready to be asked; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    /// `http://127.0.0.1:PORT` of the user API listener.
    pub user_url: String,
    /// `http://127.0.0.1:PORT` of the management API listener.
    pub management_url: String,
    stdout: OutputLines,
    stderr: OutputLines,
}

impl ServiceProcess {
    /// A service to start from `binary` (the test's `env!("CARGO_BIN_EXE_licenses")`), with
    /// none of the test's own `APP_ENV`, `LICENSES…` or `RUST_LOG` variables.
    pub fn builder(binary: impl AsRef<Path>) -> ServiceBuilder {
        let binary = binary.as_ref().to_path_buf();
        ServiceBuilder {
            command: isolated_command(&binary),
            binary,
            ports: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the service with SIGKILL and waits until it is gone.
    ///
    /// # Panics
    /// When the signal cannot be sent or the process cannot be waited for.
    pub fn kill(&mut self) {
        self.child
            .kill()
            .unwrap_or_else(|e| panic!("SIGKILL to {}: {e}", self.pid()));
        self.child
            .wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.pid()));
        self.stdout.finish();
        self.stderr.finish();
    }

    /// Sends SIGTERM, as an orchestrator stops the service; [`ServiceProcess::try_wait`] then
    /// tells when it has exited.
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub fn terminate(&self) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(sent.success(), "kill -TERM {pid}: {sent}");
    }

    /// The exit status once the service has exited (all its output is kept then), `None`
    /// while it runs.
    ///
    /// # Panics
    /// When the process cannot be asked.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let status = self
            .child
            .try_wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.pid()))?;
        self.stdout.finish();
        self.stderr.finish();
        Some(status)
    }

    /// The lines the service has written to standard output so far (its logs).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lines()
    }

    /// What the service has written to standard error so far, each line ended by `\n`.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// The first line of standard output that contains `needle`, waiting for it at most
    /// `within`.
    pub fn stdout_line_containing(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let found = self.stdout.lines().into_iter().find(|l| l.contains(needle));
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `GET /health/ready` on `management` answers 200.
    fn wait_until_ready(&mut self, management: SocketAddr) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.try_wait() {
                panic!(
                    "licenses serve exited at start ({status}){}",
                    self.what_it_wrote()
                );
            }
            if answers_200(management, "/health/ready") {
                return;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "licenses serve was not ready within {} s{}",
                    READY_WITHIN.as_secs(),
                    self.what_it_wrote()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its standard error and the last lines of its standard output, for a panic message.
    fn what_it_wrote(&self) -> String {
        let lines = self.stdout_lines();
        let last = lines[lines.len().saturating_sub(20)..].join("\n");
        format!(
            "; its standard error:\n{}\nthe last lines of its standard output:\n{last}",
            self.stderr()
        )
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The lines of one of the service's output streams, read as they come by a thread of their
/// own, so that the pipe never fills.
#[derive(Debug)]
struct OutputLines {
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl OutputLines {
    fn read(stream: Option<impl Read + Send + 'static>) -> OutputLines {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&lines);
        let echo = std::env::var_os("TEST_LOG").is_some();
        let reader = stream.map(|stream| {
            std::thread::spawn(move || {
                let mut stream = BufReader::new(stream);
                let mut line = Vec::new();
                while stream.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                    let text = String::from_utf8_lossy(&line)
                        .trim_end_matches(['\n', '\r'])
                        .to_owned();
                    if echo {
                        eprintln!("{text}");
                    }
                    kept.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(text);
                    line.clear();
                }
            })
        });
        OutputLines { lines, reader }
    }

    /// Waits until the stream has been read to its end (the process has exited).
    fn finish(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn text(&self) -> String {
        self.lines().iter().map(|l| format!("{l}\n")).collect()
    }
}

/// Whether `GET path` on `addr` answers 200 within [`PROBE_TIMEOUT`] for each step.
fn answers_200(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) else {
        return false;
    };
    let timeouts = stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(PROBE_TIMEOUT)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if timeouts.is_err() || stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).is_ok()
        && status_line.split_whitespace().nth(1) == Some("200")
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn a_listener_answering_200_is_ready_and_one_answering_503_is_not() {
        for (answer, ready) in [("200 OK", true), ("503 Service Unavailable", false)] {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a listener");
            let addr = listener.local_addr().expect("its address");
            let server = std::thread::spawn(move || {
                let (mut stream, _) = listener.accept().expect("a connection");
                let mut request = [0; 1024];
                let _ = stream.read(&mut request);
                let reply = format!("HTTP/1.1 {answer}\r\nContent-Length: 0\r\n\r\n");
                stream.write_all(reply.as_bytes()).expect("an answer");
            });
            assert_eq!(answers_200(addr, "/health/ready"), ready, "{answer}");
            server.join().expect("the stand-in server");
        }
    }

    #[test]
    fn nobody_listening_is_not_ready() {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        assert!(!answers_200(addr, "/health/ready"));
    }

    #[test]
    fn a_service_that_exits_at_start_fails_the_test_with_its_standard_error() {
        // `sh serve`: the script named `serve` in the working directory.
        let dir = tempfile::tempdir().expect("a directory");
        std::fs::write(
            dir.path().join("serve"),
            "echo starting\necho boom >&2\nexit 3\n",
        )
        .expect("the script");
        let started = std::panic::catch_unwind(|| {
            ServiceProcess::builder("/bin/sh")
                .current_dir(dir.path())
                .spawn()
        });
        let Err(panic) = started else {
            panic!("a service that exits is never ready");
        };
        let message = panic
            .downcast_ref::<String>()
            .expect("a panic message")
            .clone();
        assert!(message.contains("exited at start"), "{message}");
        assert!(message.contains("boom"), "{message}");
        assert!(message.contains("starting"), "{message}");
    }
}
