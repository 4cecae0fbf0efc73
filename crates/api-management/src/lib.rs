//! The management API for the BSS, under `/api/license/management/v4`: products and
//! licenses, all twelve endpoints of seed 001, and a user's entitlements for the platform's
//! other services, behind `Authorization: Apikey KEY`.
//!
//! Handlers are thin: read the request into a domain draft, call the use case, render the
//! document. Rules live in the domain and the use cases; errors become JSON:API documents in
//! one place ([`licenses_http::ApiError`]). One module per resource: [`products`],
//! [`licenses`], [`batches`], [`users`] (a user's licenses and entitlements, and why they
//! may or may not watch), [`irdeto`] (the outbox), [`events`] (the event feed) and
//! [`webhooks`] (endpoints, deliveries, replays); here, the routes, the OpenAPI document and
//! what every handler shares.

mod auth;
mod batches;
mod events;
mod irdeto;
mod licenses;
mod products;
mod users;
mod webhooks;

use actix_web::middleware::from_fn;
use actix_web::{HttpMessage, HttpRequest, web};
use licenses_app::ports::Actor;
use licenses_app::{App, IdempotencyKey};
use licenses_domain::{License as StoredLicense, LicenseId, ProductId};
use licenses_http::jsonapi::ErrorDocument;
use licenses_http::openapi::{
    BadRequest, Conflict, ForbiddenClientId, NotFound, PayloadTooLarge, RelatedNotFound,
    ServiceUnavailable, UnauthorizedApikey, UnprocessableEntity, UnsupportedMediaType,
    add_apikey_scheme, add_consistency_header, add_limit_responses, add_member_rules,
    add_scope_responses,
};
use licenses_http::{
    ApiError, Endpoint, Links, Query, Routes, idempotency_key, read_body, require_jsonapi,
};
use utoipa::OpenApi;

use batches::{batch_create, batch_delete};
use events::list_events;
use irdeto::{irdeto_backlog, irdeto_retry};
use licenses::{create_license, delete_license, get_license, list_licenses};
use products::{create_product, delete_product, get_product, list_products, update_product};
use users::{user_access, user_entitlements, user_licenses};
use webhooks::{
    create_webhook, delete_webhook, get_webhook, list_deliveries, list_webhooks, replay_delivery,
    replay_failed, update_webhook,
};

pub use auth::{BadKeyHash, KeyName, ManagementKeys, Scope, Scopes, new_key};

/// Where the management API lives.
pub const PREFIX: &str = "/api/license/management/v4";

/// Largest request body: a batch of 10,000 licenses fits with room to spare.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Every route of the management API, declared once: [`configure`] mounts them, [`endpoints`]
/// lists them.
fn routes() -> Routes {
    Routes::new()
        .get("/products", list_products)
        .post("/products", create_product)
        .get("/products/{product_id}", get_product)
        .patch("/products/{product_id}", update_product)
        .delete("/products/{product_id}", delete_product)
        .get("/licenses", list_licenses)
        .post("/licenses", create_license)
        .post("/licenses/batch_create", batch_create)
        .post("/licenses/batch_delete", batch_delete)
        // Licenses are immutable: no PATCH or PUT, ever (seed 000).
        .get("/licenses/{license_id}", get_license)
        .delete("/licenses/{license_id}", delete_license)
        .get("/users/{user_id}/licenses", user_licenses)
        .get("/users/{user_id}/entitlements", user_entitlements)
        .get("/users/{user_id}/access", user_access)
        .get("/irdeto/backlog", irdeto_backlog)
        .post("/irdeto/jobs/{job_id}/retry", irdeto_retry)
        .get("/events", list_events)
        .get("/webhooks", list_webhooks)
        .post("/webhooks", create_webhook)
        .get("/webhooks/{webhook_id}", get_webhook)
        .patch("/webhooks/{webhook_id}", update_webhook)
        .delete("/webhooks/{webhook_id}", delete_webhook)
        .get("/webhooks/{webhook_id}/deliveries", list_deliveries)
        .post("/webhooks/{webhook_id}/replay", replay_failed)
        .post(
            "/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
            replay_delivery,
        )
}

/// Every route the management API answers, with its full path. All of them require a key.
pub fn endpoints() -> Vec<Endpoint> {
    routes().endpoints(PREFIX)
}

