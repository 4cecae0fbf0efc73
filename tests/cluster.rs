//! Three instances of the real binary behind a real haproxy (the Debian package), on one
//! PostgreSQL primary and one streaming replica (`pg_basebackup -R`), with Irdeto enabled
//! against the stand-in. Under load (license creations with `Idempotency-Key`, and users
//! reading their licenses), one instance is restarted (SIGTERM, then started again on its
//! port) and the replica is stopped and started. Then: no answer was a 5xx or a failed
//! connection, every license created exists once, the replica served reads, and every
//! outbox job was delivered once (Irdeto saw one grant per license, no duplicate).
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use licenses_api_user::mint_token;
use licenses_irdeto::standin::StandIn;
use licenses_testkit::{Haproxy, PrivateCluster, ServiceProcess, free_port, query_strings};
use serde_json::{Value, json};
use support::{MANAGEMENT_KEY, TOKEN_SECRET};
use tokio::sync::Mutex;

const USER_API: &str = "/api/license/v4";
const MANAGEMENT_API: &str = "/api/license/management/v4";
const KEY: &str = "cluster-irdeto-key";
const CLIENTS: usize = 6;

fn instance(port: u16, primary: &str, replica: &str, irdeto: &str) -> ServiceProcess {
    ServiceProcess::builder(env!("CARGO_BIN_EXE_licenses"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_ENV", "test")
        .env("RUST_LOG", "warn")
        .env("LICENSES__DATABASE__URL", primary)
        .env("LICENSES__DATABASE__REPLICAS", replica)
        .env("LICENSES__DATABASE__POOL_SIZE", "4")
        .env("LICENSES__IRDETO__ENABLED", "true")
        .env("LICENSES__IRDETO__BASE_URL", irdeto)
        .env("LICENSES__IRDETO__API_KEY", KEY)
        .env("LICENSES__SERVER__SHUTDOWN_GRACE_SECS", "10")
        .ports(port, port)
        .spawn()
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    answers: AtomicU64,
    /// 5xx answers and failed requests, with what they were.
    failures: Mutex<Vec<String>>,
    /// The licenses created (201), by id.
    created: Mutex<Vec<String>>,
}

async fn client(i: usize, base: String, product: String, stop: Arc<AtomicBool>, seen: Arc<Seen>) {
    let http = support::process_client();
    let user = format!("u{i}");
    let bearer = mint_token(TOKEN_SECRET, &user, &[], 3600, None, None).unwrap();
    let mut n = 0;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        let doc = json!({"data": {"type": "License", "attributes": {"order_id": format!("o{i}-{n}")},
            "relationships": {"user": {"data": {"type": "User", "id": user}},
                "product": {"data": {"type": "Product", "id": product}}}}});
        let created = http
            .post(format!("{base}{MANAGEMENT_API}/licenses"))
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
            .header("Content-Type", "application/vnd.api+json")
            .header("Idempotency-Key", format!("c{i}-{n}"))
            .body(doc.to_string())
            .send()
            .await;
        let read = http
            .get(format!("{base}{USER_API}/users/{user}/licenses"))
            .header("Authorization", format!("Bearer {bearer}"))
            .send()
            .await;
        for (what, answer) in [("POST /licenses", created), ("GET my licenses", read)] {
            seen.answers.fetch_add(1, Ordering::Relaxed);
            match answer {
                Err(error) => seen.failures.lock().await.push(format!("{what}: {error}")),
                Ok(r) if r.status().is_server_error() => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    seen.failures
                        .lock()
                        .await
                        .push(format!("{what}: {status} {body}"));
                }
                Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                    let body: Value = r.json().await.unwrap();
                    let id = body["data"]["id"].as_str().unwrap().to_owned();
                    seen.created.lock().await.push(id);
                }
                Ok(r) => assert!(r.status().is_success(), "{what}: {}", r.status()),
            }
        }
    }
}

fn count(url: &str, sql: &str) -> u64 {
    query_strings(url, sql)[0].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_haproxy_survive_a_restart_and_a_replica_outage() {
    let primary = PrivateCluster::new();
    let replica = PrivateCluster::replica_of(&primary, "");
    let irdeto = StandIn::start(KEY).unwrap();
    let (p, r, i) = (
        primary.url().to_owned(),
        replica.url().to_owned(),
        irdeto.url().to_owned(),
    );
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut instances: Vec<ServiceProcess> = {
        let (p, r, i, ports) = (p.clone(), r.clone(), i.clone(), ports.clone());
        tokio::task::spawn_blocking(move || {
            ports
                .iter()
                .map(|port| instance(*port, &p, &r, &i))
                .collect()
        })
        .await
        .unwrap()
    };
    let proxy = Haproxy::round_robin(&ports);
    let base = proxy.url();
    let http = support::process_client();

    let attributes = json!({"title": "Sport", "type": "CHANNEL",
        "irdeto_product_id": "IRD-SPORT", "license_defaults": {"duration": 86_400}});
    let product = support::management::product_with(&http, &base, attributes).await;

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client(
                i,
                base.clone(),
                product.clone(),
                Arc::clone(&stop),
                Arc::clone(&seen),
            ))
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    // A rolling restart of instance 1: SIGTERM, drained, started again on its port.
    let mut old = instances.remove(1);
    old.terminate();
    let deadline = Instant::now() + Duration::from_secs(30);
    while old.try_wait().is_none() {
        assert!(Instant::now() < deadline, "instance 1 did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (pp, rr, ii, port) = (p.clone(), r.clone(), i.clone(), ports[1]);
    let restarted = tokio::task::spawn_blocking(move || instance(port, &pp, &rr, &ii))
        .await
        .unwrap();
    instances.insert(1, restarted);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The replica stops under load, and comes back.
    replica.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    replica.start();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Release);
    for c in clients {
        c.await.unwrap();
    }

    let failures = seen.failures.lock().await.clone();
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
    let created = seen.created.lock().await.clone();
    let answers = seen.answers.load(Ordering::Relaxed);
    assert!(
        created.len() > 20,
        "only {} licenses created",
        created.len()
    );
    let unique: HashSet<&String> = created.iter().collect();
    assert_eq!(unique.len(), created.len(), "a license answered twice");
    assert_eq!(
        count(&p, "SELECT count(*)::text AS value FROM licenses") as usize,
        created.len(),
        "every license created exists once, and no other"
    );

    // Every outbox job delivered once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let processing = "SELECT count(*)::text AS value FROM licenses WHERE status <> 'ACTIVE'";
    while count(&p, processing) > 0 {
        assert!(Instant::now() < deadline, "licenses left PROCESSING");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = irdeto.counts();
    assert_eq!(
        (counts.created as usize, counts.duplicates),
        (created.len(), 0),
        "{counts:?}"
    );

    // The replica served reads.
    let mut replica_reads = 0;
    for port in &ports {
        let text = http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        replica_reads += text
            .lines()
            .find_map(|l| {
                l.strip_prefix("licenses_store_reads_total{target=\"replica\"}")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
    }
    assert!(replica_reads > 0, "no read went to the replica");
    eprintln!(
        "{answers} answers, {} licenses created, {replica_reads} reads on the replica",
        created.len()
    );
}
