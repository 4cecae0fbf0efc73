//! Irdeto delivery figures against the local stand-in (a loopback HTTP server), on
//! PostgreSQL: the throughput of the delivery worker (grants per second, from a batch's
//! commit until its last license is ACTIVE), and the delay from creating one license to
//! reading it ACTIVE: on the instance that delivers, and on another instance (one without a
//! worker), whose commit wakes the delivering one through LISTEN/NOTIFY, and then again with
//! that instance's listener pointed at a closed port, as before LISTEN/NOTIFY: it finds the
//! jobs at its next 500 ms poll. Timing lives here, never in a test assertion.
//!
//! `cargo bench --bench irdeto_delivery` (add `-- sqlite` for SQLite).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use licenses_irdeto::standin::StandIn;
use serde_json::{Value, json};
use support::{Backend, MANAGEMENT_KEY, TestApp, spawn_adjusted, spawn_app_with};

const API: &str = "/api/license/management/v4";
const KEY: &str = "bench-irdeto-key";
const BATCH: usize = 5_000;
const SINGLES: usize = 50;

async fn call(app: &TestApp, method: reqwest::Method, path: &str, doc: Option<&Value>) -> Value {
    let mut req = app
        .client
        .request(method, app.management(&format!("{API}{path}")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"));
    if let Some(doc) = doc {
        req = req
            .header("Content-Type", "application/vnd.api+json")
            .body(serde_json::to_vec(doc).expect("json"));
    }
    let response = req.send().await.expect("an answer");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

fn license(user: &str, product: &str) -> Value {
    json!({"type": "License", "attributes": {},
        "relationships": {"user": {"data": {"type": "User", "id": user}},
            "product": {"data": {"type": "Product", "id": product}}}})
}

async fn processing_left(app: &TestApp) -> bool {
    let page = call(
        app,
        reqwest::Method::GET,
        "/licenses?filter[status]=PROCESSING&page[size]=1",
        None,
    )
    .await;
    page["data"].as_array().is_some_and(|d| !d.is_empty())
}

async fn bench(backend: Backend) {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    let url = irdeto.url().to_owned();
    let app = spawn_app_with(backend, move |s| {
        s.irdeto.enabled = true;
        s.irdeto.base_url = Some(url);
        s.irdeto.api_key = Some(KEY.to_owned().into());
    })
    .await;
    let product = create_product(&app).await;

    // Throughput: one batch, then until its last license is ACTIVE.
    let data: Vec<Value> = (0..BATCH)
        .map(|i| license(&format!("u{i}"), &product))
        .collect();
    call(
        &app,
        reqwest::Method::POST,
        "/licenses/batch_create",
        Some(&json!({"data": data})),
    )
    .await;
    let started = Instant::now();
    while processing_left(&app).await {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let counts = irdeto.counts();
    assert_eq!(counts.created as usize, BATCH, "{counts:?}");
    println!(
        "{backend:?}: {BATCH} grants delivered in {:.2} s: {:.0} grants/s (duplicates {})",
        elapsed.as_secs_f64(),
        BATCH as f64 / elapsed.as_secs_f64(),
        counts.duplicates
    );

    println!(
        "{backend:?}: creation to ACTIVE, same instance: {}",
        delays(&app, &app, &product, "single").await
    );
    if backend == Backend::Postgres {
        let database = app.settings.database.url.clone();
        let across = writer(backend, &database, irdeto.url()).await;
        println!(
            "{backend:?}: creation to ACTIVE, created on another instance (LISTEN/NOTIFY): {}",
            delays(&across, &app, &product, "across").await
        );
        // As before LISTEN/NOTIFY: a pair on a database of its own, whose delivering
        // instance's listener cannot connect.
        let closed = format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            licenses_testkit::free_port()
        );
        let url = irdeto.url().to_owned();
        let polling = spawn_app_with(backend, move |s| {
            s.database.listen_url = Some(closed);
            s.irdeto.enabled = true;
            s.irdeto.base_url = Some(url);
            s.irdeto.api_key = Some(KEY.to_owned().into());
        })
        .await;
        let product = create_product(&polling).await;
        let unheard = writer(backend, &polling.settings.database.url, irdeto.url()).await;
        println!(
            "{backend:?}: creation to ACTIVE, created on another instance (listener down, \
             500 ms poll): {}",
            delays(&unheard, &polling, &product, "polled").await
        );
    }
}

/// The benchmark's product, mapped to an Irdeto product: its id.
async fn create_product(app: &TestApp) -> String {
    let product = json!({"data": {"type": "Product", "attributes": {"title": "Bench", "type": "CHANNEL",
        "irdeto_product_id": "IRD-BENCH", "license_defaults": {"duration": 86_400}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "1"}]}}}});
    let created = call(app, reqwest::Method::POST, "/products", Some(&product)).await;
    created["data"]["id"].as_str().expect("id").to_owned()
}

/// An instance on `database` that writes Irdeto jobs but runs no worker.
async fn writer(backend: Backend, database: &str, irdeto: &str) -> TestApp {
    let (database, url) = (database.to_owned(), irdeto.to_owned());
    spawn_adjusted(
        backend,
        move |s| {
            s.database.url = database;
            s.irdeto.enabled = true;
            s.irdeto.base_url = Some(url);
            s.irdeto.api_key = Some(KEY.to_owned().into());
        },
        licenses::Application::without_delivery_worker,
    )
    .await
}

/// One license at a time: from the POST on `writer` to reading it ACTIVE on `reader` (polled
/// every 2 ms); the median, p90 and max over [`SINGLES`].
async fn delays(writer: &TestApp, reader: &TestApp, product: &str, prefix: &str) -> String {
    let mut delays = Vec::with_capacity(SINGLES);
    for i in 0..SINGLES {
        let started = Instant::now();
        let doc = json!({"data": license(&format!("{prefix}{i}"), product)});
        let one = call(writer, reqwest::Method::POST, "/licenses", Some(&doc)).await;
        let id = one["data"]["id"].as_str().expect("id").to_owned();
        loop {
            let now = call(
                reader,
                reqwest::Method::GET,
                &format!("/licenses/{id}"),
                None,
            )
            .await;
            if now["data"]["attributes"]["status"] == "ACTIVE" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        delays.push(started.elapsed());
    }
    delays.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "over {SINGLES} licenses: median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms(delays[SINGLES / 2]),
        ms(delays[SINGLES * 9 / 10]),
        ms(delays[SINGLES - 1])
    )
}

fn main() {
    let sqlite = std::env::args().any(|a| a == "sqlite");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(if sqlite {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }));
}
