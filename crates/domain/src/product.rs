//! Products: their types, services, channels, prices and license defaults, built only through
//! validating constructors. (Over 600 lines: about 500 of rules, the rest their unit tests,
//! kept beside the rules they pin.)

use std::fmt;
use std::str::FromStr;

use crate::ids::{ChannelId, ProductId};
use crate::money::{Price, PriceDraft};
use crate::violation::Violations;

const TITLE_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 4000;
const IRDETO_REF_MAX: usize = 255;

/// What a product grants (seed 002): one service on one channel, or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ProductKind))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductType {
    /// Live viewing of one channel.
    Channel,
    /// Cloud recording (nPVR) of one channel.
    Pvr,
    /// Catch-up of one channel.
    Catchup,
    /// Start-over of one channel.
    Startover,
    /// Any mix of services over one or more channels.
    ChannelGroup,
}

impl ProductType {
    pub const ALL: [ProductType; 5] = [
        Self::Channel,
        Self::Pvr,
        Self::Catchup,
        Self::Startover,
        Self::ChannelGroup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Channel => "CHANNEL",
            Self::Pvr => "PVR",
            Self::Catchup => "CATCHUP",
            Self::Startover => "STARTOVER",
            Self::ChannelGroup => "CHANNEL_GROUP",
        }
    }

    /// The one service a single-channel type grants; `None` for CHANNEL_GROUP.
    pub fn single_service(self) -> Option<Service> {
        match self {
            Self::Channel => Some(Service::Live),
            Self::Pvr => Some(Service::Npvr),
            Self::Catchup => Some(Service::Catchup),
            Self::Startover => Some(Service::Startover),
            Self::ChannelGroup => None,
        }
    }
}

impl FromStr for ProductType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or(())
    }
}

impl fmt::Display for ProductType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service on a channel, named as the product's relationships are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Live,
    Npvr,
    Catchup,
    Startover,
}

impl Service {
    pub const ALL: [Service; 4] = [Self::Live, Self::Npvr, Self::Catchup, Self::Startover];

    /// The relationship name: `live`, `npvr`, `catchup`, `startover`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Npvr => "npvr",
            Self::Catchup => "catchup",
            Self::Startover => "startover",
        }
    }

    /// The service of a relationship name ([`Service::as_str`]); `None` for any other text.
    pub fn parse(name: &str) -> Option<Service> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The channels a product grants, per service; no channel is listed twice for a service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelServices {
    lists: [Vec<ChannelId>; 4],
}

impl ChannelServices {
    pub fn channels(&self, service: Service) -> &[ChannelId] {
        &self.lists[service as usize]
    }

    /// Every (service, channel) pair granted.
    pub fn pairs(&self) -> impl Iterator<Item = (Service, &ChannelId)> {
        Service::ALL
            .into_iter()
            .flat_map(move |s| self.channels(s).iter().map(move |c| (s, c)))
    }

    pub fn is_empty(&self) -> bool {
        self.lists.iter().all(Vec::is_empty)
    }
}

/// How licenses of a product are granted when the request leaves it open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LicenseDefaults {
    duration: Option<u64>,
    auto_renew: bool,
}

impl LicenseDefaults {
    /// Seconds a license lasts; `None`: no end.
    pub fn duration(&self) -> Option<u64> {
        self.duration
    }

    pub fn auto_renew(&self) -> bool {
        self.auto_renew
    }
}

/// License defaults as a client sends them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LicenseDefaultsDraft {
    pub duration: Option<i64>,
    pub auto_renew: Option<bool>,
}

/// A product as a client describes it, before validation. Absent flags take their defaults:
/// visible and buyable, not premium, not granted on sign-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductDraft {
    pub title: Option<String>,
    pub description: Option<String>,
    pub product_type: Option<String>,
    pub is_premium: Option<bool>,
    pub is_user_visible: Option<bool>,
    pub is_buyable: Option<bool>,
    pub auto_grant_on_signup: Option<bool>,
    pub price_record: Option<PriceDraft>,
    pub license_defaults: Option<LicenseDefaultsDraft>,
    /// The Irdeto product this product maps to (management-only).
    pub irdeto_product_id: Option<String>,
    /// Channel ids per service, indexed like [`Service::ALL`].
    pub channels: [Vec<String>; 4],
}

