//! Events (docs/events.md): as resources of the management API's feed, and as the message
//! the NATS and webhook publishers send. Both carry the resource the event is about as the
//! management API renders it (a "fat" event: a consumer needs no call back), its status read
//! at the time of the event.

use licenses_app::events::{Event, EventSubject};
use serde::Serialize;
use utoipa::ToSchema;

use super::{DocumentLinks, Links, ManagementProduct, management_product};
use crate::jsonapi::resource_type::EventType as EventResourceType;
use crate::jsonapi::response::{Audience, License, license_resource};

/// The resource an event is about, as `GET` of it answered then (for a deletion: as it was
/// deleted).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EventResource<'a> {
    License(License<'a>),
    Product(ManagementProduct<'a>),
}

/// What an event says.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventAttributes<'a> {
    /// What happened: `license.created`, `license.deleted`, `license.activated`,
    /// `license.order_error`, `license.updated`, `license.expired`, `license.expiring_soon`,
    /// `product.created`, `product.updated`, `product.deleted`.
    #[schema(example = "license.created")]
    pub event_type: &'static str,
    /// When it happened (unix seconds).
    pub occurred_at: i64,
    /// Its place in the feed (commit order): strictly increasing; `page[after]` takes it.
    pub position: i64,
    /// The user's own sequence number (1, 2, 3… along that user's events); `null` for
    /// product events.
    #[schema(required = true)]
    pub user_seq: Option<i64>,
    /// The license or product, as the management API renders it.
    pub resource: EventResource<'a>,
}

/// An event of the feed. Its `id` is stable: consumers dedupe by it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventObject<'a> {
    #[schema(example = "0193a8c4-5e2f-7b10-9c4d-2f6e8a1b3c5d")]
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: EventResourceType,
    pub attributes: EventAttributes<'a>,
}

/// A page of the feed: events in commit order, and `links.next`, the cursor to read on from
/// (always present: an empty page's `next` is where to ask again later).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventFeedDocument<'a> {
    pub data: Vec<EventObject<'a>>,
    pub links: DocumentLinks,
}

fn resource<'a>(event: &'a Event, links: &Links) -> EventResource<'a> {
    match &event.subject {
        EventSubject::License(l) => EventResource::License(license_resource(
            l,
            event.occurred_at,
            Audience::Management,
            Some(links.resource("/licenses/", l.id().as_str())),
        )),
        EventSubject::Product(p) => EventResource::Product(management_product(
            p,
            links.resource("/products/", p.id().as_str()),
        )),
    }
}

/// An event as a resource object of the feed.
pub fn event_object<'a>(event: &'a Event, links: &Links) -> EventObject<'a> {
    EventObject {
        id: &event.id,
        kind: EventResourceType::Event,
        attributes: EventAttributes {
            event_type: event.kind.as_str(),
            occurred_at: event.occurred_at.unix(),
            position: event.position,
            user_seq: event.user_seq,
            resource: resource(event, links),
        },
    }
}

/// The body of each event published to NATS JetStream (docs/events.md), shaped as a Standard
/// Webhooks payload (`type`, `timestamp`, `data`), with the event's id and order.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventMessage<'a> {
    /// The event's stable id: also the message's `Nats-Msg-Id`.
    pub id: &'a str,
    #[serde(rename = "type")]
    #[schema(example = "license.created")]
    pub event_type: &'static str,
    /// When it happened, RFC 3339 UTC.
    #[schema(example = "2026-12-06T07:40:00Z")]
    pub timestamp: String,
    pub position: i64,
    #[schema(required = true)]
    pub user_seq: Option<i64>,
    /// The license or product, as the management API renders it.
    pub data: EventResource<'a>,
}

/// The JSON body of an event's message.
pub fn event_message(event: &Event, links: &Links) -> Vec<u8> {
    let message = EventMessage {
        id: &event.id,
        event_type: event.kind.as_str(),
        timestamp: rfc3339(event.occurred_at.unix()),
        position: event.position,
        user_seq: event.user_seq,
        data: resource(event, links),
    };
    serde_json::to_vec(&message).unwrap_or_default()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
