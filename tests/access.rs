//! The explain call, on the running service: `GET …/users/{user_id}/access?channel=C&service=S`
//! on the management API (every reason in full, the deciding licenses and products included)
//! and on the user API for the user's own token (less detail), each reason code as the
//! licenses' states make it, bad queries refused by parameter, and a black channel explained
//! as `waiting_for_drm` while the Irdeto stand-in is down, then allowed once it is back.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use licenses_irdeto::standin::StandIn;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::jsonapi::JSONAPI;
use support::{Backend, MANAGEMENT_KEY, TestApp, spawn_app, spawn_app_with};

const API: &str = "/api/license/management/v4";
const USER_API: &str = "/api/license/v4";
const KEY: &str = "irdeto-test-key";

fn now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_secs()).expect("seconds")
}

async fn management(
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

async fn user_get(app: &TestApp, user: &str, path: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(app.user(&format!("{USER_API}{path}")))
        .header("Authorization", format!("Bearer {}", app.user_token(user)))
        .send()
        .await
        .expect("the user API answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A product with channel `42` for live and npvr (and `irdeto`, its Irdeto product).
async fn product(app: &TestApp, irdeto: Option<&str>) -> String {
    let mut attributes = json!({"title": "Sport", "description": "d", "type": "CHANNEL_GROUP",
        "is_user_visible": true, "is_buyable": true,
        "price_record": {"amount": 499, "currency": "EUR"}});
    if let Some(irdeto) = irdeto {
        attributes["irdeto_product_id"] = json!(irdeto);
    }
    let doc = json!({"data": {"type": "Product", "attributes": attributes, "relationships": {
        "live": {"data": [{"type": "Channel", "id": "42"}]},
        "npvr": {"data": [{"type": "Channel", "id": "42"}]}}}});
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

async fn explain(app: &TestApp, user: &str, query: &str) -> Value {
    let (status, body) = management(
        app,
        reqwest::Method::GET,
        &format!("/users/{user}/access?{query}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn codes(doc: &Value) -> Vec<&str> {
    doc["data"]["attributes"]["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r["code"].as_str().expect("code"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reason_code_as_the_licenses_make_it() {
    let app = spawn_app(Backend::Postgres).await;
    let sport = product(&app, None).await;
    let t = now();

    // Users are not stored: anyone without a license has no_license.
    let doc = explain(&app, "nobody", "channel=42&service=live").await;
    assert_eq!(doc["data"]["id"], "nobody:42:live");
    assert_eq!(doc["data"]["type"], "Access");
    assert_eq!(doc["data"]["attributes"]["allowed"], false);
    assert_eq!(codes(&doc), ["no_license"]);
    assert_eq!(
        doc["data"]["attributes"]["reasons"][0]["license"],
        Value::Null
    );
    assert_eq!(doc["included"], json!([]));

    let stop = t + 3_600;
    let active = license(
        &app,
        "u1",
        &sport,
        json!({"start_date": t - 60, "stop_date": stop}),
    )
    .await;
    let doc = explain(&app, "u1", "channel=42&service=live").await;
    let a = &doc["data"]["attributes"];
    assert_eq!(
        (a["allowed"].as_bool(), a["until"].as_i64()),
        (Some(true), Some(stop)),
        "{doc}"
    );
    assert_eq!(a["reasons"], json!([]));
    assert_eq!(
        doc["data"]["relationships"]["licenses"]["data"],
        json!([{"type": "License", "id": active}])
    );
    let included: Vec<(&str, &str)> = doc["included"]
        .as_array()
        .expect("included")
        .iter()
        .map(|r| {
            (
                r["type"].as_str().expect("type"),
                r["id"].as_str().expect("id"),
            )
        })
        .collect();
    assert_eq!(
        included,
        [("License", active.as_str()), ("Product", sport.as_str())]
    );

    // The product has 42 for live and npvr only.
    let doc = explain(&app, "u1", "channel=42&service=catchup").await;
    assert_eq!(codes(&doc), ["product_lacks_service"]);
    let doc = explain(&app, "u1", "channel=7&service=live").await;
    assert_eq!(codes(&doc), ["product_lacks_service"]);
    let reason = &doc["data"]["attributes"]["reasons"][0];
    assert_eq!(
        (reason["license"].as_str(), reason["product"].as_str()),
        (Some(active.as_str()), Some(sport.as_str()))
    );

    let suspended = license(&app, "u2", &sport, json!({"status": "SUSPENDED"})).await;
    let later = t + 86_400;
    license(&app, "u2", &sport, json!({"start_date": later})).await;
    let expired = license(
        &app,
        "u2",
        &sport,
        json!({"start_date": 100, "stop_date": 200}),
    )
    .await;
    let doc = explain(&app, "u2", "channel=42&service=npvr").await;
    let mut seen = codes(&doc);
    seen.sort_unstable();
    assert_eq!(
        seen,
        ["license_expired", "license_suspended", "not_started_yet"],
        "{doc}"
    );
    for r in doc["data"]["attributes"]["reasons"]
        .as_array()
        .expect("reasons")
    {
        match r["code"].as_str() {
            Some("license_expired") => assert_eq!(
                (r["license"].as_str(), r["at"].as_i64()),
                (Some(expired.as_str()), Some(200))
            ),
            Some("not_started_yet") => assert_eq!(r["at"].as_i64(), Some(later)),
            _ => assert_eq!(r["license"].as_str(), Some(suspended.as_str())),
        }
        assert!(r["detail"].as_str().is_some_and(|d| !d.is_empty()), "{r}");
        assert_eq!(r["drm"], Value::Null);
    }
    assert_eq!(
        doc["included"].as_array().map(Vec::len),
        Some(4),
        "three licenses, one product"
    );

    // The user's own token: the same answer, with less detail; another user's is refused.
    let (status, mine) = user_get(&app, "u2", "/users/u2/access?channel=42&service=npvr").await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(codes(&mine).len(), 3);
    for r in mine["data"]["attributes"]["reasons"]
        .as_array()
        .expect("reasons")
    {
        let mut members: Vec<&str> = r
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["at", "code", "license", "product"], "{r}");
    }
    assert!(mine.get("included").is_none(), "{mine}");
    let (status, _) = user_get(&app, "u1", "/users/u2/access?channel=42&service=npvr").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_question_is_refused_by_its_parameter() {
    let app = spawn_app(Backend::Sqlite).await;
    for (query, parameter, code) in [
        ("service=live", "channel", "missing_parameter"),
        ("channel=42", "service", "missing_parameter"),
        ("channel=42&service=LIVE", "service", "invalid_parameter"),
        ("channel=&service=live", "channel", "invalid_parameter"),
        ("channel=42&service=live&at=1", "at", "unknown_parameter"),
        (
            "channel=42&channel=43&service=live",
            "channel",
            "repeated_parameter",
        ),
    ] {
        let path = format!("/users/u1/access?{query}");
        let (status, body) = management(&app, reqwest::Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["errors"][0]["code"], code, "{query}");
        assert_eq!(
            body["errors"][0]["source"]["parameter"], parameter,
            "{query}"
        );
        let (status, body) = user_get(&app, "u1", &path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(
            body["errors"][0]["source"]["parameter"], parameter,
            "{query}"
        );
    }
}

/// Polls the management explanation until `done` holds, or fails after `limit`.
async fn explained_until(
    app: &TestApp,
    user: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let doc = explain(app, user, "channel=42&service=live").await;
        if done(&doc) {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "not as expected within {limit:?}: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// "I paid and the channel is black": Irdeto is down, so the license waits for its
/// entitlement, retrying; support sees the job's state, attempts and error, the user only the
/// code; once Irdeto is back the channel is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_channel_waits_for_drm_until_irdeto_answers() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    irdeto.set_unavailable(true);
    let url = irdeto.url().to_owned();
    let app = spawn_app_with(Backend::Sqlite, move |s| {
        s.irdeto.enabled = true;
        s.irdeto.base_url = Some(url);
        s.irdeto.api_key = Some(KEY.to_owned().into());
        s.irdeto.timeout_ms = 2_000;
        s.irdeto.max_attempts = 50;
    })
    .await;
    let sport = product(&app, Some("IRD-SPORT")).await;
    let id = license(&app, "u1", &sport, json!({})).await;

    let doc = explained_until(&app, "u1", Duration::from_secs(30), |d| {
        d["data"]["attributes"]["reasons"][0]["drm"]["state"] == "retrying"
    })
    .await;
    let reason = &doc["data"]["attributes"]["reasons"][0];
    assert_eq!(doc["data"]["attributes"]["allowed"], false);
    assert_eq!(reason["code"], "waiting_for_drm");
    assert_eq!(reason["license"].as_str(), Some(id.as_str()));
    assert!(reason["drm"]["attempts"].as_u64() >= Some(1), "{reason}");
    assert!(
        reason["drm"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{reason}"
    );
    assert!(
        reason["detail"]
            .as_str()
            .is_some_and(|d| d.contains("retrying")),
        "{reason}"
    );

    let (status, mine) = user_get(&app, "u1", "/users/u1/access?channel=42&service=live").await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(codes(&mine), ["waiting_for_drm"]);
    let mine_reason = &mine["data"]["attributes"]["reasons"][0];
    assert!(
        mine_reason.get("drm").is_none() && mine_reason.get("detail").is_none(),
        "{mine}"
    );
    // Nor its words (not just "503": a random id may hold those digits).
    let last_error = reason["drm"]["last_error"].as_str().unwrap_or_default();
    assert!(!mine.to_string().contains(last_error), "{mine}");

    irdeto.set_unavailable(false);
    let doc = explained_until(&app, "u1", Duration::from_secs(60), |d| {
        d["data"]["attributes"]["allowed"] == true
    })
    .await;
    assert_eq!(
        doc["data"]["relationships"]["licenses"]["data"][0]["id"].as_str(),
        Some(id.as_str())
    );
}