/// A partial update: `None` leaves a member as it is. `price_record` and
/// `irdeto_product_id` can be cleared with `Some(None)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub product_type: Option<String>,
    pub is_premium: Option<bool>,
    pub is_user_visible: Option<bool>,
    pub is_buyable: Option<bool>,
    pub auto_grant_on_signup: Option<bool>,
    pub price_record: Option<Option<PriceDraft>>,
    pub license_defaults: Option<LicenseDefaultsDraft>,
    pub irdeto_product_id: Option<Option<String>>,
    pub channels: [Option<Vec<String>>; 4],
}

/// A product of the catalogue. Built only by [`Product::new`], so every value obeys the rules:
/// a title, a known type whose relationships fit it, a valid price and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    id: ProductId,
    title: String,
    description: String,
    product_type: ProductType,
    is_premium: bool,
    is_user_visible: bool,
    is_buyable: bool,
    auto_grant_on_signup: bool,
    price_record: Option<Price>,
    license_defaults: LicenseDefaults,
    irdeto_product_id: Option<String>,
    channels: ChannelServices,
}

impl Product {
    /// Validates `draft` and builds the product, or reports every rule it breaks.
    ///
    /// The type ↔ relationships rule: CHANNEL, PVR, CATCHUP and STARTOVER grant their one
    /// service (live, npvr, catchup, startover) on exactly one channel and nothing else;
    /// CHANNEL_GROUP grants any services on one or more channels.
    pub fn new(id: ProductId, draft: ProductDraft) -> Result<Self, Violations> {
        let mut errors = Violations::new();

        let title = match draft.title {
            None => {
                errors.add("/attributes/title", "required", "a product needs a title");
                None
            }
            Some(t) if t.trim().is_empty() => {
                errors.add("/attributes/title", "blank", "the title must not be blank");
                None
            }
            Some(t) if t.chars().count() > TITLE_MAX => {
                errors.add(
                    "/attributes/title",
                    "too_long",
                    format!("at most {TITLE_MAX} characters"),
                );
                None
            }
            Some(t) => Some(t),
        };

        let description = draft.description.unwrap_or_default();
        if description.chars().count() > DESCRIPTION_MAX {
            errors.add(
                "/attributes/description",
                "too_long",
                format!("at most {DESCRIPTION_MAX} characters"),
            );
        }

        let product_type = match draft.product_type.as_deref() {
            None => {
                errors.add("/attributes/type", "required", "a product needs a type");
                None
            }
            Some(t) => match t.parse::<ProductType>() {
                Ok(t) => Some(t),
                Err(()) => {
                    errors.add(
                        "/attributes/type",
                        "invalid_product_type",
                        "must be one of CHANNEL, PVR, CATCHUP, STARTOVER, CHANNEL_GROUP",
                    );
                    None
                }
            },
        };

        let price_record = draft.price_record.as_ref().and_then(|p| {
            Price::from_draft(
                p,
                "/attributes/price_record/amount",
                "/attributes/price_record/currency",
                &mut errors,
            )
        });

        let defaults = draft.license_defaults.unwrap_or_default();
        let duration = match defaults.duration {
            None => None,
            Some(d) if d > 0 => Some(d.unsigned_abs()),
            Some(_) => {
                errors.add(
                    "/attributes/license_defaults/duration",
                    "invalid_duration",
                    "the duration is a positive number of seconds",
                );
                None
            }
        };
        let license_defaults = LicenseDefaults {
            duration,
            auto_renew: defaults.auto_renew.unwrap_or(false),
        };

        let irdeto_product_id = draft.irdeto_product_id.filter(|r| {
            let ok = !r.trim().is_empty() && r.chars().count() <= IRDETO_REF_MAX;
            if !ok {
                errors.add(
                    "/attributes/irdeto_product_id",
                    "invalid_reference",
                    format!("a non-blank reference of at most {IRDETO_REF_MAX} characters"),
                );
            }
            ok
        });

        let channels = channel_services(draft.channels, &mut errors);
        if let Some(t) = product_type {
            check_type_fits_channels(t, &channels, &mut errors);
        }

        let (Some(title), Some(product_type)) = (title, product_type) else {
            return Err(errors);
        };
        errors.into_result(|| Self {
            id,
            title,
            description,
            product_type,
            is_premium: draft.is_premium.unwrap_or(false),
            is_user_visible: draft.is_user_visible.unwrap_or(true),
            is_buyable: draft.is_buyable.unwrap_or(true),
            auto_grant_on_signup: draft.auto_grant_on_signup.unwrap_or(false),
            price_record,
            license_defaults,
            irdeto_product_id,
            channels,
        })
    }

