//! A product as a resource object: [`UserProduct`] for client apps (the catalogue and the
//! products included with licenses), [`ManagementProduct`] for the BSS, with every attribute.

use licenses_domain::{Price, Product, ProductType as ProductKind, Service};
use serde::Serialize;
use utoipa::ToSchema;

use super::SelfLink;
use crate::jsonapi::resource_type::{ChannelType, ProductType};

/// A channel the product grants a service on.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelRef<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: ChannelType,
}

/// The channels a product grants one service on.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelsLinkage<'a> {
    pub data: Vec<ChannelRef<'a>>,
}

/// The channels and services a product grants (every service is listed, maybe empty).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductRelationships<'a> {
    pub live: ChannelsLinkage<'a>,
    pub npvr: ChannelsLinkage<'a>,
    pub catchup: ChannelsLinkage<'a>,
    pub startover: ChannelsLinkage<'a>,
}

/// A price in minor units (cents) of an ISO 4217 currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceRecord {
    #[schema(minimum = 0, example = 999)]
    pub amount: i64,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
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

/// A product as a client app sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserProductAttributes<'a> {
    pub title: &'a str,
    pub description: &'a str,
    #[serde(rename = "type")]
    pub product_type: ProductKind,
    pub is_premium: bool,
    #[schema(required = true)]
    pub price_record: Option<PriceRecord>,
}

/// A product of the catalogue, as a client app sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "41", "type": "Product", "attributes": {"title":
    "Sport channels meagpack", "description": "Complete collection for all sports channels",
    "type": "CHANNEL_GROUP", "is_premium": true, "price_record": null}, "relationships": {
    "live": {"data": [{"id": "42", "type": "Channel"}]}, "npvr": {"data": [{"id": "42",
    "type": "Channel"}]}, "catchup": {"data": [{"id": "42", "type": "Channel"}]},
    "startover": {"data": [{"id": "42", "type": "Channel"}]}}}))]
pub struct UserProduct<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: ProductType,
    pub attributes: UserProductAttributes<'a>,
    pub relationships: ProductRelationships<'a>,
}

/// How licenses of a product are granted when their document does not say.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseDefaults {
    /// Seconds from `start_date` to `stop_date`; `null`: no end.
    #[schema(required = true, minimum = 1)]
    pub duration: Option<u64>,
    pub auto_renew: bool,
}

/// A product as the BSS sees it: every attribute.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManagementProductAttributes<'a> {
    #[serde(flatten)]
    pub shown_to_users: UserProductAttributes<'a>,
    pub is_user_visible: bool,
    pub is_buyable: bool,
    pub auto_grant_on_signup: bool,
    pub license_defaults: LicenseDefaults,
    /// The product's reference in Irdeto, where licenses of it are entitled.
    #[schema(required = true)]
    pub irdeto_product_id: Option<&'a str>,
}

/// A product, as the BSS sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManagementProduct<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: ProductType,
    pub attributes: ManagementProductAttributes<'a>,
    pub relationships: ProductRelationships<'a>,
    pub links: SelfLink,
}

fn relationships(p: &Product) -> ProductRelationships<'_> {
    let channels = |s: Service| ChannelsLinkage {
        data: p
            .channels()
            .channels(s)
            .iter()
            .map(|c| ChannelRef {
                id: c.as_str(),
                kind: ChannelType::Channel,
            })
            .collect(),
    };
    ProductRelationships {
        live: channels(Service::Live),
        npvr: channels(Service::Npvr),
        catchup: channels(Service::Catchup),
        startover: channels(Service::Startover),
    }
}

fn user_attributes(p: &Product) -> UserProductAttributes<'_> {
    UserProductAttributes {
        title: p.title(),
        description: p.description(),
        product_type: p.product_type(),
        is_premium: p.is_premium(),
        price_record: p.price_record().map(Into::into),
    }
}

/// A product as a client app sees it.
pub fn user_product(p: &Product) -> UserProduct<'_> {
    UserProduct {
        id: p.id().as_str(),
        kind: ProductType::Product,
        attributes: user_attributes(p),
        relationships: relationships(p),
    }
}

/// A product as the BSS sees it, with its URL.
pub fn management_product(p: &Product, self_link: String) -> ManagementProduct<'_> {
    ManagementProduct {
        id: p.id().as_str(),
        kind: ProductType::Product,
        attributes: ManagementProductAttributes {
            shown_to_users: user_attributes(p),
            is_user_visible: p.is_user_visible(),
            is_buyable: p.is_buyable(),
            auto_grant_on_signup: p.auto_grant_on_signup(),
            license_defaults: LicenseDefaults {
                duration: p.license_defaults().duration(),
                auto_renew: p.license_defaults().auto_renew(),
            },
            irdeto_product_id: p.irdeto_product_id(),
        },
        relationships: relationships(p),
        links: SelfLink { self_: self_link },
    }
}
