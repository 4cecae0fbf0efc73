//! Faults the service must survive with nothing lost, on loopback, each bounded in time and
//! each asserting counts (requests answered against rows stored):
//! - PostgreSQL restarted (`pg_ctl restart -m fast`, a private cluster) in the middle of a
//!   stream of creates and purchases;
//! - PostgreSQL stopped, then started again: 503 with `Retry-After`, then recovery, without
//!   restarting the service;
//! - the service (the real binary) killed with SIGKILL in the middle of a 10,000-license batch;
//! - SIGTERM during load: the requests in flight complete, new connections are refused, the
//!   process exits within `server.shutdown_grace_secs`; with more work in flight than the
//!   grace period allows, it exits anyway and each cut batch is stored whole or not at all.
//!
//! (Over 600 lines: the faults share one set-up; each test is one fault.)
//!
//! The database outages use a [`PrivateCluster`] of their own, never the shared server. Each
//! test prints its figures (`cargo test --test faults -- --nocapture`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use licenses_testkit::{PrivateCluster, ServiceProcess, TestDatabase, query_strings, wait_for_row};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::jsonapi::JSONAPI;
use support::{Backend, MANAGEMENT_KEY, TOKEN_SECRET, TestApp, spawn_app_with};

const MANAGEMENT: &str = "/api/license/management/v4";
const USER: &str = "/api/license/v4";

/// How long any one request may take before the test calls it hung: generous, so that a
/// loaded machine never fails a test by itself; a hung worker still fails it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

/// A purchasable product's attributes.
fn product_doc() -> Value {
    json!({"data": {"type": "Product", "attributes": {"title": "Faults", "description": "d",
        "type": "CHANNEL", "is_premium": true, "price_record": {"amount": 499, "currency": "EUR"},
        "license_defaults": {"duration": 86_400, "auto_renew": false}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "1"}]}}}})
}

fn license_resource(user: &str, product: &str, order: &str) -> Value {
    json!({"type": "License", "attributes": {"order_id": order}, "relationships": {
        "user": {"data": {"type": "User", "id": user}},
        "product": {"data": {"type": "Product", "id": product}}}})
}

fn purchase_doc(product: &str) -> Value {
    json!({"data": {"type": "License", "attributes": {"payment_method": "billing"},
        "relationships": {"product": {"data": {"type": "Product", "id": product}}}}})
}

fn token(user: &str) -> String {
    licenses_api_user::mint_token(TOKEN_SECRET, user, &[], 3600, None, None).expect("a token")
}

/// `POST {base}{MANAGEMENT}{path}` with the management key.
fn management_post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}{MANAGEMENT}{path}"))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", JSONAPI)
        .body(serde_json::to_vec(body).expect("json"))
}

/// Creates the product; its id.
async fn create_product(client: &reqwest::Client, base: &str) -> String {
    let r = management_post(client, base, "/products", &product_doc())
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), StatusCode::CREATED);
    let doc: Value = r.json().await.expect("json");
    doc["data"]["id"].as_str().expect("an id").to_owned()
}

/// The order ids of the licenses stored, behind the service's back.
fn stored_orders(url: &str, like: &str) -> Vec<String> {
    query_strings(
        url,
        &format!("SELECT order_id AS value FROM licenses WHERE order_id LIKE '{like}'"),
    )
}

/// Starts the in-process service against `url` (a throwaway SQLite database is made by the
/// helper, then replaced by `url`), with `database.checkout_timeout_ms` of 1000.
async fn app_on(url: &str) -> TestApp {
    let url = url.to_owned();
    spawn_app_with(Backend::Sqlite, move |s| {
        s.database.url = url;
        s.database.pool_size = 4;
        s.database.checkout_timeout_ms = 1000;
    })
    .await
}

async fn new_cluster() -> PrivateCluster {
    tokio::task::spawn_blocking(PrivateCluster::new)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// What one request of a stream got.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// 200 or 201: its order must be stored, once.
    Stored,
    /// 503 with `Retry-After`: its order must not be stored.
    Unavailable,
    /// Anything else (a 500, a 503 without `Retry-After`, no answer): a failure.
    Other(String),
}

