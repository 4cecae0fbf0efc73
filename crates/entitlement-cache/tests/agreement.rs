//! The cache against the real service: the `licenses` binary (licenses-testkit's
//! `ServiceProcess`) on a database of the test's own, changed by a random but reproducible
//! sequence of management API calls (products created, updated and deleted; licenses granted
//! one by one and in batches with various start and stop dates and statuses, revoked one by
//! one and in batches). At checkpoints along the way and at the end, the cache follows the
//! feed and, for every user, its answers must agree with `GET /users/{id}/entitlements`
//! resolved by the service at the same instant (`meta.at`).
//!
//! A second test prunes events behind the service's back (PostgreSQL), as the retention
//! would, past the cache's cursor: the feed answers `410 cursor_expired`, the cache resyncs
//! from the current state, and must agree again.
//!
//! The seed is printed; `ENTITLEMENT_CACHE_SEED=N` replays a run. The binary is the one cargo
//! built next to this test (`cargo build -p licenses --bin licenses` first when only this
//! package is tested), or `LICENSES_BIN`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use licenses_domain::{ChannelId, Service, Timestamp, UserId};
use licenses_entitlement_cache::{EntitlementCache, Feed};
use licenses_testkit::{ServiceProcess, TestDatabase, query_strings};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const API: &str = "/api/license/management/v4";
/// The development key of config/test.toml (public, refused in production).
const KEY: &str = "dev-management-key-change-me";
const JSONAPI: &str = "application/vnd.api+json";
const USERS: usize = 8;
const CHANNELS: [&str; 6] = ["c0", "c1", "c2", "c3", "c4", "c5"];
/// How long the cache may take to catch up with the feed at a checkpoint.
const CATCH_UP: Duration = Duration::from_secs(20);

