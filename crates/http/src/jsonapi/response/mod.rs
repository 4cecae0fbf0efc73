//! Response documents, in the shape of seed 003's examples: products, licenses and
//! entitlements as JSON:API resource objects, and the documents that carry them. The
//! management API shows every attribute, the user API only the user-facing ones: each
//! audience has its own types, so each API's OpenAPI document, derived from them, shows
//! exactly what it answers.
//!
//! - [`product`]: a product for each audience;
//! - [`license`]: a license, and [`LicenseBody`], the document of licenses written by hand
//!   (the one hot path that does not go through serde);
//! - [`entitlements`]: what a user may watch;
//! - [`access`]: why a user may or may not watch a service on a channel;
//! - [`event`]: events, in the feed and as the publishers' messages;
//! - here: links, the generic [`Document`] and [`MetaDocument`], a resource kept as
//!   [`Rendered`] JSON, and the answer made of a document.

mod access;
mod entitlements;
mod event;
mod license;
mod product;
mod webhook;

use std::borrow::Cow;
use std::marker::PhantomData;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use licenses_app::ports::StoredResponse;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa::openapi::{RefOr, Schema};

use super::media_type::JSONAPI;
use crate::origin::PublicOrigins;

pub use access::{
    AccessIncluded, AccessQuestion, ManagementAccessDocument, UserAccessDocument,
    management_access_document, user_access_document,
};
pub use entitlements::{
    ChannelEntitlement, EntitlementAttributes, EntitlementsDocument, EntitlementsMeta, Grant,
    entitlements_document,
};
pub use event::{
    EventAttributes, EventFeedDocument, EventMessage, EventObject, EventResource, event_message,
    event_object,
};
pub use license::{
    Json, License, LicenseAttributes, LicenseBody, LicenseMeta, LicenseRelationships, Licenses,
    PurchaseRecord, RenewRecord, license_resource,
};
pub use product::{
    ManagementProduct, ManagementProductAttributes, PriceRecord, ProductRelationships, UserProduct,
    UserProductAttributes, management_product, user_product,
};
pub use webhook::{
    Webhook, WebhookAttributes, WebhookDeliveryAttributes, WebhookDeliveryObject,
    webhook_delivery_object, webhook_resource,
};

/// Which API a document is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The BSS: every attribute, management-only ones included.
    Management,
    /// Client apps: user-facing attributes only.
    User,
}

/// Absolute URLs into one API, under its public origin ([`crate::origin`]).
#[derive(Debug, Clone)]
pub struct Links {
    root: String,
}

impl Links {
    /// Links under `prefix` (`/api/license/management/v4`), at the origin the application's
    /// [`PublicOrigins`] give the request (without them: its own `Host` from loopback only).
    pub fn new(req: &HttpRequest, prefix: &str) -> Self {
        let origin = match req.app_data::<web::Data<PublicOrigins>>() {
            Some(origins) => origins.origin(req, prefix),
            None => PublicOrigins::new().origin(req, prefix),
        };
        Self {
            root: format!("{origin}{prefix}"),
        }
    }

    /// Links under `root`, the API's public origin and prefix
    /// (`https://licenses.example/api/license/management/v4`): for messages made outside a
    /// request (the events publishers).
    pub fn with_root(root: impl Into<String>) -> Self {
        Self { root: root.into() }
    }

    pub fn url(&self, path: &str) -> String {
        self.url_of(&[path])
    }

    /// The URL of one resource: `collection` (`/products/`) and its id, encoded as a path
    /// segment ([`segment`]).
    pub fn resource(&self, collection: &str, id: &str) -> String {
        self.url_of(&[collection, &segment(id)])
    }

    /// The URL of the path made of `parts`, one after the other: a resource's link, made
    /// without formatting (it is made for every resource of a document). An id among them
    /// goes through [`segment`].
    pub fn url_of(&self, parts: &[&str]) -> String {
        let mut url =
            String::with_capacity(self.root.len() + parts.iter().map(|p| p.len()).sum::<usize>());
        url.push_str(&self.root);
        for part in parts {
            url.push_str(part);
        }
        url
    }
}

