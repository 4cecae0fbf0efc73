//! Calls of the management API that tests of running services share, against any listener:
//! an in-process [`TestApp`](super::TestApp)'s or a `licenses serve` process's
//! (`management_url`).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::MANAGEMENT_KEY;
use super::jsonapi::JSONAPI;

pub const API: &str = "/api/license/management/v4";

/// `method` on `{base}{API}{path}` with the development key; the status and the JSON body
/// (`null` when there is none).
pub async fn call(
    client: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client
        .request(method, format!("{base}{API}{path}"))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"));
    if let Some(body) = body {
        req = req.header("Content-Type", JSONAPI).body(body.to_string());
    }
    let response = req.send().await.expect("the management API answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A product of one live channel: its id.
pub async fn product(client: &reqwest::Client, base: &str) -> String {
    let attributes = json!({"title": "Sport", "type": "CHANNEL",
        "license_defaults": {"duration": 86_400}});
    product_with(client, base, attributes).await
}

/// A product with `attributes` and live channel 42: its id.
pub async fn product_with(client: &reqwest::Client, base: &str, attributes: Value) -> String {
    let doc = json!({"data": {"type": "Product", "attributes": attributes,
        "relationships": {"live": {"data": [{"type": "Channel", "id": "42"}]}}}});
    let (status, body) = call(client, base, Method::POST, "/products", Some(doc)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]["id"].as_str().expect("id").to_owned()
}

/// `n` licenses of `product` in one batch, for users `u0`…`u4` in turn: their ids.
pub async fn grant(client: &reqwest::Client, base: &str, product: &str, n: usize) -> Vec<String> {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({"type": "License", "attributes": {}, "relationships": {
                "user": {"data": {"type": "User", "id": format!("u{}", i % 5)}},
                "product": {"data": {"type": "Product", "id": product}}}})
        })
        .collect();
    let (status, body) = call(
        client,
        base,
        Method::POST,
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

/// Deletes each license.
pub async fn revoke(client: &reqwest::Client, base: &str, ids: &[String]) {
    for id in ids {
        let (status, body) = call(
            client,
            base,
            Method::DELETE,
            &format!("/licenses/{id}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
}

/// Every event of the feed (`query`: its filters, or empty), in position order, once at
/// least `expected` are sequenced (30 s at most).
pub async fn feed(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    expected: usize,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut events = Vec::new();
        let mut path = format!("/events?page%5Bsize%5D=1000{query}");
        loop {
            let (status, body) = call(client, base, Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let page = body["data"].as_array().expect("data").clone();
            if page.is_empty() {
                break;
            }
            let next = body["links"]["next"].as_str().expect("next");
            path = next[next.find("/events").expect("the feed")..].to_owned();
            events.extend(page);
        }
        if events.len() >= expected {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {expected} events in the feed",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
