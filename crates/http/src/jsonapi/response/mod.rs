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
//! - here: links, the generic [`Document`] and [`MetaDocument`], a resource kept as
//!   [`Rendered`] JSON, and the answer made of a document.

mod entitlements;
mod license;
mod product;

use std::borrow::Cow;
use std::marker::PhantomData;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use licenses_app::ports::StoredResponse;
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa::openapi::{RefOr, Schema};

use super::media_type::JSONAPI;

pub use entitlements::{
    ChannelEntitlement, EntitlementAttributes, EntitlementsDocument, EntitlementsMeta, Grant,
    entitlements_document,
};
pub use license::{
    Json, License, LicenseAttributes, LicenseBody, LicenseMeta, LicenseRelationships, Licenses,
    PurchaseRecord, RenewRecord, license_resource,
};
pub use product::{
    ManagementProduct, ManagementProductAttributes, PriceRecord, ProductRelationships, UserProduct,
    UserProductAttributes, management_product, user_product,
};

/// Which API a document is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The BSS: every attribute, management-only ones included.
    Management,
    /// Client apps: user-facing attributes only.
    User,
}

/// Absolute URLs into one API, built from the request's scheme and host.
#[derive(Debug, Clone)]
pub struct Links {
    root: String,
}

impl Links {
    /// Links under `prefix` (`/api/license/management/v4`) of the host the request came to.
    pub fn new(req: &HttpRequest, prefix: &str) -> Self {
        let info = req.connection_info();
        Self {
            root: format!("{}://{}{prefix}", info.scheme(), info.host()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.url_of(&[path])
    }

    /// The URL of the path made of `parts`, one after the other: a resource's link, made
    /// without formatting (it is made for every resource of a document).
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

/// A stored answer as an HTTP response.
pub fn stored(answer: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = HttpResponse::build(status);
    if answer.body.is_empty() {
        r.finish()
    } else {
        r.insert_header((header::CONTENT_TYPE, JSONAPI))
            .body(answer.body)
    }
}

/// A document as an HTTP response.
pub fn respond(status: StatusCode, doc: &impl Serialize) -> HttpResponse {
    stored(to_stored(status, doc))
}
