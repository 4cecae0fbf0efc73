//! The event feed (docs/events.md): every license and product change, in commit order, for
//! the platform's other services to follow with a cursor.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use licenses_app::{App, EventPageError};
use licenses_http::jsonapi::ErrorDocument;
use licenses_http::openapi::{BadRequest, ServiceUnavailable, UnauthorizedApikey};
use licenses_http::query::{EventFeedParams, QueryParams};
use licenses_http::{
    ApiError, DocumentLinks, EventFeedDocument, Query, event_object, event_query, respond,
};

use crate::{Answer, links};

/// GET /events: a page of the feed.
#[utoipa::path(
    get,
    path = "/api/license/management/v4/events",
    operation_id = "GetEvents",
    summary = "License and product events, in commit order",
    description = "Every license and product change as an event carrying the resource as \
        this API renders it, in commit order (`position`), kept `events.retention_days` \
        (7 by default). Follow `links.next`: it is always present, and an empty page's \
        `next` is where to ask again later. Consumers dedupe by the event `id`. A cursor older \
        than the oldest event kept is answered 410 `cursor_expired`: events were missed, \
        start over without `page[after]`.",
    tag = "Events",
    params(EventFeedParams),
    responses(
        (status = 200, description = "A page of events, oldest first.",
            body = EventFeedDocument<'_>, content_type = "application/vnd.api+json"),
        (status = 400, response = BadRequest),
        (status = 401, response = UnauthorizedApikey),
        (status = 410, description = "`cursor_expired`: the events after `page[after]` were \
            pruned; start over without it.",
            body = ErrorDocument<'_>, content_type = "application/vnd.api+json"),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn list_events(state: web::Data<App>, req: HttpRequest) -> Answer {
    let query = Query::parse(req.query_string(), &[EventFeedParams::NAMES])?;
    let wanted = event_query(&query)?;
    let page = state.event_page(&wanted).await.map_err(|e| match e {
        EventPageError::CursorExpired {
            after,
            pruned_through,
        } => ApiError::parameter_status(
            StatusCode::GONE,
            "page[after]",
            "cursor_expired",
            format!(
                "events after {after} up to {pruned_through} were pruned \
                 (events.retention_days); start over without page[after]"
            ),
        ),
        EventPageError::App(e) => e.into(),
    })?;
    let links = links(&req);
    let here = |q: String| {
        if q.is_empty() {
            links.url("/events")
        } else {
            links.url(&format!("/events?{q}"))
        }
    };
    let rest = query.without_cursor();
    let next = page.next.map(|after| {
        let cursor = format!("page%5Bafter%5D={after}");
        here(if rest.is_empty() {
            cursor
        } else {
            format!("{rest}&{cursor}")
        })
    });
    let doc = EventFeedDocument {
        data: page
            .events
            .iter()
            .map(|e| event_object(e, &links))
            .collect(),
        links: DocumentLinks {
            self_: here(req.query_string().to_owned()),
            next,
        },
    };
    Ok(respond(StatusCode::OK, &doc))
}
