//! The catalogue in memory (issue 8): the user API serves products without a database
//! round trip, and a product change through one instance reaches every other instance on
//! the same database through the change marker the triggers on `products` bump.
//!
//! No test asserts a time: another instance's change is awaited with a generous bound (the
//! freshness bound itself is `catalogue.refresh_ms` <= 1000, and the benchmark measures it).

mod support;

use std::time::{Duration, Instant};

use licenses_testkit::{PrivateCluster, query_strings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::jsonapi::JSONAPI;
use support::{Backend, MANAGEMENT_KEY, TestApp, spawn_app, spawn_app_with};

const MANAGEMENT: &str = "/api/license/management/v4";
const USER: &str = "/api/license/v4";

/// How long another instance may take to show a change before the test calls it stuck:
/// far above `catalogue.refresh_ms`, so that a loaded machine never fails the test by itself.
const GENEROUS: Duration = Duration::from_secs(30);

fn product_doc(title: &str) -> Value {
    json!({"data": {"type": "Product", "attributes": {"title": title, "description": "d",
        "type": "CHANNEL", "is_premium": false,
        "license_defaults": {"duration": 86_400, "auto_renew": false}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "1"}]}}}})
}

async fn create_product(app: &TestApp, title: &str) -> String {
    let r = app
        .client
        .post(app.management(&format!("{MANAGEMENT}/products")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", JSONAPI)
        .body(serde_json::to_vec(&product_doc(title)).expect("json"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), StatusCode::CREATED);
    let doc: Value = r.json().await.expect("json");
    doc["data"]["id"].as_str().expect("an id").to_owned()
}

async fn delete_product(app: &TestApp, id: &str) {
    let r = app
        .client
        .delete(app.management(&format!("{MANAGEMENT}/products/{id}")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

/// The catalogue as `app` serves it: status, ETag, and the product ids and titles.
async fn catalogue(app: &TestApp) -> (StatusCode, String, Vec<(String, String)>) {
    let r = app
        .client
        .get(app.user(&format!("{USER}/products")))
        .bearer_auth(app.user_token("41"))
        .send()
        .await
        .expect("an answer");
    let status = r.status();
    let tag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let doc: Value = r.json().await.unwrap_or(Value::Null);
    let products = doc["data"]
        .as_array()
        .map(|data| {
            data.iter()
                .map(|p| {
                    (
                        p["id"].as_str().unwrap_or_default().to_owned(),
                        p["attributes"]["title"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (status, tag, products)
}

/// Polls `app`'s catalogue until `seen` holds of it; panics after [`GENEROUS`].
async fn until(app: &TestApp, what: &str, seen: impl Fn(&[(String, String)]) -> bool) {
    let started = Instant::now();
    loop {
        let (status, _, products) = catalogue(app).await;
        if status == StatusCode::OK && seen(&products) {
            return;
        }
        assert!(
            started.elapsed() < GENEROUS,
            "the other instance never showed {what}: {status} {products:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A second instance on `first`'s database.
async fn second_instance(first: &TestApp) -> TestApp {
    let url = first.settings.database.url.clone();
    spawn_app_with(first.backend, move |s| s.database.url = url).await
}

async fn a_change_through_one_instance_shows_on_the_other(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = second_instance(&a).await;
    // B has its snapshot before the change.
    let (status, before_tag, before) = catalogue(&b).await;
    assert_eq!(status, StatusCode::OK);

    let id = create_product(&a, "Fresh").await;
    // The writing instance refreshes at once: no wait on A.
    let (_, _, on_a) = catalogue(&a).await;
    assert!(on_a.iter().any(|(p, _)| p == &id), "{on_a:?}");
    until(&b, "the new product", |ps| ps.iter().any(|(p, _)| p == &id)).await;
    let (_, after_tag, after) = catalogue(&b).await;
    assert_eq!(after.len(), before.len() + 1);
    assert_ne!(after_tag, before_tag, "a new catalogue, a new tag");
    let (_, tag_on_a, _) = catalogue(&a).await;
    assert_eq!(
        tag_on_a, after_tag,
        "same bytes, same tag on every instance"
    );

    delete_product(&a, &id).await;
    until(&b, "the deletion", |ps| ps.iter().all(|(p, _)| p != &id)).await;
}

on_both_backends!(a_change_through_one_instance_shows_on_the_other);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_by_plain_sql_bumps_the_marker_and_shows() {
    let app = spawn_app(Backend::Postgres).await;
    let id = create_product(&app, "Before").await;
    let url = app.settings.database.url.clone();
    let version = |url: &str| {
        query_strings(
            url,
            "SELECT version::text AS value FROM catalogue_version WHERE id = 1",
        )
    };
    let before = version(&url);
    let sql = format!("UPDATE products SET title = 'After' WHERE id = '{id}'");
    let u = url.clone();
    tokio::task::spawn_blocking(move || query_strings(&u, &sql))
        .await
        .expect("the update ran");
    assert_ne!(version(&url), before, "the trigger bumps the marker");
    until(&app, "the title written by SQL", |ps| {
        ps.iter().any(|(p, t)| p == &id && t == "After")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_is_served_while_the_database_is_down() {
    let pg = tokio::task::spawn_blocking(PrivateCluster::new)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let url = pg.url().to_owned();
    let app = spawn_app_with(Backend::Sqlite, move |s| {
        s.database.url = url;
        s.database.checkout_timeout_ms = 1000;
    })
    .await;
    let id = create_product(&app, "Kept").await;
    let (status, tag, products) = catalogue(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert!(products.iter().any(|(p, _)| p == &id));

    let pg = std::sync::Arc::new(pg);
    let stopper = std::sync::Arc::clone(&pg);
    tokio::task::spawn_blocking(move || stopper.stop())
        .await
        .expect("stopped");
    // No database: the catalogue in hand answers, the same bytes; a 304 still works.
    for _ in 0..3 {
        let (status, again, same) = catalogue(&app).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!((again.as_str(), &same), (tag.as_str(), &products));
    }
    let r = app
        .client
        .get(app.user(&format!("{USER}/products")))
        .bearer_auth(app.user_token("41"))
        .header("If-None-Match", &tag)
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    drop(app);
    drop(pg);
}
