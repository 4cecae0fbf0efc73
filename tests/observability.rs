//! Request ids, `GET /metrics` and the logs: ids are taken from `X-Request-Id` when sane and
//! returned on every answer of both listeners; metrics are served on the management listener
//! only and count requests by route pattern; the JSON logs of the real binary never hold a
//! key, a token or a secret.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use licenses_testkit::free_port;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::jsonapi::JSONAPI;
use support::{Backend, MANAGEMENT_KEY, TOKEN_SECRET, TestApp, spawn_app, spawn_app_with};

const MANAGEMENT: &str = "/api/license/management/v4";
const USER: &str = "/api/license/v4";

async fn request_id_of(app: &TestApp, url: &str, sent: Option<&str>) -> (StatusCode, String) {
    let mut request = app.client.get(url);
    if let Some(id) = sent {
        request = request.header("X-Request-Id", id);
    }
    let response = request.send().await.unwrap();
    let id = response
        .headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("GET {url}: no X-Request-Id"))
        .to_str()
        .unwrap()
        .to_owned();
    (response.status(), id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id_on_both_listeners() {
    let app = spawn_app(Backend::Sqlite).await;
    let urls = [
        app.user("/health/live"),
        app.user("/no/such/path"),
        app.user(&format!("{USER}/products")),
        app.management("/health/ready"),
        app.management("/metrics"),
        app.management("/no/such/path"),
        app.management(&format!("{MANAGEMENT}/products")),
        app.management(&format!("{MANAGEMENT}/nothing-here")),
    ];
    let mut made = Vec::new();
    for url in &urls {
        let (_, echoed) = request_id_of(&app, url, Some("client-id-42.abc_DEF")).await;
        assert_eq!(echoed, "client-id-42.abc_DEF", "{url}");

        let (status, new) = request_id_of(&app, url, None).await;
        assert_eq!(new.len(), 36, "{url} {status}: a UUID, got {new:?}");
        made.push(new);

        let too_long = "x".repeat(129);
        for insane in ["has space", too_long.as_str(), "tab\there"] {
            let (_, replaced) = request_id_of(&app, url, Some(insane)).await;
            assert_ne!(replaced, insane, "{url}");
            assert_eq!(replaced.len(), 36, "{url}");
        }
    }
    let mut unique = made.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), made.len(), "ids are new each time: {made:?}");
    let longest = "y".repeat(128);
    let (_, kept) = request_id_of(&app, &app.user("/health/live"), Some(&longest)).await;
    assert_eq!(kept, longest);
}

/// The samples of `name` in an exposition, as (labels, value).
fn samples(exposition: &str, name: &str) -> Vec<(String, f64)> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((metric, labels)) => (metric, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric == name).then(|| (labels.to_owned(), value.parse().unwrap()))
        })
        .collect()
}

