//! Product documents: CreateProduct's and UpdateProduct's.
//!
//! Each is a typed document (serde, with its OpenAPI schema), which is both the contract the
//! API publishes and the fast way to read a good document; a body that does not read as one
//! is walked member by member ([`super::walk`]) to report every problem with its pointer.

use actix_web::http::StatusCode;
use licenses_domain::{
    LicenseDefaultsDraft, PriceDraft, ProductDraft, ProductId, ProductPatch,
    ProductType as ProductKind, Service,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::walk::{
    DocumentProblems, Resource, boolean, integer, object, only_known, parse, primary_data,
    resource, string, to_many,
};
use super::{ChannelIdentifier, nullable, present};
use crate::jsonapi::ApiError;
use crate::jsonapi::resource_type::ProductType;

/// A price in minor units (cents) of an ISO 4217 currency.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PriceRecordInput)]
pub struct PriceRecordInput {
    #[schema(minimum = 0, maximum = 9223372036854775807_i64, example = 999)]
    pub amount: i64,
    /// An ISO 4217 code.
    #[schema(schema_with = super::currency_schema)]
    pub currency: String,
}

/// License defaults in a request document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseDefaultsInput {
    /// Seconds, positive.
    #[schema(minimum = 1, maximum = 9223372036854775807_i64)]
    pub duration: Option<i64>,
    pub auto_renew: Option<bool>,
}

/// The channels a product grants one service on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelsRelationship {
    /// Each channel once.
    #[serde(deserialize_with = "super::objects")]
    pub data: Vec<ChannelIdentifier>,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// The channels of each service a product grants; an absent service grants none (or, in a
/// patch, keeps its channels).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductRelationshipsInput {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub live: Option<ChannelsRelationship>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub npvr: Option<ChannelsRelationship>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub catchup: Option<ChannelsRelationship>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub startover: Option<ChannelsRelationship>,
}

impl ProductRelationshipsInput {
    /// The channel ids of each service, indexed like [`Service::ALL`]; `None` where absent.
    fn channels(self) -> [Option<Vec<String>>; 4] {
        let ids =
            |r: Option<ChannelsRelationship>| r.map(|r| r.data.into_iter().map(|c| c.id).collect());
        debug_assert_eq!(
            Service::ALL,
            [
                Service::Live,
                Service::Npvr,
                Service::Catchup,
                Service::Startover
            ]
        );
        [
            ids(self.live),
            ids(self.npvr),
            ids(self.catchup),
            ids(self.startover),
        ]
    }
}

/// The attributes of a new product: `title` and `type` are required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductCreateAttributes {
    /// Not blank: at least one character that is not white space.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub title: String,
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    #[serde(rename = "type", deserialize_with = "super::string_only")]
    pub product_type: ProductKind,
    pub is_premium: Option<bool>,
    /// Default true.
    pub is_user_visible: Option<bool>,
    /// Default true.
    pub is_buyable: Option<bool>,
    pub auto_grant_on_signup: Option<bool>,
    #[serde(default, deserialize_with = "super::optional_object")]
    pub price_record: Option<PriceRecordInput>,
    #[serde(default, deserialize_with = "super::optional_object")]
    pub license_defaults: Option<LicenseDefaultsInput>,
    /// Not blank.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub irdeto_product_id: Option<String>,
}

/// A new product (its id is assigned by the service).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductCreateResource {
    #[serde(rename = "type")]
    pub kind: ProductType,
    #[serde(deserialize_with = "super::object")]
    pub attributes: ProductCreateAttributes,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub relationships: Option<ProductRelationshipsInput>,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// CreateProduct's request document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": {"type": "Product", "attributes": {"title":
    "Sport channels meagpack", "description": "Complete collection for all sports channels",
    "type": "CHANNEL_GROUP", "is_premium": true}, "relationships": {
    "live": {"data": [{"id": "42", "type": "Channel"}]}, "npvr": {"data": [{"id": "42",
    "type": "Channel"}]}, "catchup": {"data": [{"id": "42", "type": "Channel"}]},
    "startover": {"data": [{"id": "42", "type": "Channel"}]}}}}))]
