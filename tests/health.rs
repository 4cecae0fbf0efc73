//! The health endpoints, on both listeners, on both storage backends.

mod support;

use std::time::Duration;

use licenses_testkit::free_port;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Backend, TestApp, spawn_app, spawn_app_with};

async fn assert_healthy(app: &TestApp, base: &str) {
    for path in ["/health/live", "/health/ready"] {
        let url = format!("{base}{path}");
        let response = app.get(&url).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {url}");
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE].clone();
        assert_eq!(content_type, "application/json", "GET {url}");
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body, json!({ "status": "ok" }), "GET {url}");
    }
}

async fn assert_unavailable(app: &TestApp, url: &str) {
    let response = app.get(url).await;
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "GET {url}"
    );
    assert_eq!(response.headers()[reqwest::header::RETRY_AFTER], "1");
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body, json!({ "status": "unavailable" }));
}

/// Readiness is a check cached for a second: polls `url` until it answers `status`, for at
/// most 10 s.
async fn ready_turns(app: &TestApp, url: &str, status: StatusCode) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if app.get(url).await.status() == status {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "GET {url} is still not {status} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn live_and_ready_on_both_listeners(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_ne!(app.user_url, app.management_url, "two listeners");
    assert_healthy(&app, &app.user_url).await;
    assert_healthy(&app, &app.management_url).await;
}

#[tokio::test]
async fn live_and_ready_on_both_listeners_on_sqlite() {
    live_and_ready_on_both_listeners(Backend::Sqlite).await;
}

#[tokio::test]
async fn live_and_ready_on_both_listeners_on_postgres() {
    live_and_ready_on_both_listeners(Backend::Postgres).await;
}

async fn not_ready_while_migrations_are_pending(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.database.migrate_on_start = false).await;
    let live = app.get(&app.user("/health/live")).await;
    assert_eq!(live.status(), StatusCode::OK);
    assert_unavailable(&app, &app.user("/health/ready")).await;
    assert_unavailable(&app, &app.management("/health/ready")).await;

    let applied = licenses::migrate(&app.settings).await.expect("migrates");
    assert!(
        !applied.is_empty(),
        "a fresh database has migrations to apply"
    );
    ready_turns(&app, &app.user("/health/ready"), StatusCode::OK).await;
    ready_turns(&app, &app.management("/health/ready"), StatusCode::OK).await;
    assert_healthy(&app, &app.user_url).await;
    assert_healthy(&app, &app.management_url).await;
    let again = licenses::migrate(&app.settings)
        .await
        .expect("migrates again");
    assert!(again.is_empty(), "nothing left to apply: {again:?}");
}

#[tokio::test]
async fn not_ready_while_migrations_are_pending_on_sqlite() {
    not_ready_while_migrations_are_pending(Backend::Sqlite).await;
}

#[tokio::test]
async fn not_ready_while_migrations_are_pending_on_postgres() {
    not_ready_while_migrations_are_pending(Backend::Postgres).await;
}

