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

#[derive(Debug)]
pub struct LicenseAttributes<'a> {
    pub status: &'static str,
    pub start_date: i64,
    pub stop_date: Option<i64>,
    pub order_id: Option<&'a str>,
    pub purchase_record: PurchaseRecord<'a>,
    pub renew_record: RenewRecord,
}

#[derive(Debug)]
pub struct PurchaseRecord<'a> {
    pub price_currency_amount: Option<i64>,
    pub price_currency_iso4217: Option<&'static str>,
    pub purchase_timestamp: i64,
    pub payment_method: Option<&'a str>,
}

#[derive(Debug)]
pub struct RenewRecord {
    pub recurring: bool,
    pub expiry_date: Option<i64>,
}

#[derive(Debug)]
pub struct LicenseRelationships<'a> {
    pub user: ToOne<'a>,
    pub product: ToOne<'a>,
}

/// Management-only facts about a license.
#[derive(Debug)]
pub struct LicenseMeta<'a> {
    /// Why an order failed (ORDER_ERROR, CHECK_INVALID).
    pub status_reason: &'a str,
}

/// A license as a resource object. Licenses are the most rendered resources (ten or so in every
/// user's licenses read, thousands in a management page or batch), so they are written by
/// hand ([`LicenseBody`]), not through serde: the same bytes serde_json would write,
/// without escaping every key and value byte by byte.
pub type LicenseResource<'a> =
    Resource<'a, LicenseAttributes<'a>, LicenseRelationships<'a>, LicenseMeta<'a>>;

