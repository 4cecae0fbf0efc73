//! Why a user may or may not watch a service on a channel at a given time: the entitlement
//! resolution ([`crate::resolve`]) explained license by license, with stable reason codes, for
//! support staff ("I paid and the sport channel is black") and for the user's own apps.
//!
//! [`explain`] agrees with [`crate::resolve`] by construction and by property test: it allows
//! exactly what `resolve` grants, until the same time. When it does not allow, it says why:
//!
//! - each license whose product has the channel for the service gives the one reason it does
//!   not grant, checked in this order: [`ReasonCode::LicenseExpired`] (the stop date has
//!   passed, whatever the stored status), [`ReasonCode::DrmRefused`] (ORDER_ERROR,
//!   CHECK_INVALID), [`ReasonCode::SuspendedByAdmin`] (SUSPENDEDADMIN),
//!   [`ReasonCode::LicenseSuspended`] (SUSPENDED, or PROCESSING created SUSPENDED: delivering
//!   its entitlement will not make it play), [`ReasonCode::WaitingForDrm`] (PROCESSING created
//!   ACTIVE; both with the license's open DRM job when one is known), then
//!   [`ReasonCode::NotStartedYet`] (ACTIVE, starting later);
//! - with no such license, each of the user's licenses gives
//!   [`ReasonCode::ProductLacksService`] (its product lacks the channel, has it only for other
//!   services, or is not in the catalogue at all);
//! - with no license at all, the one reason is [`ReasonCode::NoLicense`].

use std::fmt;

use crate::ids::{ChannelId, LicenseId, ProductId};
use crate::license::{License, LicenseState, Requested};
use crate::product::{Product, Service};
use crate::time::Timestamp;

/// Why a license does not let its user watch: a stable code, for programs and for support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// The user has no license at all.
    NoLicense,
    /// The license's stop date has passed ([`Reason::at`]: the stop date).
    LicenseExpired,
    /// The license is SUSPENDED (e.g. by the BSS for an unpaid bill).
    LicenseSuspended,
    /// The license is SUSPENDEDADMIN: suspended by the operator's staff.
    SuspendedByAdmin,
    /// The license is PROCESSING: its DRM (Irdeto) entitlement is not confirmed yet
    /// ([`Reason::drm`]: the open job, when one is known).
    WaitingForDrm,
    /// The DRM refused the order (ORDER_ERROR, CHECK_INVALID; [`Reason::detail`] says why).
    DrmRefused,
    /// The license's product lacks the channel, or has it only for other services.
    ProductLacksService,
    /// The license starts later ([`Reason::at`]: the start date).
    NotStartedYet,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 8] = [
        Self::NoLicense,
        Self::LicenseExpired,
        Self::LicenseSuspended,
        Self::SuspendedByAdmin,
        Self::WaitingForDrm,
        Self::DrmRefused,
        Self::ProductLacksService,
        Self::NotStartedYet,
    ];

    /// The code as the APIs show it: `no_license`, `license_expired`…
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoLicense => "no_license",
            Self::LicenseExpired => "license_expired",
            Self::LicenseSuspended => "license_suspended",
            Self::SuspendedByAdmin => "suspended_by_admin",
            Self::WaitingForDrm => "waiting_for_drm",
            Self::DrmRefused => "drm_refused",
            Self::ProductLacksService => "product_lacks_service",
            Self::NotStartedYet => "not_started_yet",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a license's DRM job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DrmJobState {
    /// Queued, not tried yet (or being tried for the first time).
    Pending,
    /// Tried and failed for a reason that may pass; it is tried again later.
    Retrying,
    /// Given up on after its attempts: waits for an operator's retry.
    Failed,
}

impl DrmJobState {
    /// `pending`, `retrying`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for DrmJobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The open DRM (Irdeto) job of a license, as the explanation shows it: whatever stores the
/// jobs, only these facts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DrmJob {
    pub state: DrmJobState,
    /// Deliveries tried so far.
    pub attempts: u32,
    /// Why the last try failed, if it did.
    pub last_error: Option<String>,
}

