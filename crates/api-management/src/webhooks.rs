//! Webhooks (docs/events.md, "Webhooks"): endpoints that receive the events, signed as
//! Standard Webhooks has it; their deliveries, and the replay of failed ones.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use licenses_app::App;
use licenses_http::jsonapi::request::{WebhookCreateDocument, WebhookPatchDocument};
use licenses_http::jsonapi::response::{Webhook, WebhookDeliveryObject};
use licenses_http::openapi::{
    BadRequest, Conflict, ForbiddenClientId, NotFound, PayloadTooLarge, ServiceUnavailable,
    UnauthorizedApikey, UnprocessableEntity, UnsupportedMediaType,
};
use licenses_http::query::{DeliveryParams, QueryParams};
use licenses_http::{
    ApiError, Document, DocumentLinks, Links, MetaDocument, NotIncluded, Query, delivery_query,
    read_body, read_webhook_create, read_webhook_patch, require_jsonapi, respond, stored,
    to_stored, webhook_delivery_object, webhook_resource,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{Answer, BODY_LIMIT, links, no_params};

fn self_url(links: &Links, id: &str) -> String {
    links.url_of(&["/webhooks/", id])
}

/// A webhook's id: a UUID the service gave (anything else names no webhook).
fn webhook_id(raw: &str) -> Result<&str, ApiError> {
    if raw.len() == 36 && raw.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(raw)
    } else {
        Err(ApiError::not_found("no webhook has this id"))
    }
}

