//! The management API over HTTP, against a real database: every endpoint, every rule, the
//! auth matrix and every error status, on PostgreSQL and on SQLite. Every response document
//! is validated against the JSON:API schema (see support/jsonapi.rs).
//! (Over 600 lines: one file per API, every endpoint and rule over HTTP.)

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::jsonapi::{JSONAPI, Reply, assert_same_shape, fixture};
use support::{Backend, MANAGEMENT_KEY, TestApp, spawn_app};

const API: &str = "/api/license/management/v4";

/// The BSS: calls the management API with the test key.
struct Bss {
    app: TestApp,
}

impl Bss {
    async fn start(backend: Backend) -> Self {
        Self {
            app: spawn_app(backend).await,
        }
    }

    fn url(&self, path: &str) -> String {
        self.app.management(&format!("{API}{path}"))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Reply {
        let mut req = self
            .app
            .client
            .request(method, self.url(path))
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"));
        if let Some(body) = body {
            req = req
                .header("Content-Type", JSONAPI)
                .body(serde_json::to_vec(body).expect("json"));
        }
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        Reply::read(req.send().await.expect("an answer")).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&body), None).await
    }

    async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(&body), None).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, None).await
    }

    /// Creates a product; its id.
    async fn product(&self, doc: Value) -> String {
        let r = self.post("/products", doc).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        r.json["data"]["id"].as_str().expect("id").to_owned()
    }

    /// Grants a license; its document's data.
    async fn license(&self, user: &str, product: &str, attributes: Value) -> Value {
        let r = self
            .post("/licenses", license_doc(user, product, attributes))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        r.json["data"].clone()
    }

    /// `GET` an absolute URL of the API, such as a `links.next`.
    async fn get_url(&self, url: &str) -> Reply {
        let req = self
            .app
            .client
            .get(url)
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"));
        Reply::read(req.send().await.expect("an answer")).await
    }

    /// Ids of every license listed at `path`, walking its pages.
    async fn walk(&self, path: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut next = Some(self.url(path));
        while let Some(url) = next {
            let r = self.get_url(&url).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.json);
            ids.extend(
                r.json["data"]
                    .as_array()
                    .expect("data")
                    .iter()
                    .map(|l| l["id"].as_str().expect("id").to_owned()),
            );
            next = r.json["links"]["next"].as_str().map(str::to_owned);
        }
        ids
    }
}

/// The product of seed 003's examples.
fn seed_product() -> Value {
    let channel = json!({"data": [{"type": "Channel", "id": "42"}]});
    json!({"data": {"type": "Product",
        "attributes": {"title": "Sport channels meagpack", "description": "Complete collection for all sports channels",
            "type": "CHANNEL_GROUP", "is_premium": true, "price_record": {"amount": 999, "currency": "EUR"},
            "license_defaults": {"duration": 2_592_000, "auto_renew": true}, "irdeto_product_id": "IRD-SPORT"},
        "relationships": {"live": channel, "catchup": channel, "npvr": channel, "startover": channel}}})
}

fn channel_product(title: &str, channel: &str) -> Value {
    json!({"data": {"type": "Product", "attributes": {"title": title, "type": "CHANNEL"},
        "relationships": {"live": {"data": [{"type": "Channel", "id": channel}]}}}})
}

fn license_resource(user: &str, product: &str, attributes: Value) -> Value {
    json!({"type": "License", "attributes": attributes, "relationships": {
        "user": {"data": {"type": "User", "id": user}}, "product": {"data": {"type": "Product", "id": product}}}})
}

fn license_doc(user: &str, product: &str, attributes: Value) -> Value {
    json!({"data": license_resource(user, product, attributes)})
}

on_both_backends!(
    product_lifecycle,
    product_rules_and_document_errors,
    documents_match_the_seed,
    license_creation_rules,
    licenses_are_immutable,
    listing_filters_and_pages,
    deletion,
    idempotent_posts,
    batches_are_all_or_nothing,
    big_batches,
    auth_matrix,
    unknown_routes_and_parameters,
    entitlements_of_a_user,
);

