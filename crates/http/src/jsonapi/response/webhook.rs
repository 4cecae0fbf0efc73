//! Webhook endpoints and their deliveries (docs/events.md, "Webhooks"), as the management
//! API renders them.

use licenses_app::webhooks::{WebhookDelivery, WebhookEndpoint};
use serde::Serialize;
use utoipa::ToSchema;

use super::SelfLink;
use crate::jsonapi::resource_type::{WebhookDeliveryType, WebhookType};

/// What an endpoint is.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttributes<'a> {
    /// Where events are `POST`ed, signed (Standard Webhooks).
    #[schema(example = "https://bss.example.com/hooks/licenses")]
    pub url: &'a str,
    /// The event types delivered; empty: every type.
    #[schema(example = json!(["license.created", "license.deleted"]))]
    pub event_types: Vec<&'static str>,
    pub description: &'a str,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Why it was disabled: `manual` (a PATCH), `gone` (the receiver answered 410) or
    /// `failing` (every attempt failed for `events.webhooks.disable_after_days`); `null`
    /// while enabled.
    #[schema(required = true, example = json!(null))]
    pub disabled_reason: Option<&'static str>,
    /// When it was disabled (unix seconds); `null` while enabled.
    #[schema(required = true)]
    pub disabled_at: Option<i64>,
    /// Since when every attempt failed (unix seconds); `null` when the last attempt
    /// succeeded.
    #[schema(required = true)]
    pub failing_since: Option<i64>,
    /// The signing secret, `whsec_…`: only in the answer that created the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: Option<&'a str>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook<'a> {
    #[schema(example = "0193a8c4-5e2f-7b10-9c4d-2f6e8a1b3c5d")]
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: WebhookType,
    pub attributes: WebhookAttributes<'a>,
    pub links: SelfLink,
}

/// An endpoint as a resource object; `secret` only when it was just created.
pub fn webhook_resource<'a>(
    endpoint: &'a WebhookEndpoint,
    secret: Option<&'a str>,
    self_: String,
) -> Webhook<'a> {
    Webhook {
        id: &endpoint.id,
        kind: WebhookType::Webhook,
        attributes: WebhookAttributes {
            url: &endpoint.url,
            event_types: endpoint.event_types.iter().map(|t| t.as_str()).collect(),
            description: &endpoint.description,
            enabled: endpoint.disabled.is_none(),
            disabled_reason: endpoint.disabled.map(|(_, reason)| reason.as_str()),
            disabled_at: endpoint.disabled.map(|(at, _)| at / 1000),
            failing_since: endpoint.failing_since_ms.map(|at| at / 1000),
            secret,
            created_at: endpoint.created_at.unix(),
            updated_at: endpoint.updated_at.unix(),
        },
        links: SelfLink { self_ },
    }
}

/// One event's delivery to the endpoint, with its last attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryAttributes<'a> {
    /// The event delivered: also the `webhook-id` header.
    pub event_id: &'a str,
    #[schema(example = "license.created")]
    pub event_type: &'static str,
    /// The event's position in the feed.
    pub position: i64,
    /// `pending` (due at `next_attempt_at`), `delivered`, or `failed` (replayable).
    #[schema(example = "failed")]
    pub status: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// When it is tried next (unix seconds), while pending.
    #[schema(required = true)]
    pub next_attempt_at: Option<i64>,
    /// When it was last tried (unix seconds).
    #[schema(required = true)]
    pub last_attempt_at: Option<i64>,
    /// The receiver's status of the last attempt; `null` when it did not answer.
    #[schema(required = true, example = 503)]
    pub last_status: Option<u16>,
    /// The receiver's answer (or why none came), cut to 1 KiB.
    #[schema(required = true, example = "upstream unavailable")]
    pub last_answer: Option<&'a str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryObject<'a> {
    /// The delivery's id (`page[after]` takes it).
    #[schema(example = "42")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: WebhookDeliveryType,
    pub attributes: WebhookDeliveryAttributes<'a>,
}

pub fn webhook_delivery_object(d: &WebhookDelivery) -> WebhookDeliveryObject<'_> {
    use licenses_app::webhooks::DeliveryState;
    WebhookDeliveryObject {
        id: d.id.to_string(),
        kind: WebhookDeliveryType::WebhookDelivery,
        attributes: WebhookDeliveryAttributes {
            event_id: &d.event_id,
            event_type: d.event_type.as_str(),
            position: d.position,
            status: d.state.as_str(),
            attempts: d.attempts,
            next_attempt_at: (d.state == DeliveryState::Pending)
                .then_some(d.next_attempt_ms / 1000),
            last_attempt_at: d.last_attempt_ms.map(|at| at / 1000),
            last_status: d.last_status,
            last_answer: d.last_answer.as_deref(),
        },
    }
}