/// The `licenses` binary: `LICENSES_BIN`, else the one in this test's target directory.
fn licenses_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("LICENSES_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/agreement-… → target/<profile>/licenses
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(format!("licenses{}", std::env::consts::EXE_SUFFIX)))
        .expect("a target directory");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p licenses --bin licenses` first (same \
         CARGO_TARGET_DIR), or set LICENSES_BIN",
        bin.display()
    );
    bin
}

fn serve(database: &TestDatabase) -> ServiceProcess {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    ServiceProcess::builder(licenses_binary())
        .current_dir(root)
        .env("APP_ENV", "test")
        .env("LICENSES__DATABASE__URL", database.url())
        // license.expired events while the test runs (the cache must not need them)
        .env("LICENSES__EVENTS__SCHEDULER_INTERVAL_MS", "200")
        .spawn()
}

/// The management API of one service, as the test drives it.
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{API}{path}", self.base))
            .header("Authorization", format!("Apikey {KEY}"));
        if let Some(body) = body {
            req = req.header("Content-Type", JSONAPI).body(body.to_string());
        }
        let response = req.send().await.expect("the management API answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn expect(&self, method: Method, path: &str, body: Value, want: StatusCode) -> Value {
        let (status, answer) = self.send(method.clone(), path, Some(body)).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        answer
    }
}

fn now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit")
}

/// What the test knows it created and has not deleted.
#[derive(Default)]
struct Model {
    /// Product id → whether it is a CHANNEL_GROUP (else a single-channel CHANNEL product).
    products: BTreeMap<String, bool>,
    licenses: Vec<String>,
    /// Calls made, by kind, to show that the sequence did what it says.
    made: BTreeMap<&'static str, usize>,
}

impl Model {
    fn made(&mut self, what: &'static str) {
        *self.made.entry(what).or_default() += 1;
    }
}

fn channels(rng: &mut StdRng) -> Value {
    let mut rels = serde_json::Map::new();
    let mut any = false;
    for (i, service) in ["live", "npvr", "catchup", "startover"]
        .into_iter()
        .enumerate()
    {
        let mut picked: Vec<&str> = CHANNELS
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.3))
            .collect();
        if i == 3 && !any && picked.is_empty() {
            picked.push(CHANNELS.choose(rng).copied().unwrap_or("c0"));
        }
        any |= !picked.is_empty();
        let data: Vec<Value> = picked
            .into_iter()
            .map(|c| json!({"type": "Channel", "id": c}))
            .collect();
        rels.insert(service.into(), json!({"data": data}));
    }
    Value::Object(rels)
}

fn single_channel(rng: &mut StdRng) -> Value {
    let c = CHANNELS.choose(rng).copied().unwrap_or("c0");
    json!({"live": {"data": [{"type": "Channel", "id": c}]}})
}

/// A license's attributes: a status, and dates around now (started, starting within
/// seconds, far ahead; ending within seconds, far ahead, never, or already).
fn license_attributes(rng: &mut StdRng) -> Value {
    let now = now();
    let mut a = serde_json::Map::new();
    if rng.random_bool(0.2) {
        a.insert("status".into(), json!("SUSPENDED"));
    }
    let start = match rng.random_range(0..4) {
        0 => None,
        1 => Some(now - 1_000),
        2 => Some(now + rng.random_range(1..4)),
        _ => Some(now + 100_000),
    };
    if let Some(start) = start {
        a.insert("start_date".into(), json!(start));
    }
    let from = start.unwrap_or(now);
    let stop = match rng.random_range(0..5) {
        0 => None,
        1 => Some(from + rng.random_range(1..5)),
        2 => Some(from + 1_000_000),
        // already over when granted, for a license started long ago
        3 if from < now => Some(now - 10),
        _ => Some(from + 200_000),
    };
    if let Some(stop) = stop {
        a.insert("stop_date".into(), json!(stop));
    }
    Value::Object(a)
}

fn license_resource(rng: &mut StdRng, model: &Model) -> Option<Value> {
    let products: Vec<&String> = model.products.keys().collect();
    let product = products.choose(rng)?;
    let user = format!("u{}", rng.random_range(0..USERS));
    Some(
        json!({"type": "License", "attributes": license_attributes(rng),
        "relationships": {"user": {"data": {"type": "User", "id": user}},
            "product": {"data": {"type": "Product", "id": product}}}}),
    )
}

/// One random change through the management API.
async fn change(api: &Api, rng: &mut StdRng, model: &mut Model) {
    let pick = if model.products.is_empty() {
        0
    } else {
        rng.random_range(0..100)
    };
    match pick {
        // create a product: a channel group, or a single channel
        0..10 => {
            let group = rng.random_bool(0.75);
            let (kind, rels) = if group {
                ("CHANNEL_GROUP", channels(rng))
            } else {
                ("CHANNEL", single_channel(rng))
            };
            let mut attributes = json!({"title": "p", "type": kind});
            if rng.random_bool(0.3) {
                // licenses granted without a stop date end after 3 s
                attributes["license_defaults"] = json!({"duration": 3});
            }
            let doc = json!({"data": {"type": "Product", "attributes": attributes,
                "relationships": rels}});
            let created = api
                .expect(Method::POST, "/products", doc, StatusCode::CREATED)
                .await;
            let id = created["data"]["id"].as_str().expect("an id").to_owned();
            model.products.insert(id, group);
            model.made("product.create");
        }
        // change a product's channels
        10..20 => {
            let (id, group) = model
                .products
                .iter()
                .nth(rng.random_range(0..model.products.len()))
                .map(|(id, g)| (id.clone(), *g))
                .expect("a product");
            let rels = if group {
                channels(rng)
            } else {
                single_channel(rng)
            };
            let doc = json!({"data": {"type": "Product", "id": id, "relationships": rels}});
            api.expect(
                Method::PATCH,
                &format!("/products/{id}"),
                doc,
                StatusCode::OK,
            )
            .await;
            model.made("product.update");
        }
        // delete a product: refused while licenses refer to it
        20..25 => {
            let id = model
                .products
                .keys()
                .nth(rng.random_range(0..model.products.len()))
                .cloned()
                .expect("a product");
            let (status, body) = api
                .send(Method::DELETE, &format!("/products/{id}"), None)
                .await;
            match status {
                StatusCode::NO_CONTENT => {
                    model.products.remove(&id);
                    model.made("product.delete");
                }
                StatusCode::CONFLICT => model.made("product.delete refused (in use)"),
                other => panic!("DELETE /products/{id}: {other} {body}"),
            }
        }
        // grant one license
        25..55 => {
            let resource = license_resource(rng, model).expect("a product");
            let created = api
                .expect(
                    Method::POST,
                    "/licenses",
                    json!({"data": resource}),
                    StatusCode::CREATED,
                )
                .await;
            let id = created["data"]["id"].as_str().expect("an id").to_owned();
            model.licenses.push(id);
            model.made("license.create");
        }
        // grant a batch
        55..65 => {
            let n = rng.random_range(2..6);
            let batch: Vec<Value> = (0..n)
                .filter_map(|_| license_resource(rng, model))
                .collect();
            let created = api
                .expect(
                    Method::POST,
                    "/licenses/batch_create",
                    json!({"data": batch}),
                    StatusCode::CREATED,
                )
                .await;
            for l in created["data"].as_array().expect("licenses") {
                model
                    .licenses
                    .push(l["id"].as_str().expect("an id").to_owned());
            }
            model.made("license.batch_create");
        }
        // revoke one license
        65..85 => {
            if model.licenses.is_empty() {
                return;
            }
            let id = model
                .licenses
                .swap_remove(rng.random_range(0..model.licenses.len()));
            let (status, body) = api
                .send(Method::DELETE, &format!("/licenses/{id}"), None)
                .await;
            assert_eq!(
                status,
                StatusCode::NO_CONTENT,
                "DELETE /licenses/{id}: {body}"
            );
            model.made("license.delete");
        }
        // revoke a batch
        _ => {
            if model.licenses.len() < 2 {
                return;
            }
            let n = rng.random_range(2..=model.licenses.len().min(4));
            let ids: Vec<Value> = (0..n)
                .map(|_| {
                    let id = model
                        .licenses
                        .swap_remove(rng.random_range(0..model.licenses.len()));
                    json!({"type": "License", "id": id})
                })
                .collect();
            api.expect(
                Method::POST,
                "/licenses/batch_delete",
                json!({"data": ids}),
                StatusCode::OK,
            )
            .await;
            model.made("license.batch_delete");
        }
    }
}

/// Per channel, each service's grant: `None` not granted, `Some(until)` granted until then.
type Grants = BTreeMap<String, [Option<Option<i64>>; 4]>;

/// What the service answers for `user`, and the instant it resolved it at.
async fn service_entitlements(api: &Api, user: &str) -> (Grants, i64) {
    let (status, doc) = api
        .send(Method::GET, &format!("/users/{user}/entitlements"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let at = doc["meta"]["at"].as_i64().expect("meta.at");
    let mut grants = Grants::new();
    for e in doc["data"].as_array().expect("data") {
        let mut row = [None; 4];
        for (i, s) in Service::ALL.into_iter().enumerate() {
            let grant = &e["attributes"][s.as_str()];
            if !grant.is_null() {
                row[i] = Some(grant["until"].as_i64());
            }
        }
        grants.insert(e["id"].as_str().expect("a channel").to_owned(), row);
    }
    (grants, at)
}

/// What the cache answers for `user` at `at`: its `entitlements`, checked against
/// `may_watch` for every channel and service.
fn cache_entitlements(cache: &EntitlementCache, user: &str, at: i64) -> Grants {
    let user = UserId::parse(user).expect("a user id");
    let at = Timestamp::from_unix(at);
    let entitlements = cache.entitlements(&user, at);
    let mut grants = Grants::new();
    for (channel, services) in entitlements.channels() {
        let mut row = [None; 4];
        for (service, grant) in services.iter() {
            row[service as usize] = Some(grant.until.map(Timestamp::unix));
        }
        grants.insert(channel.as_str().to_owned(), row);
    }
    for c in CHANNELS {
        let channel = ChannelId::parse(c).expect("a channel id");
        for (i, service) in Service::ALL.into_iter().enumerate() {
            let answer = cache
                .may_watch(&user, &channel, service, at)
                .map(|g| g.until.map(Timestamp::unix));
            let listed = grants.get(c).and_then(|row| row[i]);
            assert_eq!(answer, listed, "may_watch and entitlements disagree");
        }
    }
    grants
}

/// Follows the feed until, for every user, the cache agrees with the service; panics with
/// the differences once `CATCH_UP` has passed. Returns the number of granted (user, channel,
/// service) answers compared.
async fn agree(
    api: &Api,
    feed: &mut Feed,
    cache: &mut EntitlementCache,
    seed: u64,
    step: usize,
) -> usize {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        feed.poll(cache).await.expect("the feed is read");
        let mut differences = Vec::new();
        let mut granted = 0;
        for u in 0..USERS {
            let user = format!("u{u}");
            let (expected, at) = service_entitlements(api, &user).await;
            let cached = cache_entitlements(cache, &user, at);
            granted += expected
                .values()
                .flat_map(|row| row.iter().flatten())
                .count();
            if cached != expected {
                differences.push(format!(
                    "{user} at {at}:\n  service {expected:?}\n  cache   {cached:?}"
                ));
            }
        }
        if differences.is_empty() {
            return granted;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}, after change {step}: the cache (position {:?}) disagrees with \
             the service:\n{}",
            cache.position(),
            differences.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn seed(default: u64) -> u64 {
    let seed = std::env::var("ENTITLEMENT_CACHE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("ENTITLEMENT_CACHE_SEED={seed}");
    seed
}

/// The test's client of the management API, and the cache's feed, of `service`.
fn clients(service: &ServiceProcess) -> (Api, Feed) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client");
    let api = Api {
        client: client.clone(),
        base: service.management_url.clone(),
    };
    let feed = Feed::new(&service.management_url, KEY).with_client(client);
    (api, feed)
}

async fn cache_agrees_with_the_service(database: TestDatabase, default_seed: u64, changes: usize) {
    let seed = seed(default_seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let service = serve(&database);
    let (api, mut feed) = clients(&service);
    let mut cache = EntitlementCache::new();
    let mut model = Model::default();
    let mut granted = 0;
    let mut checkpoints = 0;
    for step in 1..=changes {
        change(&api, &mut rng, &mut model).await;
        if step % 15 == 0 || step == changes {
            granted += agree(&api, &mut feed, &mut cache, seed, step).await;
            checkpoints += 1;
        }
    }
    // Later, some licenses have ended or begun: still the same answers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    granted += agree(&api, &mut feed, &mut cache, seed, changes).await;
    eprintln!(
        "made {:?}; {checkpoints} checkpoints, {granted} grants compared",
        model.made
    );

    // Not a vacuous agreement: the sequence did all it says, and granted things.
    for kind in [
        "product.create",
        "product.update",
        "product.delete",
        "license.create",
        "license.batch_create",
        "license.delete",
        "license.batch_delete",
    ] {
        assert!(model.made.contains_key(kind), "seed {seed} made no {kind}");
    }
    assert!(granted > 0, "seed {seed}: no grant was ever compared");
    assert_eq!(
        cache.gaps(),
        0,
        "no user_seq gap while following the whole feed"
    );
    let users: BTreeSet<&UserId> = cache.users().collect();
    assert!(!users.is_empty());
}

#[tokio::test]
async fn the_cache_agrees_with_the_service_sqlite() {
    cache_agrees_with_the_service(TestDatabase::sqlite(), 19, 150).await;
}

#[tokio::test]
async fn the_cache_agrees_with_the_service_postgres() {
    cache_agrees_with_the_service(TestDatabase::postgres(), 1919, 150).await;
}

#[tokio::test]
async fn after_events_were_pruned_past_its_cursor_the_cache_resyncs() {
    let database = TestDatabase::postgres();
    let seed = seed(4242);
    let mut rng = StdRng::seed_from_u64(seed);
    let service = serve(&database);
    let (api, mut feed) = clients(&service);
    let mut cache = EntitlementCache::new();
    let mut model = Model::default();
    for _ in 0..40 {
        change(&api, &mut rng, &mut model).await;
    }
    // Two licenses that grant at once, which the cache sees…
    let product = model.products.keys().next().expect("a product").clone();
    let mut granting = Vec::new();
    for user in ["u0", "u1"] {
        let doc = json!({"data": {"type": "License",
            "attributes": {"stop_date": now() + 1_000_000},
            "relationships": {"user": {"data": {"type": "User", "id": user}},
                "product": {"data": {"type": "Product", "id": product}}}}});
        let created = api
            .expect(Method::POST, "/licenses", doc, StatusCode::CREATED)
            .await;
        granting.push(created["data"]["id"].as_str().expect("an id").to_owned());
    }
    agree(&api, &mut feed, &mut cache, seed, 40).await;
    let cursor = cache.position().expect("events applied");

    // …then their revocation and more changes, whose events are pruned behind the service's
    // back as the retention would: the cursor is now older than the oldest event kept, and
    // the cache never sees these revocations.
    for id in granting {
        let (status, body) = api
            .send(Method::DELETE, &format!("/licenses/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    for _ in 0..30 {
        change(&api, &mut rng, &mut model).await;
    }
    let head: i64 = query_strings(
        database.url(),
        "SELECT max(position)::text AS value FROM events",
    )[0]
    .parse()
    .expect("a position");
    let through = head - 2;
    assert!(
        through > cursor,
        "events after the cursor ({cursor}) are pruned"
    );
    query_strings(
        database.url(),
        &format!(
            "WITH gone AS (DELETE FROM events WHERE position <= {through} RETURNING 1), \
             mark AS (INSERT INTO event_marks (name, value) VALUES ('pruned', {through}) \
               ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value RETURNING 1) \
             SELECT 'pruned' AS value FROM mark"
        ),
    );

    let polled = feed.poll(&mut cache).await.expect("the feed is read");
    assert!(
        polled.resynced,
        "410 cursor_expired was answered and resynced"
    );
    agree(&api, &mut feed, &mut cache, seed, 70).await;
    assert!(cache.position().is_some_and(|p| p >= head));
}
