//! Entitlement resolution: which services on which channels a user's licenses grant at a
//! given time. Only licenses effectively ACTIVE at that time count ([`License::is_effective_at`]).

use std::collections::BTreeMap;

use crate::ids::{ChannelId, ProductId};
use crate::license::License;
use crate::product::{Product, Service};
use crate::time::Timestamp;

/// One service granted on one channel, and until when (`None`: without end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub until: Option<Timestamp>,
}

impl Grant {
    /// The later of two grants of the same service: the user keeps it as long as either lasts.
    fn merge(self, other: Grant) -> Grant {
        match (self.until, other.until) {
            (Some(a), Some(b)) => Grant {
                until: Some(a.max(b)),
            },
            _ => Grant { until: None },
        }
    }
}

/// The services granted on one channel, indexed like [`Service::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelGrants([Option<Grant>; 4]);

impl ChannelGrants {
    pub fn get(&self, service: Service) -> Option<Grant> {
        self.0[service as usize]
    }

    /// The granted services, in the order of [`Service::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (Service, Grant)> + '_ {
        Service::ALL
            .into_iter()
            .filter_map(|s| self.get(s).map(|g| (s, g)))
    }
}

/// What a user may watch: for each channel, the services granted and until when.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entitlements {
    channels: BTreeMap<ChannelId, ChannelGrants>,
}

impl Entitlements {
    /// Whether `service` is granted on `channel`.
    pub fn allows(&self, channel: &ChannelId, service: Service) -> bool {
        self.get(channel, service).is_some()
    }

    pub fn get(&self, channel: &ChannelId, service: Service) -> Option<Grant> {
        self.channels.get(channel).and_then(|g| g.get(service))
    }

    /// Channels in id order, each with its granted services.
    pub fn channels(&self) -> impl Iterator<Item = (&ChannelId, &ChannelGrants)> {
        self.channels.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }
}