async fn outcome(sent: reqwest::Result<reqwest::Response>) -> Outcome {
    match sent {
        Ok(r) => match r.status() {
            StatusCode::OK | StatusCode::CREATED => Outcome::Stored,
            StatusCode::SERVICE_UNAVAILABLE if r.headers().contains_key("retry-after") => {
                Outcome::Unavailable
            }
            other => Outcome::Other(format!("{other}: {}", r.text().await.unwrap_or_default())),
        },
        Err(e) => Outcome::Other(format!("no answer: {e:?}")),
    }
}

/// Licenses per batch in the restart test's stream.
const BATCH: usize = 200;
/// Restarts of PostgreSQL in the restart test.
const RESTARTS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_loses_and_duplicates_nothing() {
    let pg = Arc::new(new_cluster().await);
    let app = app_on(pg.url()).await;
    let base = app.management_url.clone();
    let user_base = app.user_url.clone();
    let client = client();
    let product = create_product(&client, &base).await;

    // Creators (management) and buyers (user API, Idempotency-Key = order id), until told to
    // stop; each records the outcome of every order it sent.
    let stop = Arc::new(AtomicBool::new(false));
    let stored = Arc::new(AtomicUsize::new(0));
    let mut streams = Vec::new();
    for worker in 0..6 {
        let (client, base, user_base, product) = (
            client.clone(),
            base.clone(),
            user_base.clone(),
            product.clone(),
        );
        let (stop, stored) = (Arc::clone(&stop), Arc::clone(&stored));
        streams.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let token = token(&format!("buyer-{worker}"));
            for n in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let order = format!("f-{worker}-{n}");
                let (orders, sent) = match worker % 3 {
                    // A purchase: the Idempotency-Key is the order id.
                    0 => {
                        let sent = client
                            .post(format!("{user_base}{USER}/users/buyer-{worker}/licenses"))
                            .header("Authorization", format!("Bearer {token}"))
                            .header("Content-Type", JSONAPI)
                            .header("Idempotency-Key", &order)
                            .body(serde_json::to_vec(&purchase_doc(&product)).expect("json"))
                            .send()
                            .await;
                        (vec![order], sent)
                    }
                    // One license granted.
                    1 => {
                        let doc = json!({"data": license_resource("u", &product, &order)});
                        let sent = management_post(&client, &base, "/licenses", &doc)
                            .send()
                            .await;
                        (vec![order], sent)
                    }
                    // A batch of them: a longer transaction, likelier to be cut by the restart.
                    _ => {
                        let orders: Vec<String> =
                            (0..BATCH).map(|i| format!("{order}-{i}")).collect();
                        let data: Vec<Value> = orders
                            .iter()
                            .map(|o| license_resource("u", &product, o))
                            .collect();
                        let sent = management_post(
                            &client,
                            &base,
                            "/licenses/batch_create",
                            &json!({"data": data}),
                        )
                        .send()
                        .await;
                        (orders, sent)
                    }
                };
                let got = outcome(sent).await;
                if got == Outcome::Stored {
                    stored.fetch_add(1, Ordering::SeqCst);
                } else {
                    // Do not spin while the database is away.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                outcomes.extend(orders.into_iter().map(|o| (o, got.clone())));
            }
            outcomes
        }));
    }

    let wait_for = |n: usize| {
        let stored = Arc::clone(&stored);
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while stored.load(Ordering::SeqCst) < n {
                assert!(
                    Instant::now() < deadline,
                    "the stream stalled at {} stored licenses (waiting for {n})",
                    stored.load(Ordering::SeqCst)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let mut requests_at_restart = Vec::new();
    for _ in 0..RESTARTS {
        wait_for(stored.load(Ordering::SeqCst) + 40).await;
        requests_at_restart.push(stored.load(Ordering::SeqCst));
        let restarting = Arc::clone(&pg);
        tokio::task::spawn_blocking(move || restarting.restart())
            .await
            .expect("restarted");
    }
    // Recovered without restarting the service: more are stored after the last restart.
    wait_for(stored.load(Ordering::SeqCst) + 40).await;
    stop.store(true, Ordering::SeqCst);

    let mut answered: BTreeMap<String, Outcome> = BTreeMap::new();
    for stream in streams {
        for (order, got) in stream.await.expect("a stream") {
            answered.insert(order, got);
        }
    }
    let failures: Vec<_> = answered
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Other(_)))
        .collect();
    let url = pg.url().to_owned();
    let rows = tokio::task::spawn_blocking(move || stored_orders(&url, "f-%"))
        .await
        .expect("rows");
    let distinct: BTreeSet<&String> = rows.iter().collect();
    let acknowledged: BTreeSet<&String> = answered
        .iter()
        .filter(|(_, o)| **o == Outcome::Stored)
        .map(|(order, _)| order)
        .collect();
    let unavailable = answered
        .values()
        .filter(|o| **o == Outcome::Unavailable)
        .count();
    println!(
        "restart: {RESTARTS} restarts (after {requests_at_restart:?} successful requests); {} \
         licenses asked for, {} answered 201, {unavailable} answered 503, {} other; {} rows, {} \
         duplicates",
        answered.len(),
        acknowledged.len(),
        failures.len(),
        rows.len(),
        rows.len() - distinct.len()
    );
    // The same, by kind of request (the worker's number in the order id says which).
    for (kind, name) in [(0, "purchases"), (1, "creates"), (2, "batches")] {
        let of_kind = |o: &Outcome| {
            let mut requests: BTreeSet<&str> = BTreeSet::new();
            for (order, got) in &answered {
                let mut parts = order.split('-');
                let worker: usize = parts.nth(1).and_then(|w| w.parse().ok()).unwrap_or(99);
                if worker % 3 == kind && got == o {
                    // A batch's licenses share "f-W-N": count requests, not licenses.
                    requests.insert(
                        &order[..order
                            .match_indices('-')
                            .nth(2)
                            .map_or(order.len(), |(i, _)| i)],
                    );
                }
            }
            requests.len()
        };
        println!(
            "  {name}: {} requests answered 201, {} answered 503",
            of_kind(&Outcome::Stored),
            of_kind(&Outcome::Unavailable)
        );
    }
    assert!(
        failures.is_empty(),
        "answers other than 201/503: {failures:?}"
    );
    assert_eq!(rows.len(), distinct.len(), "a license stored twice");
    let lost: Vec<_> = acknowledged.difference(&distinct).collect();
    let unacknowledged: Vec<_> = distinct.difference(&acknowledged).collect();
    assert!(lost.is_empty(), "answered 201 but not stored: {lost:?}");
    assert!(
        unacknowledged.is_empty(),
        "stored but answered 503: {unacknowledged:?}"
    );
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_is_answered_503_and_recovered_from() {
    let pg = Arc::new(new_cluster().await);
    let app = app_on(pg.url()).await;
    let client = client();
    let base = app.management_url.clone();
    let product = create_product(&client, &base).await;
    let ready = |client: reqwest::Client, url: String| async move {
        client
            .get(format!("{url}/health/ready"))
            .send()
            .await
            .map(|r| r.status())
    };
    assert_eq!(
        ready(client.clone(), base.clone()).await.ok(),
        Some(StatusCode::OK)
    );

    let stopping = Arc::clone(&pg);
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .expect("stopped");

    // More requests at once than the pool has connections: every one is answered 503 with
    // Retry-After (the client's timeout is far above checkout_timeout_ms: none hangs).
    let t = token("outage");
    let mut requests = Vec::new();
    for n in 0..12 {
        let (client, base, user_base, product, t) = (
            client.clone(),
            base.clone(),
            app.user_url.clone(),
            product.clone(),
            t.clone(),
        );
        requests.push(tokio::spawn(async move {
            let started = Instant::now();
            let order = format!("o-{n}");
            let sent = match n % 3 {
                0 => {
                    let doc = json!({"data": license_resource("outage", &product, &order)});
                    management_post(&client, &base, "/licenses", &doc)
                        .send()
                        .await
                }
                1 => {
                    client
                        .post(format!("{user_base}{USER}/users/outage/licenses"))
                        .header("Authorization", format!("Bearer {t}"))
                        .header("Content-Type", JSONAPI)
                        .header("Idempotency-Key", &order)
                        .body(serde_json::to_vec(&purchase_doc(&product)).expect("json"))
                        .send()
                        .await
                }
                _ => {
                    client
                        .get(format!("{user_base}{USER}/users/outage/licenses"))
                        .header("Authorization", format!("Bearer {t}"))
                        .send()
                        .await
                }
            };
            (outcome(sent).await, started.elapsed())
        }));
    }
    let mut outcomes = Vec::new();
    let mut slowest = Duration::ZERO;
    for r in requests {
        let (got, took) = r.await.expect("a request");
        outcomes.push(got);
        slowest = slowest.max(took);
    }
    let unavailable = outcomes
        .iter()
        .filter(|o| **o == Outcome::Unavailable)
        .count();
    println!(
        "outage: {} requests while the database was down, {unavailable} answered 503 with \
         Retry-After, the slowest in {} ms (checkout_timeout_ms 1000)",
        outcomes.len(),
        slowest.as_millis()
    );
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Unavailable),
        "{outcomes:?}"
    );
    // Readiness is a check cached for a second: 503 within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready(client.clone(), base.clone()).await.ok() != Some(StatusCode::SERVICE_UNAVAILABLE) {
        assert!(
            Instant::now() < deadline,
            "/health/ready while the database is down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let starting = Arc::clone(&pg);
    tokio::task::spawn_blocking(move || starting.start())
        .await
        .expect("started");
    // The service recovers by itself: no restart, /health/ready turns 200 again.
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready(client.clone(), base.clone()).await.ok() != Some(StatusCode::OK) {
        assert!(
            Instant::now() < deadline,
            "/health/ready still not 200 a minute after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let doc = json!({"data": license_resource("outage", &product, "after")});
    let r = management_post(&client, &base, "/licenses", &doc)
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), StatusCode::CREATED);
    let url = pg.url().to_owned();
    let rows = tokio::task::spawn_blocking(move || stored_orders(&url, "%"))
        .await
        .expect("rows");
    assert_eq!(
        rows,
        ["after"],
        "nothing refused during the outage was stored"
    );
    drop(app);
}

