//! The management API for the BSS, under `/api/license/management/v4`: products and
//! licenses, all twelve endpoints of seed 001, and a user's entitlements for the platform's
//! other services, behind `Authorization: Apikey KEY`.
//!
//! Handlers are thin: read the request into a domain draft, call the use case, render the
//! document. Rules live in the domain and the use cases; errors become JSON:API documents in
//! one place ([`licenses_http::ApiError`]).

mod auth;

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use licenses_app::ports::{Actor, StoredResponse};
use licenses_app::{App, IdempotencyKey};
use licenses_domain::{License, LicenseId, Product, ProductId, Timestamp, UserId};
use licenses_http::openapi::{
    BadRequest, Conflict, CreatedLicenseDocument, CreatedLicensesDocument, DeletedDocument,
    EntitlementsDocument, ErrorDocument, ForbiddenClientId, IdempotencyKeyHeader, IncludeParam,
    LicenseBatchDocument, LicenseCreateDocument, LicenseDeleteBatchDocument, LicenseDocument,
    LicenseListParams, LicensesDocument, NotFound, PayloadTooLarge, ProductCreateDocument,
    ProductDocument, ProductPatchDocument, ProductsDocument, ServiceUnavailable,
    UnauthorizedApikey, UnprocessableEntity, UnsupportedMediaType, UserFilter, add_apikey_scheme,
    add_limit_responses,
};
use licenses_http::{
    ApiError, Audience, Document, DocumentLinks, Endpoint, LicenseBody, LicenseData, Links, Query,
    Routes, entitlements_document, idempotency_key, license_filter, license_resource, page_request,
    product_resource, read_batch_delete, read_body, read_license_batch, read_license_create,
    read_product_create, read_product_patch, require_jsonapi, respond, stored, to_stored,
};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

pub use auth::{BadKeyHash, KeyName, ManagementKeys, new_key};

/// Where the management API lives.
pub const PREFIX: &str = "/api/license/management/v4";

/// Largest request body: a batch of 10,000 licenses fits with room to spare.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

const LIST_PARAMS: &[&str] = &[
    "filter[user]",
    "filter[product]",
    "filter[status]",
    "filter[active_at]",
    "include",
    "page[size]",
    "page[after]",
];
const USER_LIST_PARAMS: &[&str] = &[
    "filter[product]",
    "filter[status]",
    "filter[active_at]",
    "include",
    "page[size]",
    "page[after]",
];

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
        .get("/irdeto/backlog", irdeto_backlog)
        .post("/irdeto/jobs/{job_id}/retry", irdeto_retry)
}

/// Every route the management API answers, with its full path. All of them require a key.
pub fn endpoints() -> Vec<Endpoint> {
    routes().endpoints(PREFIX)
}

/// Mounts the management API. `app` runs the use cases; `keys` are the accepted API keys.
pub fn configure(app: App, keys: ManagementKeys) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        // Before the API's scope, whose middleware would ask for a key.
        licenses_http::docs::configure(cfg, PREFIX, openapi());
        let scope = web::scope(PREFIX)
            .app_data(web::Data::new(app))
            .app_data(web::Data::new(keys))
            .wrap(from_fn(auth::require_key));
        let scope = routes()
            .into_resources()
            .into_iter()
            .fold(scope, |scope, resource| scope.service(resource));
        cfg.service(scope.default_service(web::to(not_found)));
    }
}

/// A meta-only JSON:API document.
#[derive(Serialize)]
struct MetaDocument<M> {
    meta: M,
}

/// GetIrdetoBacklog's answer.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BacklogDocument {
    meta: BacklogMeta,
}

/// RetryIrdetoJob's answer.
#[derive(ToSchema)]
#[allow(dead_code)]
struct RetryDocument {
    meta: RetryMeta,
}

#[derive(Serialize, ToSchema)]
struct BacklogMeta {
    irdeto: IrdetoBacklog,
}

