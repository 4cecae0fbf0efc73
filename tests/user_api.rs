//! The user API over HTTP, against a real database: the token matrix, the catalogue's
//! visibility and caching, purchase's every rule including idempotency under concurrency,
//! and the compound document of a user's licenses. Every response document is validated
//! against the JSON:API schema (support/jsonapi.rs).
//! (Over 600 lines: one file per API, every endpoint and rule over HTTP.)

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use licenses_api_user::mint_token;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::jsonapi::{JSONAPI, Reply, assert_same_shape, fixture};
use support::{Backend, MANAGEMENT_KEY, TOKEN_SECRET, TestApp, spawn_app, spawn_app_with};

const API: &str = "/api/license/v4";
const MANAGEMENT: &str = "/api/license/management/v4";

fn token(user: &str) -> String {
    mint_token(TOKEN_SECRET, user, &[], 3600, None, None).expect("token")
}

fn restricted_token(user: &str) -> String {
    mint_token(
        TOKEN_SECRET,
        user,
        &["LICENSE_PURCHASE_RESTRICTED".to_owned()],
        3600,
        None,
        None,
    )
    .expect("token")
}

/// A token with any claims, signed with `secret`.
fn raw_token(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
    key: Option<&str>,
) -> Reply {
    let mut req = app
        .client
        .request(method, app.user(&format!("{API}{path}")));
    if let Some(t) = bearer {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req
            .header("Content-Type", JSONAPI)
            .body(serde_json::to_vec(b).expect("json"));
    }
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    Reply::read(req.send().await.expect("an answer")).await
}

