//! The JSON:API layer shared by the management and user front-ends: error documents, request
//! documents read into domain drafts with a precise pointer for every problem, query
//! parameters, and the rendering of products and licenses.

pub mod docs;
pub mod encoding;
mod error;
pub mod openapi;
mod query;
mod rate;
mod read;
mod render;
mod request;
mod routes;

pub use error::{ApiError, ErrorObject};
pub use query::{Query, license_filter, page_request};
pub use rate::{RateLimiter, RateLimits, too_many_requests};
pub use read::{
    DocumentProblems, PurchaseDocument, read_batch_delete, read_license_batch, read_license_create,
    read_product_create, read_product_patch, read_purchase,
};
pub use render::{
    Audience, Document, DocumentLinks, LicenseBody, LicenseData, LicenseResource, Links,
    ProductResource, entitlements_document, license_resource, product_resource, respond, stored,
    to_stored,
};
pub use request::{JSONAPI, idempotency_key, read_body, require_jsonapi};
pub use routes::{Endpoint, Routes};