/// The value of the one sample of `name` whose labels contain every one of `labels`.
fn sample(exposition: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let found: Vec<f64> = samples(exposition, name)
        .into_iter()
        .filter(|(l, _)| {
            labels
                .iter()
                .all(|want| l.split(',').any(|have| have == *want))
        })
        .map(|(_, v)| v)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied()
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get(&app.management("/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

async fn create_product(app: &TestApp, irdeto: Option<&str>) -> String {
    let mut attributes = json!({"title": "Sport", "type": "CHANNEL", "is_user_visible": true,
        "is_buyable": true, "price_record": {"amount": 499, "currency": "EUR"},
        "license_defaults": {"duration": 86_400, "auto_renew": false}});
    if let Some(irdeto) = irdeto {
        attributes["irdeto_product_id"] = json!(irdeto);
    }
    let doc = json!({"data": {"type": "Product", "attributes": attributes,
        "relationships": {"live": {"data": [{"type": "Channel", "id": "42"}]}}}});
    let response = app
        .client
        .post(app.management(&format!("{MANAGEMENT}/products")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", JSONAPI)
        .body(doc.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["data"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_pattern_and_status() {
    let app = spawn_app(Backend::Sqlite).await;
    let product = create_product(&app, None).await;
    let key = format!("Apikey {MANAGEMENT_KEY}");
    for _ in 0..3 {
        let r = app
            .client
            .get(app.management(&format!("{MANAGEMENT}/products/{product}")))
            .header("Authorization", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    for missing in ["a", "b"] {
        let r = app
            .client
            .get(app.management(&format!("{MANAGEMENT}/products/{missing}")))
            .header("Authorization", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let token = app.user_token("u1");
    for _ in 0..4 {
        let r = app
            .client
            .get(app.user(&format!("{USER}/users/u1/licenses")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(
        app.get(&app.user("/nothing/here")).await.status(),
        StatusCode::NOT_FOUND
    );

    let text = scrape(&app).await;
    let requests = "licenses_http_requests_total";
    let product_route = format!("route=\"{MANAGEMENT}/products/{{product_id}}\"");
    assert_eq!(
        sample(
            &text,
            requests,
            &["method=\"GET\"", &product_route, "status=\"200\""]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            requests,
            &["method=\"GET\"", &product_route, "status=\"404\""]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            requests,
            &[
                "method=\"POST\"",
                &format!("route=\"{MANAGEMENT}/products\""),
                "status=\"201\""
            ]
        ),
        Some(1.0),
        "{text}"
    );
    let user_route = format!("route=\"{USER}/users/{{user_id}}/licenses\"");
    assert_eq!(
        sample(&text, requests, &[&user_route, "status=\"200\""]),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, requests, &["route=\"unmatched\"", "status=\"404\""]),
        Some(1.0),
        "{text}"
    );
    // Never a raw path: no id reaches a label.
    for (labels, _) in samples(&text, requests) {
        assert!(!labels.contains(&product), "{labels}");
        assert!(!labels.contains("/u1/"), "{labels}");
    }
    // Latency: one observation per request, in buckets.
    let latency = "licenses_http_request_duration_seconds";
    assert_eq!(
        sample(&text, &format!("{latency}_count"), &[&product_route]),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("{latency}_bucket"),
            &[&product_route, "le=\"+Inf\""]
        ),
        Some(5.0)
    );
    assert!(sample(&text, &format!("{latency}_sum"), &[&product_route]).unwrap() > 0.0);

    // The pool and the road to it, read when scraped.
    let pool_size = f64::from(app.settings.database.pool_size);
    assert_eq!(
        sample(&text, "licenses_db_pool_max_connections", &[]),
        Some(pool_size)
    );
    let idle = sample(&text, "licenses_db_pool_connections", &["state=\"idle\""]).unwrap();
    let in_use = sample(&text, "licenses_db_pool_connections", &["state=\"in_use\""]).unwrap();
    assert!(idle + in_use >= 1.0 && idle + in_use <= pool_size, "{text}");
    for state in ["running", "queued"] {
        let n = sample(
            &text,
            "licenses_store_calls",
            &[&format!("state=\"{state}\"")],
        );
        assert!(
            n.is_some_and(|n| (0.0..=pool_size).contains(&n)),
            "{state}: {text}"
        );
    }
    assert!(sample(&text, "licenses_db_pool_waiting", &[]).is_some());
    // Irdeto is off: no outbox series.
    assert!(samples(&text, "licenses_irdeto_outbox_jobs").is_empty());
    assert!(samples(&text, "licenses_irdeto_calls_total").is_empty());

    // A second scrape counts the first one.
    let again = scrape(&app).await;
    assert_eq!(
        sample(&again, requests, &["route=\"/metrics\"", "status=\"200\""]),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_on_the_management_listener_only() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_ne!(app.user_url, app.management_url);
    let on_user = app.get(&app.user("/metrics")).await;
    assert_eq!(on_user.status(), StatusCode::NOT_FOUND);
    scrape(&app).await;

    // One listener for both APIs: served there.
    let port = free_port();
    let shared = spawn_app_with(Backend::Sqlite, |s| {
        s.server.user_addr = format!("127.0.0.1:{port}");
        s.server.management_addr = format!("127.0.0.1:{port}");
    })
    .await;
    assert_eq!(shared.user_url, shared.management_url);
    let text = scrape(&shared).await;
    assert!(text.contains("licenses_db_pool_max_connections"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_irdeto_outbox() {
    // Irdeto on a port nobody listens on: the job stays in the outbox, retrying.
    let closed = format!("127.0.0.1:{}", free_port());
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.irdeto.enabled = true;
        s.irdeto.base_url = Some(format!("http://{closed}"));
        s.irdeto.api_key = Some("irdeto-test-key".to_owned().into());
        s.irdeto.timeout_ms = 200;
    })
    .await;
    let text = scrape(&app).await;
    let jobs = |text: &str| -> Vec<f64> {
        ["due", "retrying", "failed"]
            .iter()
            .map(|state| {
                sample(
                    text,
                    "licenses_irdeto_outbox_jobs",
                    &[&format!("state=\"{state}\"")],
                )
                .unwrap_or_else(|| panic!("{state}: {text}"))
            })
            .collect()
    };
    assert_eq!(jobs(&text), [0.0, 0.0, 0.0]);

    let product = create_product(&app, Some("IRD-1")).await;
    let license = json!({"data": {"type": "License", "attributes": {}, "relationships": {
        "user": {"data": {"type": "User", "id": "u1"}},
        "product": {"data": {"type": "Product", "id": product}}}}});
    let r = app
        .client
        .post(app.management(&format!("{MANAGEMENT}/licenses")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", JSONAPI)
        .body(license.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let after = jobs(&scrape(&app).await);
    assert_eq!(
        after.iter().sum::<f64>(),
        1.0,
        "one job, undelivered: {after:?}"
    );

    // The worker's call fails (nobody listens): counted as transient. Bounded wait for the
    // worker's first round, which the license's creation wakes.
    let transient = ["call=\"grant\"", "outcome=\"transient\""];
    let mut text = scrape(&app).await;
    for _ in 0..100 {
        if sample(&text, "licenses_irdeto_calls_total", &transient).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = scrape(&app).await;
    }
    let calls = sample(&text, "licenses_irdeto_calls_total", &transient);
    assert!(calls.is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(
        sample(&text, "licenses_irdeto_calls_total", &["outcome=\"ok\""]),
        None,
        "{text}"
    );
}

/// The real binary, `serve`, logging JSON at debug level; what it wrote to standard output
/// while the requests ran. No test log subscriber is involved: this is the production path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_never_hold_a_key_a_token_or_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = support::json_logging_service(dir.path(), "logs.db");

    let client = support::process_client();
    let (user, management) = (&service.user_url, &service.management_url);

    let token =
        licenses_api_user::mint_token(TOKEN_SECRET, "u-logs", &[], 3600, None, None).unwrap();
    let forged = format!("{}x", &token[..token.len() - 1]);
    let wrong_key = "not-the-key-0123456789-wrong";
    // Signed with a secret the service does not know.
    let stranger = licenses_api_user::mint_token(
        "another-secret-nobody-configured-0123456789",
        "u-logs",
        &[],
        3600,
        None,
        None,
    )
    .unwrap();
    let m = |path: &str| format!("{management}{MANAGEMENT}{path}");
    let u = |path: &str| format!("{user}{USER}{path}");
    let calls = vec![
        client
            .get(m("/products"))
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
            .header("X-Request-Id", "trace-me-7"),
        client
            .post(m("/products"))
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
            .header("Content-Type", JSONAPI)
            .body("{not json"),
        client
            .get(m("/products"))
            .header("Authorization", format!("Apikey {wrong_key}")),
        client.get(u("/users/u-logs/licenses")).bearer_auth(&token),
        client
            .get(u("/users/someone-else/licenses"))
            .bearer_auth(&token),
        client.get(u("/users/u-logs/licenses")).bearer_auth(&forged),
        client
            .get(u("/users/u-logs/licenses"))
            .bearer_auth(&stranger),
        client.get(format!("{}?access_token={token}", u("/products"))),
        client.get(format!("{user}/nowhere?key={MANAGEMENT_KEY}")),
    ];
    for call in calls {
        call.send().await.unwrap();
    }
    // The lines of the last requests are written as they are answered; then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    service.kill();
    let lines = service.stdout_lines();

    assert!(lines.len() >= 10, "{lines:#?}");
    for line in &lines {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(parsed["level"].is_string(), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"request_id\":\"trace-me-7\"")),
        "the caller's request id is in the request's lines: {lines:#?}"
    );
    let signature = token.rsplit('.').next().unwrap();
    let secrets = [
        MANAGEMENT_KEY,
        wrong_key,
        TOKEN_SECRET,
        token.as_str(),
        forged.as_str(),
        stranger.as_str(),
        signature,
    ];
    for line in &lines {
        for secret in secrets {
            assert!(!line.contains(secret), "a secret in a log line: {line}");
        }
    }
}