/// The BSS sets up the catalogue through the management API; the product's id.
async fn bss_product(app: &TestApp, attributes: Value, channel: &str) -> String {
    let doc = json!({"data": {"type": "Product", "attributes": attributes,
        "relationships": {"live": {"data": [{"type": "Channel", "id": channel}]}}}});
    let r = app
        .client
        .post(app.management(&format!("{MANAGEMENT}/products")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", JSONAPI)
        .body(serde_json::to_vec(&doc).expect("json"))
        .send()
        .await
        .expect("answer");
    let r = Reply::read(r).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["data"]["id"].as_str().expect("id").to_owned()
}

fn shop_product(title: &str) -> Value {
    json!({"title": title, "description": "d", "type": "CHANNEL", "is_premium": true,
        "price_record": {"amount": 499, "currency": "EUR"}, "license_defaults": {"duration": 86_400, "auto_renew": false}})
}

fn purchase_doc(product: &str) -> Value {
    json!({"data": {"type": "License", "attributes": {"payment_method": "billing"},
        "relationships": {"product": {"data": {"type": "Product", "id": product}}}}})
}

on_both_backends!(
    token_matrix,
    catalogue_visibility_and_caching,
    purchase_rules,
    purchase_idempotency,
    concurrent_purchases_with_one_key,
    user_licenses_compound_document,
    entitlements_follow_purchases,
);

async fn token_matrix(backend: Backend) {
    let app = spawn_app(backend).await;
    let path = "/users/41/licenses";
    let expired = raw_token(TOKEN_SECRET, json!({"sub": "41", "exp": now() - 3600}));
    let forged = raw_token(
        "another-secret-that-is-long-enough-0123456789",
        json!({"sub": "41", "exp": now() + 3600}),
    );
    let no_exp = raw_token(TOKEN_SECRET, json!({"sub": "41"}));
    for (what, bearer) in [
        ("malformed", "not.a.jwt"),
        ("expired", expired.as_str()),
        ("wrong signature", forged.as_str()),
        ("no exp", no_exp.as_str()),
    ] {
        let r = call(&app, Method::GET, path, Some(bearer), None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer")),
            "{what}"
        );
    }
    let r = call(&app, Method::GET, path, None, None, None).await;
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );
    let r = call(&app, Method::GET, "/products", None, None, None).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the catalogue needs a token too"
    );

    let other = call(&app, Method::GET, path, Some(&token("42")), None, None).await;
    assert_eq!(
        other.status,
        StatusCode::FORBIDDEN,
        "another user's licenses"
    );
    let other = call(
        &app,
        Method::POST,
        path,
        Some(&token("42")),
        Some(&purchase_doc("x")),
        Some("k"),
    )
    .await;
    assert_eq!(
        other.status,
        StatusCode::FORBIDDEN,
        "a purchase for another user"
    );
    assert_eq!(
        call(&app, Method::GET, path, Some(&token("41")), None, None)
            .await
            .status,
        StatusCode::OK
    );

    let product = bss_product(&app, shop_product("Shop"), "1").await;
    let r = call(
        &app,
        Method::POST,
        path,
        Some(&restricted_token("41")),
        Some(&purchase_doc(&product)),
        Some("k"),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "purchase_restricted")
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            path,
            Some(&restricted_token("41")),
            None,
            None
        )
        .await
        .status,
        StatusCode::OK
    );

    // Issuer and audience are checked when configured.
    let strict = spawn_app_with(backend, |s| {
        s.auth.user_tokens.issuer = Some("https://id.example".into());
        s.auth.user_tokens.audience = Some("licenses".into());
    })
    .await;
    let good = mint_token(
        TOKEN_SECRET,
        "41",
        &[],
        600,
        Some("https://id.example"),
        Some("licenses"),
    )
    .expect("token");
    let wrong_iss = mint_token(
        TOKEN_SECRET,
        "41",
        &[],
        600,
        Some("https://evil.example"),
        Some("licenses"),
    )
    .expect("token");
    let wrong_aud = mint_token(
        TOKEN_SECRET,
        "41",
        &[],
        600,
        Some("https://id.example"),
        Some("other"),
    )
    .expect("token");
    assert_eq!(
        call(&strict, Method::GET, path, Some(&good), None, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&strict, Method::GET, path, Some(&wrong_iss), None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&strict, Method::GET, path, Some(&wrong_aud), None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&strict, Method::GET, path, Some(&token("41")), None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn catalogue_visibility_and_caching(backend: Backend) {
    let app = spawn_app(backend).await;
    let shown = bss_product(&app, shop_product("Shown"), "1").await;
    let mut hidden = shop_product("Hidden");
    hidden["is_user_visible"] = json!(false);
    bss_product(&app, hidden, "2").await;

    let t = token("41");
    let r = call(&app, Method::GET, "/products", Some(&t), None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let data = r.json["data"].as_array().expect("data");
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], shown.as_str());
    let attrs = data[0]["attributes"].as_object().expect("attributes");
    let mut names: Vec<&str> = attrs.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["description", "is_premium", "price_record", "title", "type"],
        "no management-only attribute"
    );
    assert_same_shape(&fixture("seed003-get-all-products.json"), &r.json);

    let etag = r.header("etag").expect("an ETag").to_owned();
    assert!(
        r.header("cache-control")
            .is_some_and(|c| c.contains("max-age"))
    );
    let cached = app
        .client
        .get(app.user(&format!("{API}/products")))
        .header("Authorization", format!("Bearer {t}"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("answer");
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        cached.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some(etag.as_str())
    );
    assert!(cached.bytes().await.expect("body").is_empty());

    // A client that accepts gzip gets the same document gzipped, under a tag of its own;
    // either tag revalidates.
    let gzipped = app
        .client
        .get(app.user(&format!("{API}/products")))
        .header("Authorization", format!("Bearer {t}"))
        .header("Accept-Encoding", "br;q=1.0, gzip;q=0.5")
        .send()
        .await
        .expect("answer");
    assert_eq!(gzipped.status(), StatusCode::OK);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&gzipped, "content-encoding").as_deref(),
        Some("gzip")
    );
    assert_eq!(header(&gzipped, "vary").as_deref(), Some("Accept-Encoding"));
    let gzip_tag = header(&gzipped, "etag").expect("an ETag");
    assert_ne!(
        gzip_tag, etag,
        "a representation of its own, a tag of its own"
    );
    let packed = gzipped.bytes().await.expect("body");
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&packed[..]),
        &mut unpacked,
    )
    .expect("gzip");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&unpacked).expect("json"),
        r.json
    );
    for (tag, encoding) in [
        (&gzip_tag, "gzip"),
        (&etag, "gzip"),
        (&gzip_tag, "identity"),
    ] {
        let revalidated = app
            .client
            .get(app.user(&format!("{API}/products")))
            .header("Authorization", format!("Bearer {t}"))
            .header("Accept-Encoding", encoding)
            .header("If-None-Match", tag.as_str())
            .send()
            .await
            .expect("answer");
        assert_eq!(
            revalidated.status(),
            StatusCode::NOT_MODIFIED,
            "{tag} {encoding}"
        );
    }

    // A change to the catalogue changes the ETag.
    bss_product(&app, shop_product("New"), "3").await;
    let changed = call(&app, Method::GET, "/products", Some(&t), None, None).await;
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert_eq!(changed.json["data"].as_array().map(Vec::len), Some(2));
}

