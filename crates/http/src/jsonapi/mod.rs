//! JSON:API documents in and out, free of routing: the error document ([`ApiError`]),
//! request documents read into domain drafts ([`request`]), and products, licenses and
//! entitlements rendered as response documents ([`response`]). The types of both sides
//! derive their OpenAPI schemas (`utoipa::ToSchema`), so the published documents are
//! described by the code that reads and writes them.

mod error;
mod media_type;
pub mod request;
pub mod resource_type;
pub mod response;

pub use error::{ApiError, ErrorDocument, ErrorMeta, ErrorObject, MAX_PROBLEMS, Source};
pub use media_type::JSONAPI;
