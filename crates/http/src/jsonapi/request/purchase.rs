//! PurchaseUserLicense's document: a typed document (serde, with its OpenAPI schema), the
//! contract and the fast way to read a good purchase; a body that does not read as one is
//! walked member by member ([`super::walk`]) to report every problem with its pointer.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::ProductRelationship;
use super::walk::{DocumentProblems, only_known, parse, primary_data, resource, string, to_one};
use crate::jsonapi::ApiError;
use crate::jsonapi::resource_type::LicenseType;

/// A purchase, read into its members: the product, `payment_method` and `order_id` (the
/// user is the path's). The use case checks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurchaseOrder {
    pub product: Option<String>,
    pub payment_method: Option<String>,
    pub order_id: Option<String>,
}

/// The only payment method.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum PaymentMethod {
    #[serde(rename = "billing")]
    Billing,
}

impl PaymentMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Billing => "billing",
        }
    }
}

/// A purchase's attributes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseAttributes {
    #[serde(deserialize_with = "super::string_only")]
    pub payment_method: PaymentMethod,
    /// The app's id of this purchase, unique per user (default: the `Idempotency-Key`).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub order_id: Option<String>,
}

/// The product a purchase buys.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRelationships {
    #[serde(deserialize_with = "super::object")]
    pub product: ProductRelationship,
}

/// A purchase: a new license of the path's user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseResource {
    #[serde(rename = "type")]
    pub kind: LicenseType,
    #[serde(deserialize_with = "super::object")]
    pub attributes: PurchaseAttributes,
    #[serde(deserialize_with = "super::object")]
    pub relationships: PurchaseRelationships,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// PurchaseUserLicense's request document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": {"type": "License", "attributes": {"payment_method":
    "billing"}, "relationships": {"product": {"data": {"id": "41", "type": "Product"}}}}}))]
pub struct PurchaseDocument {
    #[serde(deserialize_with = "super::object")]
    pub data: PurchaseResource,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub jsonapi: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

impl From<PurchaseDocument> for PurchaseOrder {
    fn from(doc: PurchaseDocument) -> Self {
        let r = doc.data;
        PurchaseOrder {
            product: Some(r.relationships.product.data.id),
            payment_method: Some(r.attributes.payment_method.as_str().to_owned()),
            order_id: r.attributes.order_id,
        }
    }
}

/// PurchaseUserLicense's document.
pub fn read_purchase(body: &[u8]) -> Result<PurchaseOrder, ApiError> {
    match serde_json::from_slice::<super::Obj<PurchaseDocument>>(body).map(|o| o.0) {
        Ok(doc) => Ok(doc.into()),
        Err(_) => walk_purchase(body),
    }
}

// ---------------------------------------------------------------------------------------
// Member by member

/// PurchaseUserLicense's document, member by member.
pub(super) fn walk_purchase(body: &[u8]) -> Result<PurchaseOrder, ApiError> {
    let doc: Value = parse(body)?;
    let mut p = DocumentProblems::default();
    let mut out = PurchaseOrder::default();
    if let Some(r) =
        primary_data(&doc, &mut p).and_then(|d| resource(d, "/data", "License", &mut p))
    {
        p.forbid_client_id(&r, "/data", "license");
        let at = "/data/attributes";
        only_known(
            r.attributes,
            &["payment_method", "order_id"],
            at,
            "unknown_attribute",
            &mut p,
        );
        only_known(
            r.relationships,
            &["product"],
            "/data/relationships",
            "unknown_relationship",
            &mut p,
        );
        out = PurchaseOrder {
            product: to_one(
                r.relationships,
                "product",
                "Product",
                "/data/relationships",
                &mut p,
            ),
            payment_method: string(r.attributes, "payment_method", at, &mut p).flatten(),
            order_id: string(r.attributes, "order_id", at, &mut p).flatten(),
        };
    }
    p.into_result(out)
}
