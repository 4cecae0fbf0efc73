//! A user's licenses and entitlements, for the BSS and the platform's other services.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use licenses_app::App;
use licenses_domain::UserId;
use licenses_http::jsonapi::response::{
    AccessQuestion, EntitlementsDocument, ManagementAccessDocument, management_access_document,
};
use licenses_http::openapi::{BadRequest, NotFound, ServiceUnavailable, UnauthorizedApikey};
use licenses_http::query::{AccessParams, LicenseListParams, QueryParams, access_query};
use licenses_http::segment;
use licenses_http::{
    ApiError, License, LicenseBody, ManagementProduct, Query, entitlements_document, respond,
};

use crate::licenses::license_listing;
use crate::{Answer, links, no_params};

#[utoipa::path(
    get,
    path = "/api/license/management/v4/users/{user_id}/licenses",
    operation_id = "GetLicensesByUser",
    summary = "A user's licenses, filtered and paged",
    tag = "Licenses",
    params(("user_id" = String, Path, description = "The user.", min_length = 1, max_length = 255, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "41"), LicenseListParams),
    responses(
        (status = 200, description = "A page of the user's licenses, `links.next` when there are more.",
            body = LicenseBody<Vec<License<'_>>, ManagementProduct<'_>>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn user_licenses(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let query = Query::parse(req.query_string(), &[LicenseListParams::NAMES])?;
    let user =
        UserId::parse(path.as_str()).map_err(|e| ApiError::not_found(format!("user id {e}")))?;
    let here = format!("/users/{}/licenses", segment(user.as_str()));
    license_listing(&state, &req, &query, &here, Some(user)).await
}

/// What the user may watch now, for the platform's other services.
#[utoipa::path(
    get,
    path = "/api/license/management/v4/users/{user_id}/entitlements",
    operation_id = "GetUserEntitlements",
    summary = "What a user may watch now",
    tag = "Entitlements",
    params(("user_id" = String, Path, description = "The user.", min_length = 1, max_length = 255, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "41")),
    responses(
        (status = 200, description = "What the user may watch now, per channel.",
            body = EntitlementsDocument<'_>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn user_entitlements(
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

/// Why a user may or may not watch a service on a channel now: for support staff, with every
/// reason in full (the DRM job's state, attempts and last error) and the deciding licenses
/// and their products in `included`.
#[utoipa::path(
    get,
    path = "/api/license/management/v4/users/{user_id}/access",
    operation_id = "ExplainUserAccess",
    summary = "Why a user may or may not watch a service on a channel",
    description = "Answers whether the user may watch `service` on `channel` now, until when, \
        and if not, why: one reason per license whose product has the channel for the \
        service (`license_expired`, `drm_refused`, `suspended_by_admin`, `license_suspended`, \
        `waiting_for_drm`, `not_started_yet`), else `product_lacks_service` per license, else \
        `no_license`. Users are not stored: an unknown user has `no_license`.",
    tag = "Entitlements",
    params(("user_id" = String, Path, description = "The user.", min_length = 1, max_length = 255, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "41"), AccessParams),
    responses(
        (status = 200, description = "Whether the user may watch, and why.",
            body = ManagementAccessDocument<'_>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn user_access(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let query = Query::parse(req.query_string(), &[AccessParams::NAMES])?;
    let user =
        UserId::parse(path.as_str()).map_err(|e| ApiError::not_found(format!("user id {e}")))?;
    let (channel, service) = access_query(&query)?;
    let access = state.explain_access(&user, &channel, service).await?;
    let question = AccessQuestion {
        user: &user,
        channel: &channel,
        service,
        at: access.at,
        explanation: &access.explanation,
    };
    Ok(respond(
        StatusCode::OK,
        &management_access_document(question, &access.licenses, &access.products, &links(&req)),
    ))
}
