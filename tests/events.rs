//! The event feed on the running service (docs/events.md): `GET …/management/v4/events` shows
//! every product and license change once, in commit order, with a per-user sequence and the
//! resource as the API renders it; filters and keyset paging follow `links.next` to the end;
//! bad parameters are refused by parameter; the scheduler writes `license.expired` once; the
//! backlog metric shows the head.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::jsonapi::JSONAPI;
use support::{Backend, MANAGEMENT_KEY, TestApp, spawn_app, spawn_app_with};

const API: &str = "/api/license/management/v4";

on_both_backends!(
    the_feed_shows_each_change_once_in_commit_order,
    filters_and_pages_follow_links_next,
    bad_parameters_are_refused_by_name,
    an_expired_license_gets_one_expired_event,
);

fn now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_secs()).expect("seconds")
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, url)
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"));
    if let Some(body) = body {
        req = req.header("Content-Type", JSONAPI).body(body.to_string());
    }
    let response = req.send().await.expect("the management API answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn management(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    send(app, method, &app.management(&format!("{API}{path}")), body).await
}

async fn product(app: &TestApp, title: &str) -> String {
    let doc = json!({"data": {"type": "Product", "attributes": {"title": title,
        "description": "d", "type": "CHANNEL_GROUP", "is_user_visible": true,
        "is_buyable": true, "price_record": {"amount": 499, "currency": "EUR"}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "42"}]}}}});
    let (status, body) = management(app, reqwest::Method::POST, "/products", Some(doc)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]["id"].as_str().expect("product id").to_owned()
}

async fn license(app: &TestApp, user: &str, product: &str, attributes: Value) -> String {
    let doc = json!({"data": {"type": "License", "attributes": attributes, "relationships": {
        "user": {"data": {"type": "User", "id": user}},
        "product": {"data": {"type": "Product", "id": product}}}}});
    let (status, body) = management(app, reqwest::Method::POST, "/licenses", Some(doc)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]["id"].as_str().expect("license id").to_owned()
}

/// Every event of `query`, following `links.next` from the start until a page comes back
/// empty.
async fn follow(app: &TestApp, query: &str) -> Vec<Value> {
    let mut url = app.management(&format!("{API}/events{query}"));
    let mut events = Vec::new();
    loop {
        let (status, body) = send(app, reqwest::Method::GET, &url, None).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        let next = body["links"]["next"]
            .as_str()
            .expect("links.next is always there")
            .to_owned();
        let page = body["data"].as_array().expect("data").clone();
        if page.is_empty() {
            return events;
        }
        events.extend(page);
        url = next;
    }
}

/// Waits until `query` shows at least `count` events (the sequencer runs in the background).
async fn wait_for_events(app: &TestApp, query: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = follow(app, query).await;
        if events.len() >= count {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{query}: {} of {count} events after 20 s: {events:#?}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["attributes"]["event_type"].as_str().expect("event_type"))
        .collect()
}

async fn the_feed_shows_each_change_once_in_commit_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let sport = product(&app, "Sport").await;
    let first = license(&app, "u1", &sport, json!({})).await;
    license(&app, "u2", &sport, json!({})).await;
    let (status, _) = management(
        &app,
        reqwest::Method::DELETE,
        &format!("/licenses/{first}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let patch = json!({"data": {"type": "Product", "id": sport,
        "attributes": {"title": "Sport+"}}});
    let (status, body) = management(
        &app,
        reqwest::Method::PATCH,
        &format!("/products/{sport}"),
        Some(patch),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let events = wait_for_events(&app, "", 5).await;
    assert_eq!(
        kinds(&events),
        [
            "product.created",
            "license.created",
            "license.created",
            "license.deleted",
            "product.updated"
        ]
    );
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), events.len(), "each event once, by id");
    let positions: Vec<i64> = events
        .iter()
        .map(|e| e["attributes"]["position"].as_i64().expect("position"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    for event in &events {
        assert_eq!(event["type"], "Event");
    }

    // the resource as the API renders it, read at the time of the event
    let created = &events[1]["attributes"];
    assert_eq!(created["resource"]["type"], "License");
    assert_eq!(created["resource"]["id"], first.as_str());
    assert_eq!(
        created["resource"]["relationships"]["user"]["data"]["id"],
        "u1"
    );
    assert_eq!(created["user_seq"], 1);
    let deleted = &events[3]["attributes"];
    assert_eq!(deleted["resource"]["id"], first.as_str());
    assert_eq!(deleted["user_seq"], 2, "u1's second event");
    assert_eq!(events[2]["attributes"]["user_seq"], 1, "u2's first event");
    assert_eq!(events[0]["attributes"]["user_seq"], Value::Null);
    let updated = &events[4]["attributes"]["resource"];
    assert_eq!(updated["type"], "Product");
    assert_eq!(updated["attributes"]["title"], "Sport+");
    assert_eq!(
        events[0]["attributes"]["resource"]["attributes"]["title"], "Sport",
        "product.created shows the product as it was"
    );

    // the backlog metric: everything sequenced, the head at the last event
    let head = events[4]["attributes"]["position"]
        .as_i64()
        .expect("position");
    let text = app
        .get(&app.management("/metrics"))
        .await
        .text()
        .await
        .expect("the metrics");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&format!("licenses_events_head_position {head}").as_str()),
        "{text}"
    );
    assert!(lines.contains(&"licenses_events_unsequenced 0"), "{text}");
}

