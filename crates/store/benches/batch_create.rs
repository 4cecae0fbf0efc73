//! How long a 10,000-license batch takes on each backend: create (with one job per license),
//! read back in pages of 1,000, delete. `cargo bench -p licenses-store`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use licenses_app::ports::{
    Actor, Change, JobKind, LicenseQuery, LicenseStore, NewEntitlementJob, ProductStore,
};
use licenses_domain::{
    License, LicenseId, LicenseState, OrderId, Product, ProductDraft, ProductId, StoredParts,
    Timestamp, UserId,
};
use licenses_store::{Store, StoreConfig};
use licenses_testkit::TestDatabase;

const N: usize = 10_000;
const NOW: Timestamp = Timestamp::from_unix(1_700_000_000);

fn licenses() -> Vec<License> {
    (0..N)
        .map(|i| {
            License::restore(StoredParts {
                id: LicenseId::parse(format!("bench-{i:06}")).unwrap(),
                user: UserId::parse(format!("user-{}", i % 997)).unwrap(),
                product: ProductId::parse("p1").unwrap(),
                state: LicenseState::Active,
                start_date: NOW,
                stop_date: Some(Timestamp::from_unix(NOW.unix() + 86_400)),
                order_id: Some(OrderId::parse(format!("legacy-{i}")).unwrap()),
                price: None,
                purchase_timestamp: NOW,
                payment_method: Some("billing".into()),
                recurring: false,
                expiry_date: None,
            })
            .unwrap()
        })
        .collect()
}

async fn run(db: TestDatabase) {
    let store = Store::open(&StoreConfig::new(
        db.url().to_owned(),
        4,
        Duration::from_secs(2),
    ))
    .unwrap();
    store.migrate().await.unwrap();
    let change = Change {
        actor: Actor::System("import"),
        at: NOW,
        idempotency: None,
    };
    let product = Product::new(
        ProductId::parse("p1").unwrap(),
        ProductDraft {
            title: Some("p".into()),
            product_type: Some("CHANNEL".into()),
            channels: [vec!["1".into()], vec![], vec![], vec![]],
            ..Default::default()
        },
    )
    .unwrap();
    ProductStore::create(&store, &product, &change)
        .await
        .unwrap();
    let batch = licenses();
    let jobs: Vec<_> = batch
        .iter()
        .map(|l| NewEntitlementJob {
            kind: JobKind::Grant,
            license: l.id().clone(),
            user: l.user().clone(),
            irdeto_product: "IRD".into(),
            valid_from: l.start_date(),
            valid_until: l.stop_date(),
        })
        .collect();

    let t = Instant::now();
    LicenseStore::create(&store, &batch, &jobs, &change)
        .await
        .unwrap();
    let created = t.elapsed();

    let t = Instant::now();
    let mut after = None;
    let mut read = 0;
    loop {
        let page = LicenseStore::find(
            &store,
            &LicenseQuery {
                user: None,
                product: None,
                statuses: vec![],
                active_at: None,
                now: NOW,
                after: after.clone(),
                limit: 1_000,
            },
        )
        .await
        .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id().clone());
        read += page.len();
    }
    let paged = t.elapsed();
    assert_eq!(read, N);

    let ids: Vec<_> = batch.iter().map(|l| l.id().clone()).collect();
    let t = Instant::now();
    LicenseStore::delete(&store, &ids, &[], &change)
        .await
        .unwrap();
    let deleted = t.elapsed();

    println!(
        "{:<10} create {N} + jobs: {:>7.1} ms | read in pages of 1000: {:>7.1} ms | delete {N}: {:>7.1} ms",
        store.backend().to_string(),
        created.as_secs_f64() * 1e3,
        paged.as_secs_f64() * 1e3,
        deleted.as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    run(TestDatabase::postgres()).await;
    run(TestDatabase::sqlite()).await;
}
