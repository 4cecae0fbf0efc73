//! Mocks of every port, and small builders, for the use-case tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use licenses_domain::{LicenseId, ProductDraft, ProductId, Timestamp};

use crate::idempotency::IdempotencyKey;
use crate::ports::{
    Clock, IdSource, MockIdempotencyStore, MockLicenseStore, MockProductStore, StoredResponse,
};
use crate::{App, Ports};

pub(crate) const NOW: Timestamp = Timestamp::from_unix(1_700_000_000);

/// Counts ids up: `p-1`, `p-2`… and `l-1`, `l-2`…
#[derive(Debug, Default)]
pub(crate) struct CountingIds {
    next: AtomicU32,
}

impl IdSource for CountingIds {
    fn license_id(&self) -> LicenseId {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        LicenseId::parse(format!("l-{n}")).expect("id")
    }
    fn product_id(&self) -> ProductId {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        ProductId::parse(format!("p-{n}")).expect("id")
    }
}

#[derive(Debug)]
pub(crate) struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        NOW
    }
}

pub(crate) struct Mocks {
    pub products: MockProductStore,
    pub licenses: MockLicenseStore,
    pub idempotency: MockIdempotencyStore,
}

impl Mocks {
    /// Mocks that expect nothing: every call a test does not expect fails it.
    pub fn new() -> Self {
        Self {
            products: MockProductStore::new(),
            licenses: MockLicenseStore::new(),
            idempotency: MockIdempotencyStore::new(),
        }
    }

    pub fn app(self) -> App {
        App::new(Ports {
            products: Arc::new(self.products),
            licenses: Arc::new(self.licenses),
            idempotency: Arc::new(self.idempotency),
            clock: Arc::new(FixedClock),
            ids: Arc::new(CountingIds::default()),
        })
    }
}

pub(crate) fn channel_product_draft(title: &str) -> ProductDraft {
    ProductDraft {
        title: Some(title.into()),
        product_type: Some("CHANNEL".into()),
        channels: [vec!["42".into()], vec![], vec![], vec![]],
        ..Default::default()
    }
}

pub(crate) fn response(status: u16, body: &str) -> StoredResponse {
    StoredResponse {
        status,
        body: body.as_bytes().to_vec(),
    }
}

pub(crate) fn key(key: &str, fingerprint: &str) -> IdempotencyKey {
    IdempotencyKey {
        scope: "key:test".into(),
        key: key.into(),
        fingerprint: fingerprint.into(),
    }
}
