//! What a user may watch, as a document: one `ChannelEntitlement` resource per channel.

use licenses_domain::{ChannelGrants, Entitlements, Service, Timestamp, UserId};
use serde::Serialize;
use utoipa::ToSchema;

use crate::jsonapi::resource_type::{ChannelEntitlementType, ChannelType};

/// A service granted on a channel, until when (`null`: no end).
#[derive(Debug, Serialize, ToSchema)]
pub struct Grant {
    #[schema(required = true)]
    pub until: Option<i64>,
}

/// Each service on one channel: granted with its end, or `null` where it is not granted.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementAttributes {
    #[schema(required = true)]
    pub live: Option<Grant>,
    #[schema(required = true)]
    pub npvr: Option<Grant>,
    #[schema(required = true)]
    pub catchup: Option<Grant>,
    #[schema(required = true)]
    pub startover: Option<Grant>,
}

/// The channel an entitlement is of.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitledChannel<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: ChannelType,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelLinkage<'a> {
    pub data: EntitledChannel<'a>,
}

/// The channel an entitlement is of.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementRelationships<'a> {
    pub channel: ChannelLinkage<'a>,
}

/// What a user may watch on one channel (its id is the channel's).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelEntitlement<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: ChannelEntitlementType,
    pub attributes: EntitlementAttributes,
    pub relationships: EntitlementRelationships<'a>,
}

/// Whose entitlements, and when they were resolved (unix seconds).
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementsMeta<'a> {
    /// The user the entitlements are of.
    pub user: &'a str,
    /// When they were resolved (unix seconds).
    pub at: i64,
}

/// What a user may watch now, one resource per channel in channel id order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"data": [{"id": "42", "type": "ChannelEntitlement", "attributes":
    {"live": {"until": 1523268698}, "npvr": {"until": 1523268698}, "catchup": {"until":
    1523268698}, "startover": {"until": 1523268698}}, "relationships": {"channel": {"data":
    {"id": "42", "type": "Channel"}}}}], "meta": {"user": "41", "at": 1523268670}}))]
pub struct EntitlementsDocument<'a> {
    pub data: Vec<ChannelEntitlement<'a>>,
    pub meta: EntitlementsMeta<'a>,
}

/// What a user may watch at `at`: one `ChannelEntitlement` resource per channel (its id is
/// the channel's), in channel id order.
pub fn entitlements_document<'a>(
    user: &'a UserId,
    entitlements: &'a Entitlements,
    at: Timestamp,
) -> EntitlementsDocument<'a> {
    let grant = |g: &ChannelGrants, s: Service| {
        g.get(s).map(|grant| Grant {
            until: grant.until.map(Timestamp::unix),
        })
    };
    EntitlementsDocument {
        data: entitlements
            .channels()
            .map(|(channel, grants)| ChannelEntitlement {
                id: channel.as_str(),
                kind: ChannelEntitlementType::ChannelEntitlement,
                attributes: EntitlementAttributes {
                    live: grant(grants, Service::Live),
                    npvr: grant(grants, Service::Npvr),
                    catchup: grant(grants, Service::Catchup),
                    startover: grant(grants, Service::Startover),
                },
                relationships: EntitlementRelationships {
                    channel: ChannelLinkage {
                        data: EntitledChannel {
                            id: channel.as_str(),
                            kind: ChannelType::Channel,
                        },
                    },
                },
            })
            .collect(),
        meta: EntitlementsMeta {
            user: user.as_str(),
            at: at.unix(),
        },
    }
}
