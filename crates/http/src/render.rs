//! Products and licenses as JSON:API resource objects, in the shape of seed 003's examples.
//! The management API shows every attribute; the user API only the user-facing ones.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use licenses_app::ports::StoredResponse;
use licenses_domain::{License, Price, Product, Service, Timestamp};
use serde::Serialize;

use crate::request::JSONAPI;

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
        format!("{}{path}", self.root)
    }
}

#[derive(Debug, Serialize)]
pub struct Identifier<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ToOne<'a> {
    pub data: Identifier<'a>,
}

#[derive(Debug, Serialize)]
pub struct ToMany<'a> {
    pub data: Vec<Identifier<'a>>,
}

#[derive(Debug, Serialize)]
pub struct SelfLink {
    #[serde(rename = "self")]
    pub self_: String,
}

/// A resource object.
#[derive(Debug, Serialize)]
pub struct Resource<'a, A, R, M> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub attributes: A,
    pub relationships: R,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<SelfLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<M>,
}

#[derive(Debug, Serialize)]
pub struct PriceRecord {
    pub amount: i64,
    pub currency: &'static str,
}

impl From<Price> for PriceRecord {
    fn from(p: Price) -> Self {
        Self {
            amount: p.amount(),
            currency: p.currency().code(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ProductAttributes<'a> {
    pub title: &'a str,
    pub description: &'a str,
    #[serde(rename = "type")]
    pub product_type: &'static str,
    pub is_premium: bool,
    pub price_record: Option<PriceRecord>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub management: Option<ManagementProductAttributes<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ManagementProductAttributes<'a> {
    pub is_user_visible: bool,
    pub is_buyable: bool,
    pub auto_grant_on_signup: bool,
    pub license_defaults: LicenseDefaults,
    pub irdeto_product_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct LicenseDefaults {
    pub duration: Option<u64>,
    pub auto_renew: bool,
}

#[derive(Debug, Serialize)]
pub struct ProductRelationships<'a> {
    pub live: ToMany<'a>,
    pub npvr: ToMany<'a>,
    pub catchup: ToMany<'a>,
    pub startover: ToMany<'a>,
}

pub type ProductResource<'a> = Resource<'a, ProductAttributes<'a>, ProductRelationships<'a>, ()>;

/// A product; `self_link` is its URL where the API has one.
pub fn product_resource<'a>(
    p: &'a Product,
    audience: Audience,
    self_link: Option<String>,
) -> ProductResource<'a> {
    let channels = |s: Service| ToMany {
        data: p
            .channels()
            .channels(s)
            .iter()
            .map(|c| Identifier {
                id: c.as_str(),
                kind: "Channel",
            })
            .collect(),
    };
    Resource {
        id: p.id().as_str(),
        kind: "Product",
        attributes: ProductAttributes {
            title: p.title(),
            description: p.description(),
            product_type: p.product_type().as_str(),
            is_premium: p.is_premium(),
            price_record: p.price_record().map(Into::into),
            management: (audience == Audience::Management).then(|| ManagementProductAttributes {
                is_user_visible: p.is_user_visible(),
                is_buyable: p.is_buyable(),
                auto_grant_on_signup: p.auto_grant_on_signup(),
                license_defaults: LicenseDefaults {
                    duration: p.license_defaults().duration(),
                    auto_renew: p.license_defaults().auto_renew(),
                },
                irdeto_product_id: p.irdeto_product_id(),
            }),
        },
        relationships: ProductRelationships {
            live: channels(Service::Live),
            npvr: channels(Service::Npvr),
            catchup: channels(Service::Catchup),
            startover: channels(Service::Startover),
        },
        links: self_link.map(|self_| SelfLink { self_ }),
        meta: None,
    }
}

#[derive(Debug, Serialize)]
pub struct LicenseAttributes<'a> {
    pub status: &'static str,
    pub start_date: i64,
    pub stop_date: Option<i64>,
    pub order_id: Option<&'a str>,
    pub purchase_record: PurchaseRecord<'a>,
    pub renew_record: RenewRecord,
}

#[derive(Debug, Serialize)]
pub struct PurchaseRecord<'a> {
    pub price_currency_amount: Option<i64>,
    pub price_currency_iso4217: Option<&'static str>,
    pub purchase_timestamp: i64,
    pub payment_method: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct RenewRecord {
    pub recurring: bool,
    pub expiry_date: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct LicenseRelationships<'a> {
    pub user: ToOne<'a>,
    pub product: ToOne<'a>,
}

/// Management-only facts about a license.
#[derive(Debug, Serialize)]
pub struct LicenseMeta<'a> {
    /// Why an order failed (ORDER_ERROR, CHECK_INVALID).
    pub status_reason: &'a str,
}

