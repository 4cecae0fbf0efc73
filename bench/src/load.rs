//! The load generators: wrk for the service (bench/lua/scenario.lua), pgbench for the
//! database's own ceilings. Both report throughput and the p50/p99 of every request.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// One load at one connection count.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Point {
    pub connections: u32,
    /// Requests (or transactions) a second.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The service's peak RSS during this load; `None` for pgbench.
    pub peak_rss_mib: Option<f64>,
    /// Requests answered with a status >= 400, or failed (connect, read, write, timeout).
    pub errors: u64,
    pub requests: u64,
}

impl Point {
    /// Of several runs of one load, the run of median throughput (the lower middle of an even
    /// count), with the highest peak RSS and every error of them all: one run that the
    /// machine slowed does not make the figure, and no memory peak or error is hidden.
    pub fn median_of(mut runs: Vec<Point>) -> Option<Point> {
        runs.sort_by(|a, b| a.throughput.total_cmp(&b.throughput));
        let peak = runs.iter().filter_map(|p| p.peak_rss_mib).reduce(f64::max);
        let errors = runs.iter().map(|p| p.errors).sum();
        let middle = runs.len().checked_sub(1)? / 2;
        let mut point = runs.swap_remove(middle);
        point.peak_rss_mib = peak;
        point.errors = errors;
        Some(point)
    }
}

/// What wrk's `done` printed (bench/lua/scenario.lua).
#[derive(Debug, Deserialize)]
struct WrkSummary {
    requests: u64,
    duration_us: u64,
    connect_errors: u64,
    read_errors: u64,
    write_errors: u64,
    status_errors: u64,
    timeouts: u64,
    p50_us: u64,
    p99_us: u64,
}

/// wrk threads for `connections`: the machine's two cores, never more threads than
/// connections.
fn threads(connections: u32) -> u32 {
    connections.min(2)
}

/// A wrk scenario: `mode` and its arguments, as bench/lua/scenario.lua takes them.
#[derive(Debug, Clone)]
pub struct Wrk<'a> {
    pub base_url: &'a str,
    pub script: &'a Path,
    pub mode: &'a str,
    pub users: &'a Path,
    pub extra: Option<String>,
}

impl Wrk<'_> {
    /// Runs wrk for `seconds` at `connections`; the point without its RSS.
    pub fn run(&self, connections: u32, seconds: u64) -> Result<Point> {
        let mut cmd = Command::new("wrk");
        cmd.arg(format!("-t{}", threads(connections)))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{seconds}s"))
            .args(["--timeout", "10s", "-s"])
            .arg(self.script)
            .arg(self.base_url)
            .arg("--")
            .arg(self.mode)
            .arg(self.users);
        if let Some(extra) = &self.extra {
            cmd.arg(extra);
        }
        let out = cmd
            .output()
            .context("cannot run wrk (apt-get install wrk)")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "wrk {} at {connections} failed: {stdout}{}",
                self.mode,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let summary = parse_wrk(&stdout)
            .with_context(|| format!("wrk {} printed no summary: {stdout}", self.mode))?;
        Ok(summary.point(connections))
    }
}

fn parse_wrk(stdout: &str) -> Result<WrkSummary> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .context("no BENCH line")?;
    Ok(serde_json::from_str(line)?)
}

impl WrkSummary {
    fn point(&self, connections: u32) -> Point {
        let seconds = self.duration_us as f64 / 1e6;
        Point {
            connections,
            throughput: if seconds > 0.0 {
                self.requests as f64 / seconds
            } else {
                0.0
            },
            p50_ms: self.p50_us as f64 / 1000.0,
            p99_ms: self.p99_us as f64 / 1000.0,
            peak_rss_mib: None,
            errors: self.connect_errors
                + self.read_errors
                + self.write_errors
                + self.status_errors
                + self.timeouts,
            requests: self.requests,
        }
    }
}

/// pgbench's built-in scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pgbench {
    /// `-S`: one primary-key SELECT a transaction.
    SelectOnly,
    /// The default TPC-B-like transaction: three UPDATEs, a SELECT and an INSERT.
    TpcB,
}