#[derive(Serialize, ToSchema)]
struct IrdetoBacklog {
    enabled: bool,
    /// PENDING jobs due now (in flight included).
    due: u64,
    /// PENDING jobs waiting for their next try.
    retrying: u64,
    /// Jobs given up on: refused for good, or failed `irdeto.max_attempts` times.
    failed: u64,
    /// The newest failed jobs, for `POST /irdeto/jobs/{id}/retry`.
    failed_jobs: Vec<FailedJobMeta>,
}

#[derive(Serialize, ToSchema)]
struct FailedJobMeta {
    id: String,
    #[schema(value_type = JobKind)]
    kind: &'static str,
    license_id: String,
    attempts: u32,
    last_error: Option<String>,
}

/// GET /irdeto/backlog: how many entitlement jobs are due, retrying and failed.
#[utoipa::path(
    get,
    path = "/api/license/management/v4/irdeto/backlog",
    operation_id = "GetIrdetoBacklog",
    summary = "The Irdeto outbox: jobs due, retrying and failed",
    tag = "Irdeto",
    responses(
        (status = 200, description = "The entitlement jobs due, retrying and failed.",
            body = BacklogDocument, content_type = "application/vnd.api+json"),
        (status = 401, response = UnauthorizedApikey),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn irdeto_backlog(app: web::Data<App>) -> Answer {
    let report = app.entitlement_backlog().await?;
    let doc = MetaDocument {
        meta: BacklogMeta {
            irdeto: IrdetoBacklog {
                enabled: report.enabled,
                due: report.counts.due,
                retrying: report.counts.retrying,
                failed: report.counts.failed,
                failed_jobs: report
                    .failed
                    .into_iter()
                    .map(|j| FailedJobMeta {
                        id: j.id.to_string(),
                        kind: match j.kind {
                            licenses_app::ports::JobKind::Grant => "GRANT",
                            licenses_app::ports::JobKind::Revoke => "REVOKE",
                        },
                        license_id: j.license.into_string(),
                        attempts: j.attempts,
                        last_error: j.last_error,
                    })
                    .collect(),
            },
        },
    };
    Ok(respond(StatusCode::OK, &doc))
}

/// GRANT or REVOKE.
#[derive(ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)]
enum JobKind {
    GRANT,
    REVOKE,
}

/// The state of a job retried: PENDING.
#[derive(ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)]
enum RetriedState {
    PENDING,
}

#[derive(Serialize, ToSchema)]
struct RetryMeta {
    job: String,
    #[schema(value_type = RetriedState)]
    state: &'static str,
}

/// POST /irdeto/jobs/{job_id}/retry: a failed job is due again now, attempts reset.
#[utoipa::path(
    post,
    path = "/api/license/management/v4/irdeto/jobs/{job_id}/retry",
    operation_id = "RetryIrdetoJob",
    summary = "Make a failed Irdeto job due again",
    tag = "Irdeto",
    params(("job_id" = String, Path, description = "The entitlement job, as `meta.irdeto.failed_jobs[].id` gives it.", example = "1")),
    responses(
        (status = 202, description = "The failed job is due again now, its attempts reset.",
            body = RetryDocument, content_type = "application/vnd.api+json"),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn irdeto_retry(app: web::Data<App>, path: web::Path<String>) -> Answer {
    let id: i64 = path
        .parse()
        .map_err(|_| ApiError::not_found("no entitlement job has this id"))?;
    app.retry_entitlement_job(id).await?;
    Ok(respond(
        StatusCode::ACCEPTED,
        &MetaDocument {
            meta: RetryMeta {
                job: id.to_string(),
                state: "PENDING",
            },
        },
    ))
}

type Answer = Result<HttpResponse, ApiError>;

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
    paths(list_products, create_product, get_product, update_product, delete_product,
        list_licenses, create_license, batch_create, batch_delete, get_license, delete_license,
        user_licenses, user_entitlements, irdeto_backlog, irdeto_retry),
    components(
        schemas(ErrorDocument),
        responses(BadRequest, UnauthorizedApikey, ForbiddenClientId, NotFound, Conflict,
            PayloadTooLarge, UnsupportedMediaType, UnprocessableEntity, ServiceUnavailable),
    ),
    security(("Apikey" = [])),
    tags(
        (name = "Products", description = "The catalogue, as the BSS manages it."),
        (name = "Licenses", description = "Licenses: grant, list, revoke."),
        (name = "Entitlements", description = "What a user may watch."),
        (name = "Irdeto", description = "The outbox of entitlement jobs to Irdeto."),
    ),
)]
struct ManagementApi;