    /// Applies a partial update and validates the result as a whole, consuming `self`: the
    /// rules hold after a patch exactly as after creation.
    pub fn patch(self, patch: ProductPatch) -> Result<Self, Violations> {
        let id = self.id.clone();
        let mut draft = self.into_draft();
        let ProductPatch {
            title,
            description,
            product_type,
            is_premium,
            is_user_visible,
            is_buyable,
            auto_grant_on_signup,
            price_record,
            license_defaults,
            irdeto_product_id,
            channels,
        } = patch;
        overlay(&mut draft.title, title);
        overlay(&mut draft.description, description);
        overlay(&mut draft.product_type, product_type);
        overlay(&mut draft.is_premium, is_premium);
        overlay(&mut draft.is_user_visible, is_user_visible);
        overlay(&mut draft.is_buyable, is_buyable);
        overlay(&mut draft.auto_grant_on_signup, auto_grant_on_signup);
        if let Some(p) = price_record {
            draft.price_record = p;
        }
        if let Some(d) = license_defaults {
            let current = draft.license_defaults.get_or_insert_with(Default::default);
            overlay(&mut current.duration, d.duration);
            overlay(&mut current.auto_renew, d.auto_renew);
        }
        if let Some(r) = irdeto_product_id {
            draft.irdeto_product_id = r;
        }
        for (slot, new) in draft.channels.iter_mut().zip(channels) {
            if let Some(list) = new {
                *slot = list;
            }
        }
        Self::new(id, draft)
    }

    /// The product as a draft again: what [`Product::new`] would rebuild it from.
    pub fn into_draft(self) -> ProductDraft {
        let duration = self
            .license_defaults
            .duration
            .map(|d| i64::try_from(d).unwrap_or(i64::MAX));
        ProductDraft {
            title: Some(self.title),
            description: Some(self.description),
            product_type: Some(self.product_type.as_str().to_owned()),
            is_premium: Some(self.is_premium),
            is_user_visible: Some(self.is_user_visible),
            is_buyable: Some(self.is_buyable),
            auto_grant_on_signup: Some(self.auto_grant_on_signup),
            price_record: self.price_record.map(|p| PriceDraft {
                amount: Some(p.amount()),
                currency: Some(p.currency().code().to_owned()),
            }),
            license_defaults: Some(LicenseDefaultsDraft {
                duration,
                auto_renew: Some(self.license_defaults.auto_renew),
            }),
            irdeto_product_id: self.irdeto_product_id,
            channels: self
                .channels
                .lists
                .map(|l| l.into_iter().map(ChannelId::into_string).collect()),
        }
    }

    pub fn id(&self) -> &ProductId {
        &self.id
    }
    pub fn title(&self) -> &str {
        &self.title
    }
    pub fn description(&self) -> &str {
        &self.description
    }
    pub fn product_type(&self) -> ProductType {
        self.product_type
    }
    pub fn is_premium(&self) -> bool {
        self.is_premium
    }
    pub fn is_user_visible(&self) -> bool {
        self.is_user_visible
    }
    pub fn is_buyable(&self) -> bool {
        self.is_buyable
    }
    pub fn auto_grant_on_signup(&self) -> bool {
        self.auto_grant_on_signup
    }
    pub fn price_record(&self) -> Option<Price> {
        self.price_record
    }
    pub fn license_defaults(&self) -> LicenseDefaults {
        self.license_defaults
    }
    pub fn irdeto_product_id(&self) -> Option<&str> {
        self.irdeto_product_id.as_deref()
    }
    pub fn channels(&self) -> &ChannelServices {
        &self.channels
    }
}

fn overlay<T>(slot: &mut Option<T>, new: Option<T>) {
    if new.is_some() {
        *slot = new;
    }
}

fn channel_services(lists: [Vec<String>; 4], errors: &mut Violations) -> ChannelServices {
    let mut out: [Vec<ChannelId>; 4] = Default::default();
    for (service, list) in Service::ALL.into_iter().zip(lists) {
        let target = &mut out[service as usize];
        for (i, raw) in list.into_iter().enumerate() {
            let at = format!("/relationships/{service}/data/{i}/id");
            match ChannelId::parse(raw) {
                Err(e) => errors.add(at, "invalid_id", format!("channel id {e}")),
                Ok(id) if target.contains(&id) => {
                    errors.add(
                        at,
                        "duplicate_channel",
                        format!("channel {id} is listed twice"),
                    );
                }
                Ok(id) => target.push(id),
            }
        }
    }
    ChannelServices { lists: out }
}