pub struct ProductCreateDocument {
    #[serde(deserialize_with = "super::object")]
    pub data: ProductCreateResource,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub jsonapi: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// The attributes a patch changes; absent ones keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchAttributes {
    /// Not blank: at least one character that is not white space.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub title: Option<String>,
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    #[serde(
        rename = "type",
        default,
        deserialize_with = "super::optional_string_only"
    )]
    pub product_type: Option<ProductKind>,
    pub is_premium: Option<bool>,
    pub is_user_visible: Option<bool>,
    pub is_buyable: Option<bool>,
    pub auto_grant_on_signup: Option<bool>,
    /// `null` removes the price.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<PriceRecordInput>)]
    pub price_record: Option<Option<PriceRecordInput>>,
    #[serde(default, deserialize_with = "super::optional_object")]
    pub license_defaults: Option<LicenseDefaultsInput>,
    /// `null` removes the reference; not blank.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(
        value_type = Option<String>,
        min_length = 1,
        max_length = 255,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub irdeto_product_id: Option<Option<String>>,
}

/// A product's changes, named by the id of the URL.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchResource {
    #[serde(rename = "type")]
    pub kind: ProductType,
    /// The id of the URL.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub id: String,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub attributes: Option<ProductPatchAttributes>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub relationships: Option<ProductRelationshipsInput>,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// UpdateProduct's request document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": {"type": "Product", "id": "41", "attributes":
    {"title": "Sport channels megapack", "is_buyable": false}}}))]