/// One reason a license (or the lack of one) does not let the user watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: ReasonCode,
    /// The license that decided it; `None` only for [`ReasonCode::NoLicense`].
    pub license: Option<LicenseId>,
    /// That license's product; `None` only for [`ReasonCode::NoLicense`].
    pub product: Option<ProductId>,
    /// The time that matters: the stop date of an expired license, the start date of one
    /// not started yet; `None` otherwise.
    pub at: Option<Timestamp>,
    /// For [`ReasonCode::WaitingForDrm`], and [`ReasonCode::LicenseSuspended`] of a PROCESSING
    /// license: the license's open DRM job, when one is known.
    pub drm: Option<DrmJob>,
    /// The reason in a sentence, for people (the refusal's own words for
    /// [`ReasonCode::DrmRefused`]). Not stable: programs read the other fields.
    pub detail: String,
}

/// Whether a user may watch a service on a channel at a time, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Whether the service is granted ([`crate::Entitlements::allows`]).
    pub allowed: bool,
    /// When allowed, until when (`None`: without end), as [`crate::Grant::until`]; `None`
    /// when not allowed.
    pub until: Option<Timestamp>,
    /// When allowed, the licenses that grant it, in the order given; empty otherwise.
    pub granted_by: Vec<LicenseId>,
    /// When not allowed, why (at least one reason); empty when allowed.
    pub reasons: Vec<Reason>,
}

