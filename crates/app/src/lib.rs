//! The application layer: the ports (traits) through which use cases reach storage, Irdeto,
//! time and id generation, and the use cases the HTTP front-ends call.
//!
//! Front-ends call use cases, never a store; adapters implement the ports. Every port can be
//! mocked with mockall behind the `mock` feature, so use cases are unit-tested without I/O.

mod access;
mod catalogue;
mod entitlements;
mod error;
pub mod events;
mod idempotency;
mod import;
mod licenses;
pub mod ports;
mod products;
mod suspension;
mod system;
mod user;
pub mod webhooks;

use std::sync::Arc;

pub use access::Access;
pub use catalogue::{ProductCatalogue, Snapshot};
pub use entitlements::{
    BacklogReport, Delivery, DeliveryPolicy, DeliveryStats, Entitlements, FAILED_SHOWN,
};
pub use error::{AppError, Problem};
pub use events::{EventPageError, Events};
pub use idempotency::{IdempotencyKey, KEY_RETENTION_SECONDS};
pub use import::{ImportMode, ImportOutcome, RowOutcome};
pub use licenses::{LicenseFilter, LicensePage, MAX_BATCH, MAX_PAGE_SIZE, PageRequest};
pub use suspension::ILLEGAL_TRANSITION;
pub use system::{SystemClock, UuidV7Ids};
pub use user::{BILLING, PurchaseRequest, UserLicenses};

use ports::{Clock, IdSource, IdempotencyStore, LicenseStore, ProductStore};

/// The ports the use cases drive, each behind an `Arc` so tests swap in mocks.
#[derive(Clone)]
pub struct Ports {
    pub products: Arc<dyn ProductStore>,
    pub licenses: Arc<dyn LicenseStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ports")
    }
}

/// The use cases of both APIs, over one set of ports.
#[derive(Debug, Clone)]
pub struct App {
    ports: Ports,
    /// The products in memory, read by the user API's use cases (shared by every clone).
    catalogue: Arc<ProductCatalogue>,
    /// The Irdeto outbox, when the integration is enabled ([`App::with_entitlements`]).
    entitlements: Option<Entitlements>,
    /// The events outbox, when the feed and the sequencer's wake-ups are wired
    /// ([`App::with_events`]).
    events: Option<Events>,
    /// Webhook endpoints and deliveries ([`App::with_webhooks`]).
    webhooks: Option<webhooks::Webhooks>,
}

impl App {
    /// The use cases with the Irdeto integration disabled: licenses are settled at once and
    /// no entitlement job is queued.
    pub fn new(ports: Ports) -> Self {
        Self {
            catalogue: Arc::new(ProductCatalogue::new(Arc::clone(&ports.products))),
            ports,
            entitlements: None,
            events: None,
            webhooks: None,
        }
    }
}

#[cfg(test)]
pub(crate) mod testing;
