//! Bounded work and honest answers for unauthenticated and bad callers (issue 18): the
//! total body deadline, the security headers of every answer, links and `Location` built
//! from the public base URL (never from a stranger's `Host` or `X-Forwarded-Host`), the
//! problems of a 422 capped with their count, and secrets in query strings kept out of logs
//! and answers.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::jsonapi::{JSONAPI, Reply};
use support::{Backend, MANAGEMENT_KEY, TOKEN_SECRET, TestApp, spawn_app, spawn_app_with};

const MANAGEMENT: &str = "/api/license/management/v4";
const USER: &str = "/api/license/v4";

fn product_doc() -> Value {
    json!({"data": {"type": "Product", "attributes": {"title": "Sport", "type": "CHANNEL",
        "is_user_visible": true, "is_buyable": true, "price_record": {"amount": 499, "currency": "EUR"},
        "license_defaults": {"duration": 86_400, "auto_renew": false}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "42"}]}}}})
}

fn license_doc(user: &str, product: &str) -> Value {
    json!({"type": "License", "relationships": {
        "user": {"data": {"type": "User", "id": user}},
        "product": {"data": {"type": "Product", "id": product}}}})
}

/// POST to the management API with extra headers.
async fn bss_post(app: &TestApp, path: &str, doc: &Value, headers: &[(&str, &str)]) -> Reply {
    let mut request = app
        .client
        .post(app.management(&format!("{MANAGEMENT}{path}")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", JSONAPI)
        .body(doc.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::read(request.send().await.unwrap()).await
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

// ---------------------------------------------------------------------------------------
// The body deadline

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_in_past_the_deadline_is_answered_408_and_the_connection_closed() {
    // Idle bound far above the trickle's pace: only the total deadline can end it.
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.client_timeout_ms = 5_000;
        s.server.body_deadline_ms = 800;
    })
    .await;
    let port = port_of(&app.management_url);
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // Bounds the test: a server that neither answers nor closes fails it.
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let head = format!(
            "POST {MANAGEMENT}/products HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: Apikey {MANAGEMENT_KEY}\r\nContent-Type: {JSONAPI}\r\n\
             Content-Length: 100000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        // A byte every 50 ms, steadily, until the server answers (at most 100000 of them).
        let answered = Arc::new(AtomicBool::new(false));
        let mut writer = stream.try_clone().unwrap();
        let stop = Arc::clone(&answered);
        let trickle = std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if writer.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        let closed = loop {
            match stream.read(&mut buffer) {
                Ok(0) => break true,
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        answered.store(true, Ordering::SeqCst);
                    }
                }
                // Closed while the trickle still sent: the peer resets.
                Err(e)
                    if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) =>
                {
                    break true;
                }
                Err(e) => {
                    answered.store(true, Ordering::SeqCst);
                    panic!(
                        "neither closed nor answered ({e}): {}",
                        String::from_utf8_lossy(&answer)
                    )
                }
            }
        };
        answered.store(true, Ordering::SeqCst);
        trickle.join().unwrap();
        (String::from_utf8_lossy(&answer).into_owned(), closed)
    })
    .await
    .unwrap();
    let (answer, closed) = answer;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed, "the connection is closed after the 408");
    let head = answer
        .split_once("\r\n\r\n")
        .unwrap()
        .0
        .to_ascii_lowercase();
    assert!(head.contains("connection: close"), "{head}");
    let doc: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(doc["errors"][0]["code"], "body_deadline", "{doc}");
    assert_eq!(doc["errors"][0]["status"], "408", "{doc}");
}

