//! The documents of the management API this cache reads, as serde types, and their
//! conversion into the domain's values ([`License::restore`], [`Product::new`]).
//!
//! Only the members the cache needs are read; unknown members are ignored, so the service may
//! add attributes without breaking the cache.

use licenses_domain::{
    Currency, License, LicenseDefaultsDraft, LicenseId, LicenseState, OrderId, Price, PriceDraft,
    Product, ProductDraft, ProductId, StoredParts, Timestamp, UserId,
};
use serde::Deserialize;

/// A page of `GET /events`: the events oldest first and `links.next`, always present.
#[derive(Debug, Clone, Deserialize)]
pub struct EventPage {
    pub data: Vec<Event>,
    pub links: NextLink,
}

/// `links` of a page; `next` is `None` on the last page of a listing (never for the feed).
#[derive(Debug, Clone, Deserialize)]
pub struct NextLink {
    #[serde(default)]
    pub next: Option<String>,
}

/// One event of the feed (docs/events.md, "The event").
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// The event's stable id (a UUID v7): the same change is always the same id.
    pub id: String,
    pub attributes: EventAttributes,
}

/// What an event says.
#[derive(Debug, Clone, Deserialize)]
pub struct EventAttributes {
    /// `license.created`, `license.deleted`, …, `product.deleted`.
    pub event_type: String,
    /// When the change was made (unix seconds).
    pub occurred_at: i64,
    /// Its place in commit order, strictly increasing: the feed's cursor.
    pub position: i64,
    /// The event's number among its user's events (license events only).
    #[serde(default)]
    pub user_seq: Option<i64>,
    /// The license or product as the management API rendered it at `occurred_at`.
    pub resource: Resource,
}

/// The resource an event is about, told apart by its JSON:API `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum Resource {
    License(LicenseResource),
    Product(ProductResource),
}

