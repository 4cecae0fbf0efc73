//! Limits: request body sizes (413), the page-size cap (400) and the batch cap (422), rate
//! limits per user and per key (429 with `Retry-After`), slow clients (408 or closed), and an
//! exhausted pool (503 with `Retry-After` within `database.checkout_timeout_ms`).
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use licenses::Application;
use licenses_testkit::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::jsonapi::{JSONAPI, Reply};
use support::{Backend, MANAGEMENT_KEY, TestApp, spawn_app, spawn_app_with};

const MANAGEMENT: &str = "/api/license/management/v4";
const USER: &str = "/api/license/v4";

async fn bss_post(app: &TestApp, path: &str, body: String) -> Reply {
    let r = app
        .client
        .post(app.management(&format!("{MANAGEMENT}{path}")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", JSONAPI)
        .body(body)
        .send()
        .await
        .unwrap();
    Reply::read(r).await
}

async fn bss_get(app: &TestApp, path: &str) -> Reply {
    management_get(app, path, MANAGEMENT_KEY, None).await
}

/// GET `path` of the management API with `key`, maybe as forwarded by a proxy for a client.
async fn management_get(
    app: &TestApp,
    path: &str,
    key: &str,
    forwarded_for: Option<&str>,
) -> Reply {
    let mut request = app
        .client
        .get(app.management(&format!("{MANAGEMENT}{path}")))
        .header("Authorization", format!("Apikey {key}"));
    if let Some(client) = forwarded_for {
        request = request.header("X-Forwarded-For", client);
    }
    Reply::read(request.send().await.unwrap()).await
}

async fn product(app: &TestApp) -> String {
    let doc = json!({"data": {"type": "Product", "attributes": {"title": "Sport", "type": "CHANNEL",
        "is_user_visible": true, "is_buyable": true, "price_record": {"amount": 499, "currency": "EUR"},
        "license_defaults": {"duration": 86_400, "auto_renew": false}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "42"}]}}}});
    let r = bss_post(app, "/products", doc.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["data"]["id"].as_str().unwrap().to_owned()
}

/// A batch of `n` licenses, each with an order id long enough to make the document heavy.
fn batch(n: usize, product: &str) -> String {
    let data: Vec<Value> = (0..n)
        .map(|i| {
            json!({"type": "License", "attributes": {"order_id": format!("order-{i:08}-0123456789abcdef")},
                "relationships": {"user": {"data": {"type": "User", "id": format!("user-{i}")}},
                    "product": {"data": {"type": "Product", "id": product}}}})
        })
        .collect();
    json!({ "data": data }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_ten_thousand_fits_and_one_more_is_422() {
    let app = spawn_app(Backend::Sqlite).await;
    let product = product(&app).await;
    let body = batch(10_001, &product);
    assert!(body.len() > 1_000_000, "{}", body.len());
    let r = bss_post(&app, "/licenses/batch_create", body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
    assert_eq!(
        r.problems(),
        [("/data".to_owned(), "batch_too_large".to_owned())]
    );

    let r = bss_post(&app, "/licenses/batch_create", batch(10_000, &product)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.code());
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(10_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_size_is_capped_at_1000() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = bss_get(&app, "/licenses?page[size]=1000").await;
    assert_eq!(r.status, StatusCode::OK);
    for size in ["1001", "0", "1000000"] {
        let r = bss_get(&app, &format!("/licenses?page[size]={size}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{size}");
        assert_eq!(
            r.problems(),
            [("page[size]".to_owned(), "invalid_parameter".to_owned())]
        );
    }
}

/// Sends `head` and then `body_len` bytes of body from another thread (the server may answer
/// and close before all of it is sent), and reads the answer until the server closes or 10 s
/// have passed.
fn raw_exchange(port: u16, head: String, body_len: usize) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        writer.write_all(head.as_bytes())?;
        let chunk = vec![b' '; 64 * 1024];
        let mut left = body_len;
        while left > 0 {
            let n = left.min(chunk.len());
            writer.write_all(&chunk[..n])?;
            left -= n;
        }
        Ok::<(), std::io::Error>(())
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buffer[..n]);
                if complete(&answer) {
                    break;
                }
            }
            Err(e) if answer.is_empty() => panic!("no answer: {e}"),
            Err(_) => break,
        }
    }
    drop(stream);
    let _ = sender.join();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether `answer` holds a whole response: head, and as many body bytes as it declares.
fn complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= length
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app(Backend::Sqlite).await;
    let port = |url: &str| url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let cases = [
        (
            port(&app.management_url),
            format!("{MANAGEMENT}/licenses/batch_create"),
            format!("Apikey {MANAGEMENT_KEY}"),
            licenses_api_management::BODY_LIMIT,
        ),
        (
            port(&app.user_url),
            format!("{USER}/users/u1/licenses"),
            format!("Bearer {}", app.user_token("u1")),
            licenses_api_user::BODY_LIMIT,
        ),
    ];
    for (port, path, authorization, limit) in cases {
        let length = limit + 1024;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}\r\n\
             Content-Type: {JSONAPI}\r\nContent-Length: {length}\r\n\r\n"
        );
        let answer = raw_exchange(port, head, length);
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        let doc: Value = serde_json::from_str(body).unwrap();
        assert_eq!(doc["errors"][0]["code"], "body_too_large", "{doc}");
        assert!(
            answer.to_ascii_lowercase().contains("x-request-id:"),
            "{answer}"
        );
    }
}

