//! A license as a resource object, and [`LicenseBody`], the document whose primary data are
//! licenses.
//!
//! Licenses are the most rendered resources (ten or so in every user's licenses read,
//! thousands in a management page or batch), so [`LicenseBody`] writes them by hand, not
//! through serde: the same bytes serde_json writes for the same types (the tests compare
//! both), without going through serde's generic machinery for every key and value.
//! What it pays: `cargo bench --bench render` (release, 2026-12-05, the 2-core machine of
//! docs/performance.md) writes a user's ten licenses in 1.1 µs by hand against 2.7 µs
//! through serde_json, and a page of 1,000 in 119 µs against 259 µs (2.2 to 2.6 times
//! faster); in the service, a "my licenses" read went from 31.6–32.0 to 30.0–30.7 µs of CPU
//! with it (docs/performance.md, "Step by step").

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use licenses_app::ports::StoredResponse;
use licenses_domain::{License as StoredLicense, LicenseStatus, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Audience, DocumentLinks, NotIncluded, SelfLink, stored, stored_document};
use crate::jsonapi::resource_type::{LicenseType, ProductType, UserType};

/// How a license was bought.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseRecord<'a> {
    #[schema(required = true)]
    pub price_currency_amount: Option<i64>,
    #[schema(required = true, pattern = "^[A-Z]{3}$")]
    pub price_currency_iso4217: Option<&'static str>,
    pub purchase_timestamp: i64,
    #[schema(required = true)]
    pub payment_method: Option<&'a str>,
}

/// Whether a license renews.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenewRecord {
    pub recurring: bool,
    #[schema(required = true)]
    pub expiry_date: Option<i64>,
}

/// A license's attributes (times are unix seconds).
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseAttributes<'a> {
    pub status: LicenseStatus,
    pub start_date: i64,
    /// `null`: no end.
    #[schema(required = true)]
    pub stop_date: Option<i64>,
    #[schema(required = true)]
    pub order_id: Option<&'a str>,
    pub purchase_record: PurchaseRecord<'a>,
    pub renew_record: RenewRecord,
}

/// The user of a license.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRef<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: UserType,
}

/// The product of a license.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductRef<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: ProductType,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserLinkage<'a> {
    pub data: UserRef<'a>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductLinkage<'a> {
    pub data: ProductRef<'a>,
}

/// The user and product of a license.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseRelationships<'a> {
    pub user: UserLinkage<'a>,
    pub product: ProductLinkage<'a>,
}

/// Management-only facts about a license.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseMeta<'a> {
    /// Why an order failed (ORDER_ERROR, CHECK_INVALID).
    pub status_reason: &'a str,
}

/// A license. `links.self` is where it can be read again; `meta` (management API only)
/// says why an order failed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "42", "type": "License", "attributes": {"status": "ACTIVE",
    "start_date": 1523268666, "stop_date": 1523268698, "order_id": null, "purchase_record":
    {"price_currency_amount": null, "price_currency_iso4217": null, "purchase_timestamp":
    1523268666, "payment_method": null}, "renew_record": {"recurring": false, "expiry_date":
    1523268698}}, "relationships": {"user": {"data": {"id": "41", "type": "User"}},
    "product": {"data": {"id": "41", "type": "Product"}}}, "links": {"self":
    "https://licenses.example/api/license/v4/users/41/licenses/42"}}))]
pub struct License<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: LicenseType,
    pub attributes: LicenseAttributes<'a>,
    pub relationships: LicenseRelationships<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub links: Option<SelfLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub meta: Option<LicenseMeta<'a>>,
}

