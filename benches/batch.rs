//! The management API's 10,000-license batches, over HTTP, against a fresh database of each
//! backend: `cargo bench --bench batch`. Prints the wall time of `batch_create` and
//! `batch_delete` (request sent to answer read) over several runs; asserts nothing about time.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Backend, MANAGEMENT_KEY, TestApp, spawn_app};

const API: &str = "/api/license/management/v4";
const BATCH: usize = 10_000;
const RUNS: usize = 5;

async fn post(app: &TestApp, path: &str, doc: &Value) -> (reqwest::StatusCode, Value) {
    let response = app
        .client
        .post(app.management(&format!("{API}{path}")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", "application/vnd.api+json")
        .body(serde_json::to_vec(doc).expect("json"))
        .send()
        .await
        .expect("an answer");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(times[times.len() / 2]);
    format!(
        "median {median:7.1} ms  min {:7.1} ms  max {:7.1} ms  ({:.0} licenses/s at the median)",
        ms(times[0]),
        ms(times[times.len() - 1]),
        BATCH as f64 / (median / 1000.0)
    )
}

async fn bench(backend: Backend) {
    let app = spawn_app(backend).await;
    let product = json!({"data": {"type": "Product", "attributes": {"title": "Bench", "type": "CHANNEL",
        "license_defaults": {"duration": 86_400}, "price_record": {"amount": 499, "currency": "EUR"}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "1"}]}}}});
    let (status, created) = post(&app, "/products", &product).await;
    assert_eq!(status, 201, "{created}");
    let product = created["data"]["id"].as_str().expect("id").to_owned();

    let (mut creates, mut deletes) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let data: Vec<Value> = (0..BATCH)
            .map(|i| {
                json!({"type": "License", "attributes": {"order_id": format!("run-{run}-{i}")},
                    "relationships": {"user": {"data": {"type": "User", "id": format!("user-{i}")}},
                        "product": {"data": {"type": "Product", "id": product}}}})
            })
            .collect();
        let doc = json!({"data": data});
        let started = Instant::now();
        let (status, body) = post(&app, "/licenses/batch_create", &doc).await;
        creates.push(started.elapsed());
        assert_eq!(status, 201, "{body}");
        let ids: Vec<Value> = body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|l| json!({"type": "License", "id": l["id"]}))
            .collect();
        let started = Instant::now();
        let (status, body) = post(&app, "/licenses/batch_delete", &json!({"data": ids})).await;
        deletes.push(started.elapsed());
        assert_eq!(status, 200, "{body}");
    }
    println!(
        "{backend:?}: batch_create of {BATCH}: {}",
        summary(&mut creates)
    );
    println!(
        "{backend:?}: batch_delete of {BATCH}: {}",
        summary(&mut deletes)
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        bench(Backend::Postgres).await;
        bench(Backend::Sqlite).await;
    });
}
