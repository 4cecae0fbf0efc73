//! License documents: CreateLicense's, BatchCreateLicenses' and BatchDeleteLicenses'.
//!
//! Each is a typed document (serde, with its OpenAPI schema), which is both the contract the
//! API publishes and the fast way to read a good document (a batch of 10,000 licenses read
//! straight into drafts); a body that does not read as one is walked member by member
//! ([`super::walk`]), one batch item at a time, to report every problem with its pointer.

use licenses_domain::{LicenseDraft, LicenseId, PurchaseDraft, RenewDraft};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::walk::{
    DocumentProblems, batch_items, boolean, integer, item, object, only_identifier_members,
    only_known, parse, primary_data, resource, string, to_one,
};
use super::{LicenseIdentifier, ProductRelationship, UserRelationship, present};
use crate::jsonapi::ApiError;
use crate::jsonapi::resource_type::LicenseType;

/// A new license's status: ACTIVE (the default) or SUSPENDED.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum NewLicenseStatus {
    #[serde(rename = "ACTIVE")]
    Active,
    #[serde(rename = "SUSPENDED")]
    Suspended,
}

impl NewLicenseStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
        }
    }
}

/// How a new license was bought; the price comes from the product when absent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRecordInput {
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    pub price_currency_amount: Option<i64>,
    /// An ISO 4217 code.
    #[schema(schema_with = super::nullable_currency_schema)]
    pub price_currency_iso4217: Option<String>,
    #[schema(minimum = 0, maximum = 253402300799_i64)]
    pub purchase_timestamp: Option<i64>,
    /// Not blank.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub payment_method: Option<String>,
}

/// Whether a new license renews (default: the product's `auto_renew`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRecordInput {
    pub recurring: Option<bool>,
    #[schema(minimum = 0, maximum = 253402300799_i64)]
    pub expiry_date: Option<i64>,
}

/// A new license's attributes; every one has a default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseCreateAttributes {
    #[serde(default, deserialize_with = "super::optional_string_only")]
    pub status: Option<NewLicenseStatus>,
    /// Default: now.
    #[schema(minimum = 0, maximum = 253402300799_i64)]
    pub start_date: Option<i64>,
    /// Default: `start_date` plus the product's `license_defaults.duration`.
    #[schema(minimum = 0, maximum = 253402300799_i64)]
    pub stop_date: Option<i64>,
    /// Unique per user.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub order_id: Option<String>,
    #[serde(default, deserialize_with = "super::optional_object")]
    pub purchase_record: Option<PurchaseRecordInput>,
    #[serde(default, deserialize_with = "super::optional_object")]
    pub renew_record: Option<RenewRecordInput>,
}

/// The user and product of a new license.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseCreateRelationships {
    #[serde(deserialize_with = "super::object")]
    pub user: UserRelationship,
    #[serde(deserialize_with = "super::object")]
    pub product: ProductRelationship,
}

/// A new license (its id is assigned by the service).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseCreateResource {
    #[serde(rename = "type")]
    pub kind: LicenseType,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub attributes: Option<LicenseCreateAttributes>,
    #[serde(deserialize_with = "super::object")]
    pub relationships: LicenseCreateRelationships,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// CreateLicense's request document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": {"type": "License", "attributes": {"status": "ACTIVE",
    "start_date": 1523268666, "stop_date": 1523268698}, "relationships": {"user": {"data":
    {"id": "41", "type": "User"}}, "product": {"data": {"id": "41", "type": "Product"}}}}}))]
pub struct LicenseCreateDocument {
    #[serde(deserialize_with = "super::object")]
    pub data: LicenseCreateResource,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub jsonapi: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// BatchCreateLicenses' request document: 1 to 10,000 licenses, all created or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": [{"type": "License", "relationships": {"user": {"data":
    {"id": "41", "type": "User"}}, "product": {"data": {"id": "41", "type": "Product"}}}}]}))]