// ---------------------------------------------------------------------------------------
// Security headers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_has_nosniff_and_authenticated_ones_are_not_stored() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.user_token("u-h");
    let cases: Vec<(&str, reqwest::RequestBuilder, &str)> = vec![
        (
            "management list",
            app.client
                .get(app.management(&format!("{MANAGEMENT}/products")))
                .header("Authorization", format!("Apikey {MANAGEMENT_KEY}")),
            "no-store",
        ),
        (
            "management 401",
            app.client
                .get(app.management(&format!("{MANAGEMENT}/products"))),
            "no-store",
        ),
        (
            "management 422",
            app.client
                .post(app.management(&format!("{MANAGEMENT}/products")))
                .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
                .header("Content-Type", JSONAPI)
                .body("{\"data\": {\"type\": \"Product\", \"attributes\": {\"title\": 5}}}"),
            "no-store",
        ),
        (
            "user licenses",
            app.client
                .get(app.user(&format!("{USER}/users/u-h/licenses")))
                .bearer_auth(&token),
            "no-store",
        ),
        (
            "user 403",
            app.client
                .get(app.user(&format!("{USER}/users/someone/licenses")))
                .bearer_auth(&token),
            "no-store",
        ),
        (
            "catalogue: its own caching",
            app.client
                .get(app.user(&format!("{USER}/products")))
                .bearer_auth(&token),
            "private, max-age=60",
        ),
        (
            "health",
            app.client.get(app.user("/health/ready")),
            "no-store",
        ),
        (
            "no such path",
            app.client.get(app.user("/nowhere")),
            "no-store",
        ),
    ];
    for (what, request, cache) in cases {
        let r = request.send().await.unwrap();
        let h = r.headers();
        assert_eq!(
            h.get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{what}: {}",
            r.status()
        );
        assert_eq!(
            h.get("cache-control").and_then(|v| v.to_str().ok()),
            Some(cache),
            "{what}: {}",
            r.status()
        );
        if what.starts_with("catalogue") {
            assert!(h.get("etag").is_some(), "the catalogue keeps its ETag");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Links and Location

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_location_come_from_the_public_base_url_never_from_host() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.public_base_url = Some("https://licenses.example.com/".into());
        s.server.management.public_base_url = Some("https://bss.example.com/lic".into());
    })
    .await;
    let spoof = [
        ("Host", "evil.example"),
        ("X-Forwarded-Host", "evil-forwarded.example"),
        ("X-Forwarded-Proto", "http"),
        ("Forwarded", "host=evil-forwarded.example;proto=http"),
    ];
    let bss = "https://bss.example.com/lic/api/license/management/v4";
    let no_evil = |r: &Reply| {
        let text = String::from_utf8_lossy(&r.bytes);
        assert!(!text.contains("evil"), "{text}");
        assert!(!r.header("location").unwrap_or("").contains("evil"));
    };

    // 201 of every creating route: Location is the new resource's links.self.
    let product = bss_post(&app, "/products", &product_doc(), &spoof).await;
    assert_eq!(product.status, StatusCode::CREATED, "{}", product.json);
    no_evil(&product);
    let product_id = product.json["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        product.header("location"),
        Some(format!("{bss}/products/{product_id}").as_str())
    );
    assert_eq!(
        product.json["data"]["links"]["self"],
        product.header("location").unwrap()
    );

    let license = bss_post(
        &app,
        "/licenses",
        &json!({"data": license_doc("u-1", &product_id)}),
        &spoof,
    )
    .await;
    assert_eq!(license.status, StatusCode::CREATED, "{}", license.json);
    no_evil(&license);
    let license_id = license.json["data"]["id"].as_str().unwrap();
    assert_eq!(
        license.header("location"),
        Some(format!("{bss}/licenses/{license_id}").as_str())
    );

    let key = [("Idempotency-Key", "batch-location-1")];
    let batch_doc =
        json!({"data": [license_doc("u-2", &product_id), license_doc("u-3", &product_id)]});
    let batch = bss_post(
        &app,
        "/licenses/batch_create",
        &batch_doc,
        &[spoof.as_slice(), &key].concat(),
    )
    .await;
    assert_eq!(batch.status, StatusCode::CREATED, "{}", batch.json);
    no_evil(&batch);
    let first = batch.json["data"][0]["links"]["self"].as_str().unwrap();
    assert!(first.starts_with(&format!("{bss}/licenses/")), "{first}");
    assert_eq!(
        batch.header("location"),
        Some(first),
        "the first license of the batch"
    );
    // A replay for its Idempotency-Key answers the same, Location included.
    let replay = bss_post(&app, "/licenses/batch_create", &batch_doc, &key).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.header("location"), Some(first));

    let token = app.user_token("u-9");
    let purchase = app
        .client
        .post(app.user(&format!("{USER}/users/u-9/licenses")))
        .bearer_auth(&token)
        .header("Content-Type", JSONAPI)
        .header("Idempotency-Key", "purchase-location-1")
        .header("Host", "evil.example")
        .header("X-Forwarded-Host", "evil-forwarded.example")
        .body(
            json!({"data": {"type": "License", "attributes": {"payment_method": "billing"},
                "relationships": {"product": {"data": {"type": "Product", "id": product_id}}}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let purchase = Reply::read(purchase).await;
    assert_eq!(purchase.status, StatusCode::CREATED, "{}", purchase.json);
    no_evil(&purchase);
    let own = purchase.json["data"]["links"]["self"].as_str().unwrap();
    assert!(
        own.starts_with("https://licenses.example.com/api/license/v4/users/u-9/licenses/"),
        "{own}"
    );
    assert_eq!(purchase.header("location"), Some(own));

    // A listing's links.self too.
    let list = app
        .client
        .get(app.user(&format!("{USER}/users/u-9/licenses")))
        .bearer_auth(&token)
        .header("X-Forwarded-Host", "evil-forwarded.example")
        .send()
        .await
        .unwrap();
    let list = Reply::read(list).await;
    no_evil(&list);
    assert_eq!(
        list.json["links"]["self"],
        "https://licenses.example.com/api/license/v4/users/u-9/licenses"
    );
}

/// The product's `links.self`, created with `headers`, on an app without a public base URL.
async fn self_link(app: &TestApp, headers: &[(&str, &str)]) -> String {
    let r = bss_post(app, "/products", &product_doc(), headers).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(
        r.header("location"),
        r.json["data"]["links"]["self"].as_str()
    );
    r.json["data"]["links"]["self"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_host_is_honoured_only_from_a_trusted_proxy() {
    let forwarded = [
        ("X-Forwarded-Host", "public.example"),
        ("X-Forwarded-Proto", "https"),
    ];
    // No base URL, loopback peer, not trusted: its own Host, never the forwarding headers.
    let app = spawn_app(Backend::Sqlite).await;
    let link = self_link(&app, &forwarded).await;
    assert!(
        link.starts_with(&format!("{}{MANAGEMENT}/products/", app.management_url)),
        "{link}"
    );
    drop(app);

    // The same peer, trusted: the proxy names the host.
    let proxied = spawn_app_with(Backend::Sqlite, |s| {
        s.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let link = self_link(&proxied, &forwarded).await;
    assert!(
        link.starts_with(&format!("https://public.example{MANAGEMENT}/products/")),
        "{link}"
    );
    // A forwarded host that is not a plain host is not used.
    let link = self_link(&proxied, &[("X-Forwarded-Host", "evil.example/x?y")]).await;
    assert!(!link.contains("evil"), "{link}");
}

// ---------------------------------------------------------------------------------------
// The problems of a 422

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_thousands_of_problems_lists_100_and_counts_them_all() {
    let app = spawn_app(Backend::Sqlite).await;
    // 300 licenses, each with two attributes of the wrong type: 600 problems.
    let items: Vec<Value> = (0..300)
        .map(|_| {
            json!({"type": "License", "attributes": {"start_date": "soon", "stop_date": "later"},
            "relationships": {"user": {"data": {"type": "User", "id": "u"}},
            "product": {"data": {"type": "Product", "id": "p"}}}})
        })
        .collect();
    let r = bss_post(&app, "/licenses/batch_create", &json!({"data": items}), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
    assert_eq!(r.json["errors"].as_array().unwrap().len(), 100);
    assert_eq!(r.json["meta"]["problems_total"], 600);
    assert_eq!(
        r.json["errors"][0]["source"]["pointer"],
        "/data/0/attributes/start_date"
    );
}

// ---------------------------------------------------------------------------------------
// Secrets in query strings

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_query_strings_reach_neither_logs_nor_answers() {
    let dir = tempfile::tempdir().unwrap();
    let service = support::json_logging_service(dir.path(), "secrets.db");
    let client = support::process_client();
    let (user, management) = (&service.user_url, &service.management_url);
    let token = licenses_api_user::mint_token(TOKEN_SECRET, "u-q", &[], 3600, None, None).unwrap();
    let secrets = [
        "pw-4f1c9a7e",
        "apikey-8b2d6e3f",
        "tok-0c5a9d1b",
        "sec-7e3b2a9c",
        "key-2f8d4c6a",
        "at-9a1e5b7d",
    ];
    let calls = [
        client
            .get(format!("{user}{USER}/products?password={}", secrets[0]))
            .bearer_auth(&token),
        client
            .get(format!(
                "{management}{MANAGEMENT}/products?api_key={}",
                secrets[1]
            ))
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}")),
        client
            .get(format!(
                "{user}{USER}/users/u-q/licenses?filter%5Bstatus%5D=ACTIVE&TOKEN={}",
                secrets[2]
            ))
            .bearer_auth(&token),
        client.get(format!("{user}/nowhere?Secret={}", secrets[3])),
        client.get(format!(
            "{management}{MANAGEMENT}/licenses?key={}",
            secrets[4]
        )),
        client
            .get(format!(
                "{management}{MANAGEMENT}/licenses?page%5Bsize%5D=5&access_token={}",
                secrets[5]
            ))
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
            .header("X-Request-Id", "last-secret-call"),
    ];
    for call in calls {
        let r = call.send().await.unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        for secret in secrets {
            assert!(
                !body.contains(secret),
                "{status}: the answer echoes {secret}: {body}"
            );
        }
    }
    // The last request's line, once written (lines are flushed in batches).
    let line = service
        .stdout_line_containing("last-secret-call", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no line of the last request: {:#?}", service.stdout_lines()));
    assert!(line.contains("access_token=REDACTED"), "{line}");
    let lines = service.stdout_lines();
    for line in &lines {
        for secret in secrets {
            assert!(!line.contains(secret), "a log line holds {secret}: {line}");
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"query\":\"password=REDACTED\"")),
        "the access log shows the query, redacted: {lines:#?}"
    );
}
