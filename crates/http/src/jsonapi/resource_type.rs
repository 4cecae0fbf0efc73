//! The JSON:API resource types of the service, each an enum of one value: documents read and
//! written with them can hold no other `type`, and their schemas name the exact one.

use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

macro_rules! resource_types {
    ($($(#[$doc:meta])* $name:ident => $value:ident;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
            pub enum $name {
                #[default]
                $value,
            }

            /// Read from its name as a string only (serde's derive would also read
            /// `{"Name": null}`).
            impl<'de> Deserialize<'de> for $name {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let name = String::deserialize(d)?;
                    if name == stringify!($value) {
                        Ok(Self::$value)
                    } else {
                        Err(D::Error::invalid_value(
                            Unexpected::Str(&name),
                            &stringify!($value),
                        ))
                    }
                }
            }

            impl $name {
                /// The type's name, as documents carry it.
                pub const fn as_str(self) -> &'static str {
                    stringify!($value)
                }
            }
        )*
    };
}

resource_types! {
    /// The resource type `Product`.
    ProductType => Product;
    /// The resource type `License`.
    LicenseType => License;
    /// The resource type `User`.
    UserType => User;
    /// The resource type `Channel`.
    ChannelType => Channel;
    /// The resource type `ChannelEntitlement`.
    ChannelEntitlementType => ChannelEntitlement;
    /// The resource type `Access`: whether a user may watch a service on a channel.
    AccessType => Access;
    /// The resource type `Event`: a license or product change, in the feed.
    EventType => Event;
    /// The resource type `Webhook`: an endpoint that receives events.
    WebhookType => Webhook;
    /// The resource type `WebhookDelivery`: one event's delivery to one endpoint.
    WebhookDeliveryType => WebhookDelivery;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_is_written_and_read_as_its_name() {
        assert_eq!(
            serde_json::to_string(&ChannelEntitlementType::ChannelEntitlement).ok(),
            Some(format!(
                "\"{}\"",
                ChannelEntitlementType::default().as_str()
            ))
        );
        assert_eq!(
            serde_json::from_str::<LicenseType>("\"License\"").ok(),
            Some(LicenseType::License)
        );
        assert!(serde_json::from_str::<LicenseType>(r#"{"License": null}"#).is_err());
        assert!(serde_json::from_str::<LicenseType>("\"license\"").is_err());
    }
}
