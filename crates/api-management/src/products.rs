//! Products, as the BSS manages them: list, read, create, change, delete.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use licenses_app::App;
use licenses_domain::Product;
use licenses_http::jsonapi::request::{ProductCreateDocument, ProductPatchDocument};
use licenses_http::openapi::{
    BadRequest, Conflict, ForbiddenClientId, IdempotencyKeyHeader, NotFound, PayloadTooLarge,
    ServiceUnavailable, UnauthorizedApikey, UnprocessableEntity, UnsupportedMediaType,
};
use licenses_http::{
    Document, DocumentLinks, Links, ManagementProduct, NotIncluded, management_product, read_body,
    read_product_create, read_product_patch, require_jsonapi, respond, stored, to_stored,
};

use crate::{Answer, BODY_LIMIT, caller, links, no_params, post_body, product_id};
use licenses_app::ports::Actor;

/// A product's document, with its URL.
fn product_doc<'a>(p: &'a Product, links: &Links) -> Document<ManagementProduct<'a>> {
    Document {
        data: management_product(p, links.resource("/products/", p.id().as_str())),
        included: None,
        links: None,
    }
}

#[utoipa::path(
    get,
    path = "/api/license/management/v4/products",
    operation_id = "GetAllProducts",
    summary = "Every product",
    tag = "Products",
    responses(
        (status = 200, description = "Every product, with the management attributes.",
            body = Document<Vec<ManagementProduct<'_>>>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn list_products(state: web::Data<App>, req: HttpRequest) -> Answer {
    no_params(&req)?;
    let products = state.list_products().await?;
    let links = links(&req);
    let data: Vec<_> = products
        .iter()
        .map(|p| management_product(p, links.resource("/products/", p.id().as_str())))
        .collect();
    let doc = Document::<_, NotIncluded> {
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
    params(("product_id" = String, Path, description = "The product.", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "41")),
    responses(
        (status = 200, description = "The product.",
            body = Document<ManagementProduct<'_>>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn get_product(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
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
            body = Document<ManagementProduct<'_>>, content_type = "application/vnd.api+json"),
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
pub(crate) async fn create_product(
    state: web::Data<App>,
    req: HttpRequest,
    payload: web::Payload,
) -> Answer {
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
    params(("product_id" = String, Path, description = "The product.", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "41")),
    request_body(content = ProductPatchDocument, content_type = "application/vnd.api+json",
        description = "The members to change; the rules are checked on the whole product."),
    responses(
        (status = 200, description = "The product as changed.",
            body = Document<ManagementProduct<'_>>, content_type = "application/vnd.api+json"),
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
pub(crate) async fn update_product(
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
    params(("product_id" = String, Path, description = "The product.", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "41")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn delete_product(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    no_params(&req)?;
    let actor = Actor::ManagementKey(caller(&req)?);
    state.delete_product(actor, &product_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