/// What a path segment cannot hold as it is: controls, space, non-ASCII (always encoded),
/// and the delimiters of a path, a query and a fragment (RFC 3986 §3.3), `%` itself included.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// An id as one segment of a link's path: an id may hold `/`, `?`, `#` or `%` (ids refuse
/// only white space and controls), which a link must not read as delimiters. Borrowed when
/// nothing needs encoding, as with every id the service makes.
pub fn segment(id: &str) -> Cow<'_, str> {
    utf8_percent_encode(id, SEGMENT).into()
}

/// A resource's own URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct SelfLink {
    #[serde(rename = "self")]
    pub self_: String,
}

/// A listing's URL, and the next page's when there is one.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ListLinks)]
pub struct DocumentLinks {
    #[serde(rename = "self")]
    pub self_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next: Option<String>,
}

/// A top-level document with primary data, and optionally `included` resources and links.
#[derive(Debug, Serialize, ToSchema)]
pub struct Document<D, I = NotIncluded> {
    pub data: D,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub included: Option<Vec<I>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub links: Option<DocumentLinks>,
}

/// The `included` of a document that never includes resources: a type of no value, so that
/// `included` is always absent (its schema admits nothing but an empty list).
#[derive(Debug, Clone, Copy)]
pub enum NotIncluded {}

impl Serialize for NotIncluded {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        match *self {}
    }
}

impl utoipa::__dev::ComposeSchema for NotIncluded {
    fn compose(_generics: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        RefOr::T(Schema::Object(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::Null)
                .description(Some("Nothing: this document includes no resources."))
                .build(),
        ))
    }
}

impl ToSchema for NotIncluded {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push((Self::name().into_owned(), Self::schema()));
    }
}

/// A meta-only document: the answer of an action that has no resource to show.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetaDocument<M> {
    pub meta: M,
}

/// A resource rendered once and kept as its JSON text (the user API's products, once per
/// catalogue snapshot); it is written as that text, and documented as a `T`.
#[derive(Debug)]
pub struct Rendered<'a, T> {
    json: &'a RawValue,
    of: PhantomData<T>,
}

impl<'a, T: Serialize> Rendered<'a, T> {
    /// A resource's JSON text, to keep and to pass to [`Rendered::from_text`].
    pub fn render(resource: &T) -> Box<RawValue> {
        serde_json::to_string(resource)
            .ok()
            .and_then(|json| RawValue::from_string(json).ok())
            .unwrap_or_default()
    }

    /// A resource as rendered by [`Rendered::render`].
    pub fn from_text(json: &'a RawValue) -> Self {
        Self {
            json,
            of: PhantomData,
        }
    }
}

impl<T> Serialize for Rendered<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

// Its schema is a reference to `T`'s. utoipa derives `PartialSchema` from this trait, and
// calls it for a type used as a generic argument (a `Document<Vec<…>>`).
impl<T: ToSchema> utoipa::__dev::ComposeSchema for Rendered<'_, T> {
    fn compose(_generics: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
    }
}

impl<T: ToSchema> ToSchema for Rendered<'_, T> {
    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

/// Room for a typical document, made up front (a user's licenses are about 11 KB): growing
/// from empty copies the body a dozen times, and from 4 KB still twice.
const DOCUMENT_CAPACITY: usize = 16 * 1024;

/// A document serialized into the answer to give (or to store for an idempotency key).
pub fn to_stored(status: StatusCode, doc: &impl Serialize) -> StoredResponse {
    stored_document(status, |body| serde_json::to_writer(body, doc))
}