async fn product_lifecycle(backend: Backend) {
    let bss = Bss::start(backend).await;
    let id = bss.product(seed_product()).await;

    let got = bss.get(&format!("/products/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    let attrs = &got.json["data"]["attributes"];
    assert_eq!(attrs["title"], "Sport channels meagpack");
    assert_eq!(
        (
            attrs["is_user_visible"].clone(),
            attrs["is_buyable"].clone()
        ),
        (json!(true), json!(true))
    );
    assert_eq!(attrs["irdeto_product_id"], "IRD-SPORT");
    assert_eq!(
        got.json["data"]["links"]["self"],
        bss.url(&format!("/products/{id}"))
    );

    let list = bss.get("/products").await;
    assert_eq!(list.json["data"].as_array().map(Vec::len), Some(1));

    let patched = bss
        .patch(
            &format!("/products/{id}"),
            json!({"data": {"type": "Product", "id": id,
            "attributes": {"title": "Sport", "is_buyable": false, "price_record": null}}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.json);
    assert_eq!(patched.json["data"]["attributes"]["title"], "Sport");
    assert_eq!(
        patched.json["data"]["attributes"]["price_record"],
        Value::Null
    );
    assert_eq!(
        patched.json["data"]["relationships"]["live"]["data"][0]["id"], "42",
        "untouched members stay"
    );
    assert_eq!(
        bss.get(&format!("/products/{id}")).await.json["data"]["attributes"]["is_buyable"],
        false
    );

    // The type <-> relationships rule holds after a patch; a patch that breaks it only
    // together with the stored product conflicts with the product's state (409).
    let broken = bss
        .patch(
            &format!("/products/{id}"),
            json!({"data": {"type": "Product", "id": id, "attributes": {"type": "CHANNEL"}}}),
        )
        .await;
    assert_eq!(broken.status, StatusCode::CONFLICT);
    assert!(
        broken
            .problems()
            .iter()
            .all(|(_, code)| code == "type_mismatch"),
        "{:?}",
        broken.problems()
    );
    assert!(
        broken
            .problems()
            .iter()
            .any(|(at, _)| at == "/data/relationships/npvr")
    );

    let other_id = bss
        .patch(
            &format!("/products/{id}"),
            json!({"data": {"type": "Product", "id": "another"}}),
        )
        .await;
    assert_eq!(other_id.status, StatusCode::CONFLICT);

    assert_eq!(
        bss.delete(&format!("/products/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let gone = bss.get(&format!("/products/{id}")).await;
    assert_eq!(
        (gone.status, gone.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(
        bss.delete(&format!("/products/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let patch_gone = bss
        .patch(
            &format!("/products/{id}"),
            json!({"data": {"type": "Product", "id": id}}),
        )
        .await;
    assert_eq!(patch_gone.status, StatusCode::NOT_FOUND);
}

async fn product_rules_and_document_errors(backend: Backend) {
    let bss = Bss::start(backend).await;
    let r = bss.post("/products", json!({"data": {"type": "Product", "attributes": {"price_record": {"amount": -1, "currency": "XXQ"}}}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let problems = r.problems();
    for expected in [
        ("/data/attributes/title", "required"),
        ("/data/attributes/type", "required"),
        ("/data/attributes/price_record/amount", "negative_amount"),
        ("/data/attributes/price_record/currency", "invalid_currency"),
    ] {
        assert!(
            problems.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {problems:?}"
        );
    }

    let two_channels = json!({"data": {"type": "Product", "attributes": {"title": "t", "type": "CHANNEL"},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "1"}, {"type": "Channel", "id": "2"}]}}}});
    let r = bss.post("/products", two_channels).await;
    assert_eq!(
        r.problems(),
        [(
            "/data/relationships/live".to_owned(),
            "type_mismatch".to_owned()
        )]
    );

    let r = bss
        .post(
            "/products",
            json!({"data": {"type": "Product", "attributes": {"title": 5, "colour": "red"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.problems().contains(&(
        "/data/attributes/colour".to_owned(),
        "unknown_attribute".to_owned()
    )));
    assert!(r.problems().contains(&(
        "/data/attributes/title".to_owned(),
        "invalid_type".to_owned()
    )));

    let r = bss
        .post("/products", json!({"data": {"type": "License"}}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "wrong_resource_type")
    );
    let r = bss
        .post(
            "/products",
            json!({"data": {"type": "Product", "id": "mine"}}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "client_generated_id")
    );
    let r = bss.post("/products", json!([1, 2])).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_document")
    );

    let raw = |body: &'static str, content_type: &'static str| {
        bss.app
            .client
            .post(bss.url("/products"))
            .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let r = Reply::read(raw("{\"data\": {", JSONAPI).await.expect("answer")).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let r = Reply::read(raw("{}", "application/json").await.expect("answer")).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    assert_eq!(r.json["errors"][0]["source"]["header"], "Content-Type");
    assert!(
        bss.get("/products").await.json["data"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "nothing was written"
    );
}

async fn documents_match_the_seed(backend: Backend) {
    let bss = Bss::start(backend).await;
    let product = bss.product(seed_product()).await;
    let license = bss
        .license(
            "41",
            &product,
            json!({"start_date": 1_523_268_666, "stop_date": 1_523_268_698}),
        )
        .await;

    let products = bss.get("/products").await;
    assert_same_shape(&fixture("seed003-get-all-products.json"), &products.json);
    let licenses = bss.get("/users/41/licenses?include=product").await;
    assert_same_shape(&fixture("seed003-get-user-licenses.json"), &licenses.json);
    assert_eq!(
        licenses.json["data"][0]["attributes"]["status"], "EXPIRED",
        "the seed's dates are long past"
    );

    let id = license["id"].as_str().expect("id").to_owned();
    let redact = |doc: &Value| {
        let text = doc
            .to_string()
            .replace(&id, "[license]")
            .replace(&product, "[product]")
            .replace(&bss.app.management_url, "[origin]");
        serde_json::from_str::<Value>(&text).expect("json")
    };
    insta::assert_json_snapshot!("management-get-all-products", redact(&products.json));
    insta::assert_json_snapshot!("management-get-user-licenses", redact(&licenses.json), {
        ".data[].attributes.purchase_record.purchase_timestamp" => "[now]",
    });
}

async fn license_creation_rules(backend: Backend) {
    let bss = Bss::start(backend).await;
    let product = bss.product(seed_product()).await;

    // Defaults: start now, stop from the product's duration, price and recurring from it.
    let l = bss
        .license("41", &product, json!({"order_id": "o-1"}))
        .await;
    let a = &l["attributes"];
    assert_eq!(a["status"], "ACTIVE");
    let start = a["start_date"].as_i64().expect("start");
    assert_eq!(a["stop_date"].as_i64(), Some(start + 2_592_000));
    assert_eq!(a["purchase_record"]["price_currency_amount"], 999);
    assert_eq!(a["purchase_record"]["price_currency_iso4217"], "EUR");
    assert_eq!(
        a["purchase_record"]["purchase_timestamp"].as_i64(),
        Some(start)
    );
    assert_eq!(
        a["renew_record"],
        json!({"recurring": true, "expiry_date": start + 2_592_000})
    );
    assert_eq!(
        l["links"]["self"],
        bss.url(&format!("/licenses/{}", l["id"].as_str().expect("id")))
    );
    assert_eq!(
        bss.license("41", &product, json!({"status": "SUSPENDED"}))
            .await["attributes"]["status"],
        "SUSPENDED"
    );

    // JSON:API 1.0: a related resource that does not exist is a 404, at its relationship.
    let r = bss
        .post("/licenses", license_doc("41", "no-such-product", json!({})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.problems(),
        [(
            "/data/relationships/product".to_owned(),
            "product_not_found".to_owned()
        )]
    );

    for status in ["PROCESSING", "EXPIRED", "ORDER_ERROR", "SUSPENDEDADMIN"] {
        let r = bss
            .post(
                "/licenses",
                license_doc("41", &product, json!({"status": status})),
            )
            .await;
        assert_eq!(
            r.problems(),
            [(
                "/data/attributes/status".to_owned(),
                "invalid_status".to_owned()
            )],
            "{status}"
        );
    }
    let r = bss
        .post(
            "/licenses",
            license_doc("41", &product, json!({"start_date": 100, "stop_date": 100})),
        )
        .await;
    assert_eq!(
        r.problems(),
        [(
            "/data/attributes/stop_date".to_owned(),
            "stop_before_start".to_owned()
        )]
    );
    let r = bss
        .post("/licenses", json!({"data": {"type": "License"}}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.problems()
            .contains(&("/data/relationships/user".to_owned(), "required".to_owned()))
    );

    // order_id is unique per user, not across users.
    let again = bss
        .post(
            "/licenses",
            license_doc("41", &product, json!({"order_id": "o-1"})),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "order_id_taken")
    );
    bss.license("42", &product, json!({"order_id": "o-1"}))
        .await;
}

async fn licenses_are_immutable(backend: Backend) {
    let bss = Bss::start(backend).await;
    let product = bss.product(seed_product()).await;
    let id = bss.license("41", &product, json!({})).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for method in [Method::PATCH, Method::PUT] {
        let r = bss
            .send(
                method,
                &format!("/licenses/{id}"),
                Some(&license_doc("41", &product, json!({}))),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.header("allow"), Some("GET, DELETE"));
    }
    let r = bss.get(&format!("/licenses/{id}?include=product")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["included"][0]["id"], product.as_str());
    assert_eq!(
        bss.get("/licenses/unknown").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn listing_filters_and_pages(backend: Backend) {
    let bss = Bss::start(backend).await;
    let sport = bss.product(seed_product()).await;
    let news = bss.product(channel_product("News", "7")).await;
    let now = 1_900_000_000_i64; // comfortably in the future of the test run
    let active = bss.license("u1", &sport, json!({"stop_date": now})).await;
    let expired = bss
        .license("u1", &news, json!({"start_date": 100, "stop_date": 200}))
        .await;
    let suspended = bss
        .license("u2", &news, json!({"status": "SUSPENDED"}))
        .await;
    let future = bss
        .license(
            "u2",
            &sport,
            json!({"start_date": now, "stop_date": now + 10}),
        )
        .await;
    let id = |l: &Value| l["id"].as_str().expect("id").to_owned();
    let mut all = vec![id(&active), id(&expired), id(&suspended), id(&future)];
    all.sort();

    let ids = |r: &Reply| {
        r.json["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&bss.get("/licenses").await), all, "in id order");
    assert_eq!(ids(&bss.get("/licenses?filter[user]=u1").await).len(), 2);
    assert_eq!(
        ids(&bss.get(&format!("/licenses?filter[product]={news}")).await).len(),
        2
    );
    assert_eq!(
        ids(&bss.get("/licenses?filter[status]=EXPIRED").await),
        [id(&expired)]
    );
    assert_eq!(
        ids(&bss.get("/licenses?filter[status]=SUSPENDED,EXPIRED").await).len(),
        2
    );
    let mut active_now = ids(&bss.get("/licenses?filter[status]=ACTIVE").await);
    active_now.sort();
    let mut expected = vec![id(&active), id(&future)];
    expected.sort();
    assert_eq!(active_now, expected, "ACTIVE excludes the expired one");
    assert_eq!(
        ids(&bss
            .get(&format!("/licenses?filter[active_at]={}", now - 1))
            .await),
        [id(&active)]
    );
    assert_eq!(
        ids(&bss.get(&format!("/licenses?filter[active_at]={now}")).await),
        [id(&future)]
    );
    assert_eq!(
        ids(&bss.get("/users/u2/licenses?filter[status]=SUSPENDED").await),
        [id(&suspended)]
    );

    // Pages: links.next only while there is more; walking them sees each license once.
    let first = bss.get("/licenses?page[size]=3").await;
    assert_eq!(ids(&first).len(), 3);
    assert!(first.json["links"]["next"].is_string());
    assert!(
        bss.get("/licenses?page[size]=4").await.json["links"]
            .get("next")
            .is_none()
    );
    assert_eq!(bss.walk("/licenses?page[size]=1").await, all);

    // Creating licenses while walking neither skips nor repeats one that existed before.
    let mut seen = Vec::new();
    let mut next = Some(bss.url("/licenses?page[size]=2"));
    while let Some(url) = next {
        bss.license("u3", &sport, json!({})).await;
        let r = bss.get_url(&url).await;
        seen.extend(ids(&r));
        next = r.json["links"]["next"].as_str().map(str::to_owned);
        if seen.len() > 50 {
            break;
        }
    }
    for before in &all {
        assert_eq!(
            seen.iter().filter(|s| *s == before).count(),
            1,
            "{before} seen once"
        );
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no license repeated");

    let included = bss.get("/licenses?include=product&filter[user]=u1").await;
    let products = included.json["included"].as_array().expect("included");
    assert_eq!(products.len(), 2, "each product once");

    let r = bss.get("/licenses?filter[status]=GONE").await;
    assert_eq!(
        (r.status, r.problems()),
        (
            StatusCode::BAD_REQUEST,
            vec![("filter[status]".to_owned(), "invalid_parameter".to_owned())]
        )
    );
    for bad in [
        "page[size]=0",
        "page[size]=1001",
        "filter[active_at]=soon",
        "include=user",
    ] {
        assert_eq!(
            bss.get(&format!("/licenses?{bad}")).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    // A user id with the delimiters of a URL in it: the links escape it, and lead back.
    let odd = "x?y#z%";
    let first = id(&bss.license(odd, &news, json!({})).await);
    let second = id(&bss.license(odd, &sport, json!({})).await);
    let page = bss.get("/users/x%3Fy%23z%25/licenses?page[size]=1").await;
    assert_eq!(ids(&page), std::slice::from_ref(&first), "{}", page.json);
    let here = page.json["links"]["self"].as_str().expect("self");
    assert!(here.contains("/users/x%3Fy%23z%25/licenses?"), "{here}");
    assert_eq!(ids(&bss.get_url(here).await), [first]);
    let next = page.json["links"]["next"].as_str().expect("next");
    assert_eq!(ids(&bss.get_url(next).await), [second]);

    // A bad include is refused before the license is looked for.
    let r = bss.get("/licenses/no-such-license?include=user").await;
    assert_eq!(
        (r.status, r.problems()),
        (
            StatusCode::BAD_REQUEST,
            vec![("include".to_owned(), "unsupported_include".to_owned())]
        )
    );
}

async fn deletion(backend: Backend) {
    let bss = Bss::start(backend).await;
    let product = bss.product(seed_product()).await;
    let a = bss.license("41", &product, json!({})).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    bss.license("41", &product, json!({})).await;

    let r = bss.delete(&format!("/products/{product}")).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "product_in_use")
    );
    assert!(
        r.json["errors"][0]["detail"]
            .as_str()
            .expect("detail")
            .starts_with("2 licenses"),
        "{}",
        r.json
    );

    let r = bss.delete(&format!("/licenses/{a}")).await;
    assert_eq!((r.status, r.bytes.len()), (StatusCode::NO_CONTENT, 0));
    assert_eq!(
        bss.get(&format!("/licenses/{a}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        bss.delete(&format!("/licenses/{a}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        bss.delete(&format!("/products/{product}")).await.json["errors"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("1 license "))
    );
}

async fn idempotent_posts(backend: Backend) {
    let bss = Bss::start(backend).await;
    let product = bss.product(seed_product()).await;
    let doc = license_doc("41", &product, json!({"order_id": "idem-1"}));
    let first = bss
        .send(Method::POST, "/licenses", Some(&doc), Some("key-1"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = bss
        .send(Method::POST, "/licenses", Some(&doc), Some("key-1"))
        .await;
    assert_eq!(
        (again.status, &again.bytes),
        (StatusCode::CREATED, &first.bytes),
        "the same answer, byte for byte"
    );
    assert_eq!(
        bss.walk("/licenses").await.len(),
        1,
        "and no second license"
    );

    let other = license_doc("41", &product, json!({"order_id": "idem-2"}));
    let r = bss
        .send(Method::POST, "/licenses", Some(&other), Some("key-1"))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );

    let p1 = bss
        .send(
            Method::POST,
            "/products",
            Some(&channel_product("n", "1")),
            Some("key-p"),
        )
        .await;
    let p2 = bss
        .send(
            Method::POST,
            "/products",
            Some(&channel_product("n", "1")),
            Some("key-p"),
        )
        .await;
    assert_eq!(p1.bytes, p2.bytes);
    assert_eq!(
        bss.get("/products").await.json["data"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let bad = bss
        .app
        .client
        .post(bss.url("/licenses"))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", JSONAPI)
        .header("Idempotency-Key", "has space")
        .body(serde_json::to_vec(&doc).expect("json"))
        .send()
        .await
        .expect("answer");
    let bad = Reply::read(bad).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_idempotency_key")
    );
    assert_eq!(bad.json["errors"][0]["source"]["header"], "Idempotency-Key");
}

async fn batches_are_all_or_nothing(backend: Backend) {
    let bss = Bss::start(backend).await;
    let product = bss.product(seed_product()).await;
    let good = |user: &str| license_resource(user, &product, json!({}));
    let r = bss
        .post(
            "/licenses/batch_create",
            json!({"data": [good("a"), license_resource("b", "missing", json!({})), good("c"),
                license_resource("d", &product, json!({"status": "EXPIRED"}))]}),
        )
        .await;
    // The unknown product makes it a 404 (JSON:API 1.0); the other problem is listed too,
    // with its own status.
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.problems(),
        [
            (
                "/data/1/relationships/product".to_owned(),
                "product_not_found".to_owned()
            ),
            (
                "/data/3/attributes/status".to_owned(),
                "invalid_status".to_owned()
            ),
        ]
    );
    let statuses: Vec<&str> = r.json["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["404", "422"]);
    assert!(bss.walk("/licenses").await.is_empty(), "nothing written");

    // An order id already stored makes the whole batch a conflict.
    bss.license("a", &product, json!({"order_id": "o"})).await;
    let r = bss
        .post(
            "/licenses/batch_create",
            json!({"data": [good("x"), license_resource("a", &product, json!({"order_id": "o"}))]}),
        )
        .await;
    assert_eq!(
        r.problems(),
        [(
            "/data/1/attributes/order_id".to_owned(),
            "order_id_taken".to_owned()
        )]
    );
    assert_eq!(bss.walk("/licenses").await.len(), 1);

    let r = bss
        .post("/licenses/batch_create", json!({"data": []}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "empty_batch")
    );

    let created = bss
        .post(
            "/licenses/batch_create",
            json!({"data": [good("x"), good("y")]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let ids: Vec<Value> = created.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|l| json!({"type": "License", "id": l["id"]}))
        .collect();
    let mut with_unknown = ids.clone();
    with_unknown.push(json!({"type": "License", "id": "unknown"}));
    let r = bss
        .post("/licenses/batch_delete", json!({"data": with_unknown}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.problems(),
        [("/data/2/id".to_owned(), "license_not_found".to_owned())]
    );
    assert_eq!(bss.walk("/licenses").await.len(), 3, "nothing deleted");
    let r = bss
        .post("/licenses/batch_delete", json!({"data": ids}))
        .await;
    assert_eq!(
        (r.status, r.json["meta"]["deleted"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    assert_eq!(bss.walk("/licenses").await.len(), 1);
}

async fn big_batches(backend: Backend) {
    let bss = Bss::start(backend).await;
    let product = bss.product(seed_product()).await;
    let batch = |bad_at: Option<usize>| {
        let data: Vec<Value> = (0..10_000)
            .map(|i| {
                let product = if Some(i) == bad_at {
                    "missing"
                } else {
                    product.as_str()
                };
                license_resource(
                    &format!("user-{i}"),
                    product,
                    json!({"order_id": format!("order-{i}")}),
                )
            })
            .collect();
        json!({"data": data})
    };

    let r = bss.post("/licenses/batch_create", batch(Some(7_777))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.problems(),
        [(
            "/data/7777/relationships/product".to_owned(),
            "product_not_found".to_owned()
        )]
    );
    assert!(
        bss.walk("/licenses?page[size]=1000").await.is_empty(),
        "one bad item among 10,000 writes nothing"
    );

    let r = bss.post("/licenses/batch_create", batch(None)).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let created: Vec<Value> = r.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|l| json!({"type": "License", "id": l["id"]}))
        .collect();
    assert_eq!(created.len(), 10_000);
    assert_eq!(bss.walk("/licenses?page[size]=1000").await.len(), 10_000);

    let r = bss
        .post("/licenses/batch_delete", json!({"data": created}))
        .await;
    assert_eq!(
        (r.status, r.json["meta"]["deleted"].as_u64()),
        (StatusCode::OK, Some(10_000))
    );
    assert!(bss.walk("/licenses?page[size]=1000").await.is_empty());

    let too_many: Vec<Value> = (0..10_001)
        .map(|i| license_resource(&format!("u{i}"), &product, json!({})))
        .collect();
    let r = bss
        .post("/licenses/batch_create", json!({"data": too_many}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "batch_too_large")
    );
}

async fn auth_matrix(backend: Backend) {
    let bss = Bss::start(backend).await;
    let routes = [
        (Method::GET, "/products"),
        (Method::POST, "/products"),
        (Method::GET, "/products/x"),
        (Method::PATCH, "/products/x"),
        (Method::DELETE, "/products/x"),
        (Method::GET, "/licenses"),
        (Method::POST, "/licenses"),
        (Method::GET, "/licenses/x"),
        (Method::DELETE, "/licenses/x"),
        (Method::POST, "/licenses/batch_create"),
        (Method::POST, "/licenses/batch_delete"),
        (Method::GET, "/users/41/licenses"),
        (Method::GET, "/users/41/entitlements"),
    ];
    for (method, path) in routes {
        for auth in [None, Some("Apikey wrong-key"), Some("Bearer x")] {
            let mut req = bss.app.client.request(method.clone(), bss.url(path));
            if let Some(auth) = auth {
                req = req.header("Authorization", auth);
            }
            let r = Reply::read(req.send().await.expect("answer")).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNAUTHORIZED, "unauthorized"),
                "{method} {path} with {auth:?}"
            );
        }
        let r = bss.send(method.clone(), path, None, None).await;
        assert_ne!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with the key"
        );
    }
}

async fn unknown_routes_and_parameters(backend: Backend) {
    let bss = Bss::start(backend).await;
    let r = bss.get("/nowhere").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let r = bss.get("/products?filter[title]=x").await;
    assert_eq!(
        r.problems(),
        [("filter[title]".to_owned(), "unknown_filter".to_owned())]
    );
    let r = bss.get("/licenses?sort=id").await;
    assert_eq!(
        r.problems(),
        [("sort".to_owned(), "unknown_parameter".to_owned())]
    );
    let r = bss.send(Method::PUT, "/products", None, None).await;
    assert_eq!(
        (r.status, r.header("allow")),
        (StatusCode::METHOD_NOT_ALLOWED, Some("GET, POST"))
    );
}

async fn entitlements_of_a_user(backend: Backend) {
    let bss = Bss::start(backend).await;
    let sport = bss.product(seed_product()).await;
    let news = bss.product(channel_product("News", "7")).await;
    bss.license("41", &sport, json!({"stop_date": 1_900_000_000}))
        .await;
    bss.license("41", &news, json!({"status": "SUSPENDED"}))
        .await;
    bss.license("41", &news, json!({"start_date": 100, "stop_date": 200}))
        .await;
    let r = bss.get("/users/41/entitlements").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json["data"].as_array().map(Vec::len),
        Some(1),
        "only channel 42: news is suspended or expired"
    );
    let channel = &r.json["data"][0];
    assert_eq!(channel["id"], "42");
    for service in ["live", "npvr", "catchup", "startover"] {
        assert_eq!(
            channel["attributes"][service]["until"], 1_900_000_000,
            "{service}"
        );
    }
    assert!(
        bss.get("/users/nobody/entitlements").await.json["data"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}
