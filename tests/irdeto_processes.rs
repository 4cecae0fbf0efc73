//! The Irdeto delivery across processes: the real `licenses serve` binary, twice on one
//! PostgreSQL database (licenses-testkit), against a stand-in Irdeto on loopback. Two
//! instances deliver every job exactly once; an instance killed with SIGKILL mid-delivery
//! leaves nothing undelivered once one is running again, and a batch rolled back sends
//! nothing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use licenses_irdeto::standin::StandIn;
use licenses_testkit::{ServiceProcess, TestDatabase};
use reqwest::StatusCode;
use serde_json::{Value, json};

const API: &str = "/api/license/management/v4";
const KEY: &str = "irdeto-test-key";
const MANAGEMENT_KEY: &str = licenses::settings::DEV_MANAGEMENT_KEY;
const JSONAPI: &str = "application/vnd.api+json";

/// Starts `licenses serve` on `database` with Irdeto at `irdeto`, and waits until it is ready.
fn serve(database: &str, irdeto: &StandIn, timeout_ms: u64) -> ServiceProcess {
    ServiceProcess::builder(env!("CARGO_BIN_EXE_licenses"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_ENV", "test")
        .env("RUST_LOG", "info")
        .env("LICENSES__DATABASE__URL", database)
        .env("LICENSES__IRDETO__ENABLED", "true")
        .env("LICENSES__IRDETO__BASE_URL", irdeto.url())
        .env("LICENSES__IRDETO__API_KEY", KEY)
        .env("LICENSES__IRDETO__TIMEOUT_MS", timeout_ms.to_string())
        .env("LICENSES__IRDETO__MAX_ATTEMPTS", "50")
        .spawn()
}

async fn send(
    client: &reqwest::Client,
    at: &ServiceProcess,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client
        .request(method, format!("{}{API}{path}", at.management_url))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"));
    if let Some(body) = body {
        req = req.header("Content-Type", JSONAPI).body(body.to_string());
    }
    let response = req.send().await.expect("the management API answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn product(client: &reqwest::Client, at: &ServiceProcess) -> String {
    let doc = json!({"data": {"type": "Product", "attributes": {"title": "Sport", "type": "CHANNEL",
        "irdeto_product_id": "IRD-SPORT", "license_defaults": {"duration": 86_400}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "42"}]}}}});
    let (status, body) = send(client, at, reqwest::Method::POST, "/products", Some(doc)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]["id"].as_str().expect("id").to_owned()
}

fn license(user: &str, product: &str) -> Value {
    json!({"type": "License", "attributes": {}, "relationships": {
        "user": {"data": {"type": "User", "id": user}},
        "product": {"data": {"type": "Product", "id": product}}}})
}

/// A batch of `n` licenses for users `prefix0…`: their ids.
async fn batch(
    client: &reqwest::Client,
    at: &ServiceProcess,
    product: &str,
    prefix: &str,
    n: usize,
) -> Vec<String> {
    let items: Vec<Value> = (0..n)
        .map(|i| license(&format!("{prefix}{i}"), product))
        .collect();
    let (status, body) = send(
        client,
        at,
        reqwest::Method::POST,
        "/licenses/batch_create",
        Some(json!({"data": items})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Waits until no license is PROCESSING any more.
async fn all_settled(client: &reqwest::Client, at: &ServiceProcess, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = send(
            client,
            at,
            reqwest::Method::GET,
            "/licenses?filter[status]=PROCESSING&page[size]=1",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["data"].as_array().is_some_and(Vec::is_empty) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "licenses still PROCESSING after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("client")
}

fn postgres() -> TestDatabase {
    TestDatabase::postgres()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_every_job_once() {
    let db = tokio::task::spawn_blocking(postgres)
        .await
        .expect("database");
    let irdeto = StandIn::start(KEY).expect("stand-in");
    // Slow enough that both instances find work while the other is busy.
    irdeto.set_delay(Duration::from_millis(20));
    let a = serve(db.url(), &irdeto, 2_000);
    let b = serve(db.url(), &irdeto, 2_000);
    let client = client();
    let product = product(&client, &a).await;
    let mut ids = Vec::new();
    for round in 0..4 {
        ids.extend(batch(&client, &a, &product, &format!("a{round}-"), 100).await);
        ids.extend(batch(&client, &b, &product, &format!("b{round}-"), 100).await);
    }
    all_settled(&client, &a, Duration::from_secs(60)).await;
    let counts = irdeto.counts();
    assert_eq!(counts.created, 800, "{counts:?}");
    assert_eq!(counts.duplicates, 0, "no grant sent twice: {counts:?}");
    assert_eq!(
        irdeto.entitlement_ids(),
        ids.into_iter().collect::<HashSet<_>>()
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_leaves_nothing_undelivered() {
    let db = tokio::task::spawn_blocking(postgres)
        .await
        .expect("database");
    let irdeto = StandIn::start(KEY).expect("stand-in");
    // Every grant takes a while: the kill comes with grants in flight.
    irdeto.set_delay(Duration::from_millis(400));
    let mut first = serve(db.url(), &irdeto, 1_000);
    let client = client();
    let product = product(&client, &first).await;
    let ids = batch(&client, &first, &product, "u", 300).await;
    // A batch refused for one bad item (a product that does not exist: 404) is rolled back:
    // none of its grants may be sent.
    let mut items: Vec<Value> = (0..50)
        .map(|i| license(&format!("r{i}"), &product))
        .collect();
    items.push(license("r-bad", "no-such-product"));
    let (status, body) = send(
        &client,
        &first,
        reqwest::Method::POST,
        "/licenses/batch_create",
        Some(json!({"data": items})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let deadline = Instant::now() + Duration::from_secs(20);
    while irdeto.counts().created == 0 {
        assert!(Instant::now() < deadline, "no grant delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    let at_kill = irdeto.counts().created;
    assert!(at_kill < 300, "killed mid-delivery, not after: {at_kill}");

    let second = serve(db.url(), &irdeto, 1_000);
    irdeto.set_delay(Duration::ZERO);
    // The dead instance's leases run out (2 × timeout + 5 s), then its jobs are claimed again.
    all_settled(&client, &second, Duration::from_secs(60)).await;
    let wanted: HashSet<String> = ids.into_iter().collect();
    assert_eq!(
        irdeto.entitlement_ids(),
        wanted,
        "every license entitled, nothing else"
    );
    assert_eq!(irdeto.counts().created, 300);
    drop(second);
}
