//! A host gone without a word (powered off, partitioned) resets nothing: only TCP can notice
//! it. The store's connections ask libpq to probe an idle connection after 30 s (Linux's own
//! default is two hours), which `ss` shows as each connection's keepalive timer. (Dropping
//! packets to see the probes fail needs a firewall rule this test may not set.)
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use licenses_store::{Store, StoreConfig};
use licenses_testkit::PrivateCluster;

/// The seconds of each keepalive timer of the established connections to `port`, as `ss`
/// shows them (`timer:(keepalive,25sec,0)`; a longer one reads `119min` or `1min30sec`).
fn keepalive_timers(port: u16) -> Vec<u64> {
    let out = Command::new("ss")
        .args([
            "-tno",
            "state",
            "established",
            &format!("( dport = :{port} )"),
        ])
        .output()
        .expect("ss (iproute2) lists the sockets");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let timer = line.split("timer:(keepalive,").nth(1)?.split(',').next()?;
            Some(seconds(timer))
        })
        .collect()
}

/// `25sec`, `1min30sec`, `119min`, `900ms` in whole seconds (rounded up).
fn seconds(timer: &str) -> u64 {
    let mut total_ms = 0;
    let mut number = String::new();
    let mut unit = String::new();
    for c in timer.chars().chain(std::iter::once('0')) {
        if c.is_ascii_digit() {
            if !unit.is_empty() {
                let n: u64 = number.parse().unwrap_or(0);
                total_ms += match unit.as_str() {
                    "ms" => n,
                    "sec" => n * 1000,
                    "min" => n * 60_000,
                    _ => n * 3_600_000,
                };
                number.clear();
                unit.clear();
            }
            number.push(c);
        } else {
            unit.push(c);
        }
    }
    total_ms.div_ceil(1000)
}

#[test]
fn timers_are_read_in_seconds() {
    assert_eq!(seconds("25sec"), 25);
    assert_eq!(seconds("1min30sec"), 90);
    assert_eq!(seconds("119min"), 7140);
    assert_eq!(seconds("900ms"), 1);
}

#[test]
fn connections_probe_an_idle_host_after_30_seconds() {
    let cluster = PrivateCluster::new();
    let port = cluster.port();
    let config = StoreConfig::new(cluster.url().to_owned(), 2, Duration::from_secs(1));
    let _store = Store::open(&config).unwrap();
    // The pool keeps one connection open (opened in the background).
    let deadline = Instant::now() + Duration::from_secs(10);
    let timers = loop {
        let timers = keepalive_timers(port);
        if !timers.is_empty() || Instant::now() > deadline {
            break timers;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!timers.is_empty(), "no connection with a keepalive timer");
    assert!(
        timers.iter().all(|&s| s <= 30),
        "keepalive timers in seconds: {timers:?}"
    );
}
