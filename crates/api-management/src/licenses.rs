//! Licenses: list (filtered and paged), read, grant one, revoke one. Licenses are immutable:
//! no PATCH or PUT, ever (seed 000).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use licenses_app::App;
use licenses_app::ports::{Actor, StoredResponse};
use licenses_domain::{License as StoredLicense, Timestamp, UserId};
use licenses_http::jsonapi::request::LicenseCreateDocument;
use licenses_http::openapi::{
    BadRequest, Conflict, ForbiddenClientId, IdempotencyKeyHeader, NotFound, PayloadTooLarge,
    RelatedNotFound, ServiceUnavailable, UnauthorizedApikey, UnprocessableEntity,
    UnsupportedMediaType,
};
use licenses_http::query::{IncludeParam, LicenseListParams, QueryParams, UserFilter};
use licenses_http::{
    Audience, DocumentLinks, License, LicenseBody, Links, ManagementProduct, NotIncluded, Query,
    license_filter, license_resource, management_product, page_request, read_license_create,
    redact_query, stored,
};

use crate::{Answer, caller, license_id, license_self, links, no_params, post_body};

/// A listing of licenses, with `included` products when asked and `links.next` when there
/// is more.
pub(crate) async fn license_listing(
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
    // Every parameter is checked before the store is asked.
    let include_product = query.include_product()?;
    let page = state.list_licenses(filter, page_request(query)?).await?;
    let included = if include_product {
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
        data: page
            .licenses
            .iter()
            .map(|l| license(l, page.now, &links))
            .collect::<Vec<_>>(),
        included: included.as_ref().map(|ps| {
            ps.iter()
                .map(|p| management_product(p, links.resource("/products/", p.id().as_str())))
                .collect()
        }),
        links: Some(DocumentLinks {
            // The query as sent, any secret in it redacted (it is echoed).
            self_: here(redact_query(req.query_string()).into_owned()),
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
            body = LicenseBody<Vec<License<'_>>, ManagementProduct<'_>>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn list_licenses(state: web::Data<App>, req: HttpRequest) -> Answer {
    let query = Query::parse(
        req.query_string(),
        &[UserFilter::NAMES, LicenseListParams::NAMES],
    )?;
    license_listing(&state, &req, &query, "/licenses", None).await
}

#[utoipa::path(
    get,
    path = "/api/license/management/v4/licenses/{license_id}",
    operation_id = "GetLicenseById",
    summary = "One license",
    tag = "Licenses",
    params(("license_id" = String, Path, description = "The license.", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "42"), IncludeParam),
    responses(
        (status = 200, description = "The license, with its product when `include=product`.",
            body = LicenseBody<License<'_>, ManagementProduct<'_>>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn get_license(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let query = Query::parse(req.query_string(), &[IncludeParam::NAMES])?;
    let include_product = query.include_product()?;
    let (license, now) = state.get_license(&license_id(&path)?).await?;
    let included = if include_product {
        Some(state.products_of(std::slice::from_ref(&license)).await?)
    } else {
        None
    };
    let links = links(&req);
    let doc = LicenseBody {
        data: self::license(&license, now, &links),
        included: included.as_ref().map(|ps| {
            ps.iter()
                .map(|p| management_product(p, links.resource("/products/", p.id().as_str())))
                .collect::<Vec<_>>()
        }),
        links: None,
    };
    Ok(doc.respond(StatusCode::OK))
}

/// A license as the BSS sees it, with its URL.
fn license<'a>(l: &'a StoredLicense, now: Timestamp, links: &Links) -> License<'a> {
    license_resource(l, now, Audience::Management, license_self(links, l))
}

/// The answer to a creation: the new licenses, in the order of the request.
pub(crate) fn created_licenses(
    licenses: &[StoredLicense],
    now: Timestamp,
    links: &Links,
) -> StoredResponse {
    LicenseBody::<_, NotIncluded> {
        data: licenses
            .iter()
            .map(|l| license(l, now, links))
            .collect::<Vec<_>>(),
        included: None,
        links: None,
    }
    .to_stored(StatusCode::CREATED)
}

/// CreateLicense's answer: the one license it grants is the primary data.
fn created_license(licenses: &[StoredLicense], now: Timestamp, links: &Links) -> StoredResponse {
    match licenses {
        [one] => LicenseBody::<_, NotIncluded> {
            data: license(one, now, links),
            included: None,
            links: None,
        }
        .to_stored(StatusCode::CREATED),
        all => created_licenses(all, now, links),
    }
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
            body = LicenseBody<License<'_>>, content_type = "application/vnd.api+json"),
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
pub(crate) async fn create_license(
    state: web::Data<App>,
    req: HttpRequest,
    payload: web::Payload,
) -> Answer {
    no_params(&req)?;
    let (body, key, actor) = post_body(&req, payload).await?;
    let draft = read_license_create(&body)?;
    let links = links(&req);
    let answer = state
        .create_licenses(actor, vec![draft], false, key, |ls, now| {
            created_license(ls, now, &links)
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
    params(("license_id" = String, Path, description = "The license.", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$", example = "42")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn delete_license(
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
