//! CreateWebhook's and UpdateWebhook's documents. The typed documents are the contract (their
//! OpenAPI schemas); a body is read member by member ([`super::walk`]), which reports every
//! problem with its pointer: webhooks are registered now and then, not a hot path.

use actix_web::http::StatusCode;
use licenses_app::webhooks::WebhookDraft;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::walk::{
    DocumentProblems, Member, boolean, member, only_known, parse, primary_data, resource, string,
    typed,
};
use crate::jsonapi::ApiError;
use crate::jsonapi::resource_type::WebhookType;

/// An event type, as a filter names it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub enum EventTypeName {
    #[serde(rename = "license.created")]
    LicenseCreated,
    #[serde(rename = "license.deleted")]
    LicenseDeleted,
    #[serde(rename = "license.activated")]
    LicenseActivated,
    #[serde(rename = "license.order_error")]
    LicenseOrderError,
    #[serde(rename = "license.updated")]
    LicenseUpdated,
    #[serde(rename = "license.expired")]
    LicenseExpired,
    #[serde(rename = "license.expiring_soon")]
    LicenseExpiringSoon,
    #[serde(rename = "product.created")]
    ProductCreated,
    #[serde(rename = "product.updated")]
    ProductUpdated,
    #[serde(rename = "product.deleted")]
    ProductDeleted,
}

/// An endpoint's attributes, as given (none of them `null`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookAttributesInput {
    /// Where events are `POST`ed: `https://`, on the public internet (unless
    /// `events.webhooks.allow_http` / `allow_private_networks`), without credentials.
    /// Required when creating.
    #[schema(
        nullable = false,
        example = "https://bss.example.com/hooks/licenses",
        max_length = 2048
    )]
    pub url: Option<String>,
    /// The event types to deliver; empty or absent: every type.
    #[schema(
        nullable = false,
        value_type = Option<Vec<EventTypeName>>,
        example = json!(["license.created", "license.deleted"])
    )]
    pub event_types: Option<Vec<String>>,
    /// Free text for whoever operates it, up to 1024 characters.
    #[schema(nullable = false, max_length = 1024)]
    pub description: Option<String>,
    /// `false` holds its deliveries (an endpoint may be created so); `true` resumes them,
    /// for the events from then on and the deliveries that waited.
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookResourceInput {
    #[serde(rename = "type")]
    pub kind: WebhookType,
    pub attributes: WebhookAttributesInput,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// CreateWebhook's document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookCreateDocument {
    pub data: WebhookResourceInput,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub jsonapi: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// A change of an endpoint: its `id` and the members to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatchResource {
    #[serde(rename = "type")]
    pub kind: WebhookType,
    pub id: String,
    #[schema(nullable = false)]
    pub attributes: Option<WebhookAttributesInput>,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// UpdateWebhook's document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatchDocument {
    pub data: WebhookPatchResource,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub jsonapi: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

const ATTRIBUTES: &[&str] = &["url", "event_types", "description", "enabled"];

fn strings(
    attrs: Option<&Map<String, Value>>,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Vec<String>> {
    let items = typed(
        attrs,
        "event_types",
        at,
        "an array of strings",
        p,
        Value::as_array,
    )
    .flatten()?;
    let mut names = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(name) => names.push(name.to_owned()),
            None => p.invalid(
                &format!("{at}/event_types/{i}"),
                "invalid_type",
                "an event type is a string",
            ),
        }
    }
    Some(names)
}

