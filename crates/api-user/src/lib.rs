//! The user API for client apps (set-top boxes, phones, web), under `/api/license/v4`: the
//! catalogue, a user's licenses, purchase (seeds 002 and 003) and a user's entitlements,
//! behind `Authorization: Bearer TOKEN`, where the token is a JWT whose `sub` is the user.
//!
//! Handlers are thin: read the request, call the use case, render the document with
//! [`Audience::User`], so no management-only member (visibility, buyability, DRM mapping,
//! status reasons) ever reaches a client. Errors become JSON:API documents in one place
//! ([`licenses_http::ApiError`]).

mod auth;
mod cache;
mod cors;
mod token;

use actix_web::http::StatusCode;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{HttpRequest, HttpResponse, web};
use licenses_app::{App, PurchaseRequest};
use licenses_domain::{License, LicenseId, Timestamp, UserId};
use licenses_http::jsonapi::ErrorDocument;
use licenses_http::jsonapi::request::PurchaseDocument;
use licenses_http::jsonapi::response::{
    AccessQuestion, EntitlementsDocument, UserAccessDocument, user_access_document,
};
use licenses_http::openapi::{
    BadRequest, Conflict, ForbiddenOwner, ForbiddenPurchase, IfNoneMatchHeader, NotFound,
    PayloadTooLarge, RequiredIdempotencyKeyHeader, ServiceUnavailable, UnauthorizedBearer,
    UnprocessableEntity, UnsupportedMediaType, add_bearer_scheme, add_consistency_header,
    add_limit_responses,
};
use licenses_http::query::{AccessParams, QueryParams, StatusFilter, access_query};
use licenses_http::segment;
use licenses_http::{
    ApiError, Audience, Document, DocumentLinks, Endpoint, License as LicenseResource, LicenseBody,
    Links, NotIncluded, Query, Rendered, Routes, UserProduct, entitlements_document,
    idempotency_key, license_filter, license_resource, read_body, read_purchase, redact_query,
    require_jsonapi, respond, stored, to_stored, user_product,
};
use utoipa::OpenApi;

pub use token::{
    Algorithm, Claims, DEFAULT_LEEWAY_SECONDS, DEFAULT_MAX_TTL_SECONDS, JwksConfig, JwksSource,
    KeySettings, MAX_JWKS_BYTES, MIN_SECRET_BYTES, MintError, PURCHASE_RESTRICTED,
    TokenConfigError, TokenError, TokenSettings, TokenVerifier, mint_token,
};

/// Where the user API lives.
pub const PREFIX: &str = "/api/license/v4";

/// Largest request body. A purchase document is a few hundred bytes; anything near this is
/// not one, and is refused (413) before it is read further.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The routes of the user API outside a user's own paths: the catalogue.
fn public_routes() -> Routes {
    Routes::new().get("/products", catalogue)
}

/// Where a user's own routes live: only that user's token may call them.
const OWNED: &str = "/users/{user_id}";

/// The routes under [`OWNED`].
fn owned_routes() -> Routes {
    // Licenses are immutable (seed 000): nothing but GET on one, ever.
    Routes::new()
        .get("/licenses", user_licenses)
        .post("/licenses", purchase)
        .get("/licenses/{license_id}", user_license)
        .get("/entitlements", entitlements)
        .get("/access", access)
}

/// Every route the user API answers, with its full path. All of them require a token; those
/// under `/users/{user_id}` require that user's.
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = public_routes().endpoints(PREFIX);
    all.extend(owned_routes().endpoints(&format!("{PREFIX}{OWNED}")));
    all
}

/// Mounts the user API. `app` runs the use cases; `tokens` verifies user tokens;
/// `cors_origins` are the browser origins allowed to call it (none: no CORS headers at all).
pub fn configure(
    app: App,
    tokens: TokenVerifier,
    cors_origins: Vec<String>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        // Before the API's scope, whose middleware would ask for a token.
        licenses_http::api_docs::configure(cfg, PREFIX, openapi());
        let owned = owned_routes()
            .into_resources()
            .into_iter()
            .fold(
                web::scope(OWNED).wrap(from_fn(auth::require_owner)),
                |scope, resource| scope.service(resource),
            )
            // A nested scope falls back to the application's default, not ours.
            .default_service(web::to(not_found));
        let scope = web::scope(PREFIX)
            .app_data(web::Data::new(app))
            .app_data(web::Data::new(cache::RenderedCatalogue::default()))
            .app_data(web::Data::new(tokens))
            // Innermost first: what the caller accepts (406), the token, then CORS outside
            // them, so that a preflight (which carries no token) is answered and every
            // answer, errors included, gets the CORS headers.
            .wrap(from_fn(licenses_http::acceptable_only))
            .wrap(from_fn(auth::require_token))
            // Before the token is looked at: an address with too many 401s gets 429.
            .wrap(from_fn(licenses_http::limit_auth_failures))
            .wrap(Condition::new(
                !cors_origins.is_empty(),
                cors::cors(&cors_origins),
            ))
            .wrap(from_fn(cors::refusals_as_jsonapi));
        let scope = public_routes()
            .into_resources()
            .into_iter()
            .fold(scope, |scope, resource| scope.service(resource));
        cfg.service(scope.service(owned).default_service(web::to(not_found)));
    }
}

