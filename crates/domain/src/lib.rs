//! The licenses domain: products, licenses, their statuses, the entitlement resolution and
//! its explanation (why a user may or may not watch).
//!
//! This crate is pure — no I/O, no async runtime, no web or database framework — so that
//! other AminoTV services (playback, nPVR, catch-up) can reuse the same rules to decide what
//! a user may watch.
//!
//! Values are built only through validating constructors ([`Product::new`],
//! [`License::grant`]); a license is immutable and its status changes consume it and return a
//! new value. Invalid input is reported as a list of [`Violation`]s, each with a JSON pointer
//! relative to the resource object (`/attributes/title`), so an API can point at the member.

mod entitlements;
mod explain;
mod ids;
mod license;
mod money;
mod product;
mod time;
mod violation;

pub use entitlements::{ChannelGrants, Entitlements, Grant, resolve};
pub use explain::{DrmJob, DrmJobState, Explanation, Reason, ReasonCode, explain};
pub use ids::{ChannelId, IdError, LicenseId, OrderId, ProductId, UserId};
pub use license::{
    Activation, IllegalTransition, License, LicenseDraft, LicenseState, LicenseStatus,
    PurchaseDraft, PurchaseRecord, RenewDraft, Renewal, Requested, StoredParts, UnknownStatus,
};
pub use money::{Currency, Price, PriceDraft};
pub use product::{
    ChannelServices, LicenseDefaults, LicenseDefaultsDraft, Product, ProductDraft, ProductPatch,
    ProductType, Service,
};
pub use time::Timestamp;
pub use violation::{Violation, Violations};
