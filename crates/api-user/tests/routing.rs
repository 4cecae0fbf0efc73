//! The user front-end in process, over mocked ports: tokens, ownership, the catalogue and its
//! caching, a user's licenses, purchase, CORS, routing and the HTTP-level errors. The whole
//! API against real databases belongs to the workspace's integration tests.
//! (Over 600 lines: one file per front-end, every route over mocked ports.)

use std::sync::{Arc, Mutex};

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use actix_web::{App as Web, test, web};
use jsonwebtoken as jwt;
use licenses_api_user::{
    Algorithm, PURCHASE_RESTRICTED, TokenSettings, TokenVerifier, configure, mint_token,
};
use licenses_app::ports::{
    Clock, Conflict, IdSource, IdempotencyRecord, MockIdempotencyStore, MockLicenseStore,
    MockProductStore, StoreError,
};
use licenses_app::{App, Ports};
use licenses_domain::{
    Activation, License, LicenseDraft, LicenseId, LicenseStatus, PriceDraft, Product, ProductDraft,
    ProductId, Timestamp,
};
use serde_json::{Value, json};

const NOW: Timestamp = Timestamp::from_unix(1_700_000_000);
const SECRET: &str = "routing-test-secret-of-32-bytes-or-more";
const ORIGIN: &str = "https://app.aminotv.test";
const JSONAPI: &str = "application/vnd.api+json";

struct Fixed;
impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        NOW
    }
}
impl IdSource for Fixed {
    fn license_id(&self) -> LicenseId {
        LicenseId::parse("new-license").expect("id")
    }
    fn product_id(&self) -> ProductId {
        ProductId::parse("new-product").expect("id")
    }
}

/// Mocks that expect nothing: a call a test does not expect fails it.
#[derive(Default)]
struct Mocks {
    products: MockProductStore,
    licenses: MockLicenseStore,
    idempotency: MockIdempotencyStore,
}

impl Mocks {
    fn app(mut self) -> App {
        // The catalogue snapshot reads the change marker before it loads the products: an
        // unchanged catalogue, whatever the test.
        self.products.expect_version().returning(|| Ok(1));
        App::new(Ports {
            products: Arc::new(self.products),
            licenses: Arc::new(self.licenses),
            idempotency: Arc::new(self.idempotency),
            clock: Arc::new(Fixed),
            ids: Arc::new(Fixed),
        })
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: web::Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn code(&self) -> Value {
        self.json()["errors"][0]["code"].clone()
    }
}

async fn call_with(
    mocks: Mocks,
    tokens: TokenVerifier,
    origins: &[&str],
    req: test::TestRequest,
) -> Reply {
    let origins = origins.iter().map(|o| (*o).to_owned()).collect();
    let service =
        test::init_service(Web::new().configure(configure(mocks.app(), tokens, origins))).await;
    let resp = test::call_service(&service, req.to_request()).await;
    Reply {
        status: resp.status(),
        headers: resp.headers().clone(),
        body: test::read_body(resp).await,
    }
}

fn hs256() -> TokenVerifier {
    TokenVerifier::new(&TokenSettings::hs256(SECRET)).expect("settings")
}

async fn call(mocks: Mocks, req: test::TestRequest) -> Reply {
    call_with(mocks, hs256(), &[], req).await
}

fn token(user: &str, flags: &[&str]) -> String {
    let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
    mint_token(SECRET, user, &flags, 300, None, None).expect("token")
}

fn as_user(req: test::TestRequest, user: &str) -> test::TestRequest {
    req.insert_header((
        header::AUTHORIZATION,
        format!("Bearer {}", token(user, &[])),
    ))
}

fn get(path: &str) -> test::TestRequest {
    test::TestRequest::get().uri(&format!("/api/license/v4{path}"))
}

fn post(path: &str) -> test::TestRequest {
    test::TestRequest::post().uri(&format!("/api/license/v4{path}"))
}

fn encode(alg: jwt::Algorithm, claims: &Value, key: &jwt::EncodingKey) -> String {
    jwt::encode(&jwt::Header::new(alg), claims, key).expect("encoded")
}

fn in_five_minutes() -> u64 {
    jwt::get_current_timestamp() + 300
}

/// Seed 003's product: a CHANNEL_GROUP with channel 42 in every service.
fn sports(id: &str, visible: bool) -> Product {
    Product::new(
        ProductId::parse(id).expect("id"),
        ProductDraft {
            title: Some("Sport channels megapack".into()),
            description: Some("Complete collection for all sports channels".into()),
            product_type: Some("CHANNEL_GROUP".into()),
            is_premium: Some(true),
            is_user_visible: Some(visible),
            price_record: Some(PriceDraft {
                amount: Some(999),
                currency: Some("EUR".into()),
            }),
            irdeto_product_id: Some("irdeto-sports".into()),
            channels: std::array::from_fn(|_| vec!["42".to_owned()]),
            ..Default::default()
        },
    )
    .expect("valid product")
}

fn license_of(id: &str, user: &str, product: &Product, stop: Option<i64>) -> License {
    License::grant(
        LicenseId::parse(id).expect("id"),
        LicenseDraft {
            user: Some(user.into()),
            product: Some(product.id().to_string()),
            start_date: stop.map(|s| s - 86_400),
            stop_date: stop,
            order_id: Some(format!("order-{id}")),
            ..Default::default()
        },
        Some(product),
        NOW,
        Activation::Immediate,
    )
    .expect("valid license")
}

fn catalogue_mocks() -> Mocks {
    let mut m = Mocks::default();
    m.products
        .expect_list()
        .returning(|| Ok(vec![sports("41", true), sports("hidden", false)]));
    m
}

fn assert_challenge(reply: &Reply, expected: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header(header::WWW_AUTHENTICATE), Some(expected));
    assert_eq!(
        reply.header(header::CONTENT_TYPE),
        Some(JSONAPI),
        "an error document"
    );
    assert_eq!(reply.json()["errors"][0]["status"], "401");
}

