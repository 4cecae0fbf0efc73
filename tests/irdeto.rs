//! The Irdeto integration end to end, in process: licenses created and deleted through both
//! APIs, the outbox, the delivery worker of the service, and a stand-in Irdeto (a real HTTP
//! server on loopback) that can be made to fail. Each test counts what the stand-in
//! received. The two-process and SIGKILL tests are in tests/irdeto_processes.rs.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use licenses_irdeto::standin::StandIn;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::jsonapi::JSONAPI;
use support::{Backend, MANAGEMENT_KEY, TestApp, spawn_app_with};

const API: &str = "/api/license/management/v4";
const USER_API: &str = "/api/license/v4";
const KEY: &str = "irdeto-test-key";

/// The service with Irdeto enabled, pointing at `irdeto`.
async fn service(backend: Backend, irdeto: &StandIn, timeout_ms: u64) -> TestApp {
    let url = irdeto.url().to_owned();
    spawn_app_with(backend, move |s| {
        s.irdeto.enabled = true;
        s.irdeto.base_url = Some(url);
        s.irdeto.api_key = Some(KEY.to_owned().into());
        s.irdeto.timeout_ms = timeout_ms;
        s.irdeto.max_attempts = 50;
    })
    .await
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, app.management(&format!("{API}{path}")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"));
    if let Some(body) = body {
        req = req.header("Content-Type", JSONAPI).body(body.to_string());
    }
    let response = req.send().await.expect("the management API answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn product(app: &TestApp, title: &str, irdeto: Option<&str>) -> String {
    let mut attributes = json!({"title": title, "description": "d", "type": "CHANNEL",
        "is_user_visible": true, "is_buyable": true,
        "price_record": {"amount": 499, "currency": "EUR"},
        "license_defaults": {"duration": 86_400, "auto_renew": false}});
    if let Some(irdeto) = irdeto {
        attributes["irdeto_product_id"] = json!(irdeto);
    }
    let doc = json!({"data": {"type": "Product", "attributes": attributes,
        "relationships": {"live": {"data": [{"type": "Channel", "id": "42"}]}}}});
    let (status, body) = send(app, reqwest::Method::POST, "/products", Some(doc)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]["id"].as_str().expect("product id").to_owned()
}

fn license(user: &str, product: &str) -> Value {
    json!({"type": "License", "attributes": {}, "relationships": {
        "user": {"data": {"type": "User", "id": user}},
        "product": {"data": {"type": "Product", "id": product}}}})
}

fn ids_of(doc: &Value) -> Vec<String> {
    match &doc["data"] {
        Value::Array(items) => items
            .iter()
            .map(|l| l["id"].as_str().expect("id").to_owned())
            .collect(),
        one => vec![one["id"].as_str().expect("id").to_owned()],
    }
}

async fn create_one(app: &TestApp, user: &str, product: &str) -> String {
    let (status, body) = send(
        app,
        reqwest::Method::POST,
        "/licenses",
        Some(json!({"data": license(user, product)})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["attributes"]["status"], "PROCESSING", "{body}");
    ids_of(&body).remove(0)
}

async fn create_batch(app: &TestApp, users: std::ops::Range<usize>, product: &str) -> Vec<String> {
    let items: Vec<Value> = users.map(|u| license(&format!("u{u}"), product)).collect();
    let (status, body) = send(
        app,
        reqwest::Method::POST,
        "/licenses/batch_create",
        Some(json!({"data": items})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    ids_of(&body)
}

async fn purchase(app: &TestApp, user: &str, product: &str, key: &str) -> String {
    let response = app
        .client
        .post(app.user(&format!("{USER_API}/users/{user}/licenses")))
        .header("Authorization", format!("Bearer {}", app.user_token(user)))
        .header("Idempotency-Key", key)
        .header("Content-Type", JSONAPI)
        .body(
            json!({"data": {"type": "License", "attributes": {"payment_method": "billing"},
                "relationships": {"product": {"data": {"type": "Product", "id": product}}}}})
            .to_string(),
        )
        .send()
        .await
        .expect("the user API answers");
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    ids_of(&body).remove(0)
}

/// Every license, by id, with its status (and its reason when it has one).
async fn statuses(app: &TestApp) -> Vec<(String, String, Option<String>)> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/licenses?page[size]=1000&page[after]={a}"),
            None => "/licenses?page[size]=1000".to_owned(),
        };
        let (status, body) = send(app, reqwest::Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = body["data"].as_array().expect("data").clone();
        for l in &page {
            all.push((
                l["id"].as_str().expect("id").to_owned(),
                l["attributes"]["status"]
                    .as_str()
                    .expect("status")
                    .to_owned(),
                l["meta"]["status_reason"].as_str().map(str::to_owned),
            ));
        }
        if page.len() < 1000 {
            break all;
        }
        after = all.last().map(|l| l.0.clone());
    }
}

async fn backlog(app: &TestApp) -> Value {
    let (status, body) = send(app, reqwest::Method::GET, "/irdeto/backlog", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["meta"]["irdeto"].clone()
}

/// Waits until nothing is PROCESSING and no job is due or retrying, or `limit` passes.
async fn settled(app: &TestApp, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let b = backlog(app).await;
        let processing = statuses(app)
            .await
            .iter()
            .filter(|l| l.1 == "PROCESSING")
            .count();
        if processing == 0 && b["due"] == 0 && b["retrying"] == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not settled within {limit:?}: {processing} PROCESSING, backlog {b}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 1,000 licenses, through single create, batch and purchase, while Irdeto answers 503 and
/// then recovers: each ends ACTIVE, with exactly one entitlement created per license.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_and_doubles_nothing() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    let app = service(Backend::Postgres, &irdeto, 2_000).await;
    let mapped = product(&app, "Sport", Some("IRD-SPORT")).await;
    irdeto.set_unavailable(true);

    let mut created = Vec::new();
    for u in 0..50 {
        created.push(create_one(&app, &format!("single{u}"), &mapped).await);
    }
    created.extend(create_batch(&app, 0..900, &mapped).await);
    for u in 0..50 {
        created.push(purchase(&app, &format!("buyer{u}"), &mapped, &format!("k{u}")).await);
    }
    assert_eq!(created.len(), 1_000);
    wait_for("503s while Irdeto is down", Duration::from_secs(20), || {
        irdeto.counts().unavailable >= 1_000
    })
    .await;
    let during = statuses(&app).await;
    assert!(
        during.iter().all(|l| l.1 == "PROCESSING"),
        "nothing ACTIVE while Irdeto is down"
    );
    let b = backlog(&app).await;
    assert_eq!(b["failed"], 0, "{b}");

    irdeto.set_unavailable(false);
    settled(&app, Duration::from_secs(60)).await;
    let after = statuses(&app).await;
    assert_eq!(after.len(), 1_000);
    assert!(
        after.iter().all(|l| l.1 == "ACTIVE"),
        "every license ACTIVE"
    );
    let counts = irdeto.counts();
    assert_eq!(counts.created, 1_000, "{counts:?}");
    assert_eq!(counts.duplicates, 0, "no grant sent twice: {counts:?}");
    let held = irdeto.entitlement_ids();
    let wanted: HashSet<String> = created.into_iter().collect();
    assert_eq!(held, wanted, "one entitlement per license, under its id");
    let one = irdeto.entitlement(&after[0].0).expect("held");
    assert_eq!(one["productId"], "IRD-SPORT");
}

/// A product Irdeto refuses: its licenses end ORDER_ERROR with the reason; the others ACTIVE;
/// the refused jobs are in the backlog as failed, and one can be retried by the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_product_ends_in_order_error_with_the_reason() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    irdeto.refuse_product("IRD-BAD");
    let app = service(Backend::Sqlite, &irdeto, 2_000).await;
    let good = product(&app, "Good", Some("IRD-GOOD")).await;
    let bad = product(&app, "Bad", Some("IRD-BAD")).await;
    let plain = product(&app, "Plain", None).await;
    let good_ids = create_batch(&app, 0..10, &good).await;
    let bad_ids = create_batch(&app, 10..15, &bad).await;
    // No Irdeto product: no entitlement needed, ACTIVE at once, no job.
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/licenses",
        Some(json!({"data": license("u99", &plain)})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["attributes"]["status"], "ACTIVE");

    settled(&app, Duration::from_secs(30)).await;
    let all = statuses(&app).await;
    for (id, status, reason) in &all {
        if bad_ids.contains(id) {
            assert_eq!(status, "ORDER_ERROR", "{id}");
            let reason = reason.as_deref().expect("a reason");
            assert!(
                reason.contains("422") && reason.contains("IRD-BAD"),
                "{reason}"
            );
        } else {
            assert_eq!(status, "ACTIVE", "{id}");
            assert!(reason.is_none());
        }
    }
    assert_eq!(all.len(), 16);
    let counts = irdeto.counts();
    assert_eq!((counts.created, counts.refused), (10, 5), "{counts:?}");
    assert_eq!(irdeto.entitlement_ids().len(), good_ids.len());

    let b = backlog(&app).await;
    assert_eq!(
        (b["failed"].as_u64(), b["due"].as_u64()),
        (Some(5), Some(0)),
        "{b}"
    );
    let job = b["failed_jobs"][0]["id"]
        .as_str()
        .expect("job id")
        .to_owned();
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        &format!("/irdeto/jobs/{job}/retry"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for unknown in ["999999", "abc"] {
        let (status, _) = send(
            &app,
            reqwest::Method::POST,
            &format!("/irdeto/jobs/{unknown}/retry"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    }
    wait_for(
        "the retried job refused again",
        Duration::from_secs(10),
        || irdeto.counts().refused == 6,
    )
    .await;
}

/// An answer slower than irdeto.timeout_ms is a transient failure: retried, and delivered
/// once Irdeto is fast again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_is_transient() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    irdeto.set_delay(Duration::from_millis(1_500));
    let app = service(Backend::Sqlite, &irdeto, 300).await;
    let mapped = product(&app, "Sport", Some("IRD-SPORT")).await;
    let ids = create_batch(&app, 0..3, &mapped).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let b = backlog(&app).await;
        if b["retrying"].as_u64() == Some(3) {
            break;
        }
        assert!(Instant::now() < deadline, "timed-out grants retrying: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(statuses(&app).await.iter().all(|l| l.1 == "PROCESSING"));
    irdeto.set_delay(Duration::ZERO);
    settled(&app, Duration::from_secs(20)).await;
    assert!(statuses(&app).await.iter().all(|l| l.1 == "ACTIVE"));
    let held = irdeto.entitlement_ids();
    assert_eq!(held, ids.into_iter().collect::<HashSet<_>>());
}

/// Licenses deleted while PROCESSING, some of whose grants Irdeto already saw: once Irdeto is
/// back, it holds the entitlements of the remaining licenses only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_during_processing_leaves_no_entitlement() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    let app = service(Backend::Postgres, &irdeto, 2_000).await;
    let mapped = product(&app, "Sport", Some("IRD-SPORT")).await;
    // Some grants delivered before the outage: their revokes must reach Irdeto.
    let early = create_batch(&app, 0..4, &mapped).await;
    wait_for("the early grants", Duration::from_secs(10), || {
        irdeto.counts().created == 4
    })
    .await;
    irdeto.set_unavailable(true);
    let tried = create_batch(&app, 4..24, &mapped).await;
    wait_for(
        "grants tried during the outage",
        Duration::from_secs(10),
        || irdeto.counts().unavailable >= 20,
    )
    .await;

    let mut doomed: Vec<String> = early[..2].to_vec();
    doomed.extend(tried[..10].iter().cloned());
    let (status, body) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/licenses/{}", doomed[0]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let items: Vec<Value> = doomed[1..]
        .iter()
        .map(|id| json!({"type": "License", "id": id}))
        .collect();
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/licenses/batch_delete",
        Some(json!({"data": items})),
    )
    .await;
    assert!(status.is_success(), "{status}: {body}");
    // Gone from the API at once.
    let (status, _) = send(
        &app,
        reqwest::Method::GET,
        &format!("/licenses/{}", doomed[5]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    irdeto.set_unavailable(false);
    settled(&app, Duration::from_secs(60)).await;
    let left: HashSet<String> = early[2..]
        .iter()
        .chain(tried[10..].iter())
        .cloned()
        .collect();
    assert_eq!(
        irdeto.entitlement_ids(),
        left,
        "only the remaining licenses are entitled"
    );
    let counts = irdeto.counts();
    assert!(
        counts.revoked >= 2,
        "the early grants were revoked: {counts:?}"
    );
    assert_eq!(
        counts.created - counts.revoked,
        left.len() as u64,
        "{counts:?}"
    );
}

/// With the integration disabled nothing changes: ACTIVE at once, nothing sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_licenses_are_active_at_once() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let mapped = product(&app, "Sport", Some("IRD-SPORT")).await;
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/licenses",
        Some(json!({"data": license("u1", &mapped)})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["attributes"]["status"], "ACTIVE");
    let b = backlog(&app).await;
    assert_eq!(b["enabled"], false);
    assert_eq!(irdeto.counts(), Default::default());
}

/// `licenses irdeto resync --user ID` queues that user's grants again: what Irdeto lost comes
/// back, what it has is answered 409 (success); `licenses irdeto retry` of an unknown job is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_restores_what_irdeto_lost() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    let app = service(Backend::Postgres, &irdeto, 2_000).await;
    let mapped = product(&app, "Sport", Some("IRD-SPORT")).await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(create_one(&app, "u1", &mapped).await);
    }
    let other = create_one(&app, "u2", &mapped).await;
    settled(&app, Duration::from_secs(20)).await;
    assert!(irdeto.forget(&mine[0]) && irdeto.forget(&other));

    let done = licenses::irdeto_command(
        app.settings.clone(),
        licenses::cli::IrdetoCommand::Resync {
            user: Some("u1".into()),
        },
    )
    .await
    .expect("resync runs");
    assert!(done.contains("queued 3"), "{done}");
    wait_for("the resynced grants", Duration::from_secs(20), || {
        irdeto.counts().duplicates == 2
    })
    .await;
    settled(&app, Duration::from_secs(20)).await;
    let held = irdeto.entitlement_ids();
    assert!(
        mine.iter().all(|id| held.contains(id)),
        "u1's entitlements restored"
    );
    assert!(!held.contains(&other), "only the user asked for");
    assert_eq!(irdeto.counts().created, 5);

    let refused = licenses::irdeto_command(
        app.settings.clone(),
        licenses::cli::IrdetoCommand::Retry { job: 987_654 },
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
}

/// Stopping the service lets the delivery round in hand finish: grants in flight when the
/// stop comes are delivered, not abandoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_finishes_the_round_in_hand() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    let app = service(Backend::Sqlite, &irdeto, 5_000).await;
    let mapped = product(&app, "Sport", Some("IRD-SPORT")).await;
    irdeto.set_delay(Duration::from_millis(1_500));
    let ids = create_batch(&app, 0..5, &mapped).await;
    // The worker is woken at once; its calls are now waiting for the slow stand-in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(irdeto.counts().created, 0, "still in flight");
    app.stop().await.expect("stops cleanly");
    assert_eq!(irdeto.counts().created, 5, "the round in hand was finished");
    assert_eq!(
        irdeto.entitlement_ids(),
        ids.into_iter().collect::<HashSet<_>>()
    );
}

/// The service with Irdeto over TLS: the stand-in serves a certificate of a CA the test made,
/// and the service trusts the CA of `trusted` (`irdeto.ca_file`).
async fn tls_service(
    irdeto: &StandIn,
    trusted: &licenses_testkit::TestCa,
    dir: &tempfile::TempDir,
    max_attempts: u32,
) -> TestApp {
    let url = irdeto.url().to_owned();
    let ca_file = dir.path().join("irdeto-ca.pem");
    std::fs::write(&ca_file, trusted.cert_pem()).expect("write the CA");
    spawn_app_with(Backend::Sqlite, move |s| {
        s.irdeto.enabled = true;
        s.irdeto.base_url = Some(url);
        s.irdeto.api_key = Some(KEY.to_owned().into());
        s.irdeto.timeout_ms = 5_000;
        s.irdeto.max_attempts = max_attempts;
        s.irdeto.ca_file = Some(ca_file);
    })
    .await
}

fn tls_standin(ca: &licenses_testkit::TestCa) -> StandIn {
    let server = ca.server(&["127.0.0.1"]);
    StandIn::start_tls(
        KEY,
        &licenses_irdeto::standin::TlsServer {
            cert_pem: server.cert_pem,
            key_pem: server.key_pem,
            client_ca_pem: None,
        },
    )
    .expect("TLS stand-in")
}

/// irdeto.ca_file reaches the gateway: over TLS with the right CA, licenses end ACTIVE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licenses_are_delivered_over_tls_with_the_configured_ca() {
    let ca = licenses_testkit::TestCa::new("irdeto test CA");
    let irdeto = tls_standin(&ca);
    let dir = tempfile::tempdir().expect("tempdir");
    let app = tls_service(&irdeto, &ca, &dir, 10).await;
    let mapped = product(&app, "Sport", Some("IRD-SPORT")).await;
    let ids = create_batch(&app, 0..3, &mapped).await;
    settled(&app, Duration::from_secs(20)).await;
    assert!(statuses(&app).await.iter().all(|l| l.1 == "ACTIVE"));
    assert_eq!(
        irdeto.entitlement_ids(),
        ids.into_iter().collect::<HashSet<_>>()
    );
}

/// A CA that does not issue Irdeto's certificate: every grant is tried again (never dropped)
/// until irdeto.max_attempts, then parked as failed with a reason that says TLS, and nothing
/// reached the stand-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_retried_then_parked_with_a_tls_reason() {
    let ca = licenses_testkit::TestCa::new("irdeto test CA");
    let irdeto = tls_standin(&ca);
    let dir = tempfile::tempdir().expect("tempdir");
    let app = tls_service(
        &irdeto,
        &licenses_testkit::TestCa::new("another CA"),
        &dir,
        2,
    )
    .await;
    let mapped = product(&app, "Sport", Some("IRD-SPORT")).await;
    let ids = create_batch(&app, 0..3, &mapped).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let b = backlog(&app).await;
        if b["failed"].as_u64() == Some(3) {
            break b["failed_jobs"].as_array().expect("failed jobs").clone();
        }
        assert!(
            Instant::now() < deadline,
            "grants parked after 2 tries: {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed.len(), 3, "{failed:?}");
    for job in &failed {
        assert_eq!(job["attempts"], 2, "tried again before parking: {job}");
        let reason = job["last_error"].as_str().expect("a reason");
        assert!(reason.contains("TLS failed"), "{reason}");
        assert!(reason.contains("certificate"), "{reason}");
        assert!(
            ids.iter().any(|id| job["license_id"] == id.as_str()),
            "{job}"
        );
    }
    assert_eq!(irdeto.counts().created, 0);
}