impl Pgbench {
    /// Runs pgbench on `url` (a database `pgbench -i` filled) for `seconds` at `clients`, with
    /// prepared statements (as the service's diesel connections use), logging every
    /// transaction into `logs` for the percentiles.
    pub fn run(self, url: &str, clients: u32, seconds: u64, logs: &Path) -> Result<Point> {
        if logs.exists() {
            std::fs::remove_dir_all(logs)?;
        }
        std::fs::create_dir_all(logs)?;
        let mut cmd = Command::new("pgbench");
        cmd.args(["-n", "-M", "prepared", "-l"])
            .arg(format!("--log-prefix={}", logs.join("tx").display()))
            .arg(format!("-c{clients}"))
            .arg(format!("-j{}", threads(clients)))
            .arg(format!("-T{seconds}"));
        if self == Pgbench::SelectOnly {
            cmd.arg("-S");
        }
        let out = cmd
            .arg(url)
            .output()
            .context("cannot run pgbench (apt-get install postgresql-contrib)")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "pgbench at {clients} failed: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let tps = parse_tps(&stdout).with_context(|| format!("no tps in: {stdout}"))?;
        let mut latencies = Vec::new();
        for file in std::fs::read_dir(logs)? {
            let text = std::fs::read_to_string(file?.path())?;
            latencies.extend(text.lines().filter_map(logged_latency_us));
        }
        latencies.sort_unstable();
        let failed = parse_failed(&stdout);
        Ok(Point {
            connections: clients,
            throughput: tps,
            p50_ms: percentile(&latencies, 0.50) as f64 / 1000.0,
            p99_ms: percentile(&latencies, 0.99) as f64 / 1000.0,
            peak_rss_mib: None,
            errors: failed,
            requests: latencies.len() as u64,
        })
    }
}

/// `tps = 21234.567890 (without initial connection time)`.
fn parse_tps(stdout: &str) -> Option<f64> {
    stdout.lines().find_map(|l| {
        l.strip_prefix("tps = ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// `number of failed transactions: 0 (0.000%)`.
fn parse_failed(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("number of failed transactions: ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// A pgbench per-transaction log line, `client tx time_us script epoch epoch_us`: its
/// latency in microseconds.
fn logged_latency_us(line: &str) -> Option<u64> {
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The `q` quantile of sorted values (nearest rank); 0 when empty.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_run_stands_with_the_worst_peak_and_every_error() {
        let run = |throughput: f64, rss: f64, errors: u64| Point {
            connections: 32,
            throughput,
            p50_ms: throughput / 1000.0,
            p99_ms: 1.0,
            peak_rss_mib: Some(rss),
            errors,
            requests: 10,
        };
        let p = Point::median_of(vec![
            run(300.0, 40.0, 0),
            run(100.0, 90.0, 1),
            run(200.0, 50.0, 2),
        ])
        .expect("three runs");
        assert!((p.throughput - 200.0).abs() < 1e-9 && (p.p50_ms - 0.2).abs() < 1e-9);
        assert_eq!((p.peak_rss_mib, p.errors), (Some(90.0), 3));
        let one = Point::median_of(vec![run(5.0, 1.0, 0)]).expect("one run");
        assert!((one.throughput - 5.0).abs() < 1e-9);
        assert!(Point::median_of(Vec::new()).is_none());
    }

    #[test]
    fn wrk_summary_line_becomes_a_point() {
        let out = "Running 10s test\n  2 threads\nBENCH {\"requests\":20000,\"duration_us\":\
                   10000000,\"connect_errors\":0,\"read_errors\":1,\"write_errors\":0,\
                   \"status_errors\":2,\"timeouts\":3,\"p50_us\":1500,\"p99_us\":9000}\n";
        let p = parse_wrk(out).expect("parsed").point(32);
        assert_eq!(p.connections, 32);
        assert!((p.throughput - 2000.0).abs() < 1e-9);
        assert!((p.p50_ms - 1.5).abs() < 1e-9 && (p.p99_ms - 9.0).abs() < 1e-9);
        assert_eq!((p.errors, p.requests), (6, 20_000));
        assert!(parse_wrk("Running 10s test\n").is_err());
    }

    #[test]
    fn pgbench_output_and_logs_are_read() {
        let out = "transaction type: <builtin: select only>\nnumber of failed transactions: 4 \
                   (0.010%)\nlatency average = 1.2 ms\ntps = 21234.567890 (without initial \
                   connection time)\n";
        assert_eq!(parse_tps(out), Some(21_234.567_89));
        assert_eq!(parse_failed(out), 4);
        assert_eq!(parse_tps("tps = many\n"), None);
        assert_eq!(
            logged_latency_us("3 118 1234 0 1700000000 123456"),
            Some(1234)
        );
        assert_eq!(logged_latency_us("garbage"), None);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn wrk_never_gets_more_threads_than_connections() {
        assert_eq!(threads(1), 1);
        assert_eq!(threads(8), 2);
        assert_eq!(threads(128), 2);
    }
}