/// The real binary, `licenses serve`, on free ports against `database_url`, ready (its
/// `/health/ready` answers 200).
fn serve(database_url: &str, env: &[(&str, &str)]) -> ServiceProcess {
    let mut service = ServiceProcess::builder(env!("CARGO_BIN_EXE_licenses"))
        .env("APP_ENV", "test")
        .env("LICENSES_CONFIG_DIR", support::config_dir())
        .env("LICENSES__DATABASE__URL", database_url);
    for (key, value) in env {
        service = service.env(key, value);
    }
    service.spawn()
}

/// When the SIGKILL test kills the service.
#[derive(Debug)]
enum Moment {
    /// This long after the batch's write transaction has a transaction id (it has written).
    WhileWriting(Duration),
    /// Once the batch's rows are visible (committed), most likely before the answer is sent.
    OnceCommitted,
    /// After this fraction of an undisturbed batch's duration.
    After(f64),
}

/// Polls `sql` until it returns a row (true) or `within` has passed (false).
async fn poll(url: &str, sql: &str, within: Duration) -> bool {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    tokio::task::spawn_blocking(move || wait_for_row(&url, &sql, within))
        .await
        .expect("a poll")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_killed_midway_is_stored_whole_or_not_at_all() {
    let db = tokio::task::spawn_blocking(TestDatabase::postgres)
        .await
        .expect("a database");
    let client = client();
    let mut service = serve(db.url(), &[]);
    let product = create_product(&client, &service.management_url).await;
    let batch = |run: usize| {
        let data: Vec<Value> = (0..10_000)
            .map(|i| license_resource(&format!("r{run}u{i}"), &product, &format!("k{run}-{i}")))
            .collect();
        serde_json::to_vec(&json!({"data": data})).expect("json")
    };
    let send = |client: &reqwest::Client, base: &str, body: Vec<u8>| {
        client
            .post(format!("{base}{MANAGEMENT}/licenses/batch_create"))
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
            .header("Content-Type", JSONAPI)
            .body(body)
            .send()
    };

    // One batch undisturbed: how long one takes here, to spread the kills over it.
    let body = batch(0);
    let started = Instant::now();
    let r = send(&client, &service.management_url, body)
        .await
        .expect("an answer");
    assert_eq!(r.status(), StatusCode::CREATED);
    let whole = started.elapsed();
    let url = db.url().to_owned();
    let count = {
        let url = url.clone();
        move |run: usize| {
            let url = url.clone();
            async move {
                tokio::task::spawn_blocking(move || stored_orders(&url, &format!("k{run}-%")).len())
                    .await
                    .expect("a count")
            }
        }
    };
    assert_eq!(count(0).await, 10_000);

    // When each kill lands: at moments after the batch's write transaction has written
    // (it has a transaction id), once its rows are committed (visible), and at a fraction of
    // an undisturbed batch's duration.
    let moments = [
        Moment::WhileWriting(Duration::ZERO),
        Moment::WhileWriting(Duration::from_millis(300)),
        Moment::WhileWriting(Duration::from_millis(1000)),
        Moment::OnceCommitted,
        Moment::After(0.5),
    ];
    // (An INSERT: the housekeeping at start writes too, with a DELETE.)
    let writing = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
                   AND backend_xid IS NOT NULL AND query LIKE 'INSERT%'";
    let (mut none, mut all) = (0, 0);
    for (i, moment) in moments.iter().enumerate() {
        let run = i + 1;
        let body = batch(run);
        let started = Instant::now();
        let request = tokio::spawn(send(&client, &service.management_url, body));
        let committed =
            format!("SELECT 1 FROM licenses WHERE user_id = 'r{run}u0' AND order_id = 'k{run}-0'");
        let awaited = match moment {
            Moment::After(fraction) => {
                tokio::time::sleep(whole.mul_f64(*fraction)).await;
                None
            }
            Moment::WhileWriting(_) => Some(writing),
            Moment::OnceCommitted => Some(committed.as_str()),
        };
        // Until the state is seen, or the request is over (then the kill lands after it).
        let mut seen = awaited.is_none();
        while let Some(sql) = awaited {
            if poll(&url, sql, Duration::from_millis(100)).await {
                seen = true;
                break;
            }
            if request.is_finished() {
                break;
            }
        }
        if let Moment::WhileWriting(then) = moment {
            tokio::time::sleep(*then).await;
        }
        let killed_after = started.elapsed();
        service.kill();
        let answer = request.await.expect("the request task");
        let stored = count(run).await;
        println!(
            "SIGKILL run {run}: {moment:?} (state seen: {seen}), killed {} ms into a batch \
             (an undisturbed one took {} ms); answer: {}; stored {stored}",
            killed_after.as_millis(),
            whole.as_millis(),
            answer
                .as_ref()
                .map_or_else(|_| "none".to_owned(), |r| r.status().to_string()),
        );
        match stored {
            0 => none += 1,
            10_000 => all += 1,
            partial => panic!("run {run}: {partial} of the 10,000 licenses stored"),
        }
        if answer.is_ok_and(|r| r.status() == StatusCode::CREATED) {
            assert_eq!(stored, 10_000, "answered 201 yet not all stored");
        }
        service = serve(db.url(), &[]);
        assert_eq!(count(run).await, stored, "the restart changed nothing");
    }
    println!("SIGKILL: {} runs, {none} none, {all} all", moments.len());
    drop(service);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_the_requests_in_flight_and_refuses_new_ones() {
    let db = tokio::task::spawn_blocking(TestDatabase::postgres)
        .await
        .expect("a database");
    let grace = 20;
    let mut service = serve(
        db.url(),
        &[("LICENSES__SERVER__SHUTDOWN_GRACE_SECS", &grace.to_string())],
    );
    let client = client();
    let product = create_product(&client, &service.management_url).await;

    // Batches big enough to be in flight for a while, each on a connection of its own.
    let batches = 4;
    let size = 3_000;
    let mut in_flight = Vec::new();
    for b in 0..batches {
        let data: Vec<Value> = (0..size)
            .map(|i| license_resource(&format!("u{i}"), &product, &format!("t{b}-{i}")))
            .collect();
        let doc = json!({"data": data});
        let fresh = client_without_keep_alive();
        let request = management_post(
            &fresh,
            &service.management_url,
            "/licenses/batch_create",
            &doc,
        );
        in_flight.push(tokio::spawn(async move { request.send().await }));
    }
    // A stream of single creates, each on a connection of its own, until one is refused.
    let mut singles = Vec::new();
    for worker in 0..2 {
        let (base, product) = (service.management_url.clone(), product.clone());
        singles.push(tokio::spawn(async move {
            let fresh = client_without_keep_alive();
            let mut outcomes = Vec::new();
            for n in 0.. {
                let order = format!("s{worker}-{n}");
                let doc = json!({"data": license_resource("single", &product, &order)});
                let sent = management_post(&fresh, &base, "/licenses", &doc)
                    .send()
                    .await;
                let refused = sent.as_ref().is_err_and(reqwest::Error::is_connect);
                outcomes.push((order, outcome(sent).await));
                if refused {
                    break;
                }
            }
            outcomes
        }));
    }
    // Signal once a batch is being written (its transaction has written): in flight for sure.
    let writing = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
                   AND backend_xid IS NOT NULL AND query LIKE 'INSERT%'";
    assert!(
        poll(db.url(), writing, Duration::from_secs(60)).await,
        "no batch was written within a minute"
    );
    let unfinished_at_signal = in_flight.iter().filter(|r| !r.is_finished()).count();
    assert!(
        unfinished_at_signal > 0,
        "every batch was over before the signal"
    );
    let signalled = Instant::now();
    service.terminate();

    // New connections are refused from then on, while the batches are still being served.
    let port = service
        .management_url
        .rsplit(':')
        .next()
        .expect("a port")
        .to_owned();
    let refused = loop {
        match TcpStream::connect(format!("127.0.0.1:{port}")) {
            Err(e) => break e,
            Ok(_) => {
                assert!(
                    signalled.elapsed() < Duration::from_secs(grace),
                    "the listener still accepts connections after the grace period"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let refused_after = signalled.elapsed();
    let still_in_flight = in_flight.iter().filter(|r| !r.is_finished()).count();

    // A batch the server had accepted is answered 201; one still in the kernel's accept
    // backlog when the listener closed was never read by the server and is reset: it is not
    // in flight, and none of it may be stored (checked below, batch by batch).
    let mut answered = 0;
    let mut batch_answered = Vec::new();
    for request in in_flight {
        match request.await.expect("a request task") {
            Ok(r) => {
                assert_eq!(r.status(), StatusCode::CREATED, "a request in flight");
                answered += 1;
                batch_answered.push(true);
            }
            Err(e) => {
                assert!(
                    e.is_connect() || e.is_request(),
                    "a batch got neither an answer nor a reset: {e:?}"
                );
                batch_answered.push(false);
            }
        }
    }
    assert!(
        answered >= 1,
        "the batch being written at the signal was not answered"
    );
    // The process exits by itself, within the grace period (plus room to tear down).
    let deadline = signalled + Duration::from_secs(grace + 10);
    let status = loop {
        if let Some(status) = service.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running {grace} s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exited_after = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    let url = db.url().to_owned();
    let stored_batches = tokio::task::spawn_blocking(move || stored_orders(&url, "t%"))
        .await
        .expect("rows");
    let stored = stored_batches.len();
    // The singles: each answered 201 is stored, each refused is not, none got anything else.
    let mut single_outcomes = Vec::new();
    for s in singles {
        single_outcomes.extend(s.await.expect("a stream"));
    }
    let url = db.url().to_owned();
    let singles_stored: BTreeSet<String> =
        tokio::task::spawn_blocking(move || stored_orders(&url, "s%"))
            .await
            .expect("rows")
            .into_iter()
            .collect();
    let singles_answered: BTreeSet<String> = single_outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Stored)
        .map(|(order, _)| order.clone())
        .collect();
    let singles_failed: Vec<_> = single_outcomes
        .iter()
        .filter(|(_, o)| *o != Outcome::Stored)
        .collect();
    println!(
        "SIGTERM: {batches} batches of {size} sent, {unfinished_at_signal} in flight at the \
         signal, {still_in_flight} still in flight when new connections were refused ({} ms \
         after the signal), {answered} answered 201, {stored} licenses stored; exited {} ms \
         after the signal (grace {grace} s); single creates: {} answered 201, {} stored, {} \
         without an answer",
        refused_after.as_millis(),
        exited_after.as_millis(),
        singles_answered.len(),
        singles_stored.len(),
        singles_failed.len(),
    );
    for (order, failure) in &singles_failed {
        println!("  {order}: {failure:?}");
    }
    // A single either was answered 201 and stored, or got no answer at all (its connection
    // refused, or reset: accepted by the kernel but never read by the stopping server) and
    // was not stored.
    for (b, answered) in batch_answered.iter().enumerate() {
        let prefix = format!("t{b}-");
        let of_batch = stored_batches
            .iter()
            .filter(|order| order.starts_with(&prefix))
            .count();
        let expected = if *answered { size } else { 0 };
        assert_eq!(of_batch, expected, "batch {b}, answered: {answered}");
    }
    assert_eq!(singles_stored, singles_answered);
    assert!(
        singles_failed
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Other(e) if e.starts_with("no answer"))),
        "{singles_failed:?}"
    );
}

fn client_without_keep_alive() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_past_the_grace_period_exits_anyway_and_stores_whole_batches() {
    let db = tokio::task::spawn_blocking(TestDatabase::postgres)
        .await
        .expect("a database");
    let grace: u64 = 1;
    let mut service = serve(
        db.url(),
        &[("LICENSES__SERVER__SHUTDOWN_GRACE_SECS", &grace.to_string())],
    );
    let client = client();
    let product = create_product(&client, &service.management_url).await;

    // More work in flight than the grace period lets finish.
    let (batches, size) = (4, 10_000);
    let mut in_flight = Vec::new();
    for b in 0..batches {
        let data: Vec<Value> = (0..size)
            .map(|i| license_resource(&format!("g{b}u{i}"), &product, &format!("g{b}-{i}")))
            .collect();
        let fresh = client_without_keep_alive();
        let request = management_post(
            &fresh,
            &service.management_url,
            "/licenses/batch_create",
            &json!({"data": data}),
        );
        in_flight.push(tokio::spawn(async move { request.send().await }));
    }
    let writing = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
                   AND backend_xid IS NOT NULL AND query LIKE 'INSERT%'";
    assert!(
        poll(db.url(), writing, Duration::from_secs(60)).await,
        "no batch was written within a minute"
    );
    let signalled = Instant::now();
    service.terminate();
    let deadline = signalled + Duration::from_secs(grace + 20);
    let status = loop {
        if let Some(status) = service.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running {} s after SIGTERM with a grace of {grace} s",
            grace + 20
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exited_after = signalled.elapsed();
    let mut report = Vec::new();
    for (b, request) in in_flight.into_iter().enumerate() {
        let answered = request
            .await
            .expect("a request task")
            .ok()
            .map(|r| r.status());
        let url = db.url().to_owned();
        let stored =
            tokio::task::spawn_blocking(move || stored_orders(&url, &format!("g{b}-%")).len())
                .await
                .expect("a count");
        assert!(
            stored == 0 || stored == size,
            "batch {b}: {stored} of {size} stored"
        );
        if answered == Some(StatusCode::CREATED) {
            assert_eq!(stored, size, "batch {b} answered 201 yet not stored");
        }
        report.push(format!("{answered:?}/{stored}"));
    }
    println!(
        "SIGTERM past the grace: exited {} ms after the signal (grace {grace} s, status \
         {status}); batches (answer/stored): {}",
        exited_after.as_millis(),
        report.join(", ")
    );
}