type Answer = Result<HttpResponse, ApiError>;

/// The user API's OpenAPI document: every route of [`endpoints`], from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "AminoTV Licenses v4: user API",
        description = "The catalogue, a user's licenses, purchases and entitlements, for client \
            apps. Every request carries `Authorization: Bearer TOKEN`, a JWT whose `sub` is the \
            user; paths under `/users/{user_id}` answer only that user's token. Documents are \
            JSON:API (`application/vnd.api+json`); errors are JSON:API error documents with a \
            stable `code`. A method a path does not answer gets 405 with `Allow`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(catalogue, user_licenses, purchase, user_license, entitlements, access),
    components(
        schemas(ErrorDocument<'_>),
        responses(BadRequest, UnauthorizedBearer, ForbiddenOwner, ForbiddenPurchase, NotFound,
            Conflict, PayloadTooLarge, UnsupportedMediaType, UnprocessableEntity,
            ServiceUnavailable),
    ),
    security(("Bearer" = [])),
    tags(
        (name = "Products", description = "The catalogue."),
        (name = "Licenses", description = "A user's licenses and purchases."),
        (name = "Entitlements", description = "What a user may watch."),
    ),
)]
struct UserApi;

/// The user API's OpenAPI 3.1 document, as served at `/api/license/v4/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = UserApi::openapi();
    add_bearer_scheme(&mut doc);
    add_limit_responses(&mut doc);
    add_consistency_header(&mut doc);
    doc
}

async fn not_found() -> Answer {
    Err(ApiError::not_found("no such endpoint in the user API"))
}

fn no_params(req: &HttpRequest) -> Result<Query, ApiError> {
    Query::parse(req.query_string(), &[])
}

/// The user of the path; the owner middleware has already matched it with the token.
fn user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).map_err(|e| ApiError::not_found(format!("user id {e}")))
}

fn license_id(raw: &str) -> Result<LicenseId, ApiError> {
    LicenseId::parse(raw).map_err(|_| ApiError::not_found("no license has this id"))
}

fn links(req: &HttpRequest) -> Links {
    Links::new(req, PREFIX)
}

/// A license as a user sees it, with the URL where they can read it again.
fn license<'a>(l: &'a License, now: Timestamp, links: &Links) -> LicenseResource<'a> {
    let self_link = links.url_of(&[
        "/users/",
        &segment(l.user().as_str()),
        "/licenses/",
        &segment(l.id().as_str()),
    ]);
    license_resource(l, now, Audience::User, Some(self_link))
}

/// The products and the catalogue, as rendered once per catalogue snapshot
/// ([`cache::RenderedCatalogue`]).
const RENDERER: cache::Renderer = cache::Renderer {
    product: |p| Rendered::render(&user_product(p)),
    catalogue: |products| {
        let doc = Document::<_, NotIncluded> {
            data: products
                .into_iter()
                .map(Rendered::<UserProduct<'_>>::from_text)
                .collect::<Vec<_>>(),
            included: None,
            links: None,
        };
        to_stored(StatusCode::OK, &doc).body
    },
};

#[utoipa::path(
    get,
    path = "/api/license/v4/products",
    operation_id = "GetAllProducts",
    summary = "The catalogue",
    tag = "Products",
    params(IfNoneMatchHeader),
    responses(
        (status = 200, description = "The products a client app may show, with their channels.",
            body = Document<Vec<Rendered<'_, UserProduct<'_>>>>, content_type = "application/vnd.api+json",
            headers(
                ("ETag" = String, description = "Strong tag of the body, for `If-None-Match`."),
                ("Cache-Control" = String, description = "`private, max-age=60`."),
            )),
        (status = 304, description = "`If-None-Match` names the current tag: the catalogue has \
            not changed.",
            headers(
                ("ETag" = String, description = "The current tag."),
                ("Cache-Control" = String, description = "`private, max-age=60`."),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedBearer),
        (status = 503, response = ServiceUnavailable),
    ),
)]
/// GetAllProducts: the user-visible catalogue, cacheable and revalidated by its `ETag`.
async fn catalogue(
    state: web::Data<App>,
    rendered: web::Data<cache::RenderedCatalogue>,
    req: HttpRequest,
) -> Answer {
    no_params(&req)?;
    // From memory: the snapshot, and its rendering made once per snapshot.
    let snapshot = state.catalogue_snapshot().await?;
    let rendered = rendered.get(&snapshot, &RENDERER);
    Ok(cache::conditional_rendered(
        &req,
        &rendered,
        cache::CATALOGUE_CACHE_CONTROL,
    ))
}