/// Mounts the management API. `app` runs the use cases; `keys` are the accepted API keys.
pub fn configure(app: App, keys: ManagementKeys) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        // Before the API's scope, whose middleware would ask for a key.
        licenses_http::api_docs::configure(cfg, PREFIX, openapi());
        let scope = web::scope(PREFIX)
            .app_data(web::Data::new(app))
            .app_data(web::Data::new(keys))
            // Innermost: a caller with a key learns that it asked for what is not served.
            .wrap(from_fn(licenses_http::acceptable_only))
            .wrap(from_fn(auth::require_key))
            // Before the key is looked at: an address with too many 401s gets 429.
            .wrap(from_fn(licenses_http::limit_auth_failures));
        let scope = routes()
            .into_resources()
            .into_iter()
            .fold(scope, |scope, resource| scope.service(resource));
        cfg.service(scope.default_service(web::to(not_found)));
    }
}

type Answer = Result<actix_web::HttpResponse, ApiError>;

/// The management API's OpenAPI document: every route of [`endpoints`], from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "AminoTV Licenses v4: management API",
        description = "Products and licenses for the BSS, a user's entitlements for the \
            platform's other services, and the Irdeto outbox. Every request carries \
            `Authorization: Apikey KEY`. Documents are JSON:API (`application/vnd.api+json`); \
            errors are JSON:API error documents with a stable `code`. A method a path does not \
            answer gets 405 with `Allow`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(products::list_products, products::create_product, products::get_product,
        products::update_product, products::delete_product, licenses::list_licenses,
        licenses::create_license, batches::batch_create, batches::batch_delete,
        licenses::get_license, licenses::delete_license, users::user_licenses,
        users::user_entitlements, users::user_access, irdeto::irdeto_backlog, irdeto::irdeto_retry,
        events::list_events, webhooks::list_webhooks, webhooks::create_webhook,
        webhooks::get_webhook, webhooks::update_webhook, webhooks::delete_webhook,
        webhooks::list_deliveries, webhooks::replay_failed, webhooks::replay_delivery),
    components(
        schemas(ErrorDocument<'_>, licenses_http::EventMessage<'_>),
        responses(BadRequest, UnauthorizedApikey, ForbiddenClientId, NotFound, RelatedNotFound, Conflict,
            PayloadTooLarge, UnsupportedMediaType, UnprocessableEntity, ServiceUnavailable),
    ),
    security(("Apikey" = [])),
    tags(
        (name = "Products", description = "The catalogue, as the BSS manages it."),
        (name = "Licenses", description = "Licenses: grant, list, revoke."),
        (name = "Entitlements", description = "What a user may watch."),
        (name = "Irdeto", description = "The outbox of entitlement jobs to Irdeto."),
        (name = "Events", description = "License and product changes, in commit order."),
        (name = "Webhooks", description = "Endpoints that receive the events, signed \
            (Standard Webhooks); their deliveries and replays."),
    ),
)]
struct ManagementApi;

/// The management API's OpenAPI 3.1 document, as served at
/// `/api/license/management/v4/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ManagementApi::openapi();
    add_apikey_scheme(&mut doc);
    add_limit_responses(&mut doc);
    add_consistency_header(&mut doc);
    add_scope_responses(&mut doc);
    add_member_rules(&mut doc);
    doc
}

async fn not_found() -> Answer {
    Err(ApiError::not_found(
        "no such endpoint in the management API",
    ))
}

/// Who is calling: the key's name, as the middleware found it.
pub(crate) fn caller(req: &HttpRequest) -> Result<String, ApiError> {
    req.extensions()
        .get::<KeyName>()
        .map(|k| k.0.clone())
        .ok_or_else(ApiError::internal)
}

/// A POST's body, after its content type is checked, and its idempotency key.
pub(crate) async fn post_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(web::Bytes, Option<IdempotencyKey>, Actor), ApiError> {
    require_jsonapi(req)?;
    let body = read_body(payload, BODY_LIMIT).await?;
    let name = caller(req)?;
    let key = idempotency_key(req, &format!("key:{name}"), &body)?;
    Ok((body, key, Actor::ManagementKey(name)))
}

pub(crate) fn no_params(req: &HttpRequest) -> Result<Query, ApiError> {
    Query::parse(req.query_string(), &[])
}

pub(crate) fn links(req: &HttpRequest) -> Links {
    Links::new(req, PREFIX)
}

pub(crate) fn product_id(raw: &str) -> Result<ProductId, ApiError> {
    ProductId::parse(raw).map_err(|_| ApiError::not_found("no product has this id"))
}

pub(crate) fn license_id(raw: &str) -> Result<LicenseId, ApiError> {
    LicenseId::parse(raw).map_err(|_| ApiError::not_found("no license has this id"))
}

pub(crate) fn license_self(links: &Links, l: &StoredLicense) -> Option<String> {
    Some(links.resource("/licenses/", l.id().as_str()))
}