/// A license, its status read at `now` (EXPIRED derived).
pub fn license_resource(
    l: &StoredLicense,
    now: Timestamp,
    audience: Audience,
    self_link: Option<String>,
) -> License<'_> {
    let purchase = l.purchase_record();
    let price = purchase.price();
    License {
        id: l.id().as_str(),
        kind: LicenseType::License,
        attributes: LicenseAttributes {
            status: l.status_at(now),
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
            user: UserLinkage {
                data: UserRef {
                    id: l.user().as_str(),
                    kind: UserType::User,
                },
            },
            product: ProductLinkage {
                data: ProductRef {
                    id: l.product().as_str(),
                    kind: ProductType::Product,
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

/// The primary data of a license document: one [`License`], or a list of them.
pub trait Licenses {
    /// Appends the primary data as JSON.
    fn write_json(&self, out: &mut Json<'_>);
}

impl Licenses for License<'_> {
    /// Appends the resource object, in the member order of seed 003's examples (the order
    /// of the struct's fields, which serde follows too).
    fn write_json(&self, out: &mut Json<'_>) {
        let a = &self.attributes;
        out.raw(r#"{"id":"#);
        out.str(self.id);
        out.raw(r#","type":"#);
        out.str(self.kind.as_str());
        out.raw(r#","attributes":{"status":"#);
        out.str(a.status.as_str());
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
        out.str(r.user.data.kind.as_str());
        out.raw(r#"}},"product":{"data":{"id":"#);
        out.str(r.product.data.id);
        out.raw(r#","type":"#);
        out.str(r.product.data.kind.as_str());
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

impl Licenses for Vec<License<'_>> {
    fn write_json(&self, out: &mut Json<'_>) {
        out.raw("[");
        for (i, license) in self.iter().enumerate() {
            if i > 0 {
                out.raw(",");
            }
            license.write_json(out);
        }
        out.raw("]");
    }
}

/// A JSON text being written: what [`Licenses::write_json`] needs.
#[derive(Debug)]
pub struct Json<'b>(&'b mut Vec<u8>);

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

/// A top-level document whose primary data `D` are licenses (one, or a list), with optionally
/// `included` resources (products) and links. Its serde form is the document's definition;
/// [`LicenseBody::to_stored`] writes the same bytes by hand.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseBody<D, I = NotIncluded> {
    pub data: D,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub included: Option<Vec<I>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub links: Option<DocumentLinks>,
}

impl<D: Licenses, I: Serialize> LicenseBody<D, I> {
    /// The document as the answer to give (or to store for an idempotency key).
    pub fn to_stored(&self, status: StatusCode) -> StoredResponse {
        stored_document(status, |body| {
            let mut out = Json(body);
            out.raw(r#"{"data":"#);
            self.data.write_json(&mut out);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use licenses_domain::{
        Currency, LicenseId, LicenseState, OrderId, Price, ProductId, StoredParts, UserId,
    };
    use serde_json::{Value, json};

    use super::*;

    const NOW: Timestamp = Timestamp::from_unix(1_700_000_000);

    fn stored(parts: impl FnOnce(&mut StoredParts)) -> StoredLicense {
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
        StoredLicense::restore(p).unwrap()
    }

    /// The document as written by hand, read back; and checked to be the very bytes serde
    /// writes for the same document.
    fn body<D: Licenses + Serialize>(doc: &LicenseBody<D, Value>) -> Value {
        let by_hand = doc.to_stored(StatusCode::OK).body;
        assert_eq!(
            String::from_utf8(by_hand.clone()).unwrap(),
            serde_json::to_string(doc).unwrap(),
            "the hand-written document is not serde's"
        );
        serde_json::from_slice(&by_hand).unwrap()
    }

    #[test]
    fn a_license_is_written_in_seed_order_with_its_nulls() {
        let l = stored(|_| {});
        let doc = LicenseBody::<_, NotIncluded> {
            data: license_resource(&l, NOW, Audience::User, None),
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
            data: vec![
                license_resource(&l, NOW, Audience::Management, Some(self_link.clone())),
                license_resource(&active, NOW, Audience::Management, None),
            ],
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
        let doc = LicenseBody::<_, Value> {
            data: Vec::<License<'_>>::new(),
            included: Some(Vec::new()),
            links: None,
        };
        assert_eq!(body(&doc), json!({"data": [], "included": []}));
    }
}