/// The management API's OpenAPI 3.1 document, as served at
/// `/api/license/management/v4/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ManagementApi::openapi();
    add_apikey_scheme(&mut doc);
    add_limit_responses(&mut doc);
    doc
}

async fn not_found() -> Answer {
    Err(ApiError::not_found(
        "no such endpoint in the management API",
    ))
}

/// Who is calling: the key's name, as the middleware found it.
fn caller(req: &HttpRequest) -> Result<String, ApiError> {
    req.extensions()
        .get::<KeyName>()
        .map(|k| k.0.clone())
        .ok_or_else(ApiError::internal)
}

/// A POST's body, after its content type is checked, and its idempotency key.
async fn post_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(web::Bytes, Option<IdempotencyKey>, Actor), ApiError> {
    require_jsonapi(req)?;
    let body = read_body(payload, BODY_LIMIT).await?;
    let name = caller(req)?;
    let key = idempotency_key(req, &format!("key:{name}"), &body)?;
    Ok((body, key, Actor::ManagementKey(name)))
}

fn no_params(req: &HttpRequest) -> Result<Query, ApiError> {
    Query::parse(req.query_string(), &[])
}

fn links(req: &HttpRequest) -> Links {
    Links::new(req, PREFIX)
}

fn product_id(raw: &str) -> Result<ProductId, ApiError> {
    ProductId::parse(raw).map_err(|_| ApiError::not_found("no product has this id"))
}

fn license_id(raw: &str) -> Result<LicenseId, ApiError> {
    LicenseId::parse(raw).map_err(|_| ApiError::not_found("no license has this id"))
}

fn product_doc(p: &Product, links: &Links) -> impl Serialize {
    Document::<_, ()> {
        data: product_resource(
            p,
            Audience::Management,
            Some(links.url(&format!("/products/{}", p.id()))),
        ),
        included: None,
        links: None,
    }
}

fn license_self(links: &Links, l: &License) -> Option<String> {
    Some(links.url_of(&["/licenses/", l.id().as_str()]))
}

