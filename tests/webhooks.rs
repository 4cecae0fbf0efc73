//! Webhooks (docs/events.md, "Webhooks") on the running service, against a real receiver on
//! loopback that verifies every request with `standardwebhooks`, the reference library:
//! the CRUD of `/webhooks` and its refusals; deliveries signed, filtered by type, retried
//! until the receiver answers, each user's in order; a 410 that disables the endpoint, the
//! failed deliveries listed and replayed. Then across processes, the real `licenses serve`:
//! the receiver down then up, and the service SIGKILLed mid-delivery: every event arrives,
//! none is lost, and a repeat carries the same `webhook-id` for the receiver to drop.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use licenses_testkit::{ServiceProcess, TestDatabase, query_strings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::management::{call, feed, grant, product, revoke};
use support::receiver::{Answer, Received, Receiver};
use support::{Backend, TestApp, spawn_app_with};

on_both_backends!(
    endpoints_are_created_read_changed_and_deleted,
    bad_endpoints_are_refused_at_their_member,
    deliveries_are_signed_filtered_retried_and_in_order,
    a_gone_receiver_disables_the_endpoint_and_failed_deliveries_replay,
);

/// Retries in milliseconds instead of minutes: 5 s, 5 min, 30 min… become 2.5 ms, 150 ms,
/// 900 ms, 3.6 s…
const RETRY_SCALE: f64 = 0.0005;

async fn app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| {
        s.events.webhooks.retry_scale = RETRY_SCALE;
        s.events.webhooks.timeout_ms = 2_000;
    })
    .await
}

async fn management(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call(&app.client, &app.management_url, method, path, body).await
}