fn members(body: &[u8], id: Option<&str>) -> Result<WebhookDraft, ApiError> {
    let doc: Value = parse(body)?;
    let mut p = DocumentProblems::default();
    let mut draft = WebhookDraft::default();
    if let Some(r) =
        primary_data(&doc, &mut p).and_then(|d| resource(d, "/data", "Webhook", &mut p))
    {
        match (id, r.id) {
            (None, _) => p.forbid_client_id(&r, "/data", "webhook"),
            (Some(_), None) => p.structure("/data/id", "an update names the webhook's id"),
            (Some(expected), Some(given)) if given != expected => p.push(
                StatusCode::CONFLICT,
                "/data/id",
                "id_mismatch",
                "the document's id is not the id of the URL",
            ),
            (Some(_), Some(_)) => {}
        }
        if r.relationships.is_some() {
            p.invalid(
                "/data/relationships",
                "unknown_relationship",
                "a webhook has no relationships",
            );
        }
        let at = "/data/attributes";
        let attrs = r.attributes;
        only_known(attrs, ATTRIBUTES, at, "unknown_attribute", &mut p);
        for name in ATTRIBUTES {
            if let Member::Null = member(attrs, name) {
                p.invalid(
                    &format!("{at}/{name}"),
                    "invalid_type",
                    format!("{name} is not null: leave it out to keep it"),
                );
            }
        }
        draft = WebhookDraft {
            url: string(attrs, "url", at, &mut p).flatten(),
            event_types: strings(attrs, at, &mut p),
            description: string(attrs, "description", at, &mut p).flatten(),
            enabled: boolean(attrs, "enabled", at, &mut p).flatten(),
        };
    }
    p.into_result(draft)
}

/// CreateWebhook's document.
pub fn read_webhook_create(body: &[u8]) -> Result<WebhookDraft, ApiError> {
    members(body, None)
}

/// UpdateWebhook's document, whose `id` must be the one of the path (409 otherwise).
pub fn read_webhook_patch(body: &[u8], id: &str) -> Result<WebhookDraft, ApiError> {
    members(body, Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(e: ApiError) -> Vec<(String, String)> {
        let doc: Value = serde_json::from_slice(&e.body()).expect("an error document");
        doc["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| {
                (
                    e["source"]["pointer"].as_str().unwrap_or("").to_owned(),
                    e["code"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// The schema's names are the service's.
    #[test]
    fn the_schema_names_every_event_type() {
        use licenses_app::events::EventType;
        let names: Vec<String> = [
            EventTypeName::LicenseCreated,
            EventTypeName::LicenseDeleted,
            EventTypeName::LicenseActivated,
            EventTypeName::LicenseOrderError,
            EventTypeName::LicenseUpdated,
            EventTypeName::LicenseExpired,
            EventTypeName::LicenseExpiringSoon,
            EventTypeName::ProductCreated,
            EventTypeName::ProductUpdated,
            EventTypeName::ProductDeleted,
        ]
        .iter()
        .map(|n| {
            serde_json::to_value(n)
                .expect("a name")
                .as_str()
                .expect("a string")
                .to_owned()
        })
        .collect();
        let ours: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, ours);
    }

    #[test]
    fn reads_a_good_document() {
        let draft = read_webhook_create(
            br#"{"data":{"type":"Webhook","attributes":{"url":"https://h.example/in",
                "event_types":["license.created"],"description":"BSS"}}}"#,
        )
        .expect("a good document");
        assert_eq!(draft.url.as_deref(), Some("https://h.example/in"));
        assert_eq!(draft.event_types, Some(vec!["license.created".to_owned()]));
        assert_eq!(draft.description.as_deref(), Some("BSS"));
        assert_eq!(draft.enabled, None);
    }

    #[test]
    fn points_at_every_bad_member() {
        let e = read_webhook_create(
            br#"{"data":{"type":"Webhook","id":"x","attributes":{"url":7,
                "event_types":["license.created",3],"colour":"red"}}}"#,
        )
        .expect_err("bad");
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        let found = problems(e);
        for expected in [
            ("/data/id", "client_generated_id"),
            ("/data/attributes/url", "invalid_type"),
            ("/data/attributes/event_types/1", "invalid_type"),
            ("/data/attributes/colour", "unknown_attribute"),
        ] {
            assert!(
                found.contains(&(expected.0.to_owned(), expected.1.to_owned())),
                "{expected:?} in {found:?}"
            );
        }
    }

    #[test]
    fn a_patch_names_the_webhook_of_its_url() {
        let body = br#"{"data":{"type":"Webhook","id":"a","attributes":{"enabled":false}}}"#;
        assert_eq!(
            read_webhook_patch(body, "a").expect("good").enabled,
            Some(false)
        );
        let e = read_webhook_patch(body, "b").expect_err("mismatch");
        assert_eq!(e.status(), StatusCode::CONFLICT);
        let e = read_webhook_create(br#"{"data":{"type":"License","attributes":{}}}"#)
            .expect_err("wrong type");
        assert_eq!(e.status(), StatusCode::CONFLICT);
    }
}