fn check_type_fits_channels(t: ProductType, channels: &ChannelServices, errors: &mut Violations) {
    match t.single_service() {
        None => {
            if channels.is_empty() {
                errors.add(
                    "/relationships",
                    "type_mismatch",
                    "a CHANNEL_GROUP product grants services on one or more channels",
                );
            }
        }
        Some(only) => {
            for service in Service::ALL {
                let n = channels.channels(service).len();
                if service == only && n != 1 {
                    errors.add(
                        format!("/relationships/{service}"),
                        "type_mismatch",
                        format!("a {t} product grants {service} on exactly one channel, not {n}"),
                    );
                } else if service != only && n > 0 {
                    errors.add(
                        format!("/relationships/{service}"),
                        "type_mismatch",
                        format!(
                            "a {t} product grants only {only}; use CHANNEL_GROUP to mix services"
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn channel_draft(title: &str, channel: &str) -> ProductDraft {
        ProductDraft {
            title: Some(title.into()),
            product_type: Some("CHANNEL".into()),
            channels: [vec![channel.into()], vec![], vec![], vec![]],
            ..Default::default()
        }
    }

    pub(crate) fn group_draft() -> ProductDraft {
        ProductDraft {
            title: Some("Sport channels megapack".into()),
            description: Some("Complete collection for all sports channels".into()),
            product_type: Some("CHANNEL_GROUP".into()),
            is_premium: Some(true),
            price_record: Some(PriceDraft {
                amount: Some(999),
                currency: Some("EUR".into()),
            }),
            license_defaults: Some(LicenseDefaultsDraft {
                duration: Some(30 * 86_400),
                auto_renew: Some(true),
            }),
            channels: [
                vec!["42".into()],
                vec!["42".into()],
                vec!["42".into()],
                vec!["42".into()],
            ],
            ..Default::default()
        }
    }

    fn pid(s: &str) -> ProductId {
        ProductId::parse(s).expect("valid id")
    }

    fn codes(v: &Violations) -> Vec<(String, &'static str)> {
        v.iter().map(|v| (v.pointer.clone(), v.code)).collect()
    }

    #[test]
    fn the_seed_product_is_valid_and_defaults_apply() {
        let p = Product::new(pid("41"), group_draft()).expect("valid");
        assert_eq!(p.product_type(), ProductType::ChannelGroup);
        assert!(p.is_premium() && p.is_user_visible() && p.is_buyable());
        assert!(!p.auto_grant_on_signup());
        assert_eq!(p.license_defaults().duration(), Some(2_592_000));
        assert_eq!(
            p.price_record().map(|p| (p.amount(), p.currency().code())),
            Some((999, "EUR"))
        );
        assert_eq!(p.channels().pairs().count(), 4);
    }

    #[test]
    fn title_and_type_are_required() {
        let err = Product::new(pid("1"), ProductDraft::default()).expect_err("invalid");
        let c = codes(&err);
        assert!(c.contains(&("/attributes/title".into(), "required")));
        assert!(c.contains(&("/attributes/type".into(), "required")));
    }

    #[test]
    fn blank_and_overlong_titles_are_refused() {
        let mut d = channel_draft(" ", "1");
        assert_eq!(
            codes(&Product::new(pid("1"), d.clone()).expect_err("blank"))[0].1,
            "blank"
        );
        d.title = Some("x".repeat(256));
        assert_eq!(
            codes(&Product::new(pid("1"), d).expect_err("long"))[0].1,
            "too_long"
        );
    }

    #[test]
    fn unknown_type_is_refused() {
        let mut d = channel_draft("t", "1");
        d.product_type = Some("SVOD".into());
        let err = Product::new(pid("1"), d).expect_err("invalid");
        assert_eq!(
            codes(&err),
            [("/attributes/type".to_owned(), "invalid_product_type")]
        );
    }

    #[test]
    fn single_service_types_take_exactly_one_channel_of_their_service() {
        for (t, service) in [("CHANNEL", 0), ("PVR", 1), ("CATCHUP", 2), ("STARTOVER", 3)] {
            let mut ok = ProductDraft {
                title: Some("t".into()),
                product_type: Some(t.into()),
                ..Default::default()
            };
            ok.channels[service] = vec!["7".into()];
            assert!(
                Product::new(pid("1"), ok.clone()).is_ok(),
                "{t} with one channel"
            );

            let mut two = ok.clone();
            two.channels[service].push("8".into());
            assert_eq!(
                codes(&Product::new(pid("1"), two).expect_err(t))[0].1,
                "type_mismatch"
            );

            let mut none = ok.clone();
            none.channels[service].clear();
            assert_eq!(
                codes(&Product::new(pid("1"), none).expect_err(t))[0].1,
                "type_mismatch"
            );

            let mut other = ok;
            other.channels[(service + 1) % 4] = vec!["9".into()];
            let err = Product::new(pid("1"), other).expect_err(t);
            let other_name = Service::ALL[(service + 1) % 4];
            assert_eq!(
                codes(&err),
                [(format!("/relationships/{other_name}"), "type_mismatch")]
            );
        }
    }

    #[test]
    fn a_channel_group_needs_at_least_one_channel() {
        let mut d = group_draft();
        d.channels = Default::default();
        assert_eq!(
            codes(&Product::new(pid("1"), d).expect_err("empty")),
            [("/relationships".to_owned(), "type_mismatch")]
        );
    }

    #[test]
    fn channel_ids_are_checked_and_not_repeated() {
        let mut d = group_draft();
        d.channels[0] = vec!["1".into(), "".into(), "1".into()];
        let c = codes(&Product::new(pid("1"), d).expect_err("bad"));
        assert_eq!(
            c,
            [
                ("/relationships/live/data/1/id".to_owned(), "invalid_id"),
                (
                    "/relationships/live/data/2/id".to_owned(),
                    "duplicate_channel"
                )
            ]
        );
    }

    #[test]
    fn price_and_duration_are_validated_with_pointers() {
        let mut d = group_draft();
        d.price_record = Some(PriceDraft {
            amount: Some(-1),
            currency: Some("ABC".into()),
        });
        d.license_defaults = Some(LicenseDefaultsDraft {
            duration: Some(0),
            auto_renew: None,
        });
        let c = codes(&Product::new(pid("1"), d).expect_err("bad"));
        assert_eq!(
            c,
            [
                (
                    "/attributes/price_record/amount".to_owned(),
                    "negative_amount"
                ),
                (
                    "/attributes/price_record/currency".to_owned(),
                    "invalid_currency"
                ),
                (
                    "/attributes/license_defaults/duration".to_owned(),
                    "invalid_duration"
                ),
            ]
        );
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_keeps_the_rules() {
        let p = Product::new(pid("41"), group_draft()).expect("valid");
        let patched = p
            .clone()
            .patch(ProductPatch {
                title: Some("New".into()),
                ..Default::default()
            })
            .expect("valid patch");
        assert_eq!(patched.title(), "New");
        assert_eq!(patched.channels(), p.channels());
        assert_eq!(patched.price_record(), p.price_record());

        // Turning the group into a CHANNEL product without fixing the relationships is refused.
        let err = p
            .clone()
            .patch(ProductPatch {
                product_type: Some("CHANNEL".into()),
                ..Default::default()
            })
            .expect_err("mismatch");
        assert!(err.iter().all(|v| v.code == "type_mismatch"));

        // ...and accepted when the relationships change with it.
        let fixed = p
            .clone()
            .patch(ProductPatch {
                product_type: Some("CHANNEL".into()),
                channels: [
                    Some(vec!["5".into()]),
                    Some(vec![]),
                    Some(vec![]),
                    Some(vec![]),
                ],
                ..Default::default()
            })
            .expect("valid");
        assert_eq!(fixed.product_type(), ProductType::Channel);

        let cleared = p
            .patch(ProductPatch {
                price_record: Some(None),
                ..Default::default()
            })
            .expect("valid");
        assert_eq!(cleared.price_record(), None);
    }

    #[test]
    fn into_draft_round_trips() {
        let p = Product::new(pid("41"), group_draft()).expect("valid");
        assert_eq!(Product::new(pid("41"), p.clone().into_draft()), Ok(p));
    }
}

#[cfg(test)]
mod serde_names {
    use super::ProductType;

    #[test]
    fn each_type_serializes_as_its_api_name() {
        for t in ProductType::ALL {
            let json = serde_json::to_string(&t).expect("a type serializes");
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
    }
}