// ---------------------------------------------------------------- tokens

#[actix_web::test]
async fn every_endpoint_needs_a_bearer_token() {
    for req in [
        get("/products"),
        get("/users/41/licenses"),
        post("/users/41/licenses"),
        get("/users/41/licenses/l"),
        get("/users/41/entitlements"),
        get("/nowhere"),
    ] {
        let reply = call(Mocks::default(), req).await;
        assert_challenge(&reply, "Bearer");
        assert_eq!(reply.code(), "unauthorized");
    }
    for authorization in [
        "Apikey 0123".to_owned(),
        "Basic dXNlcjpwYXNz".to_owned(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
    ] {
        let req = get("/products").insert_header((header::AUTHORIZATION, authorization.clone()));
        let reply = call(Mocks::default(), req).await;
        assert_challenge(&reply, "Bearer");
    }
}

#[actix_web::test]
async fn bad_tokens_are_refused_as_invalid() {
    let hs = |claims: &Value, secret: &str| {
        encode(
            jwt::Algorithm::HS256,
            claims,
            &jwt::EncodingKey::from_secret(secret.as_bytes()),
        )
    };
    let now = jwt::get_current_timestamp();
    let expired = hs(&json!({"sub": "41", "exp": now - 120}), SECRET);
    let cases = [
        ("malformed", "not.a.jwt".to_owned()),
        ("garbage", "a".repeat(40)),
        ("expired", expired),
        (
            "wrong signature",
            hs(
                &json!({"sub": "41", "exp": in_five_minutes()}),
                &"x".repeat(40),
            ),
        ),
        ("no exp", hs(&json!({"sub": "41"}), SECRET)),
        ("no sub", hs(&json!({"exp": in_five_minutes()}), SECRET)),
        (
            "not a user id",
            hs(&json!({"sub": "", "exp": in_five_minutes()}), SECRET),
        ),
        (
            "alg none",
            // {"alg":"none","typ":"JWT"} . {"sub":"41","exp":9999999999} . (no signature)
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiI0MSIsImV4cCI6OTk5OTk5OTk5OX0."
                .to_owned(),
        ),
    ];
    for (what, token) in cases {
        let req =
            get("/products").insert_header((header::AUTHORIZATION, format!("Bearer {token}")));
        let reply = call(Mocks::default(), req).await;
        assert_challenge(&reply, "Bearer error=\"invalid_token\"");
        assert_eq!(reply.code(), "invalid_token", "{what}");
        assert!(
            !String::from_utf8_lossy(&reply.body).contains(&token),
            "{what}: the token is never echoed"
        );
        if what == "expired" {
            assert_eq!(reply.json()["errors"][0]["detail"], "the token has expired");
        }
    }
    // A token just past its `exp` is still accepted within the leeway (30 s).
    let skewed = hs(&json!({"sub": "41", "exp": now - 5}), SECRET);
    let req = get("/products").insert_header((header::AUTHORIZATION, format!("bearer {skewed}")));
    assert_eq!(call(catalogue_mocks(), req).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let mut settings = TokenSettings::hs256(SECRET);
    settings.issuer = Some("https://id.aminotv.test".into());
    settings.audience = Some("licenses".into());
    let verifier = TokenVerifier::new(&settings).expect("settings");
    for (iss, aud, expected) in [
        (
            Some("https://id.aminotv.test"),
            Some("licenses"),
            StatusCode::OK,
        ),
        (
            Some("https://other.test"),
            Some("licenses"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Some("https://id.aminotv.test"),
            Some("playback"),
            StatusCode::UNAUTHORIZED,
        ),
        (None, Some("licenses"), StatusCode::UNAUTHORIZED),
        (
            Some("https://id.aminotv.test"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let token = mint_token(SECRET, "41", &[], 300, iss, aud).expect("token");
        let req =
            get("/products").insert_header((header::AUTHORIZATION, format!("Bearer {token}")));
        let reply = call_with(catalogue_mocks(), verifier.clone(), &[], req).await;
        assert_eq!(reply.status, expected, "iss {iss:?} aud {aud:?}");
    }
}

#[actix_web::test]
async fn rs256_and_es256_tokens_verify_with_the_configured_public_key() {
    for (algorithm, alg, public, private) in [
        (
            Algorithm::Es256,
            jwt::Algorithm::ES256,
            include_str!("keys/es256-public.pem"),
            jwt::EncodingKey::from_ec_pem(include_bytes!("keys/es256-private.pem")),
        ),
        (
            Algorithm::Rs256,
            jwt::Algorithm::RS256,
            include_str!("keys/rs256-public.pem"),
            jwt::EncodingKey::from_rsa_pem(include_bytes!("keys/rs256-private.pem")),
        ),
    ] {
        let private = private.expect("test private key");
        let verifier = TokenVerifier::new(&TokenSettings {
            algorithm,
            secret: None,
            public_key_pem: Some(public.to_owned()),
            ..TokenSettings::hs256("")
        })
        .expect("settings");
        let good = encode(
            alg,
            &json!({"sub": "41", "exp": in_five_minutes()}),
            &private,
        );
        let req = get("/products").insert_header((header::AUTHORIZATION, format!("Bearer {good}")));
        let reply = call_with(catalogue_mocks(), verifier.clone(), &[], req).await;
        assert_eq!(reply.status, StatusCode::OK, "{algorithm}");

        // The same claims signed with HS256 (here with the public key as the secret: the
        // classic algorithm confusion) are refused.
        let forged = encode(
            jwt::Algorithm::HS256,
            &json!({"sub": "41", "exp": in_five_minutes()}),
            &jwt::EncodingKey::from_secret(public.as_bytes()),
        );
        let req =
            get("/products").insert_header((header::AUTHORIZATION, format!("Bearer {forged}")));
        let reply = call_with(Mocks::default(), verifier, &[], req).await;
        assert_challenge(&reply, "Bearer error=\"invalid_token\"");
    }
}

#[actix_web::test]
async fn a_token_reaches_only_its_own_user() {
    for req in [
        get("/users/42/licenses"),
        get("/users/42/licenses?filter[status]=ACTIVE"),
        get("/users/42/licenses/l-1"),
        get("/users/42/entitlements"),
        get("/users/42/nowhere"),
        post("/users/42/licenses")
            .insert_header((header::CONTENT_TYPE, JSONAPI))
            .insert_header(("Idempotency-Key", "k"))
            .set_payload("{}"),
    ] {
        let reply = call(Mocks::default(), as_user(req, "41")).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(reply.code(), "forbidden");
        assert_eq!(reply.header(header::CONTENT_TYPE), Some(JSONAPI));
    }

    // The path is compared as the handlers read it, percent-decoded: `a%2541` is the user
    // `a%41`, not the token's `a%2541`…
    let reply = call(
        Mocks::default(),
        as_user(get("/users/a%2541/licenses"), "a%2541"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // …and an e-mail user id may be percent-encoded in the path.
    let mut m = Mocks::default();
    m.licenses
        .expect_find()
        .withf(|q| q.user.as_ref().map(|u| u.as_str()) == Some("waqqas.jabbar@gmail.com"))
        .returning(|_| Ok(vec![]));
    let reply = call(
        m,
        as_user(
            get("/users/waqqas.jabbar%40gmail.com/licenses"),
            "waqqas.jabbar@gmail.com",
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

fn purchase_body(payment_method: &str) -> String {
    json!({"data": {"type": "License",
        "attributes": {"payment_method": payment_method, "order_id": "o-1"},
        "relationships": {"product": {"data": {"type": "Product", "id": "41"}}}}})
    .to_string()
}

fn purchase_request(user: &str, token: &str, body: String) -> test::TestRequest {
    post(&format!("/users/{user}/licenses"))
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
        .insert_header((header::CONTENT_TYPE, JSONAPI))
        .insert_header(("Idempotency-Key", "0191b2c4-purchase-1"))
        .set_payload(body)
}

#[actix_web::test]
async fn a_restricted_user_cannot_purchase() {
    let restricted = token("41", &[PURCHASE_RESTRICTED]);
    let reply = call(
        Mocks::default(),
        purchase_request("41", &restricted, purchase_body("billing")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "purchase_restricted");

    // …but may still read their own licenses.
    let mut m = Mocks::default();
    m.licenses.expect_find().returning(|_| Ok(vec![]));
    let req = get("/users/41/licenses")
        .insert_header((header::AUTHORIZATION, format!("Bearer {restricted}")));
    assert_eq!(call(m, req).await.status, StatusCode::OK);
}

// ---------------------------------------------------------------- the catalogue

#[actix_web::test]
async fn the_catalogue_shows_visible_products_in_the_seed_shape() {
    let reply = call(catalogue_mocks(), as_user(get("/products"), "41")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CONTENT_TYPE), Some(JSONAPI));
    let channel = json!({"data": [{"id": "42", "type": "Channel"}]});
    assert_eq!(
        reply.json(),
        json!({"data": [{
            "id": "41",
            "type": "Product",
            "attributes": {
                "title": "Sport channels megapack",
                "description": "Complete collection for all sports channels",
                "type": "CHANNEL_GROUP",
                "is_premium": true,
                "price_record": {"amount": 999, "currency": "EUR"}
            },
            "relationships": {
                "live": channel, "npvr": channel, "catchup": channel, "startover": channel
            }
        }]}),
        "only the visible product, without management-only members"
    );
}

#[actix_web::test]
async fn the_catalogue_is_cached_privately_and_revalidated_by_its_etag() {
    let first = call(catalogue_mocks(), as_user(get("/products"), "41")).await;
    assert_eq!(
        first.header(header::CACHE_CONTROL),
        Some("private, max-age=60")
    );
    let etag = first.header(header::ETAG).expect("an ETag").to_owned();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    let again = call(catalogue_mocks(), as_user(get("/products"), "41")).await;
    assert_eq!(
        again.header(header::ETAG),
        Some(etag.as_str()),
        "stable for the same catalogue"
    );

    for if_none_match in [
        etag.clone(),
        "*".to_owned(),
        format!("\"other\", {etag}"),
        format!("W/{etag}"),
    ] {
        let req = as_user(get("/products"), "41")
            .insert_header((header::IF_NONE_MATCH, if_none_match.clone()));
        let reply = call(catalogue_mocks(), req).await;
        assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{if_none_match}");
        assert!(reply.body.is_empty());
        assert_eq!(reply.header(header::ETAG), Some(etag.as_str()));
        assert_eq!(
            reply.header(header::CACHE_CONTROL),
            Some("private, max-age=60")
        );
    }
    let req = as_user(get("/products"), "41").insert_header((header::IF_NONE_MATCH, "\"stale\""));
    let reply = call(catalogue_mocks(), req).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, first.body);

    // Another catalogue, another tag.
    let mut m = Mocks::default();
    m.products
        .expect_list()
        .returning(|| Ok(vec![sports("41", true), sports("43", true)]));
    let changed = call(m, as_user(get("/products"), "41")).await;
    assert_ne!(changed.header(header::ETAG), Some(etag.as_str()));
}

#[actix_web::test]
async fn the_catalogue_takes_no_parameters() {
    let reply = call(Mocks::default(), as_user(get("/products?sort=title"), "41")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["errors"][0]["source"]["parameter"], "sort");
}

#[actix_web::test]
async fn a_database_outage_is_503_with_retry_after() {
    let mut m = Mocks::default();
    m.products
        .expect_list()
        .returning(|| Err(StoreError::Unavailable("connection refused".into())));
    let reply = call(m, as_user(get("/products"), "41")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header(header::RETRY_AFTER), Some("1"));
    assert!(!String::from_utf8_lossy(&reply.body).contains("connection refused"));
}

// ---------------------------------------------------------------- a user's licenses

fn licenses_mocks(statuses: Vec<LicenseStatus>) -> Mocks {
    let mut m = Mocks::default();
    m.licenses
        .expect_find()
        .withf(move |q| {
            q.user.as_ref().map(|u| u.as_str()) == Some("41")
                && q.statuses == statuses
                && q.now == NOW
        })
        .returning(|_| {
            let a = sports("41", true);
            let b = sports("43", false);
            Ok(vec![
                license_of("l-1", "41", &a, None),
                license_of("l-2", "41", &a, Some(NOW.unix() - 10)),
                license_of("l-3", "41", &b, None),
            ])
        });
    m.products
        // The products come from the catalogue snapshot (the whole list, read once).
        .expect_list()
        .returning(|| Ok(vec![sports("41", true), sports("43", false)]));
    m
}

#[actix_web::test]
async fn user_licenses_come_with_their_products_once() {
    let reply = call(
        licenses_mocks(vec![]),
        as_user(get("/users/41/licenses"), "41"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    let data = doc["data"].as_array().expect("data");
    assert_eq!(data.len(), 3);
    let first = &data[0];
    assert_eq!(first["id"], "l-1");
    assert_eq!(first["type"], "License");
    assert_eq!(first["attributes"]["status"], "ACTIVE");
    assert_eq!(first["attributes"]["start_date"], NOW.unix());
    assert_eq!(
        first["relationships"],
        json!({"user": {"data": {"id": "41", "type": "User"}},
               "product": {"data": {"id": "41", "type": "Product"}}})
    );
    assert_eq!(
        first["links"]["self"],
        "http://localhost:8080/api/license/v4/users/41/licenses/l-1"
    );
    assert!(
        first.get("meta").is_none(),
        "no management-only meta: {first}"
    );
    assert_eq!(
        data[1]["attributes"]["status"], "EXPIRED",
        "derived at read time"
    );
    assert_eq!(data[1]["attributes"]["stop_date"], NOW.unix() - 10);

    let included = doc["included"].as_array().expect("included");
    assert_eq!(
        included.iter().map(|p| &p["id"]).collect::<Vec<_>>(),
        ["41", "43"]
    );
    for p in included {
        assert_eq!(p["type"], "Product");
        let attributes = p["attributes"].as_object().expect("attributes");
        let mut names: Vec<&str> = attributes.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["description", "is_premium", "price_record", "title", "type"]
        );
    }
    assert_eq!(
        doc["links"]["self"],
        "http://localhost:8080/api/license/v4/users/41/licenses"
    );
}

#[actix_web::test]
async fn user_licenses_filter_by_status_only() {
    let reply = call(
        licenses_mocks(vec![LicenseStatus::Active, LicenseStatus::Expired]),
        as_user(
            get("/users/41/licenses?filter[status]=ACTIVE,EXPIRED"),
            "41",
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);

    for (query, parameter) in [
        ("filter[status]=GONE", "filter[status]"),
        ("filter[user]=42", "filter[user]"),
        ("page[size]=5", "page[size]"),
    ] {
        let reply = call(
            Mocks::default(),
            as_user(get(&format!("/users/41/licenses?{query}")), "41"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.json()["errors"][0]["source"]["parameter"], parameter);
    }
}

#[actix_web::test]
async fn one_license_is_served_at_its_self_link_to_its_owner_only() {
    let mut m = Mocks::default();
    m.licenses.expect_get().returning(|id| {
        let p = sports("41", true);
        Ok(match id.as_str() {
            "mine" => Some(license_of("mine", "41", &p, None)),
            "theirs" => Some(license_of("theirs", "42", &p, None)),
            _ => None,
        })
    });
    m.products
        .expect_list()
        .returning(|| Ok(vec![sports("41", true)]));
    let app = m.app();
    let service = test::init_service(Web::new().configure(configure(app, hs256(), vec![]))).await;
    let fetch = |id: &str| as_user(get(&format!("/users/41/licenses/{id}")), "41").to_request();

    let resp = test::call_service(&service, fetch("mine")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = test::read_body_json(resp).await;
    assert_eq!(doc["data"]["id"], "mine");
    assert_eq!(
        doc["data"]["links"]["self"],
        "http://localhost:8080/api/license/v4/users/41/licenses/mine"
    );
    assert_eq!(doc["included"][0]["id"], "41");
    assert!(doc["included"][0]["attributes"].get("is_buyable").is_none());

    for id in ["theirs", "gone"] {
        let resp = test::call_service(&service, fetch(id)).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{id}");
        let doc: Value = test::read_body_json(resp).await;
        assert_eq!(doc["errors"][0]["detail"], "no license has this id");
    }
}

#[actix_web::test]
async fn entitlements_are_the_users_own() {
    let mut m = Mocks::default();
    m.licenses
        .expect_find()
        .withf(|q| q.active_at == Some(NOW))
        .returning(|_| Ok(vec![license_of("l-1", "41", &sports("41", true), None)]));
    m.products
        .expect_list()
        .returning(|| Ok(vec![sports("41", true)]));
    let reply = call(m, as_user(get("/users/41/entitlements"), "41")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    assert_eq!(doc["data"][0]["id"], "42");
    assert_eq!(doc["data"][0]["type"], "ChannelEntitlement");
    assert_eq!(doc["meta"]["user"], "41");
}

// ---------------------------------------------------------------- purchase

fn purchase_mocks() -> Mocks {
    let mut m = Mocks::default();
    m.idempotency
        .expect_find()
        .withf(|scope, key| scope == "user:41" && key == "0191b2c4-purchase-1")
        .returning(|_, _| Ok(None));
    m.products
        .expect_list()
        .returning(|| Ok(vec![sports("41", true)]));
    m
}

#[actix_web::test]
async fn a_purchase_answers_201_with_the_license_and_its_product_and_replays_it() {
    let mut m = purchase_mocks();
    let recorded: Arc<Mutex<Option<IdempotencyRecord>>> = Arc::default();
    let keep = Arc::clone(&recorded);
    m.licenses
        .expect_create()
        .withf(|licenses, _, change| {
            licenses.len() == 1
                && licenses[0].user().as_str() == "41"
                && licenses[0].order_id().map(|o| o.as_str()) == Some("o-1")
                && change.idempotency.is_some()
        })
        .times(1)
        .returning(move |_, _, change| {
            *keep.lock().expect("lock") = change.idempotency.clone();
            Ok(())
        });
    let reply = call(
        m,
        purchase_request("41", &token("41", &[]), purchase_body("billing")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header(header::CONTENT_TYPE), Some(JSONAPI));
    let doc = reply.json();
    assert_eq!(doc["data"]["type"], "License");
    assert_eq!(doc["data"]["id"], "new-license");
    assert_eq!(doc["data"]["attributes"]["status"], "ACTIVE");
    assert_eq!(
        doc["data"]["attributes"]["purchase_record"]["payment_method"],
        "billing"
    );
    assert_eq!(doc["data"]["relationships"]["user"]["data"]["id"], "41");
    assert_eq!(
        doc["data"]["links"]["self"],
        "http://localhost:8080/api/license/v4/users/41/licenses/new-license"
    );
    assert_eq!(doc["included"][0]["id"], "41");
    assert!(
        doc["included"][0]["attributes"]
            .get("irdeto_product_id")
            .is_none()
    );

    // What was stored with the license is what was answered; the retry with the same key
    // and request gets it back byte for byte, without a second license: the store refuses
    // the key, taken, and the first answer is read.
    let record = recorded.lock().expect("lock").clone().expect("recorded");
    assert_eq!(record.scope, "user:41");
    assert_eq!(record.response.body, reply.body.to_vec());
    let mut m = Mocks::default();
    m.products
        .expect_list()
        .returning(|| Ok(vec![sports("41", true)]));
    m.licenses
        .expect_create()
        .times(1)
        .returning(|_, _, _| Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken)));
    m.idempotency
        .expect_find()
        .times(1)
        .returning(move |_, _| Ok(Some(record.clone())));
    let replay = call(
        m,
        purchase_request("41", &token("41", &[]), purchase_body("billing")),
    )
    .await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, reply.body);
}

/// JSON:API 1.0: 406 when the JSON:API media type is accepted only with parameters (the
/// cases are the management API's test; the same check guards both).
#[actix_web::test]
async fn an_accept_of_only_parameterized_jsonapi_is_406() {
    let req = as_user(get("/products"), "41")
        .insert_header((header::ACCEPT, "application/vnd.api+json; profile=x"));
    let reply = call(catalogue_mocks(), req).await;
    assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(reply.code(), "not_acceptable");
    let req =
        as_user(get("/products"), "41").insert_header((header::ACCEPT, "application/vnd.api+json"));
    assert_eq!(call(catalogue_mocks(), req).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn a_purchase_needs_an_idempotency_key_and_a_jsonapi_body() {
    let no_key = post("/users/41/licenses")
        .insert_header((header::CONTENT_TYPE, JSONAPI))
        .set_payload(purchase_body("billing"));
    let reply = call(Mocks::default(), as_user(no_key, "41")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "idempotency_key_required");

    let json_body = purchase_request("41", &token("41", &[]), purchase_body("billing"))
        .insert_header((header::CONTENT_TYPE, "application/json"));
    let reply = call(Mocks::default(), json_body).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.code(), "unsupported_media_type");

    let huge = purchase_request("41", &token("41", &[]), "x".repeat(65 * 1024));
    let reply = call(Mocks::default(), huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    let broken = purchase_request("41", &token("41", &[]), "{not json".to_owned());
    let reply = call(Mocks::default(), broken).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn only_billing_is_a_payment_method() {
    let reply = call(
        purchase_mocks(),
        purchase_request("41", &token("41", &[]), purchase_body("card")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.json()["errors"][0]["source"]["pointer"],
        "/data/attributes/payment_method"
    );
}

// ---------------------------------------------------------------- CORS

fn preflight(origin: &str, method: &str) -> test::TestRequest {
    test::TestRequest::default()
        .method(Method::OPTIONS)
        .uri("/api/license/v4/users/41/licenses")
        .insert_header((header::ORIGIN, origin))
        .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, method))
        .insert_header((
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization, content-type, idempotency-key, licenses-consistency",
        ))
}

#[actix_web::test]
async fn cors_preflights_from_configured_origins_are_answered() {
    let reply = call_with(
        Mocks::default(),
        hs256(),
        &[ORIGIN, "https://other-app.aminotv.test/"],
        preflight(ORIGIN, "POST"),
    )
    .await;
    assert!(reply.status.is_success(), "{}", reply.status);
    assert_eq!(
        reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(ORIGIN)
    );
    let methods = reply
        .header(header::ACCESS_CONTROL_ALLOW_METHODS)
        .expect("methods")
        .to_ascii_uppercase();
    for m in ["GET", "POST", "OPTIONS"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = reply
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS)
        .expect("headers")
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "idempotency-key",
        "if-none-match",
        "licenses-consistency",
    ] {
        assert!(headers.contains(h), "{headers}");
    }

    // The actual request from that origin: CORS headers, ETag exposed, errors included.
    let request = as_user(get("/products"), "41").insert_header((header::ORIGIN, ORIGIN));
    let reply = call_with(catalogue_mocks(), hs256(), &[ORIGIN], request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(ORIGIN)
    );
    assert!(
        reply
            .header(header::ACCESS_CONTROL_EXPOSE_HEADERS)
            .is_some_and(|h| {
                let h = h.to_ascii_lowercase();
                h.contains("etag") && h.contains("licenses-consistency")
            })
    );
    let unauthenticated = get("/products").insert_header((header::ORIGIN, ORIGIN));
    let reply = call_with(Mocks::default(), hs256(), &[ORIGIN], unauthenticated).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(ORIGIN)
    );
}

#[actix_web::test]
async fn cors_from_other_origins_or_when_unconfigured_gets_no_cors_headers() {
    let reply = call_with(
        Mocks::default(),
        hs256(),
        &[ORIGIN],
        preflight("https://evil.test", "POST"),
    )
    .await;
    assert!(!reply.status.is_success(), "{}", reply.status);
    assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), None);
    assert_eq!(reply.header(header::CONTENT_TYPE), Some(JSONAPI));
    assert_eq!(reply.code(), "cors_refused");

    let reply = call_with(
        Mocks::default(),
        hs256(),
        &[ORIGIN],
        preflight(ORIGIN, "DELETE"),
    )
    .await;
    assert!(!reply.status.is_success(), "{}", reply.status);
    assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), None);

    let request =
        as_user(get("/products"), "41").insert_header((header::ORIGIN, "https://evil.test"));
    let reply = call_with(catalogue_mocks(), hs256(), &[ORIGIN], request).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the browser, not us, blocks it"
    );
    assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), None);

    // No origins configured: no CORS at all; a preflight is just an unauthenticated request.
    let reply = call(Mocks::default(), preflight(ORIGIN, "POST")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let request = as_user(get("/products"), "41").insert_header((header::ORIGIN, ORIGIN));
    let reply = call(catalogue_mocks(), request).await;
    assert!(
        !reply
            .headers
            .keys()
            .any(|h| h.as_str().starts_with("access-control-")),
        "{:?}",
        reply.headers
    );
}

// ---------------------------------------------------------------- routing

#[actix_web::test]
async fn unknown_routes_and_methods_are_json_api_errors() {
    for path in ["/nowhere", "/users/41/nowhere", "/users/41", "/products/41"] {
        let reply = call(Mocks::default(), as_user(get(path), "41")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.header(header::CONTENT_TYPE), Some(JSONAPI), "{path}");
        assert_eq!(reply.code(), "not_found");
    }
    for (method, path, allow) in [
        (Method::DELETE, "/users/41/licenses", "GET, POST"),
        (Method::PATCH, "/users/41/licenses/l-1", "GET"),
        (Method::DELETE, "/users/41/licenses/l-1", "GET"),
        (Method::POST, "/products", "GET"),
        (Method::PUT, "/users/41/entitlements", "GET"),
    ] {
        let req = test::TestRequest::default()
            .method(method.clone())
            .uri(&format!("/api/license/v4{path}"));
        let reply = call(Mocks::default(), as_user(req, "41")).await;
        assert_eq!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(reply.header(header::ALLOW), Some(allow));
        assert_eq!(reply.json()["errors"][0]["status"], "405");
    }
}