async fn purchase_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = token("41");
    let product = bss_product(&app, shop_product("Shop"), "1").await;
    let mut gift = shop_product("Gift");
    gift["is_buyable"] = json!(false);
    let gift = bss_product(&app, gift, "2").await;
    let path = "/users/41/licenses";

    let r = call(
        &app,
        Method::POST,
        path,
        Some(&t),
        Some(&purchase_doc(&product)),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "idempotency_key_required")
    );
    assert_eq!(r.json["errors"][0]["source"]["header"], "Idempotency-Key");
    let mut card = purchase_doc(&product);
    card["data"]["attributes"]["payment_method"] = json!("card");
    let r = call(&app, Method::POST, path, Some(&t), Some(&card), Some("k1")).await;
    assert_eq!(
        r.problems(),
        [(
            "/data/attributes/payment_method".to_owned(),
            "unsupported_payment_method".to_owned()
        )]
    );
    let r = call(
        &app,
        Method::POST,
        path,
        Some(&t),
        Some(&purchase_doc("no-such-product")),
        Some("k2"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        Method::POST,
        path,
        Some(&t),
        Some(&purchase_doc(&gift)),
        Some("k3"),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "product_not_buyable")
    );

    let before = now();
    let r = call(
        &app,
        Method::POST,
        path,
        Some(&t),
        Some(&purchase_doc(&product)),
        Some("k4"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let a = &r.json["data"]["attributes"];
    assert_eq!(a["status"], "ACTIVE");
    let start = a["start_date"].as_i64().expect("start");
    assert!(start >= before);
    assert_eq!(
        a["stop_date"].as_i64(),
        Some(start + 86_400),
        "from license_defaults.duration"
    );
    assert_eq!(a["order_id"], "k4", "the idempotency key is the order id");
    assert_eq!(a["purchase_record"]["price_currency_amount"], 499);
    assert_eq!(a["purchase_record"]["payment_method"], "billing");
    assert_eq!(a["renew_record"]["recurring"], false);
    assert_eq!(r.json["data"]["relationships"]["user"]["data"]["id"], "41");

    // An order id taken by an earlier purchase is a conflict, under another key.
    let mut same_order = purchase_doc(&product);
    same_order["data"]["attributes"]["order_id"] = json!("k4");
    let r = call(
        &app,
        Method::POST,
        path,
        Some(&t),
        Some(&same_order),
        Some("k5"),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "order_id_taken")
    );
}