#[utoipa::path(
    get,
    path = "/api/license/v4/users/{user_id}/licenses",
    operation_id = "GetUserLicenses",
    summary = "The user's licenses",
    tag = "Licenses",
    params(("user_id" = String, Path, description = "The user, as in the token's `sub`.", min_length = 1, max_length = 255, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "41"), StatusFilter),
    responses(
        (status = 200, description = "The user's licenses, each product once in `included`.",
            body = LicenseBody<Vec<LicenseResource<'_>>, Rendered<'_, UserProduct<'_>>>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedBearer),
        (status = 403, response = ForbiddenOwner),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
/// GetUserLicenses: every license of the user (or those of `filter[status]`), each product
/// once in `included`.
async fn user_licenses(
    state: web::Data<App>,
    rendered: web::Data<cache::RenderedCatalogue>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let query = Query::parse(req.query_string(), &[StatusFilter::NAMES])?;
    let statuses = license_filter(&query)?.statuses;
    let user = user_id(&path)?;
    let found = state.user_licenses(&user, statuses).await?;
    // The products as rendered once for this catalogue snapshot.
    let rendered = found.catalogue.as_ref().map(|c| rendered.get(c, &RENDERER));
    let included = match &rendered {
        Some(rendered) => found
            .products()
            .into_iter()
            .filter_map(|p| rendered.product(p.id()))
            .map(Rendered::<UserProduct<'_>>::from_text)
            .collect(),
        None => Vec::new(),
    };
    let (licenses, now) = (&found.licenses, found.now);
    let links = links(&req);
    // The query as sent, any secret in it redacted (it is echoed).
    let here = match redact_query(req.query_string()).as_ref() {
        "" => links.url_of(&["/users/", &segment(user.as_str()), "/licenses"]),
        q => links.url_of(&["/users/", &segment(user.as_str()), "/licenses?", q]),
    };
    let doc = LicenseBody {
        data: licenses
            .iter()
            .map(|l| license(l, now, &links))
            .collect::<Vec<_>>(),
        included: Some(included),
        links: Some(DocumentLinks {
            self_: here,
            next: None,
        }),
    };
    Ok(doc.respond(StatusCode::OK))
}

#[utoipa::path(
    get,
    path = "/api/license/v4/users/{user_id}/licenses/{license_id}",
    operation_id = "GetUserLicense",
    summary = "One license of the user",
    tag = "Licenses",
    params(("user_id" = String, Path, description = "The user, as in the token's `sub`.", min_length = 1, max_length = 255, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "41"), ("license_id" = String, Path, description = "The license.", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "42")),
    responses(
        (status = 200, description = "The license, with its product in `included`.",
            body = LicenseBody<LicenseResource<'_>, UserProduct<'_>>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedBearer),
        (status = 403, response = ForbiddenOwner),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
/// One license of the user (its `links.self`), with its product; 404 if it is not theirs.
async fn user_license(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Answer {
    no_params(&req)?;
    let (user, id) = path.into_inner();
    let user = user_id(&user)?;
    let (found, now) = state.get_license(&license_id(&id)?).await?;
    if found.user() != &user {
        // The same answer as for an id that does not exist: ids of others are not confirmed.
        return Err(ApiError::not_found("no license has this id"));
    }
    let products = state.user_products_of(std::slice::from_ref(&found)).await?;
    let doc = LicenseBody {
        data: license(&found, now, &links(&req)),
        included: Some(products.iter().map(user_product).collect::<Vec<_>>()),
        links: None,
    };
    Ok(doc.respond(StatusCode::OK))
}

fn key_required() -> ApiError {
    ApiError::header(
        "Idempotency-Key",
        "idempotency_key_required",
        "a purchase needs an Idempotency-Key header (a new UUID per purchase, the same one \
         for its retries)",
    )
}

#[utoipa::path(
    post,
    path = "/api/license/v4/users/{user_id}/licenses",
    operation_id = "PurchaseUserLicense",
    summary = "Purchase a product",
    tag = "Licenses",
    params(("user_id" = String, Path, description = "The user, as in the token's `sub`.", min_length = 1, max_length = 255, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "41"), RequiredIdempotencyKeyHeader),
    request_body(content = PurchaseDocument, content_type = "application/vnd.api+json",
        description = "The product to buy, and how it is paid."),
    responses(
        (status = 201, description = "The new license, with its product in `included`; a \
            retry with the same `Idempotency-Key` gets the same answer.",
            body = LicenseBody<LicenseResource<'_>, UserProduct<'_>>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedBearer),
        (status = 403, response = ForbiddenPurchase),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    ),
)]
/// PurchaseUserLicense: 201 with the license and its product; a retry with the same
/// `Idempotency-Key` gets the same bytes back.
async fn purchase(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    no_params(&req)?;
    require_jsonapi(&req)?;
    let user = user_id(&path)?;
    let body = read_body(payload, BODY_LIMIT).await?;
    let key = idempotency_key(&req, &format!("user:{user}"), &body)?.ok_or_else(key_required)?;
    let doc = read_purchase(&body)?;
    let request = PurchaseRequest {
        user,
        restricted: auth::claims(&req)?.purchase_restricted(),
        product: doc.product,
        payment_method: doc.payment_method,
        order_id: doc.order_id,
    };
    let links = links(&req);
    let answer = state
        .purchase(request, key, |l, p, now| {
            let doc = LicenseBody {
                data: license(l, now, &links),
                included: Some(vec![user_product(p)]),
                links: None,
            };
            doc.to_stored(StatusCode::CREATED)
        })
        .await?;
    Ok(stored(answer))
}

#[utoipa::path(
    get,
    path = "/api/license/v4/users/{user_id}/entitlements",
    operation_id = "GetUserEntitlements",
    summary = "What the user may watch now",
    tag = "Entitlements",
    params(("user_id" = String, Path, description = "The user, as in the token's `sub`.", min_length = 1, max_length = 255, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "41")),
    responses(
        (status = 200, description = "What the user may watch now, per channel.",
            body = EntitlementsDocument<'_>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedBearer),
        (status = 403, response = ForbiddenOwner),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
/// What the user may watch now.
async fn entitlements(state: web::Data<App>, req: HttpRequest, path: web::Path<String>) -> Answer {
    no_params(&req)?;
    let user = user_id(&path)?;
    let (entitlements, at) = state.entitlements(&user).await?;
    Ok(respond(
        StatusCode::OK,
        &entitlements_document(&user, &entitlements, at),
    ))
}

#[utoipa::path(
    get,
    path = "/api/license/v4/users/{user_id}/access",
    operation_id = "ExplainUserAccess",
    summary = "Why the user may or may not watch a service on a channel",
    description = "Answers whether the user may watch `service` on `channel` now, until when, \
        and if not, why, as stable reason codes with the license and product behind each. \
        Less than support staff see: no DRM job state, attempts or errors, no `detail` text, \
        nothing included.",
    tag = "Entitlements",
    params(("user_id" = String, Path, description = "The user, as in the token's `sub`.", min_length = 1, max_length = 255, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "41"), AccessParams),
    responses(
        (status = 200, description = "Whether the user may watch, and why.",
            body = UserAccessDocument<'_>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedBearer),
        (status = 403, response = ForbiddenOwner),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
/// Why the user may or may not watch a service on a channel now (less detail than the
/// management API's: see [`licenses_http::jsonapi::response::UserAccessDocument`]).
async fn access(state: web::Data<App>, req: HttpRequest, path: web::Path<String>) -> Answer {
    let query = Query::parse(req.query_string(), &[AccessParams::NAMES])?;
    let user = user_id(&path)?;
    let (channel, service) = access_query(&query)?;
    let access = state.explain_access(&user, &channel, service).await?;
    Ok(respond(
        StatusCode::OK,
        &user_access_document(AccessQuestion {
            user: &user,
            channel: &channel,
            service,
            at: access.at,
            explanation: &access.explanation,
        }),
    ))
}
