//! The management front-end in process, over mocked ports: authorization, routing and the
//! HTTP-level errors. The whole API against real databases is tested in the workspace's
//! `tests/management.rs`.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{App as Web, test};
use licenses_api_management::{ManagementKeys, configure, new_key};
use licenses_app::ports::{
    Clock, MockIdempotencyStore, MockLicenseStore, MockProductStore, StoreError,
};
use licenses_app::{App, Ports, UuidV7Ids};
use licenses_domain::Timestamp;

struct Epoch;
impl Clock for Epoch {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix(1_700_000_000)
    }
}

fn app(products: MockProductStore) -> App {
    App::new(Ports {
        products: Arc::new(products),
        licenses: Arc::new(MockLicenseStore::new()),
        idempotency: Arc::new(MockIdempotencyStore::new()),
        clock: Arc::new(Epoch),
        ids: Arc::new(UuidV7Ids),
    })
}

async fn call(
    products: MockProductStore,
    req: test::TestRequest,
) -> (
    StatusCode,
    actix_web::http::header::HeaderMap,
    serde_json::Value,
) {
    let keys = ManagementKeys::new([("bss".to_owned(), KEY.1.clone())]).expect("hex");
    let service = test::init_service(Web::new().configure(configure(app(products), keys))).await;
    let resp = test::call_service(&service, req.to_request()).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = test::read_body(resp).await;
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).expect("json body")
    };
    (status, headers, json)
}

static KEY: std::sync::LazyLock<(String, String)> = std::sync::LazyLock::new(new_key);

fn authorized(req: test::TestRequest) -> test::TestRequest {
    req.insert_header((header::AUTHORIZATION, format!("Apikey {}", KEY.0)))
}

fn no_products() -> MockProductStore {
    let mut m = MockProductStore::new();
    m.expect_list().returning(|| Ok(vec![]));
    m
}

#[actix_web::test]
async fn every_endpoint_needs_a_valid_key() {
    for req in [
        test::TestRequest::get().uri("/api/license/management/v4/products"),
        test::TestRequest::post().uri("/api/license/management/v4/licenses/batch_create"),
        test::TestRequest::delete().uri("/api/license/management/v4/licenses/x"),
        test::TestRequest::get().uri("/api/license/management/v4/users/41/licenses"),
        test::TestRequest::get().uri("/api/license/management/v4/nowhere"),
    ] {
        let (status, headers, body) = call(MockProductStore::new(), req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            headers.get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()),
            Some(&b"Apikey"[..])
        );
        assert_eq!(body["errors"][0]["code"], "unauthorized");
    }
    let wrong = test::TestRequest::get()
        .uri("/api/license/management/v4/products")
        .insert_header((header::AUTHORIZATION, "Apikey not-the-key"));
    assert_eq!(
        call(MockProductStore::new(), wrong).await.0,
        StatusCode::UNAUTHORIZED
    );
    let bearer = test::TestRequest::get()
        .uri("/api/license/management/v4/products")
        .insert_header((header::AUTHORIZATION, format!("Bearer {}", KEY.0)));
    assert_eq!(
        call(MockProductStore::new(), bearer).await.0,
        StatusCode::UNAUTHORIZED
    );

    let right = authorized(test::TestRequest::get().uri("/api/license/management/v4/products"));
    let (status, headers, body) = call(no_products(), right).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"application/vnd.api+json"[..])
    );
    assert_eq!(body["data"], serde_json::json!([]));
}

#[actix_web::test]
async fn licenses_cannot_be_changed() {
    for req in [test::TestRequest::patch(), test::TestRequest::put()] {
        let (status, headers, body) = call(
            MockProductStore::new(),
            authorized(req.uri("/api/license/management/v4/licenses/abc")),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            headers.get(header::ALLOW).map(|v| v.as_bytes()),
            Some(&b"GET, DELETE"[..])
        );
        assert_eq!(body["errors"][0]["status"], "405");
    }
}

/// JSON:API 1.0: 406 when every JSON:API media type the caller accepts carries media type
/// parameters; a weight is not one, and an Accept that does not name it is answered anyway.
#[actix_web::test]
async fn an_accept_of_only_parameterized_jsonapi_is_406() {
    let products = "/api/license/management/v4/products";
    for refused in [
        "application/vnd.api+json; ext=\"https://example.com/ext\"",
        "application/vnd.api+json;charset=utf-8, application/vnd.api+json; v=2;q=0.4",
    ] {
        let req = authorized(test::TestRequest::get().uri(products))
            .insert_header((header::ACCEPT, refused));
        let (status, _, body) = call(no_products(), req).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{refused}");
        assert_eq!(body["errors"][0]["code"], "not_acceptable");
        assert_eq!(body["errors"][0]["source"]["header"], "Accept");
    }
    for accepted in [
        "application/vnd.api+json",
        "Application/VND.API+JSON ; q=0.5",
        "application/vnd.api+json; ext=x, application/vnd.api+json",
        "*/*",
        "application/json, text/plain;format=x",
    ] {
        let req = authorized(test::TestRequest::get().uri(products))
            .insert_header((header::ACCEPT, accepted));
        assert_eq!(
            call(no_products(), req).await.0,
            StatusCode::OK,
            "{accepted}"
        );
    }
    // Without a key, the key comes first.
    let req = test::TestRequest::get()
        .uri(products)
        .insert_header((header::ACCEPT, "application/vnd.api+json; ext=x"));
    assert_eq!(call(no_products(), req).await.0, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_body_must_be_a_jsonapi_document() {
    let req = authorized(test::TestRequest::post().uri("/api/license/management/v4/products"))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload("{}");
    let (status, _, body) = call(MockProductStore::new(), req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["errors"][0]["code"], "unsupported_media_type");

    let req = authorized(test::TestRequest::post().uri("/api/license/management/v4/products"))
        .insert_header((header::CONTENT_TYPE, "application/vnd.api+json"))
        .set_payload("{not json");
    assert_eq!(
        call(MockProductStore::new(), req).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[actix_web::test]
async fn unknown_parameters_and_routes_are_named() {
    let req =
        authorized(test::TestRequest::get().uri("/api/license/management/v4/products?sort=title"));
    let (status, _, body) = call(MockProductStore::new(), req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["source"]["parameter"], "sort");

    let req = authorized(test::TestRequest::get().uri("/api/license/management/v4/nowhere"));
    assert_eq!(
        call(MockProductStore::new(), req).await.0,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn a_database_outage_is_503_with_retry_after() {
    let mut products = MockProductStore::new();
    products
        .expect_list()
        .returning(|| Err(StoreError::Unavailable("connection refused".into())));
    let (status, headers, body) = call(
        products,
        authorized(test::TestRequest::get().uri("/api/license/management/v4/products")),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        headers.get(header::RETRY_AFTER).map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert!(!body.to_string().contains("connection refused"));
}