pub struct ProductPatchDocument {
    #[serde(deserialize_with = "super::object")]
    pub data: ProductPatchResource,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub jsonapi: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

impl From<PriceRecordInput> for PriceDraft {
    fn from(p: PriceRecordInput) -> Self {
        PriceDraft {
            amount: Some(p.amount),
            currency: Some(p.currency),
        }
    }
}

impl From<LicenseDefaultsInput> for LicenseDefaultsDraft {
    fn from(d: LicenseDefaultsInput) -> Self {
        LicenseDefaultsDraft {
            duration: d.duration,
            auto_renew: d.auto_renew,
        }
    }
}

impl From<ProductCreateDocument> for ProductDraft {
    fn from(doc: ProductCreateDocument) -> Self {
        let a = doc.data.attributes;
        ProductDraft {
            title: Some(a.title),
            description: a.description,
            product_type: Some(a.product_type.as_str().to_owned()),
            is_premium: a.is_premium,
            is_user_visible: a.is_user_visible,
            is_buyable: a.is_buyable,
            auto_grant_on_signup: a.auto_grant_on_signup,
            price_record: a.price_record.map(Into::into),
            license_defaults: a.license_defaults.map(Into::into),
            irdeto_product_id: a.irdeto_product_id,
            channels: doc
                .data
                .relationships
                .map(ProductRelationshipsInput::channels)
                .unwrap_or_default()
                .map(Option::unwrap_or_default),
        }
    }
}

impl From<ProductPatchResource> for ProductPatch {
    fn from(r: ProductPatchResource) -> Self {
        let a = r.attributes;
        let channels = r
            .relationships
            .map(ProductRelationshipsInput::channels)
            .unwrap_or_default();
        match a {
            None => ProductPatch {
                channels,
                ..ProductPatch::default()
            },
            Some(a) => ProductPatch {
                title: a.title,
                description: a.description,
                product_type: a.product_type.map(|t| t.as_str().to_owned()),
                is_premium: a.is_premium,
                is_user_visible: a.is_user_visible,
                is_buyable: a.is_buyable,
                auto_grant_on_signup: a.auto_grant_on_signup,
                price_record: a.price_record.map(|p| p.map(Into::into)),
                license_defaults: a.license_defaults.map(Into::into),
                irdeto_product_id: a.irdeto_product_id,
                channels,
            },
        }
    }
}

/// CreateProduct's document.
pub fn read_product_create(body: &[u8]) -> Result<ProductDraft, ApiError> {
    match serde_json::from_slice::<super::Obj<ProductCreateDocument>>(body).map(|o| o.0) {
        Ok(doc) => Ok(doc.into()),
        Err(_) => walk_product_create(body),
    }
}

/// UpdateProduct's document, whose `id` must be the one of the path (409 otherwise).
pub fn read_product_patch(body: &[u8], id: &ProductId) -> Result<ProductPatch, ApiError> {
    match serde_json::from_slice::<super::Obj<ProductPatchDocument>>(body).map(|o| o.0) {
        Ok(doc) if doc.data.id == id.as_str() => Ok(doc.data.into()),
        _ => walk_product_patch(body, id),
    }
}

// ---------------------------------------------------------------------------------------
// Member by member

const PRODUCT_ATTRIBUTES: &[&str] = &[
    "title",
    "description",
    "type",
    "is_premium",
    "is_user_visible",
    "is_buyable",
    "auto_grant_on_signup",
    "price_record",
    "license_defaults",
    "irdeto_product_id",
];
const PRODUCT_RELATIONSHIPS: &[&str] = &["live", "npvr", "catchup", "startover"];

fn price(
    attrs: Option<&Map<String, Value>>,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Option<PriceDraft>> {
    object(attrs, "price_record", at, p).map(|o| {
        o.map(|m| {
            let at = format!("{at}/price_record");
            only_known(
                Some(m),
                &["amount", "currency"],
                &at,
                "unknown_attribute",
                p,
            );
            PriceDraft {
                amount: integer(Some(m), "amount", &at, p).flatten(),
                currency: string(Some(m), "currency", &at, p).flatten(),
            }
        })
    })
}

fn license_defaults(
    attrs: Option<&Map<String, Value>>,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<LicenseDefaultsDraft> {
    object(attrs, "license_defaults", at, p).flatten().map(|m| {
        let at = format!("{at}/license_defaults");
        only_known(
            Some(m),
            &["duration", "auto_renew"],
            &at,
            "unknown_attribute",
            p,
        );
        LicenseDefaultsDraft {
            duration: integer(Some(m), "duration", &at, p).flatten(),
            auto_renew: boolean(Some(m), "auto_renew", &at, p).flatten(),
        }
    })
}

/// The members of a product document, as a patch: absent members are `None`.
fn product_members(r: &Resource<'_>, p: &mut DocumentProblems) -> ProductPatch {
    let attrs = r.attributes;
    let at = "/data/attributes";
    only_known(attrs, PRODUCT_ATTRIBUTES, at, "unknown_attribute", p);
    only_known(
        r.relationships,
        PRODUCT_RELATIONSHIPS,
        "/data/relationships",
        "unknown_relationship",
        p,
    );
    let rels = r.relationships;
    ProductPatch {
        title: string(attrs, "title", at, p).flatten(),
        description: string(attrs, "description", at, p).flatten(),
        product_type: string(attrs, "type", at, p).flatten(),
        is_premium: boolean(attrs, "is_premium", at, p).flatten(),
        is_user_visible: boolean(attrs, "is_user_visible", at, p).flatten(),
        is_buyable: boolean(attrs, "is_buyable", at, p).flatten(),
        auto_grant_on_signup: boolean(attrs, "auto_grant_on_signup", at, p).flatten(),
        price_record: price(attrs, at, p),
        license_defaults: license_defaults(attrs, at, p),
        irdeto_product_id: string(attrs, "irdeto_product_id", at, p),
        channels: Service::ALL
            .map(|s| to_many(rels, s.as_str(), "Channel", "/data/relationships", p)),
    }
}

/// CreateProduct's document, member by member.
pub(super) fn walk_product_create(body: &[u8]) -> Result<ProductDraft, ApiError> {
    let doc: Value = parse(body)?;
    let mut p = DocumentProblems::default();
    let mut draft = ProductDraft::default();
    if let Some(r) =
        primary_data(&doc, &mut p).and_then(|d| resource(d, "/data", "Product", &mut p))
    {
        p.forbid_client_id(&r, "/data", "product");
        let m = product_members(&r, &mut p);
        draft = ProductDraft {
            title: m.title,
            description: m.description,
            product_type: m.product_type,
            is_premium: m.is_premium,
            is_user_visible: m.is_user_visible,
            is_buyable: m.is_buyable,
            auto_grant_on_signup: m.auto_grant_on_signup,
            price_record: m.price_record.flatten(),
            license_defaults: m.license_defaults,
            irdeto_product_id: m.irdeto_product_id.flatten(),
            channels: m.channels.map(Option::unwrap_or_default),
        };
    }
    p.into_result(draft)
}

/// UpdateProduct's document, member by member.
pub(super) fn walk_product_patch(body: &[u8], id: &ProductId) -> Result<ProductPatch, ApiError> {
    let doc: Value = parse(body)?;
    let mut p = DocumentProblems::default();
    let mut patch = ProductPatch::default();
    if let Some(r) =
        primary_data(&doc, &mut p).and_then(|d| resource(d, "/data", "Product", &mut p))
    {
        match r.id {
            None => p.structure("/data/id", "an update names the product's id"),
            Some(given) if given != id.as_str() => p.push(
                StatusCode::CONFLICT,
                "/data/id",
                "id_mismatch",
                "the document's id is not the id of the URL",
            ),
            Some(_) => {}
        }
        patch = product_members(&r, &mut p);
    }
    p.into_result(patch)
}