impl Explanation {
    /// The licenses that decided the answer, each once, in order: those that grant it when
    /// allowed, else those the reasons name.
    pub fn deciding_licenses(&self) -> Vec<&LicenseId> {
        let mut out: Vec<&LicenseId> = Vec::new();
        let named = self.reasons.iter().filter_map(|r| r.license.as_ref());
        for id in self.granted_by.iter().chain(named) {
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }
}

/// Explains whether the user holding `licenses` may watch `service` on `channel` at `at`.
/// `product_of` finds a license's product (as for [`crate::resolve`]); `drm_job_of` finds
/// the open DRM job of a license, and is asked only about PROCESSING licenses (`None`:
/// none is known, e.g. the DRM integration is off). The rules are in the module's docs.
pub fn explain<'a, 'p>(
    licenses: impl IntoIterator<Item = &'a License>,
    product_of: impl Fn(&ProductId) -> Option<&'p Product>,
    drm_job_of: impl Fn(&LicenseId) -> Option<DrmJob>,
    channel: &ChannelId,
    service: Service,
    at: Timestamp,
) -> Explanation {
    let mut granted_by = Vec::new();
    // `Some(until)` once a license grants it; the latest stop wins, no stop beats any.
    let mut until: Option<Option<Timestamp>> = None;
    let mut blocked = Vec::new();
    let mut lacking = Vec::new();
    for license in licenses {
        let Some(product) = product_of(license.product()) else {
            let detail = format!(
                "product {} of license {} is not in the catalogue",
                license.product(),
                license.id()
            );
            lacking.push(reason(
                ReasonCode::ProductLacksService,
                license,
                None,
                detail,
            ));
            continue;
        };
        if !product.channels().channels(service).contains(channel) {
            let detail = lacks(license, product, channel, service);
            lacking.push(reason(
                ReasonCode::ProductLacksService,
                license,
                None,
                detail,
            ));
            continue;
        }
        if license.is_effective_at(at) {
            granted_by.push(license.id().clone());
            let stop = license.stop_date();
            until = Some(match until {
                None => stop,
                Some(earlier) => earlier.zip(stop).map(|(a, b)| a.max(b)),
            });
        } else {
            blocked.push(blocking(license, &drm_job_of, at));
        }
    }
    if let Some(until) = until {
        return Explanation {
            allowed: true,
            until,
            granted_by,
            reasons: Vec::new(),
        };
    }
    let reasons = if !blocked.is_empty() {
        blocked
    } else if !lacking.is_empty() {
        lacking
    } else {
        vec![Reason {
            code: ReasonCode::NoLicense,
            license: None,
            product: None,
            at: None,
            drm: None,
            detail: "the user has no license".to_owned(),
        }]
    };
    Explanation {
        allowed: false,
        until: None,
        granted_by,
        reasons,
    }
}

fn reason(code: ReasonCode, license: &License, at: Option<Timestamp>, detail: String) -> Reason {
    Reason {
        code,
        license: Some(license.id().clone()),
        product: Some(license.product().clone()),
        at,
        drm: None,
        detail,
    }
}

/// Why `product` does not grant `service` on `channel`.
fn lacks(license: &License, product: &Product, channel: &ChannelId, service: Service) -> String {
    let other: Vec<&str> = Service::ALL
        .into_iter()
        .filter(|s| product.channels().channels(*s).contains(channel))
        .map(Service::as_str)
        .collect();
    let (p, l) = (product.id(), license.id());
    if other.is_empty() {
        format!("product {p} of license {l} does not include channel {channel}")
    } else {
        format!(
            "product {p} of license {l} has channel {channel} for {} only, not for {service}",
            other.join(", ")
        )
    }
}

/// The one reason a license whose product has the channel for the service does not grant it.
fn blocking(
    license: &License,
    drm_job_of: &impl Fn(&LicenseId) -> Option<DrmJob>,
    at: Timestamp,
) -> Reason {
    let (l, p) = (license.id(), license.product());
    if let Some(stop) = license.stop_date().filter(|stop| *stop <= at) {
        let detail = format!("license {l} (product {p}) expired at {stop}");
        return reason(ReasonCode::LicenseExpired, license, Some(stop), detail);
    }
    match license.state() {
        LicenseState::OrderError { reason: why } | LicenseState::CheckInvalid { reason: why } => {
            let status = license.state().status();
            let detail = format!("the DRM refused license {l} (product {p}, {status}): {why}");
            reason(ReasonCode::DrmRefused, license, None, detail)
        }
        LicenseState::SuspendedAdmin => {
            let detail = format!("license {l} (product {p}) is suspended by an administrator");
            reason(ReasonCode::SuspendedByAdmin, license, None, detail)
        }
        LicenseState::Suspended => {
            let detail = format!("license {l} (product {p}) is suspended");
            reason(ReasonCode::LicenseSuspended, license, None, detail)
        }
        // Created SUSPENDED: once its entitlement is delivered it is SUSPENDED, so it will
        // not play whatever the DRM does (the job is still shown).
        LicenseState::Processing {
            requested: Requested::Suspended,
        } => {
            let detail = format!(
                "license {l} (product {p}) was created SUSPENDED: it will not play once its DRM entitlement is delivered"
            );
            Reason {
                drm: drm_job_of(l),
                ..reason(ReasonCode::LicenseSuspended, license, None, detail)
            }
        }
        LicenseState::Processing { .. } => {
            let job = drm_job_of(l);
            let detail = match &job {
                None => format!("license {l} (product {p}) waits for its DRM entitlement"),
                Some(job) => format!(
                    "license {l} (product {p}) waits for its DRM entitlement: job {}, {} attempt(s){}",
                    job.state,
                    job.attempts,
                    job.last_error
                        .as_deref()
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default()
                ),
            };
            Reason {
                drm: job,
                ..reason(ReasonCode::WaitingForDrm, license, None, detail)
            }
        }
        // Neither expired nor effective, so not started yet.
        LicenseState::Active => {
            let start = license.start_date();
            let detail = format!("license {l} (product {p}) starts at {start}");
            reason(ReasonCode::NotStartedYet, license, Some(start), detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::entitlements::resolve;
    use crate::ids::UserId;
    use crate::license::StoredParts;
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

    fn license(id: &str, p: &str, state: LicenseState, start: i64, stop: Option<i64>) -> License {
        License::restore(StoredParts {
            id: LicenseId::parse(id).expect("id"),
            user: UserId::parse("u").expect("id"),
            product: ProductId::parse(p).expect("id"),
            state,
            start_date: Timestamp::from_unix(start),
            stop_date: stop.map(Timestamp::from_unix),
            order_id: None,
            price: None,
            purchase_timestamp: Timestamp::from_unix(start),
            payment_method: None,
            recurring: false,
            expiry_date: None,
        })
        .expect("valid")
    }

    fn ch(s: &str) -> ChannelId {
        ChannelId::parse(s).expect("id")
    }

    fn lid(s: &str) -> LicenseId {
        LicenseId::parse(s).expect("id")
    }

    /// `sport` has channel `a` for live and npvr; `news` has `b` for live only.
    fn catalogue() -> HashMap<ProductId, Product> {
        [
            product("sport", [&["a"], &["a"], &[], &[]]),
            product("news", [&["b"], &[], &[], &[]]),
        ]
        .into_iter()
        .map(|p| (p.id().clone(), p))
        .collect()
    }

    fn live_a(licenses: &[License]) -> Explanation {
        let cat = catalogue();
        explain(
            licenses,
            |id| cat.get(id),
            |_| None,
            &ch("a"),
            Service::Live,
            NOW,
        )
    }

    fn only_reason(e: &Explanation) -> &Reason {
        assert!(!e.allowed, "{e:?}");
        assert_eq!(e.reasons.len(), 1, "{e:?}");
        &e.reasons[0]
    }

    #[test]
    fn reason_codes_are_stable_snake_case() {
        let codes: Vec<&str> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            codes,
            [
                "no_license",
                "license_expired",
                "license_suspended",
                "suspended_by_admin",
                "waiting_for_drm",
                "drm_refused",
                "product_lacks_service",
                "not_started_yet"
            ]
        );
        assert_eq!(DrmJobState::Retrying.to_string(), "retrying");
        // The APIs serialize them by these names.
        for code in ReasonCode::ALL {
            let json = serde_json::to_string(&code).expect("serializes");
            assert_eq!(json, format!("\"{code}\""));
        }
        for state in [
            DrmJobState::Pending,
            DrmJobState::Retrying,
            DrmJobState::Failed,
        ] {
            let json = serde_json::to_string(&state).expect("serializes");
            assert_eq!(json, format!("\"{state}\""));
        }
    }

    #[test]
    fn an_effective_license_allows_until_its_stop() {
        let ls = [
            license("1", "sport", LicenseState::Active, 0, Some(2_000_000)),
            license("2", "sport", LicenseState::Active, 0, Some(1_500_000)),
            license("3", "sport", LicenseState::Suspended, 0, None),
        ];
        let e = live_a(&ls);
        assert!(e.allowed);
        assert_eq!(e.until, Some(Timestamp::from_unix(2_000_000)));
        assert_eq!(e.granted_by, [lid("1"), lid("2")]);
        assert!(e.reasons.is_empty());
        assert_eq!(e.deciding_licenses(), [&lid("1"), &lid("2")]);
        let open = [license("4", "sport", LicenseState::Active, 0, None)];
        assert_eq!(live_a(&open).until, None);
        assert!(live_a(&open).allowed);
    }

    #[test]
    fn no_license() {
        let r = only_reason(&live_a(&[])).clone();
        assert_eq!(r.code, ReasonCode::NoLicense);
        assert_eq!((r.license, r.product, r.at), (None, None, None));
    }

    #[test]
    fn license_expired_says_when() {
        // Expired wins over the stored status.
        let ls = [license(
            "1",
            "sport",
            LicenseState::Suspended,
            0,
            Some(NOW.unix()),
        )];
        let e = live_a(&ls);
        let r = only_reason(&e);
        assert_eq!(r.code, ReasonCode::LicenseExpired);
        assert_eq!(r.at, Some(NOW));
        assert_eq!(r.license, Some(lid("1")));
        assert_eq!(r.product.as_ref().map(ProductId::as_str), Some("sport"));
        assert_eq!(e.deciding_licenses(), [&lid("1")]);
    }

    #[test]
    fn license_suspended_and_suspended_by_admin() {
        let e = live_a(&[license("1", "sport", LicenseState::Suspended, 0, None)]);
        assert_eq!(only_reason(&e).code, ReasonCode::LicenseSuspended);
        let e = live_a(&[license("1", "sport", LicenseState::SuspendedAdmin, 0, None)]);
        assert_eq!(only_reason(&e).code, ReasonCode::SuspendedByAdmin);
    }

    #[test]
    fn waiting_for_drm_shows_the_job_when_known() {
        let processing = LicenseState::Processing {
            requested: Requested::Active,
        };
        let ls = [license("1", "sport", processing, 0, None)];
        let e = live_a(&ls);
        let r = only_reason(&e);
        assert_eq!(r.code, ReasonCode::WaitingForDrm);
        assert_eq!(r.drm, None);
        let cat = catalogue();
        let job = DrmJob {
            state: DrmJobState::Retrying,
            attempts: 3,
            last_error: Some("HTTP 503".into()),
        };
        let e = explain(
            &ls,
            |id| cat.get(id),
            |id| (id.as_str() == "1").then(|| job.clone()),
            &ch("a"),
            Service::Live,
            NOW,
        );
        let r = only_reason(&e);
        assert_eq!(r.drm.as_ref(), Some(&job));
        assert!(r.detail.contains("HTTP 503"), "{}", r.detail);
    }

    #[test]
    fn drm_refused_gives_the_refusal() {
        for state in [
            LicenseState::OrderError {
                reason: "unknown product IRD-9".into(),
            },
            LicenseState::CheckInvalid {
                reason: "unknown product IRD-9".into(),
            },
        ] {
            let e = live_a(&[license("1", "sport", state, 0, None)]);
            let r = only_reason(&e);
            assert_eq!(r.code, ReasonCode::DrmRefused);
            assert!(r.detail.contains("unknown product IRD-9"), "{}", r.detail);
        }
    }

    #[test]
    fn not_started_yet_says_when() {
        let start = NOW.unix() + 60;
        let e = live_a(&[license("1", "sport", LicenseState::Active, start, None)]);
        let r = only_reason(&e);
        assert_eq!(r.code, ReasonCode::NotStartedYet);
        assert_eq!(r.at, Some(Timestamp::from_unix(start)));
    }

    #[test]
    fn product_lacks_service_or_channel() {
        let cat = catalogue();
        let ls = [
            license("1", "sport", LicenseState::Active, 0, None),
            license("2", "news", LicenseState::Active, 0, None),
            license("3", "gone", LicenseState::Active, 0, None),
        ];
        // sport has `a` for live and npvr, not catchup; news lacks `a`; gone is unknown.
        let e = explain(
            &ls,
            |id| cat.get(id),
            |_| None,
            &ch("a"),
            Service::Catchup,
            NOW,
        );
        assert!(!e.allowed);
        assert!(
            e.reasons
                .iter()
                .all(|r| r.code == ReasonCode::ProductLacksService)
        );
        let details: Vec<&str> = e.reasons.iter().map(|r| r.detail.as_str()).collect();
        assert!(details[0].contains("live, npvr only"), "{details:?}");
        assert!(
            details[1].contains("does not include channel a"),
            "{details:?}"
        );
        assert!(details[2].contains("not in the catalogue"), "{details:?}");
        assert_eq!(e.deciding_licenses().len(), 3);
    }

    #[test]
    fn blocking_licenses_hide_the_ones_without_the_channel() {
        let ls = [
            license("1", "news", LicenseState::Active, 0, None),
            license("2", "sport", LicenseState::Suspended, 0, None),
        ];
        let e = live_a(&ls);
        assert_eq!(only_reason(&e).license, Some(lid("2")));
    }

    #[test]
    fn the_drm_job_is_asked_only_for_processing_licenses() {
        let cat = catalogue();
        let ls = [
            license("1", "sport", LicenseState::Suspended, 0, None),
            license("2", "sport", LicenseState::Active, 0, None),
        ];
        let e = explain(
            &ls,
            |id| cat.get(id),
            |id| panic!("asked about {id}"),
            &ch("a"),
            Service::Live,
            NOW,
        );
        assert!(e.allowed);
    }

    // Property tests: the explanation agrees with the resolution, for random catalogues,
    // licenses in every state, and times.

    #[derive(Debug, Clone)]
    struct Case {
        products: Vec<Product>,
        licenses: Vec<License>,
        channel: ChannelId,
        service: Service,
        at: Timestamp,
    }

    fn state(code: u8) -> LicenseState {
        match code {
            0 | 1 => LicenseState::Active,
            2 => LicenseState::Suspended,
            3 => LicenseState::SuspendedAdmin,
            4 => LicenseState::Processing {
                requested: Requested::Active,
            },
            5 => LicenseState::OrderError {
                reason: "no".into(),
            },
            6 => LicenseState::Processing {
                requested: Requested::Suspended,
            },
            _ => LicenseState::CheckInvalid {
                reason: "no".into(),
            },
        }
    }

    fn case() -> impl Strategy<Value = Case> {
        let lists = proptest::array::uniform4(proptest::sample::subsequence(
            vec!["c0", "c1", "c2", "c3"],
            0..=3,
        ));
        let products = proptest::collection::vec(lists, 1..5).prop_map(|all| {
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
                    // product index; one past the catalogue: an unknown product
                    0usize..6,
                    0i64..2_000,
                    proptest::option::of(1i64..2_000),
                    0u8..8,
                ),
                0..10,
            ),
            0usize..5,
            0usize..4,
            0i64..2_500,
        )
            .prop_map(|(products, specs, channel, service, at)| {
                let licenses = specs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (p, start, len, st))| {
                        let product = products
                            .get(p)
                            .map_or_else(|| "unknown".to_owned(), |p| p.id().to_string());
                        license(
                            &format!("l{i}"),
                            &product,
                            state(st),
                            start,
                            len.map(|l| start + l),
                        )
                    })
                    .collect();
                Case {
                    products,
                    licenses,
                    channel: ch(&format!("c{channel}")),
                    service: Service::ALL[service],
                    at: Timestamp::from_unix(at),
                }
            })
    }