pub struct LicenseBatchDocument {
    #[schema(min_items = 1, max_items = 10000)]
    #[serde(deserialize_with = "super::capped_objects")]
    pub data: Vec<LicenseCreateResource>,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub jsonapi: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

/// BatchDeleteLicenses' request document: 1 to 10,000 licenses (one listed twice is deleted
/// once).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": [{"type": "License", "id": "42"}]}))]
pub struct LicenseDeleteBatchDocument {
    #[schema(min_items = 1, max_items = 10000)]
    #[serde(deserialize_with = "super::capped_objects")]
    pub data: Vec<LicenseIdentifier>,
    /// Free-form; ignored.
    pub meta: Option<Value>,
    /// Free-form; ignored.
    pub jsonapi: Option<Value>,
    /// Free-form; ignored.
    pub links: Option<Value>,
}

impl From<LicenseCreateResource> for LicenseDraft {
    fn from(r: LicenseCreateResource) -> Self {
        let a = r.attributes;
        let (status, start_date, stop_date, order_id, purchase_record, renew_record) = match a {
            None => (None, None, None, None, None, None),
            Some(a) => (
                a.status.map(|s| s.as_str().to_owned()),
                a.start_date,
                a.stop_date,
                a.order_id,
                a.purchase_record.map(|p| PurchaseDraft {
                    price_currency_amount: p.price_currency_amount,
                    price_currency_iso4217: p.price_currency_iso4217,
                    purchase_timestamp: p.purchase_timestamp,
                    payment_method: p.payment_method,
                }),
                a.renew_record.map(|r| RenewDraft {
                    recurring: r.recurring,
                    expiry_date: r.expiry_date,
                }),
            ),
        };
        LicenseDraft {
            user: Some(r.relationships.user.data.id),
            product: Some(r.relationships.product.data.id),
            status,
            start_date,
            stop_date,
            order_id,
            purchase_record,
            renew_record,
        }
    }
}

/// CreateLicense's document.
pub fn read_license_create(body: &[u8]) -> Result<LicenseDraft, ApiError> {
    match serde_json::from_slice::<super::Obj<LicenseCreateDocument>>(body).map(|o| o.0) {
        Ok(doc) => Ok(doc.data.into()),
        Err(_) => walk_license_create(body),
    }
}

/// BatchCreateLicenses' document: `{"data": [license, …]}`.
pub fn read_license_batch(body: &[u8]) -> Result<Vec<LicenseDraft>, ApiError> {
    match serde_json::from_slice::<super::Obj<LicenseBatchDocument>>(body).map(|o| o.0) {
        Ok(doc) => Ok(doc.data.into_iter().map(Into::into).collect()),
        Err(_) => walk_license_batch(body),
    }
}

/// BatchDeleteLicenses' document: `{"data": [{"type": "License", "id": …}, …]}`.
pub fn read_batch_delete(body: &[u8]) -> Result<Vec<LicenseId>, ApiError> {
    let typed = serde_json::from_slice::<super::Obj<LicenseDeleteBatchDocument>>(body)
        .map(|o| o.0)
        .ok()
        .and_then(|doc| {
            doc.data
                .into_iter()
                .map(|l| LicenseId::parse(l.id).ok())
                .collect::<Option<Vec<_>>>()
        });
    match typed {
        Some(ids) => Ok(ids),
        None => walk_batch_delete(body),
    }
}

// ---------------------------------------------------------------------------------------
// Member by member

const LICENSE_ATTRIBUTES: &[&str] = &[
    "status",
    "start_date",
    "stop_date",
    "order_id",
    "purchase_record",
    "renew_record",
];
const LICENSE_RELATIONSHIPS: &[&str] = &["user", "product"];

fn license_draft(v: &Value, base: &str, p: &mut DocumentProblems) -> LicenseDraft {
    let Some(r) = resource(v, base, "License", p) else {
        return LicenseDraft::default();
    };
    p.forbid_client_id(&r, base, "license");
    let at = format!("{base}/attributes");
    let attrs = r.attributes;
    only_known(attrs, LICENSE_ATTRIBUTES, &at, "unknown_attribute", p);
    let rels_at = format!("{base}/relationships");
    only_known(
        r.relationships,
        LICENSE_RELATIONSHIPS,
        &rels_at,
        "unknown_relationship",
        p,
    );

    let purchase_record = object(attrs, "purchase_record", &at, p).flatten().map(|m| {
        let at = format!("{at}/purchase_record");
        only_known(
            Some(m),
            &[
                "price_currency_amount",
                "price_currency_iso4217",
                "purchase_timestamp",
                "payment_method",
            ],
            &at,
            "unknown_attribute",
            p,
        );
        PurchaseDraft {
            price_currency_amount: integer(Some(m), "price_currency_amount", &at, p).flatten(),
            price_currency_iso4217: string(Some(m), "price_currency_iso4217", &at, p).flatten(),
            purchase_timestamp: integer(Some(m), "purchase_timestamp", &at, p).flatten(),
            payment_method: string(Some(m), "payment_method", &at, p).flatten(),
        }
    });
    let renew_record = object(attrs, "renew_record", &at, p).flatten().map(|m| {
        let at = format!("{at}/renew_record");
        only_known(
            Some(m),
            &["recurring", "expiry_date"],
            &at,
            "unknown_attribute",
            p,
        );
        RenewDraft {
            recurring: boolean(Some(m), "recurring", &at, p).flatten(),
            expiry_date: integer(Some(m), "expiry_date", &at, p).flatten(),
        }
    });
    LicenseDraft {
        user: to_one(r.relationships, "user", "User", &rels_at, p),
        product: to_one(r.relationships, "product", "Product", &rels_at, p),
        status: string(attrs, "status", &at, p).flatten(),
        start_date: integer(attrs, "start_date", &at, p).flatten(),
        stop_date: integer(attrs, "stop_date", &at, p).flatten(),
        order_id: string(attrs, "order_id", &at, p).flatten(),
        purchase_record,
        renew_record,
    }
}

/// CreateLicense's document, member by member.
pub(super) fn walk_license_create(body: &[u8]) -> Result<LicenseDraft, ApiError> {
    let doc: Value = parse(body)?;
    let mut p = DocumentProblems::default();
    let draft = primary_data(&doc, &mut p)
        .map(|d| license_draft(d, "/data", &mut p))
        .unwrap_or_default();
    p.into_result(draft)
}

/// BatchCreateLicenses' document, member by member, one item at a time.
pub(super) fn walk_license_batch(body: &[u8]) -> Result<Vec<LicenseDraft>, ApiError> {
    let mut p = DocumentProblems::default();
    let items = batch_items(body, &mut p)?;
    let drafts = items
        .iter()
        .enumerate()
        .map(|(i, raw)| license_draft(&item(raw), &format!("/data/{i}"), &mut p))
        .collect();
    p.into_result(drafts)
}

/// BatchDeleteLicenses' document: `{"data": [{"type": "License", "id": …}, …]}`.
pub(super) fn walk_batch_delete(body: &[u8]) -> Result<Vec<LicenseId>, ApiError> {
    let mut p = DocumentProblems::default();
    let items = batch_items(body, &mut p)?;
    let mut ids = Vec::with_capacity(items.len());
    for (i, raw) in items.iter().enumerate() {
        let at = format!("/data/{i}");
        let v = item(raw);
        let Some(r) = resource(&v, &at, "License", &mut p) else {
            continue;
        };
        only_identifier_members(&v, &at, &mut p);
        match r.id.map(LicenseId::parse) {
            None => p.structure(&format!("{at}/id"), "each license is named by its id"),
            Some(Err(e)) => p.invalid(&format!("{at}/id"), "invalid_id", format!("license id {e}")),
            Some(Ok(id)) => ids.push(id),
        }
    }
    p.into_result(ids)
}