pub type LicenseResource<'a> =
    Resource<'a, LicenseAttributes<'a>, LicenseRelationships<'a>, LicenseMeta<'a>>;

/// A license, its status read at `now` (EXPIRED derived).
pub fn license_resource<'a>(
    l: &'a License,
    now: Timestamp,
    audience: Audience,
    self_link: Option<String>,
) -> LicenseResource<'a> {
    let purchase = l.purchase_record();
    let price = purchase.price();
    Resource {
        id: l.id().as_str(),
        kind: "License",
        attributes: LicenseAttributes {
            status: l.status_at(now).as_str(),
            start_date: l.start_date().unix(),
            stop_date: l.stop_date().map(Timestamp::unix),
            order_id: l.order_id().map(|o| o.as_str()),
            purchase_record: PurchaseRecord {
                price_currency_amount: price.map(|p| p.amount()),
                price_currency_iso4217: price.map(|p| p.currency().code()),
                purchase_timestamp: purchase.purchase_timestamp().unix(),
                payment_method: purchase.payment_method(),
            },
            renew_record: RenewRecord {
                recurring: l.renew_record().recurring(),
                expiry_date: l.renew_record().expiry_date().map(Timestamp::unix),
            },
        },
        relationships: LicenseRelationships {
            user: ToOne {
                data: Identifier {
                    id: l.user().as_str(),
                    kind: "User",
                },
            },
            product: ToOne {
                data: Identifier {
                    id: l.product().as_str(),
                    kind: "Product",
                },
            },
        },
        links: self_link.map(|self_| SelfLink { self_ }),
        meta: match audience {
            Audience::Management => l
                .state()
                .reason()
                .map(|status_reason| LicenseMeta { status_reason }),
            Audience::User => None,
        },
    }
}

/// A top-level document with primary data, and optionally `included` resources and links.
#[derive(Debug, Serialize)]
pub struct Document<D, I = ()> {
    pub data: D,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub included: Option<Vec<I>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<DocumentLinks>,
}

#[derive(Debug, Serialize)]
pub struct DocumentLinks {
    #[serde(rename = "self")]
    pub self_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A document serialized into the answer to give (or to store for an idempotency key).
pub fn to_stored(status: StatusCode, doc: &impl Serialize) -> StoredResponse {
    // Room for a typical document up front (a user's licenses are about 11 KB): growing from
    // empty copies the body a dozen times.
    let mut body = Vec::with_capacity(4096);
    if serde_json::to_writer(&mut body, doc).is_err() {
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

/// One channel's entitlement: each service granted with its end (`until: null` means no end),
/// or `null` where the service is not granted.
#[derive(Debug, Serialize)]
pub struct EntitlementAttributes {
    pub live: Option<GrantDoc>,
    pub npvr: Option<GrantDoc>,
    pub catchup: Option<GrantDoc>,
    pub startover: Option<GrantDoc>,
}

#[derive(Debug, Serialize)]
pub struct GrantDoc {
    pub until: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct EntitlementRelationships<'a> {
    pub channel: ToOne<'a>,
}

#[derive(Debug, Serialize)]
pub struct EntitlementsMeta<'a> {
    /// The user the entitlements are of.
    pub user: &'a str,
    /// When they were resolved (unix seconds).
    pub at: i64,
}

#[derive(Debug, Serialize)]
pub struct EntitlementsDocument<'a> {
    pub data: Vec<Resource<'a, EntitlementAttributes, EntitlementRelationships<'a>, ()>>,
    pub meta: EntitlementsMeta<'a>,
}

/// What a user may watch at `at`: one `ChannelEntitlement` resource per channel (its id is
/// the channel's), in channel id order.
pub fn entitlements_document<'a>(
    user: &'a licenses_domain::UserId,
    entitlements: &'a licenses_domain::Entitlements,
    at: Timestamp,
) -> EntitlementsDocument<'a> {
    let grant = |g: &licenses_domain::ChannelGrants, s: Service| {
        g.get(s).map(|grant| GrantDoc {
            until: grant.until.map(Timestamp::unix),
        })
    };
    EntitlementsDocument {
        data: entitlements
            .channels()
            .map(|(channel, grants)| Resource {
                id: channel.as_str(),
                kind: "ChannelEntitlement",
                attributes: EntitlementAttributes {
                    live: grant(grants, Service::Live),
                    npvr: grant(grants, Service::Npvr),
                    catchup: grant(grants, Service::Catchup),
                    startover: grant(grants, Service::Startover),
                },
                relationships: EntitlementRelationships {
                    channel: ToOne {
                        data: Identifier {
                            id: channel.as_str(),
                            kind: "Channel",
                        },
                    },
                },
                links: None,
                meta: None,
            })
            .collect(),
        meta: EntitlementsMeta {
            user: user.as_str(),
            at: at.unix(),
        },
    }
}