    proptest! {
        #[test]
        fn the_explanation_agrees_with_the_resolution(c in case()) {
            let cat: HashMap<ProductId, Product> =
                c.products.iter().map(|p| (p.id().clone(), p.clone())).collect();
            let resolved = resolve(&c.licenses, |id| cat.get(id), c.at);
            let job = DrmJob { state: DrmJobState::Pending, attempts: 0, last_error: None };
            let e = explain(&c.licenses, |id| cat.get(id), |_| Some(job.clone()), &c.channel, c.service, c.at);
            prop_assert_eq!(e.allowed, resolved.allows(&c.channel, c.service));
            prop_assert_eq!(e.until, resolved.get(&c.channel, c.service).and_then(|g| g.until));
            let has_it: Vec<&License> = c.licenses.iter()
                .filter(|l| cat.get(l.product())
                    .is_some_and(|p| p.channels().channels(c.service).contains(&c.channel)))
                .collect();
            if e.allowed {
                prop_assert!(e.reasons.is_empty());
                prop_assert!(!e.granted_by.is_empty());
                for id in &e.granted_by {
                    let l = c.licenses.iter().find(|l| l.id() == id);
                    prop_assert!(l.is_some_and(|l| l.is_effective_at(c.at) && has_it.contains(&l)));
                }
            } else {
                prop_assert!(!e.reasons.is_empty());
                prop_assert!(e.granted_by.is_empty());
                prop_assert_eq!(e.until, None);
                // Every license with the channel for the service says why it does not grant.
                for l in &has_it {
                    let r = e.reasons.iter().find(|r| r.license.as_ref() == Some(l.id()));
                    prop_assert!(r.is_some(), "no reason for {}", l.id());
                    let r = r.expect("checked");
                    prop_assert_eq!(r.product.as_ref(), Some(l.product()));
                    prop_assert!(r.code != ReasonCode::ProductLacksService && r.code != ReasonCode::NoLicense);
                }
                // One reason per such license; without any, one per license, or no_license.
                let expected_count = match (has_it.len(), c.licenses.len()) {
                    (0, 0) => 1,
                    (0, all) => all,
                    (some, _) => some,
                };
                prop_assert_eq!(e.reasons.len(), expected_count);
                if has_it.is_empty() {
                    let codes: Vec<ReasonCode> = e.reasons.iter().map(|r| r.code).collect();
                    if c.licenses.is_empty() {
                        prop_assert_eq!(codes, vec![ReasonCode::NoLicense]);
                    } else {
                        prop_assert!(codes.iter().all(|c| *c == ReasonCode::ProductLacksService));
                    }
                }
                // A reason names a license only of the user, and each code its status.
                for r in &e.reasons {
                    let Some(id) = &r.license else { continue };
                    let l = c.licenses.iter().find(|l| l.id() == id).expect("the user's license");
                    let expected = match r.code {
                        ReasonCode::LicenseExpired => l.stop_date().is_some_and(|s| s <= c.at) && r.at == l.stop_date(),
                        ReasonCode::NotStartedYet => l.start_date() > c.at && r.at == Some(l.start_date()),
                        ReasonCode::WaitingForDrm => l.state() == &LicenseState::Processing { requested: Requested::Active } && r.drm.is_some(),
                        ReasonCode::DrmRefused => l.state().reason().is_some(),
                        ReasonCode::LicenseSuspended => l.state() == &LicenseState::Suspended
                            || (l.state() == &LicenseState::Processing { requested: Requested::Suspended } && r.drm.is_some()),
                        ReasonCode::SuspendedByAdmin => l.state() == &LicenseState::SuspendedAdmin,
                        ReasonCode::ProductLacksService => !has_it.contains(&l),
                        ReasonCode::NoLicense => false,
                    };
                    prop_assert!(expected, "{:?} for {:?}", r, l);
                }
            }
        }
    }
}