/// The answer `write` makes: its document, or no body at all if serializing failed half-way
/// (never a part of a document).
fn stored_document(
    status: StatusCode,
    write: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> StoredResponse {
    let mut body = Vec::with_capacity(DOCUMENT_CAPACITY);
    if write(&mut body).is_err() {
        body.clear();
    }
    StoredResponse {
        status: status.as_u16(),
        body,
    }
}

/// A stored answer as an HTTP response. A 201 gets `Location`: the `links.self` of its
/// primary data (of the first resource, for a batch), read from the body itself, so that a
/// replay of the answer for its `Idempotency-Key` gets it too.
pub fn stored(answer: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = HttpResponse::build(status);
    if status == StatusCode::CREATED
        && let Some(location) =
            primary_self_link(&answer.body).and_then(|l| header::HeaderValue::from_str(&l).ok())
    {
        r.insert_header((header::LOCATION, location));
    }
    if answer.body.is_empty() {
        r.finish()
    } else {
        r.insert_header((header::CONTENT_TYPE, JSONAPI))
            .body(answer.body)
    }
}

/// The `links.self` of a document's primary data, or of its first resource: the document
/// is read through (it must be read to its end) without keeping anything else.
pub fn primary_self_link(body: &[u8]) -> Option<String> {
    use serde::Deserialize;
    use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};

    #[derive(Deserialize)]
    struct Top {
        data: Option<Primary>,
    }
    #[derive(Deserialize)]
    struct Resource {
        links: Option<SelfOnly>,
    }
    #[derive(Deserialize)]
    struct SelfOnly {
        #[serde(rename = "self")]
        self_: Option<String>,
    }
    struct Primary(Option<String>);

    impl<'de> Deserialize<'de> for Primary {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Primary;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a resource or a list of resources")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Primary, A::Error> {
                    let r =
                        Resource::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                    Ok(Primary(r.links.and_then(|l| l.self_)))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Primary, A::Error> {
                    let first = seq
                        .next_element::<Resource>()?
                        .and_then(|r| r.links)
                        .and_then(|l| l.self_);
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(Primary(first))
                }
                fn visit_unit<E>(self) -> Result<Primary, E> {
                    Ok(Primary(None))
                }
            }
            d.deserialize_any(V)
        }
    }

    serde_json::from_slice::<Top>(body).ok()?.data?.0
}

/// A document as an HTTP response.
pub fn respond(status: StatusCode, doc: &impl Serialize) -> HttpResponse {
    stored(to_stored(status, doc))
}

#[cfg(test)]
mod location_tests {
    use super::*;

    #[test]
    fn the_location_of_a_201_is_its_primary_datas_self_link() {
        let one = br#"{"data":{"type":"License","id":"1","attributes":{"links":{"self":"no"}},"links":{"self":"https://a.example/l/1"}},"included":[{"links":{"self":"https://a.example/p/9"}}]}"#;
        assert_eq!(
            primary_self_link(one).as_deref(),
            Some("https://a.example/l/1")
        );
        let many = br#"{"data":[{"type":"License","id":"1","links":{"self":"https://a.example/l/1"}},{"links":{"self":"https://a.example/l/2"}}]}"#;
        assert_eq!(
            primary_self_link(many).as_deref(),
            Some("https://a.example/l/1")
        );
        for none in [
            &b"{}"[..],
            b"{\"data\":null}",
            b"{\"data\":[]}",
            b"not json",
            b"",
        ] {
            assert_eq!(primary_self_link(none), None);
        }
        let r = stored(StoredResponse {
            status: 201,
            body: many.to_vec(),
        });
        assert_eq!(
            r.headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some("https://a.example/l/1")
        );
        let ok = stored(StoredResponse {
            status: 200,
            body: many.to_vec(),
        });
        assert!(ok.headers().get(header::LOCATION).is_none());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_one_path_segment_of_a_link() {
        assert!(matches!(segment("01a2521d-74e4-70c8"), Cow::Borrowed(_)));
        assert_eq!(segment("a/b?c#d%e"), "a%2Fb%3Fc%23d%25e");
        assert_eq!(segment("caf\u{e9} [1]"), "caf%C3%A9%20%5B1%5D");
        assert_eq!(segment("user:41@sub.example+x"), "user:41@sub.example+x");
    }
}
