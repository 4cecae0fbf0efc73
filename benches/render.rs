//! What the hand-written license writer pays: a user's ten licenses (the "my licenses"
//! answer) and a management page of 1,000, written by `LicenseBody::to_stored` and by
//! serde_json from the same types: `cargo bench --bench render`. Prints the time a document
//! takes each way, the median of several runs; asserts only that both write the same bytes.

use std::hint::black_box;
use std::time::Instant;

use actix_web::http::StatusCode;
use licenses_domain::{
    Currency, License, LicenseId, LicenseState, OrderId, Price, ProductId, StoredParts, Timestamp,
    UserId,
};
use licenses_http::{Audience, LicenseBody, NotIncluded, license_resource};

const RUNS: usize = 7;

fn licenses(n: usize) -> Vec<License> {
    (0..n)
        .map(|i| {
            License::restore(StoredParts {
                id: LicenseId::parse(format!("0190f3c2-7a1e-7b4c-9d2e-{i:012}")).expect("id"),
                user: UserId::parse("user-000041").expect("user"),
                product: ProductId::parse(format!("product-{}", i % 200)).expect("product"),
                state: LicenseState::Active,
                start_date: Timestamp::from_unix(1_700_000_000),
                stop_date: Some(Timestamp::from_unix(1_800_000_000)),
                order_id: Some(OrderId::parse(format!("order-{i}")).expect("order")),
                price: Some(Price::new(999, Currency::parse("EUR").expect("EUR")).expect("price")),
                purchase_timestamp: Timestamp::from_unix(1_700_000_000),
                payment_method: Some("billing".to_owned()),
                recurring: false,
                expiry_date: None,
            })
            .expect("a license")
        })
        .collect()
}

/// The median time of one call of `f`, in nanoseconds, over `RUNS` runs of `iterations`.
fn median_ns(iterations: u32, mut f: impl FnMut() -> usize) -> f64 {
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..iterations {
                black_box(f());
            }
            started.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[RUNS / 2]
}

fn main() {
    let now = Timestamp::from_unix(1_750_000_000);
    for (what, n, iterations) in [
        ("a user's 10 licenses", 10, 20_000),
        ("a page of 1,000", 1_000, 200),
    ] {
        let stored = licenses(n);
        let doc = LicenseBody::<_, NotIncluded> {
            data: stored
                .iter()
                .map(|l| {
                    let link = format!(
                        "https://licenses.example/api/license/v4/users/user-000041/licenses/{}",
                        l.id()
                    );
                    license_resource(l, now, Audience::User, Some(link))
                })
                .collect::<Vec<_>>(),
            included: None,
            links: None,
        };
        let by_hand = doc.to_stored(StatusCode::OK).body;
        let by_serde = serde_json::to_vec(&doc).expect("serializes");
        assert_eq!(by_hand, by_serde, "the two ways must write the same bytes");
        let hand = median_ns(iterations, || doc.to_stored(StatusCode::OK).body.len());
        let serde = median_ns(iterations, || {
            serde_json::to_vec(&doc)
                .map(|b| b.len())
                .unwrap_or_default()
        });
        println!(
            "{what} ({} bytes): by hand {:.1} µs, serde_json {:.1} µs, serde / hand {:.2}",
            by_hand.len(),
            hand / 1000.0,
            serde / 1000.0,
            serde / hand
        );
    }
}