async fn purchase_idempotency(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = token("41");
    let product = bss_product(&app, shop_product("Shop"), "1").await;
    let path = "/users/41/licenses";
    let first = call(
        &app,
        Method::POST,
        path,
        Some(&t),
        Some(&purchase_doc(&product)),
        Some("once"),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = call(
        &app,
        Method::POST,
        path,
        Some(&t),
        Some(&purchase_doc(&product)),
        Some("once"),
    )
    .await;
    assert_eq!(
        (replay.status, &replay.bytes),
        (StatusCode::CREATED, &first.bytes),
        "byte for byte"
    );
    // On PostgreSQL a write's answer carries its position, a replayed one too (the
    // embedded SQLite store has none, and every read there sees every write).
    let token_of = |r: &Reply| r.header("Licenses-Consistency").map(str::to_owned);
    match backend {
        Backend::Postgres => {
            let (first, replay) = (token_of(&first), token_of(&replay));
            assert!(first.is_some() && replay.is_some(), "{first:?} {replay:?}");
        }
        Backend::Sqlite => assert_eq!((token_of(&first), token_of(&replay)), (None, None)),
    }

    let other = bss_product(&app, shop_product("Other"), "2").await;
    let r = call(
        &app,
        Method::POST,
        path,
        Some(&t),
        Some(&purchase_doc(&other)),
        Some("once"),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );

    // A key belongs to its user: the same key from another user is a purchase of their own.
    let r = call(
        &app,
        Method::POST,
        "/users/42/licenses",
        Some(&token("42")),
        Some(&purchase_doc(&product)),
        Some("once"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.bytes, first.bytes);

    let mine = call(&app, Method::GET, path, Some(&t), None, None).await;
    assert_eq!(
        mine.json["data"].as_array().map(Vec::len),
        Some(1),
        "one license for user 41"
    );
}

async fn concurrent_purchases_with_one_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = token("41");
    let product = bss_product(&app, shop_product("Shop"), "1").await;
    let doc = purchase_doc(&product);
    let attempts = (0..20).map(|_| {
        call(
            &app,
            Method::POST,
            "/users/41/licenses",
            Some(&t),
            Some(&doc),
            Some("same-key"),
        )
    });
    let replies = futures_util::future::join_all(attempts).await;
    let created: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(
        created.len(),
        20,
        "every request gets the purchase's answer: {:?}",
        replies
            .iter()
            .map(|r| (r.status, r.code()))
            .collect::<Vec<_>>()
    );
    assert!(
        created.iter().all(|r| r.bytes == created[0].bytes),
        "one answer"
    );
    let mine = call(
        &app,
        Method::GET,
        "/users/41/licenses",
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(
        mine.json["data"].as_array().map(Vec::len),
        Some(1),
        "exactly one license"
    );
}

async fn user_licenses_compound_document(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = token("41");
    let shop = bss_product(&app, shop_product("Shop"), "1").await;
    let news = bss_product(&app, shop_product("News"), "2").await;
    for (key, product) in [("a", &shop), ("b", &shop), ("c", &news)] {
        let r = call(
            &app,
            Method::POST,
            "/users/41/licenses",
            Some(&t),
            Some(&purchase_doc(product)),
            Some(key),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    // An expired license, granted by the BSS with past dates.
    let expired = json!({"data": {"type": "License", "attributes": {"start_date": 100, "stop_date": 200},
        "relationships": {"user": {"data": {"type": "User", "id": "41"}}, "product": {"data": {"type": "Product", "id": news}}}}});
    let r = app
        .client
        .post(app.management(&format!("{MANAGEMENT}/licenses")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", JSONAPI)
        .body(serde_json::to_vec(&expired).expect("json"))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::CREATED);

    let r = call(
        &app,
        Method::GET,
        "/users/41/licenses",
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_same_shape(&fixture("seed003-get-user-licenses.json"), &r.json);
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(4));
    let included = r.json["included"].as_array().expect("included");
    let mut ids: Vec<&str> = included
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    ids.sort_unstable();
    let mut expected = vec![shop.as_str(), news.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "each product once");
    assert!(
        included
            .iter()
            .all(|p| p["attributes"].get("is_buyable").is_none()),
        "user-facing attributes only"
    );

    let statuses: Vec<&str> = r.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|l| l["attributes"]["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "EXPIRED").count(), 1);
    let only_expired = call(
        &app,
        Method::GET,
        "/users/41/licenses?filter[status]=EXPIRED",
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(only_expired.json["data"].as_array().map(Vec::len), Some(1));
    let r = call(
        &app,
        Method::GET,
        "/users/41/licenses?filter[user]=42",
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let first = call(
        &app,
        Method::GET,
        "/users/41/licenses",
        Some(&t),
        None,
        None,
    )
    .await;
    let link = first.json["data"][0]["links"]["self"]
        .as_str()
        .expect("self link")
        .to_owned();
    let single = Reply::read(
        app.client
            .get(&link)
            .header("Authorization", format!("Bearer {t}"))
            .send()
            .await
            .expect("answer"),
    )
    .await;
    assert_eq!(single.status, StatusCode::OK, "links.self answers");
    let theirs = Reply::read(
        app.client
            .get(&link)
            .header("Authorization", format!("Bearer {}", token("42")))
            .send()
            .await
            .expect("answer"),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
}

async fn entitlements_follow_purchases(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = token("41");
    let product = bss_product(&app, shop_product("Shop"), "7").await;
    let empty = call(
        &app,
        Method::GET,
        "/users/41/entitlements",
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(empty.json["data"], json!([]));
    let bought = call(
        &app,
        Method::POST,
        "/users/41/licenses",
        Some(&t),
        Some(&purchase_doc(&product)),
        Some("k"),
    )
    .await;
    let stop = bought.json["data"]["attributes"]["stop_date"].clone();
    let r = call(
        &app,
        Method::GET,
        "/users/41/entitlements",
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["data"][0]["id"], "7");
    assert_eq!(r.json["data"][0]["attributes"]["live"]["until"], stop);
    assert_eq!(r.json["data"][0]["attributes"]["npvr"], Value::Null);
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/users/42/entitlements",
            Some(&t),
            None,
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}