async fn user_get(app: &TestApp, user: &str, token: &str) -> Reply {
    let r = app
        .client
        .get(app.user(&format!("{USER}/users/{user}/licenses")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    Reply::read(r).await
}

/// Statuses of `n` requests in a row, as fast as they go.
async fn statuses_of<F, Fut>(n: usize, mut call: F) -> Vec<Reply>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Reply>,
{
    let mut replies = Vec::new();
    for _ in 0..n {
        replies.push(call().await);
    }
    replies
}

fn assert_limited(replies: &[Reply], burst: usize) {
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert!(
        statuses[..burst].iter().all(|s| *s == 200),
        "the burst passes: {statuses:?}"
    );
    let refused: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!refused.is_empty(), "some are refused: {statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    for r in refused {
        assert_eq!(r.code(), "rate_limited");
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!(retry >= 1, "{retry}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_has_a_rate_limit() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.user_requests_per_second = 1;
        s.limits.user_burst = 3;
    })
    .await;
    let (alice, bob) = (app.user_token("alice"), app.user_token("bob"));
    let replies = statuses_of(20, || user_get(&app, "alice", &alice)).await;
    assert_limited(&replies, 3);
    // Another user has a budget of their own.
    assert_eq!(user_get(&app, "bob", &bob).await.status, StatusCode::OK);
    // The management API is not limited by the user limit.
    for _ in 0..10 {
        assert_eq!(bss_get(&app, "/products").await.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_management_key_has_a_rate_limit() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.management_requests_per_second = 1;
        s.limits.management_burst = 2;
    })
    .await;
    let replies = statuses_of(20, || bss_get(&app, "/products")).await;
    assert_limited(&replies, 2);
    // Unauthenticated requests are refused 401 before any limit is counted.
    let r = app
        .client
        .get(app.management(&format!("{MANAGEMENT}/products")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The user API is not limited by the management limit.
    let token = app.user_token("carol");
    for _ in 0..10 {
        assert_eq!(user_get(&app, "carol", &token).await.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_half_a_request_is_answered_408_or_closed() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.server.client_timeout_ms = 300).await;
    for url in [&app.user_url, &app.management_url] {
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // Bounds the test, and below actix-web's own default of 5 s: a server that did not
        // apply `client_timeout_ms` (300 ms here) would fail it.
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        stream
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{url}: neither answered nor closed: {e}"),
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{url}: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_sending_its_body_is_answered_408() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.server.client_timeout_ms = 300).await;
    let port: u16 = app
        .management_url
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Bounds the test: a server that never answers fails it after 10 s.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST {MANAGEMENT}/licenses/batch_create HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Apikey {MANAGEMENT_KEY}\r\nContent-Type: {JSONAPI}\r\n\
         Content-Length: 1000\r\n\r\n{{\"data\": ["
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !complete(&answer) {
        let n = stream.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let doc: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(doc["errors"][0]["code"], "body_timeout", "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_answers_503_within_the_checkout_timeout() {
    let database = tokio::task::spawn_blocking(TestDatabase::sqlite)
        .await
        .unwrap();
    let mut settings = support::test_settings();
    settings.database.url = database.url().to_owned();
    settings.database.pool_size = 1;
    settings.database.checkout_timeout_ms = 200;
    let application = Application::build(settings).await.unwrap();
    let store = application.store().clone();
    let base = format!("http://127.0.0.1:{}", application.management_port());
    let running = tokio::spawn(application.run_until(std::future::pending()));

    // Holds the only connection (and the only turn on the blocking pool) until released.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (held, holding) = tokio::sync::oneshot::channel::<()>();
    let holder = tokio::spawn(async move {
        store
            .with_connection(move |_| {
                let _ = held.send(());
                let _ = released.recv_timeout(Duration::from_secs(20));
            })
            .await
    });
    holding.await.unwrap();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap();
    let r = client
        .get(format!("{base}{MANAGEMENT}/products"))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .send()
        .await
        .unwrap();
    let r = Reply::read(r).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);
    assert_eq!(r.code(), "unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));

    // The pool's state shows it: the one call running, the connection in use.
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("licenses_store_calls{state=\"running\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("licenses_db_pool_connections{state=\"in_use\"} 1"),
        "{text}"
    );

    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let r = client
        .get(format!("{base}{MANAGEMENT}/products"))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "recovered once the connection is free"
    );
    running.abort();
    drop(database);
}

async fn management_get_with(app: &TestApp, key: &str) -> Reply {
    management_get(app, "/products", key, None).await
}

fn assert_blocked(r: &Reply, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{what}: {}",
        r.json
    );
    assert_eq!(r.code(), "rate_limited", "{what}");
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no Retry-After"));
    // One failure back every 60 s / 2.
    assert!((1..=30).contains(&retry), "{what}: Retry-After {retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_with_too_many_failed_authentications_gets_429_on_both_apis() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.limits.auth_failures_per_minute = 2).await;
    let token = app.user_token("41");
    // The first failure is within the budget: the right credentials still pass.
    assert_eq!(
        management_get_with(&app, "a-guessed-key").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        management_get_with(&app, MANAGEMENT_KEY).await.status,
        StatusCode::OK
    );
    assert_eq!(user_get(&app, "41", &token).await.status, StatusCode::OK);
    // The second uses it up (on the user API: the budget is the address's, both APIs).
    assert_eq!(
        user_get(&app, "41", "a.guessed.token").await.status,
        StatusCode::UNAUTHORIZED
    );
    // From now on no credential is looked at, right or wrong, on either API.
    assert_blocked(
        &management_get_with(&app, MANAGEMENT_KEY).await,
        "the right key",
    );
    assert_blocked(
        &management_get_with(&app, "another-guess").await,
        "another guess",
    );
    assert_blocked(&user_get(&app, "41", &token).await, "the right token");
    // Health stays outside the APIs' limits.
    assert_eq!(
        app.get(&app.user("/health/live")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_not_limited_when_the_limit_is_off() {
    // config/test.toml: limits.auth_failures_per_minute = 0.
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(app.settings.limits.auth_failures_per_minute, 0);
    for _ in 0..40 {
        assert_eq!(
            management_get_with(&app, "a-guessed-key").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        management_get_with(&app, MANAGEMENT_KEY).await.status,
        StatusCode::OK
    );
}

async fn management_get_from(app: &TestApp, forwarded_for: &str, key: &str) -> Reply {
    management_get(app, "/products", key, Some(forwarded_for)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_failure_budget() {
    // The test's client connects from loopback: here loopback is the trusted proxy.
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.auth_failures_per_minute = 2;
        s.server.trusted_proxies = vec!["127.0.0.0/8".to_owned(), "::1".to_owned()];
    })
    .await;
    let (a, b) = ("198.51.100.1", "198.51.100.2");
    for _ in 0..2 {
        assert_eq!(
            management_get_from(&app, a, "a-guessed-key").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_blocked(
        &management_get_from(&app, a, MANAGEMENT_KEY).await,
        "client a",
    );
    // A client forging the left of the header is still known by what the proxy added.
    assert_blocked(
        &management_get_from(&app, &format!("{b}, {a}"), MANAGEMENT_KEY).await,
        "client a claiming to forward b",
    );
    assert_eq!(
        management_get_from(&app, b, MANAGEMENT_KEY).await.status,
        StatusCode::OK,
        "client b has its own budget"
    );
}
