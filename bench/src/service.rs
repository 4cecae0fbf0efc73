//! `licenses serve`, as an operator runs it, on the benchmark's database; and its memory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The management key of config/local.toml (`dev-management-key-change-me`).
pub const MANAGEMENT_KEY: &str = "dev-management-key-change-me";
/// The user-token secret of config/local.toml.
pub const TOKEN_SECRET: &str = "dev-token-secret-change-me-0123456789abcdef";

/// A running `licenses serve`; killed when dropped.
#[derive(Debug)]
pub struct Service {
    child: Child,
    pub user_url: String,
    pub management_url: String,
}

/// `licenses` with the benchmark's settings (`APP_ENV=local`, the repository's configuration,
/// no `RUST_LOG` inherited) on the database `url`.
pub fn licenses(binary: &Path, config_dir: &Path, url: &str) -> Command {
    let mut command = Command::new(binary);
    command
        .env("APP_ENV", "local")
        .env("LICENSES_CONFIG_DIR", config_dir)
        .env("LICENSES__DATABASE__URL", url)
        .env_remove("RUST_LOG");
    command
}

/// How the service is started.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    pub binary: &'a Path,
    /// The repository's `config/` (APP_ENV=local: the development key and token secret, no
    /// rate limits), with the database replaced by the benchmark's.
    pub config_dir: PathBuf,
    pub database_url: &'a str,
    pub pool_size: Option<u32>,
    pub log: PathBuf,
    /// `events.nats.url`: publish the license events to this NATS server.
    pub nats_url: Option<String>,
    /// `database.replicas`: read the GET requests from this streaming replica.
    pub replica_url: Option<String>,
}

impl Service {
    /// Starts the service and returns once `/health/ready` answers 200.
    pub fn start(launch: &Launch<'_>) -> Result<Service> {
        let user_port = licenses_testkit::free_port();
        let management_port = licenses_testkit::free_port();
        let log = std::fs::File::create(&launch.log)
            .with_context(|| format!("cannot create {}", launch.log.display()))?;
        let mut cmd = licenses(launch.binary, &launch.config_dir, launch.database_url);
        cmd.arg("serve")
            .env(
                "LICENSES__SERVER__USER_ADDR",
                format!("127.0.0.1:{user_port}"),
            )
            .env(
                "LICENSES__SERVER__MANAGEMENT_ADDR",
                format!("127.0.0.1:{management_port}"),
            )
            .env("LICENSES__LOG__FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(url) = &launch.nats_url {
            cmd.env("LICENSES__EVENTS__NATS__URL", url);
        }
        if let Some(url) = &launch.replica_url {
            cmd.env("LICENSES__DATABASE__REPLICAS", url);
        }
        if let Some(size) = launch.pool_size {
            cmd.env("LICENSES__DATABASE__POOL_SIZE", size.to_string());
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", launch.binary.display()))?;
        let mut service = Service {
            child,
            user_url: format!("http://127.0.0.1:{user_port}"),
            management_url: format!("http://127.0.0.1:{management_port}"),
        };
        service.wait_ready(&launch.log)?;
        Ok(service)
    }

    /// `licenses_store_reads_total{target="replica"}` of its `/metrics`.
    pub fn replica_reads(&self) -> Result<u64> {
        let out = Command::new("curl")
            .args(["-sf", &format!("{}/metrics", self.management_url)])
            .output()
            .context("cannot run curl")?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .find_map(|l| {
                l.strip_prefix("licenses_store_reads_total{target=\"replica\"}")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0))
    }

    fn wait_ready(&mut self, log: &Path) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let ready = format!("{}/health/ready", self.management_url);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "licenses serve exited ({status}); its log: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            let answered = Command::new("curl")
                .args(["-fsS", "-o", "/dev/null", &ready])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "licenses serve was not ready within 60 s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Forgets the peak RSS so far (`/proc/PID/clear_refs`, 5): the next
    /// [`Service::peak_rss_mib`] is the peak since now.
    pub fn reset_peak_rss(&self) -> Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")
            .context("cannot reset the service's peak RSS")
    }

    /// The peak RSS (VmHWM) since the start or the last reset, in MiB.
    pub fn peak_rss_mib(&self) -> Result<f64> {
        status_kib(self.pid(), "VmHWM:").map(|kib| kib as f64 / 1024.0)
    }

    /// Stops the service (SIGTERM, as an orchestrator does) and waits for it.
    pub fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `KEY: N kB` line of `/proc/PID/status`.
fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_kib(&status, key).with_context(|| format!("no {key} for process {pid}"))
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_rss_line_is_read_in_kib() {
        let status =
            "Name:\tlicenses\nVmPeak:\t 900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(51_200));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_has_a_peak_rss() {
        assert!(status_kib(std::process::id(), "VmHWM:").expect("read") > 0);
    }
}