/// Resolves what `licenses` grant at `at`. `product_of` finds a license's product; a license
/// whose product is unknown grants nothing. A service granted by several licenses lasts until
/// the latest of their stop dates.
pub fn resolve<'a, 'p>(
    licenses: impl IntoIterator<Item = &'a License>,
    product_of: impl Fn(&ProductId) -> Option<&'p Product>,
    at: Timestamp,
) -> Entitlements {
    let mut channels: BTreeMap<ChannelId, ChannelGrants> = BTreeMap::new();
    for license in licenses.into_iter().filter(|l| l.is_effective_at(at)) {
        let Some(product) = product_of(license.product()) else {
            continue;
        };
        let grant = Grant {
            until: license.stop_date(),
        };
        for (service, channel) in product.channels().pairs() {
            let slot = &mut channels.entry(channel.clone()).or_default().0[service as usize];
            *slot = Some(slot.map_or(grant, |g| g.merge(grant)));
        }
    }
    Entitlements { channels }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::ids::LicenseId;
    use crate::license::{Activation, LicenseDraft};
    use crate::product::ProductDraft;

    const NOW: Timestamp = Timestamp::from_unix(1_000_000);

    fn product(id: &str, lists: [&[&str]; 4]) -> Product {
        let draft = ProductDraft {
            title: Some(format!("product {id}")),
            product_type: Some("CHANNEL_GROUP".into()),
            channels: lists.map(|l| l.iter().map(|c| (*c).to_owned()).collect()),
            ..Default::default()
        };
        Product::new(ProductId::parse(id).expect("id"), draft).expect("valid")
    }

    fn license(
        id: usize,
        p: &Product,
        start: i64,
        stop: Option<i64>,
        status: &str,
        at: Activation,
    ) -> License {
        let draft = LicenseDraft {
            user: Some("u".into()),
            product: Some(p.id().to_string()),
            status: Some(status.into()),
            start_date: Some(start),
            stop_date: stop,
            ..Default::default()
        };
        License::grant(
            LicenseId::parse(id.to_string()).expect("id"),
            draft,
            Some(p),
            NOW,
            at,
        )
        .expect("valid")
    }

    fn ch(s: &str) -> ChannelId {
        ChannelId::parse(s).expect("id")
    }

    #[test]
    fn an_active_license_grants_its_products_services() {
        let p = product("1", [&["a", "b"], &["a"], &[], &["b"]]);
        let l = license(1, &p, 0, Some(2_000_000), "ACTIVE", Activation::Immediate);
        let e = resolve([&l], |_| Some(&p), NOW);
        assert!(e.allows(&ch("a"), Service::Live));
        assert!(e.allows(&ch("a"), Service::Npvr));
        assert!(!e.allows(&ch("a"), Service::Catchup));
        assert!(e.allows(&ch("b"), Service::Startover));
        assert_eq!(
            e.get(&ch("b"), Service::Live),
            Some(Grant {
                until: Some(Timestamp::from_unix(2_000_000))
            })
        );
        assert_eq!(e.channels().count(), 2);
    }

    #[test]
    fn suspended_processing_expired_and_future_licenses_grant_nothing() {
        let p = product("1", [&["a"], &[], &[], &[]]);
        let ls = [
            license(1, &p, 0, None, "SUSPENDED", Activation::Immediate),
            license(2, &p, 0, None, "ACTIVE", Activation::AwaitEntitlement),
            license(3, &p, 0, Some(NOW.unix()), "ACTIVE", Activation::Immediate),
            license(4, &p, NOW.unix() + 1, None, "ACTIVE", Activation::Immediate),
        ];
        assert!(resolve(&ls, |_| Some(&p), NOW).is_empty());
    }

    #[test]
    fn overlapping_grants_last_until_the_latest_stop() {
        let p = product("1", [&["a"], &[], &[], &[]]);
        let short = license(1, &p, 0, Some(1_500_000), "ACTIVE", Activation::Immediate);
        let long = license(2, &p, 0, Some(1_800_000), "ACTIVE", Activation::Immediate);
        let open = license(3, &p, 0, None, "ACTIVE", Activation::Immediate);
        let until = |ls: &[&License]| {
            resolve(ls.iter().copied(), |_| Some(&p), NOW).get(&ch("a"), Service::Live)
        };
        assert_eq!(
            until(&[&short, &long]),
            Some(Grant {
                until: Some(Timestamp::from_unix(1_800_000))
            })
        );
        assert_eq!(until(&[&long, &open, &short]), Some(Grant { until: None }));
    }

    #[test]
    fn a_license_of_an_unknown_product_grants_nothing() {
        let p = product("1", [&["a"], &[], &[], &[]]);
        let l = license(1, &p, 0, None, "ACTIVE", Activation::Immediate);
        assert!(resolve([&l], |_| None, NOW).is_empty());
    }

    // Property tests: random catalogues and licenses, checked against a direct statement of
    // the rule.

    #[derive(Debug, Clone)]
    struct Case {
        products: Vec<Product>,
        licenses: Vec<License>,
        at: Timestamp,
    }

    fn case() -> impl Strategy<Value = Case> {
        let lists = proptest::array::uniform4(proptest::sample::subsequence(
            vec!["c0", "c1", "c2", "c3", "c4"],
            0..=3,
        ));
        let products = proptest::collection::vec(lists, 1..6).prop_map(|all| {
            all.into_iter()
                .enumerate()
                .map(|(i, mut l)| {
                    if l.iter().all(Vec::is_empty) {
                        l[0].push("c0");
                    }
                    product(&format!("p{i}"), [&l[0], &l[1], &l[2], &l[3]])
                })
                .collect::<Vec<_>>()
        });
        (
            products,
            proptest::collection::vec(
                (
                    0usize..6,
                    0i64..2_000,
                    proptest::option::of(1i64..2_000),
                    0u8..3,
                    any::<bool>(),
                ),
                0..12,
            ),
            0i64..2_500,
        )
            .prop_map(|(products, specs, at)| {
                let licenses = specs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (p, start, len, status, wait))| {
                        let p = &products[p % products.len()];
                        let status = ["ACTIVE", "SUSPENDED", "ACTIVE"][usize::from(status)];
                        let at = if wait {
                            Activation::AwaitEntitlement
                        } else {
                            Activation::Immediate
                        };
                        license(i, p, start, len.map(|l| start + l), status, at)
                    })
                    .collect();
                Case {
                    products,
                    licenses,
                    at: Timestamp::from_unix(at),
                }
            })
    }

    fn catalogue(c: &Case) -> HashMap<ProductId, Product> {
        c.products
            .iter()
            .map(|p| (p.id().clone(), p.clone()))
            .collect()
    }

    proptest! {
        #[test]
        fn every_grant_comes_from_an_effective_license_and_every_effective_license_is_granted(c in case()) {
            let cat = catalogue(&c);
            let e = resolve(&c.licenses, |id| cat.get(id), c.at);
            // Soundness: each granted (channel, service) is in the product of a license
            // effective at `at`, and lasts until the latest stop among those licenses.
            for (channel, grants) in e.channels() {
                for (service, grant) in grants.iter() {
                    let granting: Vec<&License> = c.licenses.iter()
                        .filter(|l| l.is_effective_at(c.at))
                        .filter(|l| cat[l.product()].channels().channels(service).contains(channel))
                        .collect();
                    prop_assert!(!granting.is_empty());
                    let expected = if granting.iter().any(|l| l.stop_date().is_none()) {
                        None
                    } else {
                        granting.iter().filter_map(|l| l.stop_date()).max()
                    };
                    prop_assert_eq!(grant.until, expected);
                    if let Some(until) = grant.until { prop_assert!(until > c.at); }
                }
            }
            // Completeness: each effective license's services are all granted.
            for l in c.licenses.iter().filter(|l| l.is_effective_at(c.at)) {
                for (service, channel) in cat[l.product()].channels().pairs() {
                    prop_assert!(e.allows(channel, service));
                }
            }
        }

        #[test]
        fn resolution_ignores_order_and_only_grows_with_more_licenses(c in case(), cut in 0usize..12) {
            let cat = catalogue(&c);
            let all = resolve(&c.licenses, |id| cat.get(id), c.at);
            let reversed = resolve(c.licenses.iter().rev(), |id| cat.get(id), c.at);
            prop_assert_eq!(&all, &reversed);
            let some = resolve(c.licenses.iter().take(cut), |id| cat.get(id), c.at);
            for (channel, grants) in some.channels() {
                for (service, _) in grants.iter() {
                    prop_assert!(all.allows(channel, service));
                }
            }
        }

        #[test]
        fn only_effectively_active_licenses_count(c in case()) {
            let cat = catalogue(&c);
            let effective: Vec<&License> = c.licenses.iter().filter(|l| l.is_effective_at(c.at)).collect();
            prop_assert_eq!(
                resolve(&c.licenses, |id| cat.get(id), c.at),
                resolve(effective, |id| cat.get(id), c.at)
            );
        }
    }
}
