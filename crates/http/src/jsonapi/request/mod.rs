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
//! - here: the resource identifiers and relationships they share.

mod license;
mod product;
mod purchase;
mod walk;

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

/// For `#[serde(default, deserialize_with = "present")]`: a member that may be absent but,
/// when present, is not `null` (a resource's `attributes` or `relationships`, a
/// relationship).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// For `#[serde(default, deserialize_with = "nullable")]`: a member of a patch that is absent
/// (`None`: kept), `null` (`Some(None)`: removed) or a value.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
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
    pub data: ProductIdentifier,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

#[cfg(test)]
mod tests;