#[utoipa::path(
    get,
    path = "/api/license/management/v4/products",
    operation_id = "GetAllProducts",
    summary = "Every product",
    tag = "Products",
    responses(
        (status = 200, description = "Every product, with the management attributes.",
            body = ProductsDocument, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn list_products(state: web::Data<App>, req: HttpRequest) -> Answer {
    no_params(&req)?;
    let products = state.list_products().await?;
    let links = links(&req);
    let data: Vec<_> = products
        .iter()
        .map(|p| {
            product_resource(
                p,
                Audience::Management,
                Some(links.url(&format!("/products/{}", p.id()))),
            )
        })
        .collect();
    let doc = Document::<_, ()> {
        data,
        included: None,
        links: Some(DocumentLinks {
            self_: links.url("/products"),
            next: None,
        }),
    };
    Ok(respond(StatusCode::OK, &doc))
}

#[utoipa::path(
    get,
    path = "/api/license/management/v4/products/{product_id}",
    operation_id = "GetProductById",
    summary = "One product",
    tag = "Products",
    params(("product_id" = String, Path, description = "The product.", min_length = 1, max_length = 64, pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$", example = "41")),
    responses(
        (status = 200, description = "The product.",
            body = ProductDocument, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn get_product(state: web::Data<App>, req: HttpRequest, path: web::Path<String>) -> Answer {
    no_params(&req)?;
    let product = state.get_product(&product_id(&path)?).await?;
    Ok(respond(
        StatusCode::OK,
        &product_doc(&product, &links(&req)),
    ))
}

#[utoipa::path(
    post,
    path = "/api/license/management/v4/products",
    operation_id = "CreateProduct",
    summary = "Create a product",
    tag = "Products",
    params(IdempotencyKeyHeader),
    request_body(content = ProductCreateDocument, content_type = "application/vnd.api+json",
        description = "The new product: `title` and `type` are required; the type must fit the channels."),
    responses(
        (status = 201, description = "The new product; a retry with the same `Idempotency-Key` gets the same answer.",
            body = ProductDocument, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 403, response = ForbiddenClientId),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn create_product(state: web::Data<App>, req: HttpRequest, payload: web::Payload) -> Answer {
    no_params(&req)?;
    let (body, key, actor) = post_body(&req, payload).await?;
    let draft = read_product_create(&body)?;
    let links = links(&req);
    let answer = state
        .create_product(actor, draft, key, |p| {
            to_stored(StatusCode::CREATED, &product_doc(p, &links))
        })
        .await?;
    Ok(stored(answer))
}

#[utoipa::path(
    patch,
    path = "/api/license/management/v4/products/{product_id}",
    operation_id = "UpdateProduct",
    summary = "Change a product",
    tag = "Products",
    params(("product_id" = String, Path, description = "The product.", min_length = 1, max_length = 64, pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$", example = "41")),
    request_body(content = ProductPatchDocument, content_type = "application/vnd.api+json",
        description = "The members to change; the rules are checked on the whole product."),
    responses(
        (status = 200, description = "The product as changed.",
            body = ProductDocument, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn update_product(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    no_params(&req)?;
    require_jsonapi(&req)?;
    let id = product_id(&path)?;
    let body = read_body(payload, BODY_LIMIT).await?;
    let patch = read_product_patch(&body, &id)?;
    let actor = Actor::ManagementKey(caller(&req)?);
    let product = state.update_product(actor, &id, patch).await?;
    Ok(respond(
        StatusCode::OK,
        &product_doc(&product, &links(&req)),
    ))
}

#[utoipa::path(
    delete,
    path = "/api/license/management/v4/products/{product_id}",
    operation_id = "DeleteProductById",
    summary = "Delete a product no license refers to",
    tag = "Products",
    params(("product_id" = String, Path, description = "The product.", min_length = 1, max_length = 64, pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$", example = "41")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn delete_product(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    no_params(&req)?;
    let actor = Actor::ManagementKey(caller(&req)?);
    state.delete_product(actor, &product_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A listing of licenses, with `included` products when asked and `links.next` when there
/// is more.
async fn license_listing(
    state: &App,
    req: &HttpRequest,
    query: &Query,
    path: &str,
    user: Option<UserId>,
) -> Answer {
    let mut filter = license_filter(query)?;
    if user.is_some() {
        filter.user = user;
    }
    let page = state.list_licenses(filter, page_request(query)?).await?;
    let included = if query.include_product()? {
        Some(state.products_of(&page.licenses).await?)
    } else {
        None
    };
    let links = links(req);
    let here = |q: String| {
        if q.is_empty() {
            links.url(path)
        } else {
            links.url(&format!("{path}?{q}"))
        }
    };
    let next = page.next.as_ref().map(|after| {
        let rest = query.without_cursor();
        let cursor = format!("page%5Bafter%5D={after}");
        here(if rest.is_empty() {
            cursor
        } else {
            format!("{rest}&{cursor}")
        })
    });
    let doc = LicenseBody {
        data: LicenseData::Many(
            page.licenses
                .iter()
                .map(|l| {
                    license_resource(l, page.now, Audience::Management, license_self(&links, l))
                })
                .collect(),
        ),
        included: included.as_ref().map(|ps| {
            ps.iter()
                .map(|p| {
                    product_resource(
                        p,
                        Audience::Management,
                        Some(links.url(&format!("/products/{}", p.id()))),
                    )
                })
                .collect()
        }),
        links: Some(DocumentLinks {
            self_: here(req.query_string().to_owned()),
            next,
        }),
    };
    Ok(doc.respond(StatusCode::OK))
}

#[utoipa::path(
    get,
    path = "/api/license/management/v4/licenses",
    operation_id = "GetLicenses",
    summary = "Licenses, filtered and paged",
    tag = "Licenses",
    params(UserFilter, LicenseListParams),
    responses(
        (status = 200, description = "A page of licenses, `links.next` when there are more.",
            body = LicensesDocument, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn list_licenses(state: web::Data<App>, req: HttpRequest) -> Answer {
    let query = Query::parse(req.query_string(), LIST_PARAMS)?;
    license_listing(&state, &req, &query, "/licenses", None).await
}

#[utoipa::path(
    get,
    path = "/api/license/management/v4/users/{user_id}/licenses",
    operation_id = "GetLicensesByUser",
    summary = "A user's licenses, filtered and paged",
    tag = "Licenses",
    params(("user_id" = String, Path, description = "The user.", min_length = 1, max_length = 255, pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$", example = "41"), LicenseListParams),
    responses(
        (status = 200, description = "A page of the user's licenses, `links.next` when there are more.",
            body = LicensesDocument, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn user_licenses(state: web::Data<App>, req: HttpRequest, path: web::Path<String>) -> Answer {
    let query = Query::parse(req.query_string(), USER_LIST_PARAMS)?;
    let user =
        UserId::parse(path.as_str()).map_err(|e| ApiError::not_found(format!("user id {e}")))?;
    let here = format!("/users/{user}/licenses");
    license_listing(&state, &req, &query, &here, Some(user)).await
}

/// What the user may watch now, for the platform's other services.
#[utoipa::path(
    get,
    path = "/api/license/management/v4/users/{user_id}/entitlements",
    operation_id = "GetUserEntitlements",
    summary = "What a user may watch now",
    tag = "Entitlements",
    params(("user_id" = String, Path, description = "The user.", min_length = 1, max_length = 255, pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$", example = "41")),
    responses(
        (status = 200, description = "What the user may watch now, per channel.",
            body = EntitlementsDocument, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn user_entitlements(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    no_params(&req)?;
    let user =
        UserId::parse(path.as_str()).map_err(|e| ApiError::not_found(format!("user id {e}")))?;
    let (entitlements, at) = state.entitlements(&user).await?;
    Ok(respond(
        StatusCode::OK,
        &entitlements_document(&user, &entitlements, at),
    ))
}

#[utoipa::path(
    get,
    path = "/api/license/management/v4/licenses/{license_id}",
    operation_id = "GetLicenseById",
    summary = "One license",
    tag = "Licenses",
    params(("license_id" = String, Path, description = "The license.", min_length = 1, max_length = 64, pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$", example = "42"), IncludeParam),
    responses(
        (status = 200, description = "The license, with its product when `include=product`.",
            body = LicenseDocument, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn get_license(state: web::Data<App>, req: HttpRequest, path: web::Path<String>) -> Answer {
    let query = Query::parse(req.query_string(), &["include"])?;
    let (license, now) = state.get_license(&license_id(&path)?).await?;
    let included = if query.include_product()? {
        Some(state.products_of(std::slice::from_ref(&license)).await?)
    } else {
        None
    };
    let links = links(&req);
    let doc = LicenseBody {
        data: LicenseData::One(license_resource(
            &license,
            now,
            Audience::Management,
            license_self(&links, &license),
        )),
        included: included.as_ref().map(|ps| {
            ps.iter()
                .map(|p| {
                    product_resource(
                        p,
                        Audience::Management,
                        Some(links.url(&format!("/products/{}", p.id()))),
                    )
                })
                .collect::<Vec<_>>()
        }),
        links: None,
    };
    Ok(doc.respond(StatusCode::OK))
}

/// The answer to a creation: the licenses as `data`, or the one license for CreateLicense.
fn licenses_answer(
    licenses: &[License],
    now: Timestamp,
    links: &Links,
    single: bool,
) -> StoredResponse {
    let mut resources = licenses
        .iter()
        .map(|l| license_resource(l, now, Audience::Management, license_self(links, l)));
    // CreateLicense grants exactly one license: its resource object is the primary data.
    let data = match resources.next() {
        Some(first) if single => LicenseData::One(first),
        first => LicenseData::Many(first.into_iter().chain(resources).collect()),
    };
    LicenseBody::<()> {
        data,
        included: None,
        links: None,
    }
    .to_stored(StatusCode::CREATED)
}

#[utoipa::path(
    post,
    path = "/api/license/management/v4/licenses",
    operation_id = "CreateLicense",
    summary = "Grant a license",
    tag = "Licenses",
    params(IdempotencyKeyHeader),
    request_body(content = LicenseCreateDocument, content_type = "application/vnd.api+json",
        description = "The license to grant: its user and product; every attribute has a default."),
    responses(
        (status = 201, description = "The new license; a retry with the same `Idempotency-Key` gets the same answer.",
            body = CreatedLicenseDocument, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 403, response = ForbiddenClientId),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn create_license(state: web::Data<App>, req: HttpRequest, payload: web::Payload) -> Answer {
    no_params(&req)?;
    let (body, key, actor) = post_body(&req, payload).await?;
    let draft = read_license_create(&body)?;
    let links = links(&req);
    let answer = state
        .create_licenses(actor, vec![draft], false, key, |ls, now| {
            licenses_answer(ls, now, &links, true)
        })
        .await?;
    Ok(stored(answer))
}

#[utoipa::path(
    post,
    path = "/api/license/management/v4/licenses/batch_create",
    operation_id = "BatchCreateLicenses",
    summary = "Grant up to 10,000 licenses at once",
    tag = "Licenses",
    params(IdempotencyKeyHeader),
    request_body(content = LicenseBatchDocument, content_type = "application/vnd.api+json",
        description = "1 to 10,000 licenses: all are created, or none and every problem is reported with its pointer."),
    responses(
        (status = 201, description = "The new licenses, in the order of the request.",
            body = CreatedLicensesDocument, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 403, response = ForbiddenClientId),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn batch_create(state: web::Data<App>, req: HttpRequest, payload: web::Payload) -> Answer {
    no_params(&req)?;
    let (body, key, actor) = post_body(&req, payload).await?;
    let drafts = read_license_batch(&body)?;
    let links = links(&req);
    let answer = state
        .create_licenses(actor, drafts, true, key, |ls, now| {
            licenses_answer(ls, now, &links, false)
        })
        .await?;
    Ok(stored(answer))
}

#[derive(Serialize)]
struct DeletedMeta {
    meta: Deleted,
}

#[derive(Serialize)]
struct Deleted {
    deleted: usize,
}

#[utoipa::path(
    post,
    path = "/api/license/management/v4/licenses/batch_delete",
    operation_id = "BatchDeleteLicenses",
    summary = "Delete up to 10,000 licenses at once",
    tag = "Licenses",
    params(IdempotencyKeyHeader),
    request_body(content = LicenseDeleteBatchDocument, content_type = "application/vnd.api+json",
        description = "1 to 10,000 distinct licenses: all are deleted, or none."),
    responses(
        (status = 200, description = "How many licenses were deleted.",
            body = DeletedDocument, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn batch_delete(state: web::Data<App>, req: HttpRequest, payload: web::Payload) -> Answer {
    no_params(&req)?;
    let (body, key, actor) = post_body(&req, payload).await?;
    let ids = read_batch_delete(&body)?;
    let answer = state
        .delete_licenses(actor, ids, true, key, |ids| {
            to_stored(
                StatusCode::OK,
                &DeletedMeta {
                    meta: Deleted { deleted: ids.len() },
                },
            )
        })
        .await?;
    Ok(stored(answer))
}

#[utoipa::path(
    delete,
    path = "/api/license/management/v4/licenses/{license_id}",
    operation_id = "DeleteLicenseById",
    summary = "Delete (revoke) a license",
    tag = "Licenses",
    params(("license_id" = String, Path, description = "The license.", min_length = 1, max_length = 64, pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$", example = "42")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = ServiceUnavailable),
    ),
)]
async fn delete_license(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    no_params(&req)?;
    let actor = Actor::ManagementKey(caller(&req)?);
    let id = license_id(&path)?;
    let answer = state
        .delete_licenses(actor, vec![id], false, None, |_| StoredResponse {
            status: 204,
            body: Vec::new(),
        })
        .await?;
    Ok(stored(answer))
}