async fn filters_and_pages_follow_links_next(backend: Backend) {
    let app = spawn_app(backend).await;
    let sport = product(&app, "Sport").await;
    for n in 0..5 {
        license(&app, &format!("u{}", n % 2), &sport, json!({})).await;
    }
    let all = wait_for_events(&app, "", 6).await;

    // pages of two: the same events in the same order, each once
    let paged = follow(&app, "?page%5Bsize%5D=2").await;
    assert_eq!(paged, all);

    let u0 = follow(&app, "?filter%5Buser%5D=u0&page%5Bsize%5D=1").await;
    assert_eq!(kinds(&u0), ["license.created"; 3]);
    let seqs: Vec<i64> = u0
        .iter()
        .map(|e| e["attributes"]["user_seq"].as_i64().expect("user_seq"))
        .collect();
    assert_eq!(seqs, [1, 2, 3]);

    let products = follow(&app, "?filter%5Btype%5D=product.created,product.deleted").await;
    assert_eq!(kinds(&products), ["product.created"]);

    // a cursor from the middle: only what came after it
    let third = all[2]["attributes"]["position"].as_i64().expect("position");
    let rest = follow(&app, &format!("?page%5Bafter%5D={third}")).await;
    assert_eq!(rest, all[3..]);

    // at the end: an empty page whose next is where to ask again
    let last = all[5]["attributes"]["position"].as_i64().expect("position");
    let url = app.management(&format!("{API}/events?page%5Bafter%5D={last}"));
    let (status, body) = send(&app, reqwest::Method::GET, &url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["links"]["next"], url.as_str());
    assert_eq!(body["links"]["self"], url.as_str());

    // a quiet filter moves its cursor to the newest position: no rereading
    let url = app.management(&format!("{API}/events?filter%5Btype%5D=product.deleted"));
    let (_, body) = send(&app, reqwest::Method::GET, &url, None).await;
    assert_eq!(body["data"], json!([]));
    assert_eq!(
        body["links"]["next"],
        format!("{url}&page%5Bafter%5D={last}").as_str()
    );
}

async fn bad_parameters_are_refused_by_name(backend: Backend) {
    let app = spawn_app(backend).await;
    for (query, parameter) in [
        ("page%5Bsize%5D=0", "page[size]"),
        ("page%5Bsize%5D=1001", "page[size]"),
        ("page%5Bafter%5D=-1", "page[after]"),
        ("page%5Bafter%5D=abc", "page[after]"),
        ("filter%5Btype%5D=license.bought", "filter[type]"),
        ("filter%5Bstatus%5D=ACTIVE", "filter[status]"),
    ] {
        let (status, body) = management(
            &app,
            reqwest::Method::GET,
            &format!("/events?{query}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(
            body["errors"][0]["source"]["parameter"], parameter,
            "{query}: {body}"
        );
    }
    let response = app
        .client
        .get(app.management(&format!("{API}/events")))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn an_expired_license_gets_one_expired_event(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.events.scheduler_interval_ms = 100).await;
    let sport = product(&app, "Sport").await;
    // the scheduler's first round only marks where it starts: let it run once
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = now();
    let short = license(
        &app,
        "u1",
        &sport,
        json!({"start_date": start - 10, "stop_date": start + 1}),
    )
    .await;
    let expired = wait_for_events(&app, "?filter%5Btype%5D=license.expired", 1).await;
    assert_eq!(expired[0]["attributes"]["resource"]["id"], short.as_str());
    assert_eq!(expired[0]["attributes"]["user_seq"], 2);
    // more rounds of the scheduler write no second one
    tokio::time::sleep(Duration::from_millis(500)).await;
    let expired = follow(&app, "?filter%5Btype%5D=license.expired").await;
    assert_eq!(expired.len(), 1, "{expired:#?}");
}