#[utoipa::path(
    get,
    path = "/api/license/management/v4/webhooks",
    operation_id = "GetAllWebhooks",
    summary = "Every webhook endpoint",
    tag = "Webhooks",
    responses(
        (status = 200, description = "Every endpoint, oldest first (without their secrets).",
            body = Document<Vec<Webhook<'_>>>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn list_webhooks(state: web::Data<App>, req: HttpRequest) -> Answer {
    no_params(&req)?;
    let endpoints = state.list_webhooks().await?;
    let links = links(&req);
    let doc = Document::<_, NotIncluded> {
        data: endpoints
            .iter()
            .map(|e| webhook_resource(e, None, self_url(&links, &e.id)))
            .collect::<Vec<_>>(),
        included: None,
        links: Some(DocumentLinks {
            self_: links.url("/webhooks"),
            next: None,
        }),
    };
    Ok(respond(StatusCode::OK, &doc))
}

#[utoipa::path(
    post,
    path = "/api/license/management/v4/webhooks",
    operation_id = "CreateWebhook",
    summary = "Register a webhook endpoint",
    description = "The endpoint receives the events sequenced from now on whose type its \
        `event_types` take (all when empty), each a `POST` signed as Standard Webhooks has it \
        (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the `secret` of this \
        answer: it is shown here only.",
    tag = "Webhooks",
    request_body(content = WebhookCreateDocument, content_type = "application/vnd.api+json",
        description = "The endpoint: `url` is required."),
    responses(
        (status = 201, description = "The endpoint, with its signing secret (shown once).",
            body = Document<Webhook<'_>>, content_type = "application/vnd.api+json"),
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
pub(crate) async fn create_webhook(
    state: web::Data<App>,
    req: HttpRequest,
    payload: web::Payload,
) -> Answer {
    no_params(&req)?;
    require_jsonapi(&req)?;
    let body = read_body(payload, BODY_LIMIT).await?;
    let draft = read_webhook_create(&body)?;
    let (endpoint, secret) = state.create_webhook(draft).await?;
    let self_ = self_url(&links(&req), &endpoint.id);
    let doc = Document::<_, NotIncluded> {
        data: webhook_resource(&endpoint, Some(&secret), self_),
        included: None,
        links: None,
    };
    // `stored` sets Location from the primary data's self link, as for every 201.
    Ok(stored(to_stored(StatusCode::CREATED, &doc)))
}

#[utoipa::path(
    get,
    path = "/api/license/management/v4/webhooks/{webhook_id}",
    operation_id = "GetWebhookById",
    summary = "One webhook endpoint",
    tag = "Webhooks",
    params(("webhook_id" = String, Path, description = "The endpoint.", example = "0193a8c4-5e2f-7b10-9c4d-2f6e8a1b3c5d")),
    responses(
        (status = 200, description = "The endpoint (without its secret).",
            body = Document<Webhook<'_>>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn get_webhook(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    no_params(&req)?;
    let endpoint = state.webhook(webhook_id(&path)?).await?;
    let doc = Document::<_, NotIncluded> {
        data: webhook_resource(&endpoint, None, self_url(&links(&req), &endpoint.id)),
        included: None,
        links: None,
    };
    Ok(respond(StatusCode::OK, &doc))
}

#[utoipa::path(
    patch,
    path = "/api/license/management/v4/webhooks/{webhook_id}",
    operation_id = "UpdateWebhook",
    summary = "Change, disable or enable a webhook endpoint",
    description = "`enabled: false` holds its deliveries; `enabled: true` resumes them (and \
        clears its failures): the deliveries that waited, and the events sequenced from then \
        on (those of while it was disabled are not queued for it).",
    tag = "Webhooks",
    params(("webhook_id" = String, Path, description = "The endpoint.", example = "0193a8c4-5e2f-7b10-9c4d-2f6e8a1b3c5d")),
    request_body(content = WebhookPatchDocument, content_type = "application/vnd.api+json",
        description = "The members to change."),
    responses(
        (status = 200, description = "The endpoint as changed.",
            body = Document<Webhook<'_>>, content_type = "application/vnd.api+json"),
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
pub(crate) async fn update_webhook(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    no_params(&req)?;
    require_jsonapi(&req)?;
    let id = webhook_id(&path)?;
    let body = read_body(payload, BODY_LIMIT).await?;
    let draft = read_webhook_patch(&body, id)?;
    let endpoint = state.update_webhook(id, draft).await?;
    let doc = Document::<_, NotIncluded> {
        data: webhook_resource(&endpoint, None, self_url(&links(&req), &endpoint.id)),
        included: None,
        links: None,
    };
    Ok(respond(StatusCode::OK, &doc))
}

#[utoipa::path(
    delete,
    path = "/api/license/management/v4/webhooks/{webhook_id}",
    operation_id = "DeleteWebhookById",
    summary = "Delete a webhook endpoint and its deliveries",
    tag = "Webhooks",
    params(("webhook_id" = String, Path, description = "The endpoint.", example = "0193a8c4-5e2f-7b10-9c4d-2f6e8a1b3c5d")),
    responses(
        (status = 204, description = "Deleted: nothing more is sent to it."),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn delete_webhook(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    no_params(&req)?;
    state.delete_webhook(webhook_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A page of deliveries, and the cursor of the next one.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveriesDocument<'a> {
    data: Vec<WebhookDeliveryObject<'a>>,
    links: DocumentLinks,
}

#[utoipa::path(
    get,
    path = "/api/license/management/v4/webhooks/{webhook_id}/deliveries",
    operation_id = "GetWebhookDeliveries",
    summary = "An endpoint's deliveries, with each one's last attempt",
    description = "Oldest first; `filter[status]=failed` lists those given up, for replay. \
        Delivered and failed deliveries are kept `events.retention_days`.",
    tag = "Webhooks",
    params(("webhook_id" = String, Path, description = "The endpoint.", example = "0193a8c4-5e2f-7b10-9c4d-2f6e8a1b3c5d"),
        DeliveryParams),
    responses(
        (status = 200, description = "A page of deliveries; `links.next` when there may be more.",
            body = DeliveriesDocument<'_>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn list_deliveries(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let query = Query::parse(req.query_string(), &[DeliveryParams::NAMES])?;
    let id = webhook_id(&path)?;
    let wanted = delivery_query(&query, id)?;
    let deliveries = state.webhook_deliveries(&wanted).await?;
    let links = links(&req);
    let base = links.url_of(&["/webhooks/", id, "/deliveries"]);
    let here = |q: &str| {
        if q.is_empty() {
            base.clone()
        } else {
            format!("{base}?{q}")
        }
    };
    let full = deliveries.len() >= usize::try_from(wanted.limit).unwrap_or(usize::MAX);
    let next = deliveries.last().filter(|_| full).map(|last| {
        let rest = query.without_cursor();
        let cursor = format!("page%5Bafter%5D={}", last.id);
        here(&if rest.is_empty() {
            cursor
        } else {
            format!("{rest}&{cursor}")
        })
    });
    let doc = DeliveriesDocument {
        data: deliveries.iter().map(webhook_delivery_object).collect(),
        links: DocumentLinks {
            self_: here(req.query_string()),
            next,
        },
    };
    Ok(respond(StatusCode::OK, &doc))
}

/// How many deliveries a replay made pending again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Replayed {
    replayed: u64,
}

#[utoipa::path(
    post,
    path = "/api/license/management/v4/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
    operation_id = "ReplayWebhookDelivery",
    summary = "Send a failed delivery again",
    description = "The delivery is pending again, due now, with a fresh retry schedule. Its \
        `webhook-id` is the event's id, as before: a receiver that got it drops the repeat.",
    tag = "Webhooks",
    params(("webhook_id" = String, Path, description = "The endpoint.", example = "0193a8c4-5e2f-7b10-9c4d-2f6e8a1b3c5d"),
        ("delivery_id" = String, Path, description = "The delivery.", example = "42")),
    responses(
        (status = 202, description = "Pending again.",
            body = MetaDocument<Replayed>, content_type = "application/vnd.api+json"),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn replay_delivery(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Answer {
    no_params(&req)?;
    let (endpoint, delivery) = path.into_inner();
    let delivery = delivery
        .parse::<i64>()
        .ok()
        .filter(|d| *d > 0)
        .ok_or_else(|| ApiError::not_found("no delivery has this id"))?;
    let replayed = state
        .replay_webhook(webhook_id(&endpoint)?, Some(delivery))
        .await?;
    Ok(respond(
        StatusCode::ACCEPTED,
        &MetaDocument {
            meta: Replayed { replayed },
        },
    ))
}

#[utoipa::path(
    post,
    path = "/api/license/management/v4/webhooks/{webhook_id}/replay",
    operation_id = "ReplayFailedWebhookDeliveries",
    summary = "Send every failed delivery of an endpoint again",
    description = "After a receiver's outage: its failed deliveries are pending again, due \
        now, each with a fresh retry schedule (in order among themselves, per user; after \
        the later events that were delivered meanwhile).",
    tag = "Webhooks",
    params(("webhook_id" = String, Path, description = "The endpoint.", example = "0193a8c4-5e2f-7b10-9c4d-2f6e8a1b3c5d")),
    responses(
        (status = 202, description = "How many are pending again.",
            body = MetaDocument<Replayed>, content_type = "application/vnd.api+json"),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn replay_failed(
    state: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    no_params(&req)?;
    let replayed = state.replay_webhook(webhook_id(&path)?, None).await?;
    Ok(respond(
        StatusCode::ACCEPTED,
        &MetaDocument {
            meta: Replayed { replayed },
        },
    ))
}