/// A license as `GET /licenses/{id}` renders it (management view).
#[derive(Debug, Clone, Deserialize)]
pub struct LicenseResource {
    pub id: String,
    pub attributes: LicenseAttributes,
    pub relationships: LicenseRelationships,
    #[serde(default)]
    pub meta: Option<LicenseMeta>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LicenseAttributes {
    /// The status read at the time of rendering: EXPIRED is derived from `stop_date`.
    pub status: String,
    pub start_date: i64,
    pub stop_date: Option<i64>,
    pub order_id: Option<String>,
    pub purchase_record: PurchaseRecord,
    pub renew_record: RenewRecord,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PurchaseRecord {
    pub price_currency_amount: Option<i64>,
    pub price_currency_iso4217: Option<String>,
    pub purchase_timestamp: i64,
    pub payment_method: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RenewRecord {
    pub recurring: bool,
    pub expiry_date: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LicenseRelationships {
    pub user: ToOne,
    pub product: ToOne,
}

/// Why an order failed (ORDER_ERROR, CHECK_INVALID).
#[derive(Debug, Clone, Deserialize)]
pub struct LicenseMeta {
    pub status_reason: String,
}

/// A to-one relationship: `{"data": {"type": …, "id": …}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ToOne {
    pub data: Identifier,
}

/// A to-many relationship: `{"data": [{"type": …, "id": …}, …]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ToMany {
    pub data: Vec<Identifier>,
}

/// A resource identifier object.
#[derive(Debug, Clone, Deserialize)]
pub struct Identifier {
    pub id: String,
}

/// A product as `GET /products/{id}` renders it (management view).
#[derive(Debug, Clone, Deserialize)]
pub struct ProductResource {
    pub id: String,
    pub attributes: ProductAttributes,
    pub relationships: ProductRelationships,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProductAttributes {
    pub title: String,
    pub description: String,
    #[serde(rename = "type")]
    pub product_type: String,
    pub is_premium: bool,
    pub price_record: Option<PriceRecord>,
    pub is_user_visible: bool,
    pub is_buyable: bool,
    pub auto_grant_on_signup: bool,
    pub license_defaults: LicenseDefaults,
    pub irdeto_product_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PriceRecord {
    pub amount: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LicenseDefaults {
    pub duration: Option<i64>,
    pub auto_renew: bool,
}

/// The channels of each service, in the order of [`licenses_domain::Service::ALL`].
#[derive(Debug, Clone, Deserialize)]
pub struct ProductRelationships {
    pub live: ToMany,
    pub npvr: ToMany,
    pub catchup: ToMany,
    pub startover: ToMany,
}

/// A listing of `GET /licenses` or `GET /products`: the resources and, while there are more,
/// `links.next`.
#[derive(Debug, Clone, Deserialize)]
pub struct Listing<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub links: Option<NextLink>,
}

/// A document of the service that the domain refuses: the cache and the service disagree on
/// the rules (e.g. they run different versions).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {id} is not a valid domain value: {why}")]
pub struct Invalid {
    pub what: &'static str,
    pub id: String,
    pub why: String,
}

impl LicenseResource {
    /// The license as the domain knows it, or `Ok(None)` when it is rendered EXPIRED: the
    /// stored state behind a derived EXPIRED is not shown, and an expired license grants
    /// nothing from then on whatever it is (its `stop_date` has passed).
    ///
    /// A PROCESSING license does not show the status it was requested as; it grants nothing
    /// either way, so it is restored as requested ACTIVE.
    pub fn to_domain(&self) -> Result<Option<License>, Invalid> {
        let invalid = |why: String| Invalid {
            what: "license",
            id: self.id.clone(),
            why,
        };
        let a = &self.attributes;
        if a.status == "EXPIRED" {
            return Ok(None);
        }
        let reason = self.meta.as_ref().map(|m| m.status_reason.clone());
        let requested = (a.status == "PROCESSING").then_some("ACTIVE");
        let state = LicenseState::from_parts(&a.status, requested, reason)
            .map_err(|e| invalid(e.to_string()))?;
        let price = match (
            a.purchase_record.price_currency_amount,
            &a.purchase_record.price_currency_iso4217,
        ) {
            (Some(amount), Some(code)) => {
                let currency =
                    Currency::parse(code).ok_or_else(|| invalid(format!("currency {code}")))?;
                Some(Price::new(amount, currency).map_err(|e| invalid(e.to_owned()))?)
            }
            _ => None,
        };
        let parts = StoredParts {
            id: LicenseId::parse(&self.id).map_err(|e| invalid(e.to_string()))?,
            user: UserId::parse(&self.relationships.user.data.id)
                .map_err(|e| invalid(e.to_string()))?,
            product: ProductId::parse(&self.relationships.product.data.id)
                .map_err(|e| invalid(e.to_string()))?,
            state,
            start_date: Timestamp::from_unix(a.start_date),
            stop_date: a.stop_date.map(Timestamp::from_unix),
            order_id: a
                .order_id
                .as_deref()
                .map(OrderId::parse)
                .transpose()
                .map_err(|e| invalid(e.to_string()))?,
            price,
            purchase_timestamp: Timestamp::from_unix(a.purchase_record.purchase_timestamp),
            payment_method: a.purchase_record.payment_method.clone(),
            recurring: a.renew_record.recurring,
            expiry_date: a.renew_record.expiry_date.map(Timestamp::from_unix),
        };
        License::restore(parts)
            .map(Some)
            .map_err(|v| invalid(v.to_string()))
    }
}

impl ProductResource {
    /// The product as the domain knows it, validated by [`Product::new`] as the service
    /// validated it.
    pub fn to_domain(&self) -> Result<Product, Invalid> {
        let invalid = |why: String| Invalid {
            what: "product",
            id: self.id.clone(),
            why,
        };
        let a = &self.attributes;
        let ids = |l: &ToMany| l.data.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        let r = &self.relationships;
        let draft = ProductDraft {
            title: Some(a.title.clone()),
            description: Some(a.description.clone()),
            product_type: Some(a.product_type.clone()),
            is_premium: Some(a.is_premium),
            is_user_visible: Some(a.is_user_visible),
            is_buyable: Some(a.is_buyable),
            auto_grant_on_signup: Some(a.auto_grant_on_signup),
            price_record: a.price_record.as_ref().map(|p| PriceDraft {
                amount: Some(p.amount),
                currency: Some(p.currency.clone()),
            }),
            license_defaults: Some(LicenseDefaultsDraft {
                duration: a.license_defaults.duration,
                auto_renew: Some(a.license_defaults.auto_renew),
            }),
            irdeto_product_id: a.irdeto_product_id.clone(),
            channels: [
                ids(&r.live),
                ids(&r.npvr),
                ids(&r.catchup),
                ids(&r.startover),
            ],
        };
        let id = ProductId::parse(&self.id).map_err(|e| invalid(e.to_string()))?;
        Product::new(id, draft).map_err(|v| invalid(v.to_string()))
    }
}