/// Registers `url` for `types`: the endpoint's id and secret.
async fn register(
    client: &reqwest::Client,
    base: &str,
    url: &str,
    types: &[&str],
) -> (String, String) {
    let doc = json!({"data": {"type": "Webhook", "attributes": {"url": url,
        "event_types": types, "description": "the BSS"}}});
    let (status, body) = call(client, base, Method::POST, "/webhooks", Some(doc)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_str().expect("id").to_owned();
    let secret = body["data"]["attributes"]["secret"]
        .as_str()
        .expect("the secret, shown once")
        .to_owned();
    (id, secret)
}

/// The endpoint's deliveries (of `status`, or all), oldest first.
async fn deliveries(
    client: &reqwest::Client,
    base: &str,
    webhook: &str,
    status: Option<&str>,
) -> Vec<Value> {
    let filter = status.map_or(String::new(), |s| format!("?filter%5Bstatus%5D={s}"));
    let (code, body) = call(
        client,
        base,
        Method::GET,
        &format!("/webhooks/{webhook}/deliveries{filter}"),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["data"].as_array().expect("data").clone()
}

/// What arrived holds every event of `expected` (by id), each verified by the reference
/// library, nothing else; each user's events arrived first in `user_seq` order. How many
/// requests repeated an id already received.
fn assert_each_arrived(received: &[Received], expected: &[Value]) -> usize {
    for r in received {
        assert_eq!(
            r.verified,
            Ok(()),
            "a request the reference library refused"
        );
    }
    let wanted: BTreeSet<&str> = expected
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    let mut first: Vec<&Received> = Vec::new();
    let mut seen = BTreeSet::new();
    for r in received {
        if seen.insert(r.id.as_str()) {
            first.push(r);
        }
    }
    assert_eq!(seen, wanted, "every event, and only those");
    let mut last_seq: HashMap<String, i64> = HashMap::new();
    for r in &first {
        assert_eq!(
            r.body["id"].as_str(),
            Some(r.id.as_str()),
            "webhook-id is the event id"
        );
        if let Some(user) = r.body["data"]["relationships"]["user"]["data"]["id"].as_str() {
            let seq = r.body["user_seq"].as_i64().expect("user_seq");
            let before = last_seq.insert(user.to_owned(), seq).unwrap_or(0);
            assert!(
                seq > before,
                "{user}'s events in order: {seq} after {before}"
            );
        }
    }
    received.len() - first.len()
}

async fn endpoints_are_created_read_changed_and_deleted(backend: Backend) {
    let app = app(backend).await;
    let doc = json!({"data": {"type": "Webhook", "attributes": {
        "url": "https://hooks.example.com/licenses",
        "event_types": ["license.deleted", "license.created", "license.created"]}}});
    let (status, created) = management(&app, Method::POST, "/webhooks", Some(doc)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["data"]["id"].as_str().expect("id").to_owned();
    // the 201's Location is the new endpoint's own link
    let response = app
        .client
        .post(app.management("/api/license/management/v4/webhooks"))
        .header("Authorization", format!("Apikey {}", support::MANAGEMENT_KEY))
        .header("Content-Type", support::jsonapi::JSONAPI)
        .body(json!({"data": {"type": "Webhook", "attributes": {"url": "https://hooks.example.com/x"}}}).to_string())
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let other: Value = response.json().await.expect("a document");
    assert_eq!(
        other["data"]["links"]["self"].as_str(),
        Some(location.as_str())
    );
    let (status, _) = management(
        &app,
        Method::DELETE,
        &location[location.find("/webhooks/").expect("path")..],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let attributes = &created["data"]["attributes"];
    assert!(
        attributes["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{created}"
    );
    assert_eq!(
        attributes["event_types"],
        json!(["license.created", "license.deleted"])
    );
    assert_eq!(attributes["enabled"], true);
    assert_eq!(attributes["disabled_reason"], Value::Null);
    assert_eq!(created["data"]["type"], "Webhook");

    // the secret is shown once
    let (status, read) = management(&app, Method::GET, &format!("/webhooks/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert!(read["data"]["attributes"].get("secret").is_none(), "{read}");
    assert_eq!(
        read["data"]["attributes"]["url"],
        "https://hooks.example.com/licenses"
    );
    let (_, list) = management(&app, Method::GET, "/webhooks", None).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert!(list["data"][0]["attributes"].get("secret").is_none());

    // disabled by hand, then enabled again
    let patch = |attrs: Value| json!({"data": {"type": "Webhook", "id": id, "attributes": attrs}});
    let (status, off) = management(
        &app,
        Method::PATCH,
        &format!("/webhooks/{id}"),
        Some(patch(json!({"enabled": false}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{off}");
    assert_eq!(off["data"]["attributes"]["enabled"], false);
    assert_eq!(off["data"]["attributes"]["disabled_reason"], "manual");
    let (_, on) = management(
        &app,
        Method::PATCH,
        &format!("/webhooks/{id}"),
        Some(patch(
            json!({"enabled": true, "event_types": [], "description": "all of it"}),
        )),
    )
    .await;
    assert_eq!(on["data"]["attributes"]["enabled"], true, "{on}");
    assert_eq!(on["data"]["attributes"]["event_types"], json!([]));
    assert_eq!(on["data"]["attributes"]["description"], "all of it");

    // a PATCH of another id: 409
    let other = json!({"data": {"type": "Webhook", "id": "0193a8c4-5e2f-7b10-9c4d-2f6e8a1b3c5d",
        "attributes": {"enabled": false}}});
    let (status, body) =
        management(&app, Method::PATCH, &format!("/webhooks/{id}"), Some(other)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, _) = management(&app, Method::DELETE, &format!("/webhooks/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = management(&app, method, &format!("/webhooks/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    let (status, _) = management(&app, Method::GET, "/webhooks/not-an-id/deliveries", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn bad_endpoints_are_refused_at_their_member(backend: Backend) {
    let app = app(backend).await;
    let cases = [
        (json!({}), "/data/attributes/url", "required"),
        (
            json!({"url": "ftp://hooks.example.com/"}),
            "/data/attributes/url",
            "endpoint_not_https",
        ),
        (
            json!({"url": "https://u:p@hooks.example.com/"}),
            "/data/attributes/url",
            "endpoint_credentials",
        ),
        (
            json!({"url": "https://hooks.example.com/", "event_types": ["license.created", "license.renamed"]}),
            "/data/attributes/event_types/1",
            "unknown_event_type",
        ),
        (
            json!({"url": "https://hooks.example.com/", "secret": "whsec_x"}),
            "/data/attributes/secret",
            "unknown_attribute",
        ),
        (json!({"url": 7}), "/data/attributes/url", "invalid_type"),
    ];
    for (attributes, pointer, code) in cases {
        let doc = json!({"data": {"type": "Webhook", "attributes": attributes}});
        let (status, body) = management(&app, Method::POST, "/webhooks", Some(doc)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{attributes}: {body}"
        );
        let errors = body["errors"].as_array().expect("errors");
        assert!(
            errors
                .iter()
                .any(|e| e["source"]["pointer"] == pointer && e["code"] == code),
            "{pointer} {code} in {body}"
        );
    }
    let (_, list) = management(&app, Method::GET, "/webhooks", None).await;
    assert_eq!(list["data"], json!([]), "nothing half-registered");

    // the production policy: https only, and never a private address
    let strict = spawn_app_with(backend, |s| {
        s.events.webhooks.allow_http = false;
        s.events.webhooks.allow_private_networks = false;
    })
    .await;
    for (url, code) in [
        ("http://hooks.example.com/", "endpoint_not_https"),
        ("https://127.0.0.1:8443/hook", "endpoint_private_address"),
        (
            "https://169.254.169.254/latest/meta-data",
            "endpoint_private_address",
        ),
        ("https://localhost/hook", "endpoint_private_address"),
    ] {
        let doc = json!({"data": {"type": "Webhook", "attributes": {"url": url}}});
        let (status, body) = call(
            &strict.client,
            &strict.management_url,
            Method::POST,
            "/webhooks",
            Some(doc),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(body["errors"][0]["code"], code, "{url}: {body}");
    }
}

async fn deliveries_are_signed_filtered_retried_and_in_order(backend: Backend) {
    let app = app(backend).await;
    let receiver = Receiver::start();
    let (webhook, secret) = register(
        &app.client,
        &app.management_url,
        &receiver.url(),
        &["license.created", "license.deleted"],
    )
    .await;
    receiver.knows(&secret);
    // the receiver fails at first: every delivery is retried, each user's held in order
    receiver.answer(Answer::Status(503));
    let sport = product(&app.client, &app.management_url).await;
    let ids = grant(&app.client, &app.management_url, &sport, 10).await;
    revoke(&app.client, &app.management_url, &ids[..3]).await;
    let expected = feed(
        &app.client,
        &app.management_url,
        "&filter%5Btype%5D=license.created,license.deleted",
        13,
    )
    .await;
    assert_eq!(expected.len(), 13);
    receiver.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    receiver.answer(Answer::Ok);
    let received = receiver.wait_for(13, Duration::from_secs(30)).await;
    // failed attempts are received too: only the first receipt of each id is checked for
    // order, and every request for its signature
    let delivered: Vec<Received> = received
        .iter()
        .filter(|r| r.verified.is_ok())
        .cloned()
        .collect();
    assert_each_arrived(&delivered, &expected);
    assert!(
        received.len() > 13,
        "the 503s were retried: {} requests",
        received.len()
    );

    // each delivery's last attempt, as the API shows it
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let listed = deliveries(&app.client, &app.management_url, &webhook, None).await;
        if listed
            .iter()
            .all(|d| d["attributes"]["status"] == "delivered")
            || Instant::now() > deadline
        {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listed.len(), 13);
    for d in &listed {
        let a = &d["attributes"];
        assert_eq!(a["status"], "delivered", "{d}");
        assert_eq!(a["last_status"], 204, "{d}");
        assert_eq!(a["next_attempt_at"], Value::Null, "{d}");
    }
    assert!(
        listed
            .iter()
            .any(|d| d["attributes"]["attempts"].as_u64() > Some(1))
    );
    let (_, endpoint) = management(&app, Method::GET, &format!("/webhooks/{webhook}"), None).await;
    assert_eq!(
        endpoint["data"]["attributes"]["failing_since"],
        Value::Null,
        "{endpoint}"
    );
}

async fn a_gone_receiver_disables_the_endpoint_and_failed_deliveries_replay(backend: Backend) {
    let app = app(backend).await;
    let receiver = Receiver::start();
    let (webhook, secret) = register(&app.client, &app.management_url, &receiver.url(), &[]).await;
    receiver.knows(&secret);
    receiver.answer(Answer::Status(410));
    let sport = product(&app.client, &app.management_url).await;
    // the first delivery (product.created) is answered 410: failed, the endpoint disabled
    let deadline = Instant::now() + Duration::from_secs(10);
    let endpoint = loop {
        let (_, endpoint) =
            management(&app, Method::GET, &format!("/webhooks/{webhook}"), None).await;
        if endpoint["data"]["attributes"]["enabled"] == false {
            break endpoint;
        }
        assert!(Instant::now() < deadline, "{endpoint}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(endpoint["data"]["attributes"]["disabled_reason"], "gone");
    let failed = deliveries(&app.client, &app.management_url, &webhook, Some("failed")).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["attributes"]["last_status"], 410);
    assert_eq!(failed[0]["attributes"]["last_answer"], "answered 410");
    assert_eq!(failed[0]["attributes"]["event_type"], "product.created");
    // while disabled, nothing is sent
    grant(&app.client, &app.management_url, &sport, 2).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), 1);

    // a delivery that is not failed is not replayed
    let (status, body) = management(
        &app,
        Method::POST,
        &format!("/webhooks/{webhook}/deliveries/999999/replay"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // fixed: enabled again, the failed one replayed
    receiver.answer(Answer::Ok);
    let enable =
        json!({"data": {"type": "Webhook", "id": webhook, "attributes": {"enabled": true}}});
    let (status, body) = management(
        &app,
        Method::PATCH,
        &format!("/webhooks/{webhook}"),
        Some(enable),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let delivery = failed[0]["id"].as_str().expect("id");
    let (status, body) = management(
        &app,
        Method::POST,
        &format!("/webhooks/{webhook}/deliveries/{delivery}/replay"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["meta"]["replayed"], 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = deliveries(
            &app.client,
            &app.management_url,
            &webhook,
            Some("delivered"),
        )
        .await;
        if listed.len() == 1 {
            assert_eq!(listed[0]["id"].as_str(), Some(delivery));
            break;
        }
        assert!(Instant::now() < deadline, "{listed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // the replayed request is the same event, by id, as the failed one
    let received = receiver.received();
    assert_eq!(receiver_ids(&received).len(), 1, "{received:?}");
    // replaying a delivered one: 409
    let (status, body) = management(
        &app,
        Method::POST,
        &format!("/webhooks/{webhook}/deliveries/{delivery}/replay"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["errors"][0]["code"], "not_failed");
}

fn receiver_ids(received: &[Received]) -> BTreeSet<&str> {
    received.iter().map(|r| r.id.as_str()).collect()
}

// ---------------------------------------------------------------------------------------
// Across processes: the real binary, killed and restarted.

/// `licenses serve` on `database`, ready when this returns; attempts bounded by 3 s (a
/// claim lasts 7 s), retries 2,000 times sooner than in production.
fn serve(database: &str) -> ServiceProcess {
    ServiceProcess::builder(env!("CARGO_BIN_EXE_licenses"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_ENV", "test")
        .env("RUST_LOG", "info")
        .env("LICENSES__DATABASE__URL", database)
        .env(
            "LICENSES__EVENTS__WEBHOOKS__RETRY_SCALE",
            RETRY_SCALE.to_string(),
        )
        .env("LICENSES__EVENTS__WEBHOOKS__TIMEOUT_MS", "3000")
        .spawn()
}

fn process_client() -> reqwest::Client {
    support::process_client()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_then_up_gets_every_event() {
    for database in [TestDatabase::postgres(), TestDatabase::sqlite()] {
        let client = process_client();
        let mut receiver = Receiver::start();
        let mut service = serve(database.url());
        let base = service.management_url.clone();
        let (_, secret) = register(&client, &base, &receiver.url(), &[]).await;
        receiver.knows(&secret);
        let sport = product(&client, &base).await;
        let first = grant(&client, &base, &sport, 20).await;
        // the receiver goes down: connections refused, deliveries retried
        receiver.down().await;
        let second = grant(&client, &base, &sport, 20).await;
        revoke(&client, &base, &first[..5]).await;
        revoke(&client, &base, &second[..5]).await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        // and the service is killed while it is down: the retries are in the database
        service.kill();
        let service = serve(database.url());
        let base = service.management_url.clone();
        grant(&client, &base, &sport, 10).await;
        receiver.up();
        let expected = feed(&client, &base, "", 1 + 20 + 20 + 10 + 10).await;
        let received = receiver
            .wait_for(expected.len(), Duration::from_secs(60))
            .await;
        assert_each_arrived(&received, &expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_mid_delivery_loses_nothing() {
    for database in [TestDatabase::postgres(), TestDatabase::sqlite()] {
        let client = process_client();
        let receiver = Receiver::start();
        let mut service = serve(database.url());
        let base = service.management_url.clone();
        let (webhook, secret) = register(&client, &base, &receiver.url(), &[]).await;
        receiver.knows(&secret);
        // slow answers: the kill lands while requests are in flight
        receiver.answer(Answer::Slow(Duration::from_millis(1_000)));
        let sport = product(&client, &base).await;
        grant(&client, &base, &sport, 60).await;
        receiver.wait_for(3, Duration::from_secs(10)).await;
        service.kill();
        let in_flight = receiver.received().len();
        receiver.answer(Answer::Ok);
        let service = serve(database.url());
        let base = service.management_url.clone();
        grant(&client, &base, &sport, 10).await;
        let expected = feed(&client, &base, "", 1 + 60 + 10).await;
        let received = receiver
            .wait_for(expected.len(), Duration::from_secs(60))
            .await;
        let repeats = assert_each_arrived(&received, &expected);
        // what was in flight at the kill is sent again once its claim has passed, with the
        // same webhook-id: a repeat the receiver drops, not a loss
        assert!(in_flight > 0);
        assert!(
            repeats >= 1,
            "the deliveries in flight at the kill were sent again"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pending = deliveries(&client, &base, &webhook, Some("pending")).await;
            if pending.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{pending:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A burst: 1,500 licenses of as many users in one batch_create. The queue's planner
/// statistics are refreshed as it fills (a claim planned on the statistics of an empty queue
/// reads every pending delivery for each one it checks), and every event arrives. The count
/// is of manual ANALYZEs only: autovacuum's are counted apart, so it cannot pass for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_refreshes_the_queues_statistics_and_every_event_arrives() {
    let database = TestDatabase::postgres();
    let client = process_client();
    let receiver = Receiver::start();
    let service = serve(database.url());
    let base = service.management_url.clone();
    let (_, secret) = register(&client, &base, &receiver.url(), &["license.created"]).await;
    receiver.knows(&secret);
    let sport = product(&client, &base).await;
    let items: Vec<Value> = (0..1_500)
        .map(|i| {
            json!({"type": "License", "attributes": {}, "relationships": {
                "user": {"data": {"type": "User", "id": format!("burst-{i}")}},
                "product": {"data": {"type": "Product", "id": sport}}}})
        })
        .collect();
    let (status, body) = call(
        &client,
        &base,
        Method::POST,
        "/licenses/batch_create",
        Some(json!({"data": items})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let expected = feed(&client, &base, "&filter%5Btype%5D=license.created", 1_500).await;
    let received = receiver
        .wait_for(expected.len(), Duration::from_secs(60))
        .await;
    assert_each_arrived(&received, &expected);
    // A backend reports its statistics when idle, within a second or so.
    let analyzed = || {
        query_strings(
            database.url(),
            "SELECT analyze_count::text AS value FROM pg_stat_user_tables \
             WHERE relname = 'webhook_deliveries'",
        )
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while analyzed() != ["1"] && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(analyzed(), ["1"], "one burst, one ANALYZE");
}
