//! Fixtures shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use licenses_app::ports::{Actor, Change, IdempotencyRecord, StoredResponse};
use licenses_domain::{
    Currency, License, LicenseDefaultsDraft, LicenseId, LicenseState, OrderId, Price, PriceDraft,
    Product, ProductDraft, ProductId, Requested, StoredParts, Timestamp, UserId,
};
use licenses_store::{Store, StoreConfig};
use licenses_testkit::TestDatabase;

/// "Now" in every test.
pub const NOW: Timestamp = Timestamp::from_unix(1_700_000_000);

pub fn at(offset: i64) -> Timestamp {
    Timestamp::from_unix(NOW.unix() + offset)
}

pub fn config(url: &str) -> StoreConfig {
    StoreConfig::new(url, 4, Duration::from_secs(2))
}

/// A store on a database of its own, migrated. The store is dropped before the database.
pub struct Ctx {
    pub store: Store,
    pub db: TestDatabase,
}

impl Ctx {
    pub async fn new(db: TestDatabase) -> Ctx {
        let store = Store::open(&config(db.url())).expect("the store opens");
        store.migrate().await.expect("migrations apply");
        Ctx { store, db }
    }
}

pub fn pid(s: &str) -> ProductId {
    ProductId::parse(s).unwrap()
}

pub fn lid(s: &str) -> LicenseId {
    LicenseId::parse(s).unwrap()
}

pub fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

/// A product with every attribute set.
pub fn full_product(id: &str) -> Product {
    Product::new(
        pid(id),
        ProductDraft {
            title: Some("Sport channels megapack".into()),
            description: Some("Complete collection — all sports channels, «ünïcode»".into()),
            product_type: Some("CHANNEL_GROUP".into()),
            is_premium: Some(true),
            is_user_visible: Some(false),
            is_buyable: Some(false),
            auto_grant_on_signup: Some(true),
            price_record: Some(PriceDraft {
                amount: Some(999),
                currency: Some("EUR".into()),
            }),
            license_defaults: Some(LicenseDefaultsDraft {
                duration: Some(30 * 86_400),
                auto_renew: Some(true),
            }),
            irdeto_product_id: Some("IRD-SPORT-01".into()),
            channels: [
                vec!["42".into(), "43".into()],
                vec!["42".into()],
                vec!["44".into()],
                vec!["45".into(), "42".into()],
            ],
        },
    )
    .unwrap()
}

/// A product with only what is required.
pub fn plain_product(id: &str) -> Product {
    Product::new(
        pid(id),
        ProductDraft {
            title: Some("One channel".into()),
            product_type: Some("CHANNEL".into()),
            channels: [vec!["7".into()], vec![], vec![], vec![]],
            ..Default::default()
        },
    )
    .unwrap()
}

/// A license as stored, with the given state and dates; everything else left empty.
pub fn license(
    id: &str,
    user: &str,
    product: &str,
    state: LicenseState,
    start: Timestamp,
    stop: Option<Timestamp>,
) -> License {
    License::restore(StoredParts {
        id: lid(id),
        user: uid(user),
        product: pid(product),
        state,
        start_date: start,
        stop_date: stop,
        order_id: None,
        price: None,
        purchase_timestamp: start,
        payment_method: None,
        recurring: false,
        expiry_date: None,
    })
    .unwrap()
}

/// An ACTIVE license from an hour ago, without end.
pub fn active(id: &str, user: &str, product: &str) -> License {
    license(id, user, product, LicenseState::Active, at(-3600), None)
}

/// A license with every attribute set.
pub fn full_license(id: &str, user: &str, product: &str, state: LicenseState) -> License {
    License::restore(StoredParts {
        id: lid(id),
        user: uid(user),
        product: pid(product),
        state,
        start_date: at(-86_400),
        stop_date: Some(at(86_400)),
        order_id: Some(OrderId::parse(format!("order-{id}")).unwrap()),
        price: Some(Price::new(1250, Currency::parse("JPY").unwrap()).unwrap()),
        purchase_timestamp: at(-90_000),
        payment_method: Some("billing".into()),
        recurring: true,
        expiry_date: Some(at(172_800)),
    })
    .unwrap()
}

/// `license` with an order id.
pub fn with_order(l: &License, order: &str) -> License {
    License::restore(StoredParts {
        id: l.id().clone(),
        user: l.user().clone(),
        product: l.product().clone(),
        state: l.state().clone(),
        start_date: l.start_date(),
        stop_date: l.stop_date(),
        order_id: Some(OrderId::parse(order).unwrap()),
        price: l.purchase_record().price(),
        purchase_timestamp: l.purchase_record().purchase_timestamp(),
        payment_method: l.purchase_record().payment_method().map(str::to_owned),
        recurring: l.renew_record().recurring(),
        expiry_date: l.renew_record().expiry_date(),
    })
    .unwrap()
}

pub fn every_state() -> Vec<LicenseState> {
    vec![
        LicenseState::Active,
        LicenseState::Suspended,
        LicenseState::SuspendedAdmin,
        LicenseState::Processing {
            requested: Requested::Active,
        },
        LicenseState::Processing {
            requested: Requested::Suspended,
        },
        LicenseState::OrderError {
            reason: "refused by Irdeto".into(),
        },
        LicenseState::CheckInvalid {
            reason: String::new(),
        },
    ]
}

pub fn change() -> Change {
    Change {
        actor: Actor::ManagementKey("bss".into()),
        at: NOW,
        idempotency: None,
    }
}

pub fn record(scope: &str, key: &str, created_at: Timestamp) -> IdempotencyRecord {
    IdempotencyRecord {
        scope: scope.to_owned(),
        key: key.to_owned(),
        fingerprint: format!("sha256:{scope}:{key}"),
        response: StoredResponse {
            status: 201,
            body: b"{\"data\":{\"type\":\"License\"}}\x00\xff".to_vec(),
        },
        created_at,
    }
}

pub fn change_with(record: IdempotencyRecord) -> Change {
    Change {
        actor: Actor::User(uid("41")),
        at: NOW,
        idempotency: Some(record),
    }
}
