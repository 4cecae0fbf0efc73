//! The HTTP layer shared by the management and user front-ends.
//!
//! - [`jsonapi`]: JSON:API documents in and out — errors, request documents read into domain
//!   drafts, and response documents — with their OpenAPI schemas derived from those types.
//! - [`openapi`]: what the OpenAPI documents add to the types' schemas: security schemes,
//!   the error responses, header and query parameters, and the answers of the layers in front
//!   of the handlers.
//! - The actix glue: [`body`] (media type, body, `Idempotency-Key`), [`query`] (query
//!   parameters), [`routes`] (each API's route table), [`rate`] (rate limits), [`encoding`]
//!   (gzip copies of documents served from memory), [`headers`] (the security headers of
//!   every answer), [`origin`] (the public origin links are built from), [`redact`]
//!   (secrets in query strings, for logs and echoes) and [`api_docs`] (`openapi.json` and
//!   Swagger UI).

pub mod api_docs;
pub mod body;
pub mod encoding;
pub mod headers;
pub mod jsonapi;
pub mod openapi;
pub mod origin;
pub mod query;
pub mod rate;
pub mod redact;
pub mod routes;

pub use body::{
    BodyDeadlineExceeded, acceptable_only, idempotency_key, read_body, require_acceptable,
    require_jsonapi,
};
pub use headers::security_headers;
pub use jsonapi::request::{
    DocumentProblems, PurchaseDocument, read_batch_delete, read_license_batch, read_license_create,
    read_product_create, read_product_patch, read_purchase, read_webhook_create,
    read_webhook_patch,
};
pub use jsonapi::response::{
    Audience, Document, DocumentLinks, EventFeedDocument, EventMessage, License, LicenseBody,
    Links, ManagementProduct, MetaDocument, NotIncluded, Rendered, UserProduct,
    entitlements_document, event_message, event_object, license_resource, management_product,
    respond, segment, stored, to_stored, user_product, webhook_delivery_object, webhook_resource,
};
pub use jsonapi::{ApiError, ErrorObject, JSONAPI};
pub use origin::PublicOrigins;
pub use query::{Query, delivery_query, event_query, license_filter, page_request};
pub use rate::{
    AuthFailureLimiter, RateLimiter, RateLimits, client_addr, limit_auth_failures,
    too_many_requests,
};
pub use redact::{redact_path_and_query, redact_query};
pub use routes::{Endpoint, Routes};
