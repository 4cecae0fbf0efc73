//! Request documents read into domain drafts.
//!
//! Each document is a typed struct (`serde::Deserialize` and `utoipa::ToSchema`): the
//! published schema is derived from it, and a good document is read straight into it. A body
//! that does not read as one is then walked member by member ([`walk`]), which reports every
//! problem at once with the JSON pointer of the member at fault — or, where the typed reading
//! is stricter than the rules (a repeated member, say), accepts it as before. The typed
//! reading never accepts what the walk would refuse, and both give the same draft (the tests
//! below hold them to it).
//!
//! - [`product`]: CreateProduct's and UpdateProduct's documents;
//! - [`license`]: CreateLicense's, BatchCreateLicenses' and BatchDeleteLicenses';
//! - [`purchase`]: PurchaseUserLicense's document;
//! - [`webhook`]: CreateWebhook's and UpdateWebhook's;
//! - here: the resource identifiers and relationships they share.

mod license;
mod product;
mod purchase;
mod walk;
mod webhook;

use serde::de::DeserializeOwned;
use serde::de::value::StringDeserializer;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::ToSchema;

use crate::jsonapi::resource_type::{ChannelType, LicenseType, ProductType, UserType};

pub use license::{
    LicenseBatchDocument, LicenseCreateDocument, LicenseDeleteBatchDocument, read_batch_delete,
    read_license_batch, read_license_create,
};
pub use product::{
    ProductCreateDocument, ProductPatchDocument, read_product_create, read_product_patch,
};
pub use purchase::{PurchaseDocument, PurchaseOrder, read_purchase};
pub use walk::DocumentProblems;
pub use webhook::{
    WebhookAttributesInput, WebhookCreateDocument, WebhookPatchDocument, WebhookPatchResource,
    WebhookResourceInput, read_webhook_create, read_webhook_patch,
};

/// A unit enum of the documents (a status, a payment method, a product's type) read from a
/// JSON string only: serde's derive also reads `{"VARIANT": null}`, which the walk refuses.
fn string_only<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    T::deserialize(StringDeserializer::<D::Error>::new(String::deserialize(d)?))
}

/// [`string_only`], for a member that may be absent or null.
fn optional_string_only<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| T::deserialize(StringDeserializer::<D::Error>::new(text)))
        .transpose()
}

/// For `#[serde(default, deserialize_with = "present")]`: a member that may be absent but,
/// when present, is not `null` (a resource's `attributes` or `relationships`, a
/// relationship); an object, not an array.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Obj::<T>::deserialize(d).map(|o| Some(o.0))
}

/// For `#[serde(default, deserialize_with = "nullable")]`: a member of a patch that is absent
/// (`None`: kept), `null` (`Some(None)`: removed) or a value (an object, not an array).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<Obj<T>>::deserialize(d).map(|o| Some(o.map(|o| o.0)))
}

/// For `#[serde(deserialize_with = "object")]`: a struct read from a JSON object only.
fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Obj::<T>::deserialize(d).map(|o| o.0)
}

/// For `#[serde(default, deserialize_with = "optional_object")]`: absent, `null`, or an
/// object.
fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Obj<T>>::deserialize(d).map(|o| o.map(|o| o.0))
}

/// For `#[serde(deserialize_with = "objects")]`: an array of objects.
fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<Obj<T>>::deserialize(d).map(|v| v.into_iter().map(|o| o.0).collect())
}

/// For `#[serde(deserialize_with = "capped_objects")]`: a batch's `data`, an array of objects
/// read up to the cap as [`walk::CappedVec`] does.
fn capped_objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    walk::CappedVec::<Obj<T>>::deserialize(d).map(|c| c.0.into_iter().map(|o| o.0).collect())
}

/// A struct read from a JSON object only. serde's derived structs also read an array (their
/// fields in order), which the published schemas refuse (`"type": "object"`), and so must the
/// service.
pub(super) struct Obj<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(d)).map(Obj)
    }
}

/// A deserializer that reads a struct as a map only; anything else as it is.
struct MapOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(v)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(v)
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_option(v)
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// The schema of a currency: one of the ISO 4217 codes the service knows (any three
/// capitals would promise more than it accepts).
fn currency_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(licenses_domain::Currency::codes()))
        .examples(["EUR"])
        .build()
}

/// [`currency_schema`], or `null`.
fn nullable_currency_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let codes = licenses_domain::Currency::codes()
        .into_iter()
        .map(Value::from)
        .chain([Value::Null]);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(codes))
        .build()
}

/// A channel of the Channel API.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelIdentifier {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$",
        example = "42"
    )]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// Free-form; ignored.
    #[schema(nullable = false)]
    pub meta: Option<Value>,
}

/// A product named by its id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductIdentifier {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$",
        example = "41"
    )]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ProductType,
    /// Free-form; ignored.
    #[schema(nullable = false)]
    pub meta: Option<Value>,
}

/// A user named by their id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIdentifier {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$",
        example = "41"
    )]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: UserType,
    /// Free-form; ignored.
    #[schema(nullable = false)]
    pub meta: Option<Value>,
}

/// A license named by its id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseIdentifier {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$",
        example = "42"
    )]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: LicenseType,
    /// Free-form; ignored.
    #[schema(nullable = false)]
    pub meta: Option<Value>,
}

/// The user of a license.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRelationship {
    #[serde(deserialize_with = "object")]
    pub data: UserIdentifier,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// The product of a license.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductRelationship {
    #[serde(deserialize_with = "object")]
    pub data: ProductIdentifier,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

#[cfg(test)]
mod tests;
