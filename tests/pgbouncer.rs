//! The request path through a real pgbouncer in transaction mode (the Debian package) with
//! two server connections for eight pooled ones, so that a connection's transactions run on
//! whichever server connection is free: products, concurrent purchases with their Irdeto
//! grants (the outbox claimed and settled through pgbouncer), reads, readiness. The wake-up
//! listener bypasses pgbouncer (`database.listen_url`), and statements are unnamed
//! (`database.prepared_statements = false`: pgbouncer 1.18 cannot keep prepared ones).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use licenses_api_user::mint_token;
use licenses_irdeto::standin::StandIn;
use licenses_store::{Store, StoreConfig};
use licenses_testkit::{Pgbouncer, PrivateCluster};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::jsonapi::JSONAPI;
use support::{Backend, TOKEN_SECRET, TestApp, spawn_app_with};

const USER_API: &str = "/api/license/v4";
const KEY: &str = "pgbouncer-irdeto-key";
const USERS: usize = 24;

async fn my_licenses(app: &TestApp, user: &str) -> Vec<Value> {
    let bearer = mint_token(TOKEN_SECRET, user, &[], 3600, None, None).unwrap();
    let r = app
        .client
        .get(app.user(&format!("{USER_API}/users/{user}/licenses")))
        .header("Authorization", format!("Bearer {bearer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_through_pgbouncer_in_transaction_mode() {
    let primary = PrivateCluster::new();
    // Migrations need a session (an advisory lock): run on a direct connection, as documented.
    let direct = Store::open(&StoreConfig::new(primary.url(), 1, Duration::from_secs(5))).unwrap();
    direct.migrate().await.unwrap();
    drop(direct);
    let bouncer = Pgbouncer::transaction_mode(primary.url(), 2);
    let irdeto = StandIn::start(KEY).unwrap();
    let (url, listen, irdeto_url) = (
        bouncer.url(),
        primary.url().to_owned(),
        irdeto.url().to_owned(),
    );
    let app = spawn_app_with(Backend::Postgres, move |s| {
        s.database.url = url;
        s.database.listen_url = Some(listen);
        s.database.prepared_statements = false;
        s.database.migrate_on_start = false;
        s.database.pool_size = 8;
        s.database.checkout_timeout_ms = 5000;
        s.irdeto.enabled = true;
        s.irdeto.base_url = Some(irdeto_url);
        s.irdeto.api_key = Some(KEY.to_owned().into());
    })
    .await;
    let before = bouncer.stat("STATS", "postgres", "total_xact_count");

    let ready = app.get(&app.user("/health/ready")).await;
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "migrated, through pgbouncer"
    );

    let attributes = json!({"title": "Shop", "type": "CHANNEL",
        "irdeto_product_id": "IRD-SHOP", "price_record": {"amount": 499, "currency": "EUR"},
        "license_defaults": {"duration": 86_400}});
    let product =
        support::management::product_with(&app.client, &app.management_url, attributes).await;

    // Purchases and reads at once, more than pgbouncer has server connections.
    let purchases = (0..USERS).map(|i| {
        let (app, product) = (&app, &product);
        async move {
            let user = format!("u{i}");
            let bearer = mint_token(TOKEN_SECRET, &user, &[], 3600, None, None).unwrap();
            let purchase = json!({"data": {"type": "License",
                "attributes": {"payment_method": "billing"},
                "relationships": {"product": {"data": {"type": "Product", "id": product}}}}});
            let r = app
                .client
                .post(app.user(&format!("{USER_API}/users/{user}/licenses")))
                .header("Authorization", format!("Bearer {bearer}"))
                .header("Content-Type", JSONAPI)
                .header("Idempotency-Key", format!("buy-{i}"))
                .body(purchase.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::CREATED,
                "{}",
                r.text().await.unwrap()
            );
            my_licenses(app, &user).await.len()
        }
    });
    let seen = futures_util::future::join_all(purchases).await;
    assert!(seen.iter().all(|n| *n == 1), "{seen:?}");

    // The outbox, claimed and settled through pgbouncer: every license ACTIVE, granted once.
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..USERS {
        loop {
            let licenses = my_licenses(&app, &format!("u{i}")).await;
            if licenses[0]["attributes"]["status"] == "ACTIVE" {
                break;
            }
            assert!(Instant::now() < deadline, "u{i}: {licenses:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let counts = irdeto.counts();
    assert_eq!(
        (counts.created as usize, counts.duplicates),
        (USERS, 0),
        "{counts:?}"
    );

    // It all went through pgbouncer, on at most its two server connections.
    let through = bouncer.stat("STATS", "postgres", "total_xact_count") - before;
    assert!(
        through > 3 * USERS as u64,
        "{through} transactions through pgbouncer"
    );
    let servers = bouncer.stat("POOLS", "postgres", "sv_active")
        + bouncer.stat("POOLS", "postgres", "sv_idle")
        + bouncer.stat("POOLS", "postgres", "sv_used");
    assert!(servers <= 2, "{}", bouncer.show("POOLS"));
}