impl LicenseResource<'_> {
    /// Appends the resource object, in the member order of seed 003's examples.
    fn write_json(&self, out: &mut Json<'_>) {
        let a = &self.attributes;
        out.raw(r#"{"id":"#);
        out.str(self.id);
        out.raw(r#","type":"#);
        out.str(self.kind);
        out.raw(r#","attributes":{"status":"#);
        out.str(a.status);
        out.raw(r#","start_date":"#);
        out.int(a.start_date);
        out.raw(r#","stop_date":"#);
        out.opt_int(a.stop_date);
        out.raw(r#","order_id":"#);
        out.opt_str(a.order_id);
        let p = &a.purchase_record;
        out.raw(r#","purchase_record":{"price_currency_amount":"#);
        out.opt_int(p.price_currency_amount);
        out.raw(r#","price_currency_iso4217":"#);
        out.opt_str(p.price_currency_iso4217);
        out.raw(r#","purchase_timestamp":"#);
        out.int(p.purchase_timestamp);
        out.raw(r#","payment_method":"#);
        out.opt_str(p.payment_method);
        out.raw(r#"},"renew_record":{"recurring":"#);
        out.raw(if a.renew_record.recurring {
            "true"
        } else {
            "false"
        });
        out.raw(r#","expiry_date":"#);
        out.opt_int(a.renew_record.expiry_date);
        let r = &self.relationships;
        out.raw(r#"}},"relationships":{"user":{"data":{"id":"#);
        out.str(r.user.data.id);
        out.raw(r#","type":"#);
        out.str(r.user.data.kind);
        out.raw(r#"}},"product":{"data":{"id":"#);
        out.str(r.product.data.id);
        out.raw(r#","type":"#);
        out.str(r.product.data.kind);
        out.raw("}}}");
        if let Some(links) = &self.links {
            out.raw(r#","links":{"self":"#);
            out.str(&links.self_);
            out.raw("}");
        }
        if let Some(meta) = &self.meta {
            out.raw(r#","meta":{"status_reason":"#);
            out.str(meta.status_reason);
            out.raw("}");
        }
        out.raw("}");
    }
}

/// A JSON text being written: what [`LicenseResource::write_json`] needs.
struct Json<'b>(&'b mut Vec<u8>);

impl Json<'_> {
    /// JSON text as it is.
    fn raw(&mut self, text: &str) {
        self.0.extend_from_slice(text.as_bytes());
    }

    /// A string, quoted and escaped as serde_json escapes it.
    fn str(&mut self, s: &str) {
        // Ids, codes and URLs need no escape: one pass over the bytes, then one copy.
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.0.push(b'"');
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(b'"');
        } else {
            // A string into a Vec cannot fail to serialize.
            let _ = serde_json::to_writer(&mut *self.0, s);
        }
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.raw("null"),
        }
    }

    fn int(&mut self, n: i64) {
        self.raw(itoa::Buffer::new().format(n));
    }

    fn opt_int(&mut self, n: Option<i64>) {
        match n {
            Some(n) => self.int(n),
            None => self.raw("null"),
        }
    }

    /// A value through serde_json (the members that are not licenses).
    fn serde(&mut self, value: &impl Serialize) -> serde_json::Result<()> {
        serde_json::to_writer(&mut *self.0, value)
    }
}

/// The primary data of a license document: one license, or a list.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "made once a response, on the stack, and written at once"
)]
pub enum LicenseData<'a> {
    One(LicenseResource<'a>),
    Many(Vec<LicenseResource<'a>>),
}

/// A top-level document whose primary data are licenses, with optionally `included`
/// resources (products, rendered by serde or already JSON) and links. It writes what a
/// [`Document`] of the same members would.
#[derive(Debug)]
pub struct LicenseBody<'a, I = ()> {
    pub data: LicenseData<'a>,
    pub included: Option<Vec<I>>,
    pub links: Option<DocumentLinks>,
}

impl<I: Serialize> LicenseBody<'_, I> {
    /// The document as the answer to give (or to store for an idempotency key).
    pub fn to_stored(&self, status: StatusCode) -> StoredResponse {
        stored_document(status, |body| {
            let mut out = Json(body);
            out.raw(r#"{"data":"#);
            match &self.data {
                LicenseData::One(license) => license.write_json(&mut out),
                LicenseData::Many(licenses) => {
                    out.raw("[");
                    for (i, license) in licenses.iter().enumerate() {
                        if i > 0 {
                            out.raw(",");
                        }
                        license.write_json(&mut out);
                    }
                    out.raw("]");
                }
            }
            if let Some(included) = &self.included {
                out.raw(r#","included":"#);
                out.serde(included)?;
            }
            if let Some(links) = &self.links {
                out.raw(r#","links":"#);
                out.serde(links)?;
            }
            out.raw("}");
            Ok(())
        })
    }

    /// The document as an HTTP response.
    pub fn respond(&self, status: StatusCode) -> HttpResponse {
        stored(self.to_stored(status))
    }
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use licenses_domain::{
        Currency, LicenseId, LicenseState, OrderId, ProductId, StoredParts, UserId,
    };
    use serde_json::{Value, json};

    use super::*;

    const NOW: Timestamp = Timestamp::from_unix(1_700_000_000);

    fn stored(parts: impl FnOnce(&mut StoredParts)) -> License {
        let mut p = StoredParts {
            id: LicenseId::parse("l-1").unwrap(),
            user: UserId::parse("u-1").unwrap(),
            product: ProductId::parse("p-1").unwrap(),
            state: LicenseState::Active,
            start_date: Timestamp::from_unix(1_600_000_000),
            stop_date: None,
            order_id: None,
            price: None,
            purchase_timestamp: Timestamp::from_unix(1_599_999_999),
            payment_method: None,
            recurring: false,
            expiry_date: None,
        };
        parts(&mut p);
        License::restore(p).unwrap()
    }

    fn body(doc: &LicenseBody<'_, Value>) -> Value {
        serde_json::from_slice(&doc.to_stored(StatusCode::OK).body).unwrap()
    }

    #[test]
    fn a_license_is_written_in_seed_order_with_its_nulls() {
        let l = stored(|_| {});
        let doc = LicenseBody::<()> {
            data: LicenseData::One(license_resource(&l, NOW, Audience::User, None)),
            included: None,
            links: None,
        };
        let text = String::from_utf8(doc.to_stored(StatusCode::OK).body).unwrap();
        assert_eq!(
            text,
            r#"{"data":{"id":"l-1","type":"License","attributes":{"status":"ACTIVE","start_date":1600000000,"stop_date":null,"order_id":null,"purchase_record":{"price_currency_amount":null,"price_currency_iso4217":null,"purchase_timestamp":1599999999,"payment_method":null},"renew_record":{"recurring":false,"expiry_date":null}},"relationships":{"user":{"data":{"id":"u-1","type":"User"}},"product":{"data":{"id":"p-1","type":"Product"}}}}}"#
        );
    }

    #[test]
    fn every_member_is_written_and_strings_are_escaped_as_serde_json_escapes_them() {
        // Ids take no white space or control character; an order id and a payment method are
        // the caller's words, and so is a reason.
        let odd = "quote \" backslash \\ tab \t nul \u{0} del \u{7f} é 🎬";
        let l = stored(|p| {
            p.id = LicenseId::parse("l-\"2\"\\é").unwrap();
            p.state = LicenseState::OrderError {
                reason: odd.to_owned(),
            };
            p.stop_date = Some(Timestamp::from_unix(1_800_000_000));
            p.order_id = Some(OrderId::parse("order-\"7\"").unwrap());
            p.price = Some(Price::new(1250, Currency::parse("EUR").unwrap()).unwrap());
            p.payment_method = Some(odd.to_owned());
            p.recurring = true;
            p.expiry_date = Some(Timestamp::from_unix(1_900_000_000));
        });
        let active = stored(|_| {});
        let self_link = "http://h/api/license/management/v4/licenses/l-\"2\"\\é".to_owned();
        let doc = LicenseBody {
            data: LicenseData::Many(vec![
                license_resource(&l, NOW, Audience::Management, Some(self_link.clone())),
                license_resource(&active, NOW, Audience::Management, None),
            ]),
            included: Some(vec![json!({"id": "p-1", "type": "Product"})]),
            links: Some(DocumentLinks {
                self_: "http://h/x?a=\"b\"".into(),
                next: Some("http://h/x?page%5Bafter%5D=l-1".into()),
            }),
        };
        let written = body(&doc);
        assert_eq!(
            written["data"][0],
            json!({
                "id": "l-\"2\"\\é",
                "type": "License",
                "attributes": {
                    "status": "ORDER_ERROR",
                    "start_date": 1_600_000_000,
                    "stop_date": 1_800_000_000,
                    "order_id": "order-\"7\"",
                    "purchase_record": {
                        "price_currency_amount": 1250,
                        "price_currency_iso4217": "EUR",
                        "purchase_timestamp": 1_599_999_999,
                        "payment_method": odd,
                    },
                    "renew_record": {"recurring": true, "expiry_date": 1_900_000_000},
                },
                "relationships": {
                    "user": {"data": {"id": "u-1", "type": "User"}},
                    "product": {"data": {"id": "p-1", "type": "Product"}},
                },
                "links": {"self": self_link},
                "meta": {"status_reason": odd},
            })
        );
        assert_eq!(written["data"][1]["attributes"]["status"], "ACTIVE");
        assert!(written["data"][1].get("meta").is_none());
        assert!(written["data"][1].get("links").is_none());
        assert_eq!(
            written["included"],
            json!([{"id": "p-1", "type": "Product"}])
        );
        assert_eq!(
            written["links"],
            json!({"self": "http://h/x?a=\"b\"", "next": "http://h/x?page%5Bafter%5D=l-1"})
        );
        // The strings' bytes are serde_json's own, escapes included.
        let text = String::from_utf8(doc.to_stored(StatusCode::OK).body).unwrap();
        assert!(
            text.contains(&serde_json::to_string(odd).unwrap()),
            "{text}"
        );
    }

    #[test]
    fn an_empty_list_is_an_empty_array() {
        let doc = LicenseBody::<Value> {
            data: LicenseData::Many(Vec::new()),
            included: Some(Vec::new()),
            links: None,
        };
        assert_eq!(body(&doc), json!({"data": [], "included": []}));
    }
}
