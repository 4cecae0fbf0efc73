//! The service on a primary and a real streaming replica (`pg_basebackup -R`), which lags
//! 3 s on purpose in the first test (`recovery_min_apply_delay`), over HTTP:
//! - a purchase followed at once by "my licenses" shows the new license, with the
//!   `Licenses-Consistency` header sent back and, within `database.read_your_writes_ms`,
//!   without it;
//! - other credentials without the header read from the replica (and do not see it yet);
//!   with the header they see it;
//! - a purchase retried with its idempotency key answers with a token too;
//! - a malformed header is a 400 at `source.header`;
//! - a stopped replica costs no error, and readiness stays green;
//! - a frozen replica (its processes stopped: connections open, nothing answers) costs the
//!   reads sent to it a wait of `checkout_timeout_ms`, no error; once out it is not waited
//!   for, and once thawed it is read from again.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use licenses_api_user::mint_token;
use licenses_testkit::{PrivateCluster, query_strings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::jsonapi::JSONAPI;
use support::{Backend, MANAGEMENT_KEY, TOKEN_SECRET, TestApp, spawn_app_with};

const USER_API: &str = "/api/license/v4";
const MANAGEMENT_API: &str = "/api/license/management/v4";
const HEADER: &str = "Licenses-Consistency";

fn token(user: &str, ttl: u64) -> String {
    mint_token(TOKEN_SECRET, user, &[], ttl, None, None).unwrap()
}

/// `GET /metrics` until `line` is among its lines.
async fn wait_for_metric(app: &TestApp, line: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let text = metrics(app).await;
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "no {line} in:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /metrics`.
async fn metrics(app: &TestApp) -> String {
    app.get(&app.management("/metrics"))
        .await
        .text()
        .await
        .unwrap()
}

/// Reads served by the replica so far (`licenses_store_reads_total`).
async fn replica_reads(app: &TestApp) -> u64 {
    let text = metrics(app).await;
    metric(&text, "licenses_store_reads_total{target=\"replica\"}")
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

/// The ids of `user`'s licenses, read with `bearer` and, if given, the consistency token.
async fn my_licenses(app: &TestApp, user: &str, bearer: &str, at: Option<&str>) -> Vec<String> {
    let mut req = app
        .client
        .get(app.user(&format!("{USER_API}/users/{user}/licenses")))
        .header("Authorization", format!("Bearer {bearer}"));
    if let Some(at) = at {
        req = req.header(HEADER, at);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect()
}

/// User u1's purchase of `doc`, with the Idempotency-Key of its first try, `buy-1`.
async fn purchase_once(app: &TestApp, bearer: &str, doc: &Value) -> reqwest::Response {
    app.client
        .post(app.user(&format!("{USER_API}/users/u1/licenses")))
        .header("Authorization", format!("Bearer {bearer}"))
        .header("Content-Type", JSONAPI)
        .header("Idempotency-Key", "buy-1")
        .body(doc.to_string())
        .send()
        .await
        .unwrap()
}

/// A primary, a streaming replica of it with `replica_settings`, and the service on both,
/// returned once the schema reached the replica and the service reads from it.
async fn replicated(replica_settings: &str) -> (PrivateCluster, PrivateCluster, TestApp) {
    let primary = PrivateCluster::new();
    let replica = PrivateCluster::replica_of(&primary, replica_settings);
    let (primary_url, replica_url) = (primary.url().to_owned(), replica.url().to_owned());
    let app = spawn_app_with(Backend::Postgres, move |s| {
        s.database.url = primary_url;
        s.database.replicas = vec![replica_url];
        s.database.replica_max_lag_ms = 60_000;
        s.database.read_your_writes_ms = 30_000;
    })
    .await;
    let migrated = "SELECT (to_regclass('licenses') IS NOT NULL)::text AS value";
    let deadline = Instant::now() + Duration::from_secs(30);
    while query_strings(replica.url(), migrated) != ["true"] {
        assert!(
            Instant::now() < deadline,
            "the schema never reached the replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_metric(
        &app,
        "licenses_db_replica_up{replica=\"1\"} 1",
        Duration::from_secs(30),
    )
    .await;
    (primary, replica, app)
}

/// A product the BSS creates; its answer carries the commit position.
async fn create_product(app: &TestApp) -> String {
    let doc = json!({"data": {"type": "Product", "attributes": {"title": "Shop",
        "type": "CHANNEL", "price_record": {"amount": 499, "currency": "EUR"},
        "license_defaults": {"duration": 86_400}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "1"}]}}}});
    let r = app
        .client
        .post(app.management(&format!("{MANAGEMENT_API}/products")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", JSONAPI)
        .body(doc.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().contains_key(HEADER), "{:?}", r.headers());
    let product: Value = r.json().await.unwrap();
    product["data"]["id"].as_str().unwrap().to_owned()
}

/// A purchase of `product` by billing.
fn purchase_of(product: &str) -> Value {
    json!({"data": {"type": "License", "attributes": {"payment_method": "billing"},
        "relationships": {"product": {"data": {"type": "Product", "id": product}}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_is_seen_at_once_and_other_reads_go_to_the_replica() {
    let (_primary, replica, app) = replicated("recovery_min_apply_delay = '3s'").await;
    let product = create_product(&app).await;

    // The user buys it.
    let bearer = token("u1", 3600);
    let purchase = purchase_of(&product);
    let r = purchase_once(&app, &bearer, &purchase).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let at = r.headers()[HEADER].to_str().unwrap().to_owned();
    let license: Value = r.json().await.unwrap();
    let want = vec![license["data"]["id"].as_str().unwrap().to_owned()];
    let before = replica_reads(&app).await;

    // At once, with the token sent back, and with the same credentials without it.
    assert_eq!(my_licenses(&app, "u1", &bearer, Some(&at)).await, want);
    assert_eq!(my_licenses(&app, "u1", &bearer, None).await, want);
    // Other credentials of the same user, without the token: the replica, 3 s behind.
    let other = token("u1", 3599);
    assert_ne!(other, bearer);
    assert!(
        my_licenses(&app, "u1", &other, None).await.is_empty(),
        "the delayed replica served the read"
    );
    // With the token, they see it too.
    assert_eq!(my_licenses(&app, "u1", &other, Some(&at)).await, want);
    // The app retries the purchase (its answer was lost) with yet other credentials: the
    // stored answer comes with a token too, and the window opens for them as for a write.
    let third = token("u1", 3598);
    let r = purchase_once(&app, &third, &purchase).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let replayed = r
        .headers()
        .get(HEADER)
        .expect("a token on a replayed answer");
    let replayed = replayed.to_str().unwrap().to_owned();
    assert_eq!(my_licenses(&app, "u1", &third, None).await, want);
    assert_eq!(my_licenses(&app, "u1", &other, Some(&replayed)).await, want);
    assert!(replica_reads(&app).await > before, "no read on the replica");

    // A token that is not one: 400 at the header, for any read.
    let r = app
        .client
        .get(app.user(&format!("{USER_API}/users/u1/licenses")))
        .header("Authorization", format!("Bearer {bearer}"))
        .header(HEADER, "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "invalid_consistency_token");
    assert_eq!(body["errors"][0]["source"]["header"], HEADER);

    // The replica stops: no error, readiness green, the reads see what they must.
    replica.stop();
    for _ in 0..5 {
        assert_eq!(my_licenses(&app, "u1", &other, None).await, want);
        assert_eq!(my_licenses(&app, "u1", &other, Some(&at)).await, want);
    }
    let r = app.get(&app.user("/health/ready")).await;
    assert_eq!(r.status(), StatusCode::OK);
    wait_for_metric(
        &app,
        "licenses_db_replica_up{replica=\"1\"} 0",
        Duration::from_secs(10),
    )
    .await;
    replica.start();
    wait_for_metric(
        &app,
        "licenses_db_replica_up{replica=\"1\"} 1",
        Duration::from_secs(30),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_replicas_a_token_is_still_checked() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let bearer = format!("Bearer {}", token("u1", 3600));
    let r = app
        .client
        .get(app.user(&format!("{USER_API}/products")))
        .header("Authorization", &bearer)
        .header(HEADER, "0/0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .client
        .get(app.user(&format!("{USER_API}/products")))
        .header("Authorization", &bearer)
        .header(HEADER, "not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "the same contract everywhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_replica_costs_a_wait_not_an_error() {
    let (_primary, replica, app) = replicated("").await;
    let product = create_product(&app).await;
    let bearer = token("u1", 3600);
    let r = purchase_once(&app, &bearer, &purchase_of(&product)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let license: Value = r.json().await.unwrap();
    let id = license["data"]["id"].as_str().unwrap().to_owned();
    let want = vec![id.clone()];
    // Other credentials, outside the window: read from the replica once it has the license.
    let other = token("u1", 3599);
    let deadline = Instant::now() + Duration::from_secs(30);
    while my_licenses(&app, "u1", &other, None).await != want {
        assert!(
            Instant::now() < deadline,
            "the license never reached the replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One license, by the BSS: a read of its own, not gathered.
    let one_license = || async {
        let r = app
            .client
            .get(app.management(&format!("{MANAGEMENT_API}/licenses/{id}")))
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    };

    // The replica's host hangs: connections stay open and nothing answers. The reads sent to
    // it are answered by the primary once its deadline (checkout_timeout_ms, 1 s) passed.
    let frozen = replica.freeze();
    let started = Instant::now();
    let gathered = (0..8).map(|_| my_licenses(&app, "u1", &other, None));
    let alone = (0..4).map(|_| one_license());
    let answered = tokio::time::timeout(Duration::from_secs(20), async {
        futures_util::future::join(
            futures_util::future::join_all(gathered),
            futures_util::future::join_all(alone),
        )
        .await
    })
    .await
    .expect("reads waited for the frozen replica");
    assert!(answered.0.iter().all(|ids| *ids == want), "{answered:?}");
    wait_for_metric(
        &app,
        "licenses_db_replica_up{replica=\"1\"} 0",
        Duration::from_secs(10),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(15));
    // Out, it is no longer waited for: five reads in less than the wait of one each.
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(my_licenses(&app, "u1", &other, None).await, want);
        one_license().await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "reads still wait for the frozen replica: {:?}",
        started.elapsed()
    );
    let r = app.get(&app.user("/health/ready")).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Thawed, it is taken back and read from.
    drop(frozen);
    wait_for_metric(
        &app,
        "licenses_db_replica_up{replica=\"1\"} 1",
        Duration::from_secs(30),
    )
    .await;
    let before = replica_reads(&app).await;
    assert_eq!(my_licenses(&app, "u1", &other, None).await, want);
    assert!(replica_reads(&app).await > before, "no read on the replica");
}
