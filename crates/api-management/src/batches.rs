//! Batches: up to 10,000 licenses granted, or revoked, at once — all or none.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use licenses_app::App;
use licenses_http::jsonapi::request::{LicenseBatchDocument, LicenseDeleteBatchDocument};
use licenses_http::openapi::{
    BadRequest, Conflict, ForbiddenClientId, IdempotencyKeyHeader, PayloadTooLarge,
    RelatedNotFound, ServiceUnavailable, UnauthorizedApikey, UnprocessableEntity,
    UnsupportedMediaType,
};
use licenses_http::{
    License, LicenseBody, MetaDocument, read_batch_delete, read_license_batch, stored, to_stored,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::licenses::created_licenses;
use crate::{Answer, links, no_params, post_body};

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
            body = LicenseBody<Vec<License<'_>>>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 403, response = ForbiddenClientId),
        (status = 404, response = RelatedNotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn batch_create(
    state: web::Data<App>,
    req: HttpRequest,
    payload: web::Payload,
) -> Answer {
    no_params(&req)?;
    let (body, key, actor) = post_body(&req, payload).await?;
    let drafts = read_license_batch(&body)?;
    let links = links(&req);
    let answer = state
        .create_licenses(actor, drafts, true, key, |ls, now| {
            created_licenses(ls, now, &links)
        })
        .await?;
    Ok(stored(answer))
}

/// How many licenses a batch deleted.
#[derive(Serialize, ToSchema)]
pub(crate) struct Deleted {
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
            body = MetaDocument<Deleted>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = RelatedNotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn batch_delete(
    state: web::Data<App>,
    req: HttpRequest,
    payload: web::Payload,
) -> Answer {
    no_params(&req)?;
    let (body, key, actor) = post_body(&req, payload).await?;
    let ids = read_batch_delete(&body)?;
    let answer = state
        .delete_licenses(actor, ids, true, key, |ids| {
            to_stored(
                StatusCode::OK,
                &MetaDocument {
                    meta: Deleted { deleted: ids.len() },
                },
            )
        })
        .await?;
    Ok(stored(answer))
}
