//! A real haproxy (the Debian package) balancing HTTP over service instances on loopback, as
//! a deployment's load balancer does.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::cluster::{last_line, postgres_dir, sbin, stop_daemon, wait_listening, watch_daemon};
use crate::ports::find_free_port;

/// haproxy on a free port of 127.0.0.1, round robin over `127.0.0.1:PORT` backends, each
/// checked every 200 ms with `GET /health/ready` (out after one failure, back after two
/// successes). A request whose connection fails, or that gets no answer at all, is sent to
/// another instance (`retry-on conn-failure empty-response`, `option redispatch`): what an
/// operator configures so that a rolling restart costs no error. Dropping it stops it; a
/// watchdog stops it if the test process dies first.
pub struct Haproxy {
    dir: PathBuf,
    port: u16,
}

impl fmt::Debug for Haproxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Haproxy")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Haproxy {
    /// Starts haproxy in front of `backends` (ports of 127.0.0.1) and returns once it listens.
    ///
    /// # Panics
    /// With one line when haproxy is not installed or does not start.
    pub fn round_robin(backends: &[u16]) -> Haproxy {
        Self::try_start(backends).unwrap_or_else(|why| panic!("{why}"))
    }

    fn try_start(backends: &[u16]) -> Result<Haproxy, String> {
        let bin = sbin("haproxy").ok_or(
            "haproxy is needed for the cluster test: install it (apt-get install haproxy)",
        )?;
        let (dir, dir_str) = postgres_dir("licenses-haproxy-")?;
        let port = find_free_port()?;
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, p)| format!("    server i{i} 127.0.0.1:{p} check\n"))
            .collect();
        let config = format!(
            "global\n    maxconn 2000\n    pidfile {dir_str}/haproxy.pid\n\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n\
             \x20   timeout server 30s\n    retries 3\n    option redispatch 1\n\
             \x20   retry-on conn-failure empty-response\n\n\
             frontend licenses\n    bind 127.0.0.1:{port}\n    default_backend instances\n\n\
             backend instances\n    balance roundrobin\n    option httpchk GET /health/ready\n\
             \x20   default-server inter 200ms fall 1 rise 2\n{servers}"
        );
        std::fs::write(dir.join("haproxy.cfg"), config)
            .map_err(|e| format!("cannot configure haproxy: {e}"))?;
        let bin_str = bin.to_str().ok_or("non UTF-8 haproxy path")?;
        let started = Command::new(bin_str)
            .args(["-D", "-q", "-f"])
            .arg(dir.join("haproxy.cfg"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run haproxy: {e}"))?;
        let proxy = Haproxy { dir, port };
        if !started.status.success() {
            return Err(format!(
                "haproxy did not start: {}",
                last_line(&String::from_utf8_lossy(&started.stderr))
            ));
        }
        watch_daemon(&dir_str, "haproxy")?;
        wait_listening(port, "haproxy")?;
        Ok(proxy)
    }

    /// `http://127.0.0.1:PORT`: the instances, through haproxy.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        stop_daemon(&self.dir, "haproxy");
    }
}