#[tokio::test]
async fn not_ready_when_the_database_goes_away_but_still_live() {
    let mut app = spawn_app(Backend::Postgres).await;
    assert_healthy(&app, &app.user_url).await;
    app.drop_database();
    let started = std::time::Instant::now();
    // The last check is answered for up to a second.
    ready_turns(
        &app,
        &app.user("/health/ready"),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_unavailable(&app, &app.user("/health/ready")).await;
    assert_unavailable(&app, &app.management("/health/ready")).await;
    let checkout = Duration::from_millis(app.settings.database.checkout_timeout_ms);
    assert!(
        started.elapsed() < 2 * checkout + Duration::from_secs(6),
        "a database that is gone is answered quickly, not after {:?}",
        started.elapsed()
    );
    let live = app.get(&app.management("/health/live")).await;
    assert_eq!(live.status(), StatusCode::OK);
}

#[tokio::test]
async fn equal_addresses_share_one_listener_serving_both_apis() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.user_addr = addr.clone();
        s.server.management_addr = addr.clone();
    })
    .await;
    assert_eq!(app.user_url, format!("http://{addr}"));
    assert_eq!(app.management_url, app.user_url);
    assert_healthy(&app, &app.user_url).await;
    let bearer = format!("Bearer {}", app.user_token("41"));
    let apikey = format!("Apikey {}", support::MANAGEMENT_KEY);
    assert_eq!(
        status_of(&app, &app.user(USER_PRODUCTS), &bearer).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&app, &app.user(MANAGEMENT_PRODUCTS), &apikey).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn stopping_finishes_and_closes_both_listeners() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_healthy(&app, &app.user_url).await;
    let (user, management) = (app.user("/health/live"), app.management("/health/live"));
    let client = app.client.clone();
    app.stop().await.expect("stops cleanly");
    for url in [user, management] {
        let refused = client.get(&url).send().await;
        assert!(refused.is_err(), "{url} still answers after stop");
    }
}

#[tokio::test]
async fn unknown_paths_are_json_api_404s_on_both_listeners() {
    let app = spawn_app(Backend::Sqlite).await;
    for url in [app.user("/nope"), app.management("/health/nope")] {
        let response = app.get(&url).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {url}");
        assert_eq!(
            response.headers()[reqwest::header::CONTENT_TYPE],
            "application/vnd.api+json",
            "GET {url}"
        );
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["errors"][0]["status"], "404", "{body}");
        assert_eq!(body["errors"][0]["code"], "not_found", "{body}");
    }
}

const USER_PRODUCTS: &str = "/api/license/v4/products";
const MANAGEMENT_PRODUCTS: &str = "/api/license/management/v4/products";

/// GET `url` with `authorization`; the status.
async fn status_of(app: &TestApp, url: &str, authorization: &str) -> StatusCode {
    app.client
        .get(url)
        .header(reqwest::header::AUTHORIZATION, authorization)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .status()
}

#[tokio::test]
async fn each_listener_serves_its_own_api() {
    let app = spawn_app(Backend::Sqlite).await;
    let bearer = format!("Bearer {}", app.user_token("41"));
    let apikey = format!("Apikey {}", support::MANAGEMENT_KEY);

    assert_eq!(
        status_of(&app, &app.user(USER_PRODUCTS), &bearer).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&app, &app.user(USER_PRODUCTS), "Bearer nonsense").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(&app, &app.management(MANAGEMENT_PRODUCTS), &apikey).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(
            &app,
            &app.management(MANAGEMENT_PRODUCTS),
            "Apikey nonsense"
        )
        .await,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        status_of(&app, &app.management(USER_PRODUCTS), &bearer).await,
        StatusCode::NOT_FOUND,
        "the user API is not on the management listener"
    );
    assert_eq!(
        status_of(&app, &app.user(MANAGEMENT_PRODUCTS), &apikey).await,
        StatusCode::NOT_FOUND,
        "the management API is not on the user listener"
    );
}

#[tokio::test]
async fn the_user_api_allows_the_configured_cors_origins() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.cors_origins = vec!["https://app.example".to_owned()];
    })
    .await;
    let bearer = format!("Bearer {}", app.user_token("41"));
    for (origin, allowed) in [
        ("https://app.example", true),
        ("https://evil.example", false),
    ] {
        let response = app
            .client
            .get(app.user(USER_PRODUCTS))
            .header(reqwest::header::AUTHORIZATION, &bearer)
            .header(reqwest::header::ORIGIN, origin)
            .send()
            .await
            .expect("an answer");
        let allow = response
            .headers()
            .get(reqwest::header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .cloned();
        if allowed {
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                allow.as_ref().map(|v| v.as_bytes()),
                Some(origin.as_bytes())
            );
        } else {
            assert!(allow.is_none(), "{origin} must not be allowed");
        }
    }
}
