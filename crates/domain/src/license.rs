//! Licenses: statuses (EXPIRED derived), states, drafts judged into licenses, and the
//! immutability rule, with the support staff's suspension and reinstatement. (Over 600 lines:
//! about 660 of rules, the rest their unit tests, kept beside the rules they pin.)

use std::fmt;
use std::str::FromStr;

use crate::ids::{LicenseId, OrderId, ProductId, UserId};
use crate::money::{Price, PriceDraft};
use crate::product::Product;
use crate::time::Timestamp;
use crate::violation::{Violation, Violations};

const PAYMENT_METHOD_MAX: usize = 64;

/// A license status as the API shows it (seed 002); EXPIRED is derived from `stop_date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LicenseStatus {
    Processing,
    CheckInvalid,
    OrderError,
    Active,
    Expired,
    Suspended,
    #[serde(rename = "SUSPENDEDADMIN")]
    SuspendedAdmin,
}

impl LicenseStatus {
    pub const ALL: [LicenseStatus; 7] = [
        Self::Processing,
        Self::CheckInvalid,
        Self::OrderError,
        Self::Active,
        Self::Expired,
        Self::Suspended,
        Self::SuspendedAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "PROCESSING",
            Self::CheckInvalid => "CHECK_INVALID",
            Self::OrderError => "ORDER_ERROR",
            Self::Active => "ACTIVE",
            Self::Expired => "EXPIRED",
            Self::Suspended => "SUSPENDED",
            Self::SuspendedAdmin => "SUSPENDEDADMIN",
        }
    }
}

impl FromStr for LicenseStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl fmt::Display for LicenseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status code that is not one of ours (e.g. read from a tampered row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown license status {0:?}")]
pub struct UnknownStatus(pub String);

/// The statuses a client may create a license with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Requested {
    Active,
    Suspended,
}

impl Requested {
    pub fn status(self) -> LicenseStatus {
        match self {
            Self::Active => LicenseStatus::Active,
            Self::Suspended => LicenseStatus::Suspended,
        }
    }
}

/// The stored state of a license. EXPIRED is not a state: it is derived from `stop_date`
/// at the time of reading ([`License::status_at`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LicenseState {
    /// Waiting for the DRM entitlement; becomes `requested` once it is confirmed.
    Processing {
        requested: Requested,
    },
    Active,
    Suspended,
    SuspendedAdmin,
    /// The order was refused for good by an external system.
    OrderError {
        reason: String,
    },
    /// The order failed a check by an external system.
    CheckInvalid {
        reason: String,
    },
}

impl LicenseState {
    /// The stored status code (never EXPIRED).
    pub fn status(&self) -> LicenseStatus {
        match self {
            Self::Processing { .. } => LicenseStatus::Processing,
            Self::Active => LicenseStatus::Active,
            Self::Suspended => LicenseStatus::Suspended,
            Self::SuspendedAdmin => LicenseStatus::SuspendedAdmin,
            Self::OrderError { .. } => LicenseStatus::OrderError,
            Self::CheckInvalid { .. } => LicenseStatus::CheckInvalid,
        }
    }

    /// What a PROCESSING license becomes once confirmed.
    pub fn requested(&self) -> Option<Requested> {
        match self {
            Self::Processing { requested } => Some(*requested),
            _ => None,
        }
    }

    /// Why an order failed, for ORDER_ERROR and CHECK_INVALID.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::OrderError { reason } | Self::CheckInvalid { reason } => Some(reason),
            _ => None,
        }
    }

    /// Rebuilds a state from its stored parts, refusing codes it does not know, EXPIRED (which
    /// is never stored) and a PROCESSING row without its requested status.
    pub fn from_parts(
        status: &str,
        requested: Option<&str>,
        reason: Option<String>,
    ) -> Result<Self, UnknownStatus> {
        let unknown = || UnknownStatus(format!("{status}/{}", requested.unwrap_or("-")));
        Ok(match status.parse::<LicenseStatus>()? {
            LicenseStatus::Processing => Self::Processing {
                requested: match requested {
                    Some("ACTIVE") => Requested::Active,
                    Some("SUSPENDED") => Requested::Suspended,
                    _ => return Err(unknown()),
                },
            },
            LicenseStatus::Active => Self::Active,
            LicenseStatus::Suspended => Self::Suspended,
            LicenseStatus::SuspendedAdmin => Self::SuspendedAdmin,
            LicenseStatus::OrderError => Self::OrderError {
                reason: reason.unwrap_or_default(),
            },
            LicenseStatus::CheckInvalid => Self::CheckInvalid {
                reason: reason.unwrap_or_default(),
            },
            LicenseStatus::Expired => return Err(unknown()),
        })
    }
}

/// How a new license starts: at once, or PROCESSING until its DRM entitlement is confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Immediate,
    AwaitEntitlement,
}

/// What was paid, when and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRecord {
    price: Option<Price>,
    purchase_timestamp: Timestamp,
    payment_method: Option<String>,
}

impl PurchaseRecord {
    pub fn price(&self) -> Option<Price> {
        self.price
    }
    pub fn purchase_timestamp(&self) -> Timestamp {
        self.purchase_timestamp
    }
    pub fn payment_method(&self) -> Option<&str> {
        self.payment_method.as_deref()
    }
}

/// Whether and until when the license renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    recurring: bool,
    expiry_date: Option<Timestamp>,
}

impl Renewal {
    pub fn recurring(&self) -> bool {
        self.recurring
    }
    pub fn expiry_date(&self) -> Option<Timestamp> {
        self.expiry_date
    }
}

/// A purchase record as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PurchaseDraft {
    pub price_currency_amount: Option<i64>,
    pub price_currency_iso4217: Option<String>,
    pub purchase_timestamp: Option<i64>,
    pub payment_method: Option<String>,
}

/// A renew record as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenewDraft {
    pub recurring: Option<bool>,
    pub expiry_date: Option<i64>,
}

/// A license as a client asks for it, before validation; every member is optional except the
/// user and the product.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LicenseDraft {
    pub user: Option<String>,
    pub product: Option<String>,
    pub status: Option<String>,
    pub start_date: Option<i64>,
    pub stop_date: Option<i64>,
    pub order_id: Option<String>,
    pub purchase_record: Option<PurchaseDraft>,
    pub renew_record: Option<RenewDraft>,
}

impl LicenseDraft {
    /// The product the draft names, if it names a well-formed one (to look it up before
    /// [`License::grant`], which reports what is wrong with it).
    pub fn product_id(&self) -> Option<ProductId> {
        self.product
            .as_deref()
            .and_then(|p| ProductId::parse(p).ok())
    }
}

/// A user's license to a product. Immutable: no setter, no `&mut` method. A status change
/// consumes the license and returns the new one; a change the rules forbid is refused with
/// the license handed back in the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    id: LicenseId,
    user: UserId,
    product: ProductId,
    state: LicenseState,
    start_date: Timestamp,
    stop_date: Option<Timestamp>,
    order_id: Option<OrderId>,
    purchase_record: PurchaseRecord,
    renew_record: Renewal,
}

/// A status change the rules forbid. The license is handed back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} license cannot become {to}")]
pub struct IllegalTransition {
    pub license: Box<License>,
    /// The status the license has for the rule that refused it: its stored status, or
    /// EXPIRED when that is what refused the change.
    pub from: LicenseStatus,
    pub to: LicenseStatus,
}

/// The parts of a stored license, to rebuild it with [`License::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredParts {
    pub id: LicenseId,
    pub user: UserId,
    pub product: ProductId,
    pub state: LicenseState,
    pub start_date: Timestamp,
    pub stop_date: Option<Timestamp>,
    pub order_id: Option<OrderId>,
    pub price: Option<Price>,
    pub purchase_timestamp: Timestamp,
    pub payment_method: Option<String>,
    pub recurring: bool,
    pub expiry_date: Option<Timestamp>,
}

impl License {
    /// Grants a license to `product` as `draft` asks, filling what it leaves open:
    /// `start_date` now; `stop_date` from the product's `license_defaults.duration` (none: no
    /// end); price and `recurring` from the product; `purchase_timestamp` now; the renew
    /// `expiry_date` from `stop_date`. `product` is `None` when the named product does not
    /// exist. Clients may only create ACTIVE (default) or SUSPENDED licenses; with
    /// [`Activation::AwaitEntitlement`] the license is PROCESSING until confirmed.
    pub fn grant(
        id: LicenseId,
        draft: LicenseDraft,
        product: Option<&Product>,
        now: Timestamp,
        activation: Activation,
    ) -> Result<Self, Violations> {
        let mut errors = Violations::new();

        let user = errors.check(required_id(
            draft.user,
            "/relationships/user",
            "user",
            UserId::parse,
        ));
        let product_id = errors.check(required_id(
            draft.product,
            "/relationships/product",
            "product",
            ProductId::parse,
        ));
        if product_id.is_some() && product.is_none() {
            errors.add(
                "/relationships/product",
                "product_not_found",
                "no product has this id",
            );
        }

        let requested = match draft.status.as_deref() {
            None | Some("ACTIVE") => Some(Requested::Active),
            Some("SUSPENDED") => Some(Requested::Suspended),
            Some(_) => {
                errors.add(
                    "/attributes/status",
                    "invalid_status",
                    "a license is created ACTIVE (the default) or SUSPENDED",
                );
                None
            }
        };

        let start_date = match draft.start_date {
            None => Some(now),
            Some(s) => errors.check(timestamp(s, "/attributes/start_date")),
        };
        let explicit_stop = draft
            .stop_date
            .and_then(|s| errors.check(timestamp(s, "/attributes/stop_date")));
        let duration = product.and_then(|p| p.license_defaults().duration());
        let stop_date = explicit_stop.or_else(|| Some(start_date?.plus_seconds(duration?)));
        if let (Some(start), Some(stop)) = (start_date, stop_date)
            && stop <= start
        {
            errors.add(
                "/attributes/stop_date",
                "stop_before_start",
                "stop_date must be after start_date",
            );
        }

        let order_id = draft.order_id.and_then(|o| {
            errors.check(OrderId::parse(o).map_err(|e| {
                Violation::new(
                    "/attributes/order_id",
                    "invalid_order_id",
                    format!("order_id {e}"),
                )
            }))
        });

        let purchase = draft.purchase_record.unwrap_or_default();
        let price = match (
            purchase.price_currency_amount,
            purchase.price_currency_iso4217,
        ) {
            (None, None) => product.and_then(Product::price_record),
            (amount, currency) => Price::from_draft(
                &PriceDraft { amount, currency },
                "/attributes/purchase_record/price_currency_amount",
                "/attributes/purchase_record/price_currency_iso4217",
                &mut errors,
            ),
        };
        let purchase_timestamp = match purchase.purchase_timestamp {
            None => Some(now),
            Some(t) => errors.check(timestamp(
                t,
                "/attributes/purchase_record/purchase_timestamp",
            )),
        };
        let payment_method = purchase.payment_method.filter(|m| {
            let ok = !m.trim().is_empty() && m.chars().count() <= PAYMENT_METHOD_MAX;
            if !ok {
                errors.add(
                    "/attributes/purchase_record/payment_method",
                    "invalid_payment_method",
                    format!("a non-blank name of at most {PAYMENT_METHOD_MAX} characters"),
                );
            }
            ok
        });

        let renew = draft.renew_record.unwrap_or_default();
        let recurring = renew
            .recurring
            .unwrap_or_else(|| product.is_some_and(|p| p.license_defaults().auto_renew()));
        let expiry_date = match renew.expiry_date {
            None => stop_date,
            Some(t) => errors.check(timestamp(t, "/attributes/renew_record/expiry_date")),
        };

        let (
            Some(user),
            Some(product_id),
            Some(requested),
            Some(start_date),
            Some(purchase_timestamp),
        ) = (user, product_id, requested, start_date, purchase_timestamp)
        else {
            return Err(errors);
        };
        let state = match activation {
            Activation::Immediate => settled(requested),
            Activation::AwaitEntitlement => LicenseState::Processing { requested },
        };
        errors.into_result(|| Self {
            id,
            user,
            product: product_id,
            state,
            start_date,
            stop_date,
            order_id,
            purchase_record: PurchaseRecord {
                price,
                purchase_timestamp,
                payment_method,
            },
            renew_record: Renewal {
                recurring,
                expiry_date,
            },
        })
    }

    /// Rebuilds a stored license. Storage is trusted for the rules that held when the license
    /// was granted, but a row whose dates contradict each other is still refused.
    pub fn restore(parts: StoredParts) -> Result<Self, Violations> {
        if let Some(stop) = parts.stop_date
            && stop <= parts.start_date
        {
            return Err(Violation::new(
                "/attributes/stop_date",
                "stop_before_start",
                "stored dates are inconsistent",
            )
            .into());
        }
        Ok(Self {
            id: parts.id,
            user: parts.user,
            product: parts.product,
            state: parts.state,
            start_date: parts.start_date,
            stop_date: parts.stop_date,
            order_id: parts.order_id,
            purchase_record: PurchaseRecord {
                price: parts.price,
                purchase_timestamp: parts.purchase_timestamp,
                payment_method: parts.payment_method,
            },
            renew_record: Renewal {
                recurring: parts.recurring,
                expiry_date: parts.expiry_date,
            },
        })
    }

    /// PROCESSING → the ACTIVE or SUSPENDED it was requested as: the entitlement is confirmed.
    pub fn confirm(self) -> Result<Self, IllegalTransition> {
        match self.state {
            LicenseState::Processing { requested } => Ok(Self {
                state: settled(requested),
                ..self
            }),
            _ => Err(self.refused(LicenseStatus::Active)),
        }
    }

    /// PROCESSING → ORDER_ERROR: the order was refused for good.
    pub fn fail_order(self, reason: impl Into<String>) -> Result<Self, IllegalTransition> {
        match self.state {
            LicenseState::Processing { .. } => Ok(Self {
                state: LicenseState::OrderError {
                    reason: reason.into(),
                },
                ..self
            }),
            _ => Err(self.refused(LicenseStatus::OrderError)),
        }
    }

    /// PROCESSING → CHECK_INVALID: the order failed a check.
    pub fn fail_check(self, reason: impl Into<String>) -> Result<Self, IllegalTransition> {
        match self.state {
            LicenseState::Processing { .. } => Ok(Self {
                state: LicenseState::CheckInvalid {
                    reason: reason.into(),
                },
                ..self
            }),
            _ => Err(self.refused(LicenseStatus::CheckInvalid)),
        }
    }

    /// ACTIVE → SUSPENDEDADMIN, under `new_id`: the operator's support staff suspend the
    /// license. Licenses are immutable, so the suspension is a copy (same user, product, dates,
    /// order id, purchase and renew records) that replaces this one. Refused: a license
    /// already SUSPENDEDADMIN; a SUSPENDED one (the BSS suspended it: it plays nothing, and
    /// reinstating the copy would make it ACTIVE behind the BSS's back); a PROCESSING one (its
    /// entitlement is still on its way: suspend it once settled); an ORDER_ERROR or
    /// CHECK_INVALID one (it never granted anything: delete it instead); and an expired one at
    /// `now` (it grants nothing any more).
    pub fn suspend_by_admin(
        self,
        new_id: LicenseId,
        now: Timestamp,
    ) -> Result<Self, IllegalTransition> {
        let to = LicenseStatus::SuspendedAdmin;
        if self.status_at(now) == LicenseStatus::Expired {
            return Err(self.refused_at(now, to));
        }
        match self.state {
            LicenseState::Active => Ok(Self {
                id: new_id,
                state: LicenseState::SuspendedAdmin,
                ..self
            }),
            _ => Err(self.refused(to)),
        }
    }

    /// SUSPENDEDADMIN → ACTIVE, under `new_id`: the support staff lift their suspension. A copy
    /// that replaces this one, ACTIVE at once with [`Activation::Immediate`], or PROCESSING
    /// (requested ACTIVE) until its entitlement is delivered with
    /// [`Activation::AwaitEntitlement`]. Only a SUSPENDEDADMIN license that has not expired at
    /// `now` can be reinstated (an expired one would come back expired, granting nothing).
    pub fn reinstate(
        self,
        new_id: LicenseId,
        activation: Activation,
        now: Timestamp,
    ) -> Result<Self, IllegalTransition> {
        let to = match activation {
            Activation::Immediate => LicenseStatus::Active,
            Activation::AwaitEntitlement => LicenseStatus::Processing,
        };
        if self.status_at(now) == LicenseStatus::Expired {
            return Err(self.refused_at(now, to));
        }
        match self.state {
            LicenseState::SuspendedAdmin => Ok(Self {
                id: new_id,
                state: match activation {
                    Activation::Immediate => LicenseState::Active,
                    Activation::AwaitEntitlement => LicenseState::Processing {
                        requested: Requested::Active,
                    },
                },
                ..self
            }),
            _ => Err(self.refused(to)),
        }
    }

    fn refused(self, to: LicenseStatus) -> IllegalTransition {
        IllegalTransition {
            from: self.state.status(),
            license: Box::new(self),
            to,
        }
    }

    /// Refused for the status read at `now` (EXPIRED), not the stored one.
    fn refused_at(self, now: Timestamp, to: LicenseStatus) -> IllegalTransition {
        IllegalTransition {
            from: self.status_at(now),
            license: Box::new(self),
            to,
        }
    }

    /// The status as read at `now`: EXPIRED once `stop_date` has passed, whatever is stored.
    pub fn status_at(&self, now: Timestamp) -> LicenseStatus {
        match self.stop_date {
            Some(stop) if stop <= now => LicenseStatus::Expired,
            _ => self.state.status(),
        }
    }

    /// Whether the license lets its user watch at `at`: ACTIVE, started and not expired.
    pub fn is_effective_at(&self, at: Timestamp) -> bool {
        self.state == LicenseState::Active
            && self.start_date <= at
            && self.stop_date.is_none_or(|stop| at < stop)
    }

    pub fn id(&self) -> &LicenseId {
        &self.id
    }
    pub fn user(&self) -> &UserId {
        &self.user
    }
    pub fn product(&self) -> &ProductId {
        &self.product
    }
    pub fn state(&self) -> &LicenseState {
        &self.state
    }
    pub fn start_date(&self) -> Timestamp {
        self.start_date
    }
    pub fn stop_date(&self) -> Option<Timestamp> {
        self.stop_date
    }
    pub fn order_id(&self) -> Option<&OrderId> {
        self.order_id.as_ref()
    }
    pub fn purchase_record(&self) -> &PurchaseRecord {
        &self.purchase_record
    }
    pub fn renew_record(&self) -> Renewal {
        self.renew_record
    }
}

fn settled(requested: Requested) -> LicenseState {
    match requested {
        Requested::Active => LicenseState::Active,
        Requested::Suspended => LicenseState::Suspended,
    }
}

fn timestamp(seconds: i64, at: &str) -> Result<Timestamp, Violation> {
    Timestamp::parse_input(seconds).map_err(|why| Violation::new(at, "invalid_timestamp", why))
}

/// The id of the relationship at `at`: missing, the relationship is at fault; not an id, its
/// `data/id` is.
fn required_id<T, E: fmt::Display>(
    raw: Option<String>,
    at: &str,
    what: &str,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Result<T, Violation> {
    let raw =
        raw.ok_or_else(|| Violation::new(at, "required", format!("the {what} is required")))?;
    parse(raw).map_err(|e| {
        Violation::new(
            format!("{at}/data/id"),
            "invalid_id",
            format!("{what} id {e}"),
        )
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::product::tests::{channel_draft, group_draft};

    pub(crate) const NOW: Timestamp = Timestamp::from_unix(1_700_000_000);

    pub(crate) fn product() -> Product {
        Product::new(ProductId::parse("41").expect("id"), group_draft()).expect("valid")
    }

    pub(crate) fn draft(user: &str) -> LicenseDraft {
        LicenseDraft {
            user: Some(user.into()),
            product: Some("41".into()),
            ..Default::default()
        }
    }

    fn lid(s: &str) -> LicenseId {
        LicenseId::parse(s).expect("id")
    }

    fn grant(d: LicenseDraft) -> Result<License, Violations> {
        License::grant(lid("1"), d, Some(&product()), NOW, Activation::Immediate)
    }

    fn codes(v: &Violations) -> Vec<(&str, &'static str)> {
        v.iter().map(|v| (v.pointer.as_str(), v.code)).collect()
    }

    #[test]
    fn a_grant_fills_its_defaults_from_the_product_and_now() {
        let l = grant(draft("u1")).expect("valid");
        assert_eq!(l.state(), &LicenseState::Active);
        assert_eq!(l.start_date(), NOW);
        assert_eq!(l.stop_date(), Some(NOW.plus_seconds(30 * 86_400)));
        let price = l.purchase_record().price().expect("price from product");
        assert_eq!((price.amount(), price.currency().code()), (999, "EUR"));
        assert_eq!(l.purchase_record().purchase_timestamp(), NOW);
        assert!(l.renew_record().recurring());
        assert_eq!(l.renew_record().expiry_date(), l.stop_date());
    }

    #[test]
    fn a_product_without_duration_grants_without_end() {
        let p =
            Product::new(ProductId::parse("41").expect("id"), channel_draft("c", "1")).expect("p");
        let l =
            License::grant(lid("1"), draft("u"), Some(&p), NOW, Activation::Immediate).expect("ok");
        assert_eq!(l.stop_date(), None);
        assert_eq!(l.status_at(Timestamp::MAX), LicenseStatus::Active);
        assert!(!l.renew_record().recurring());
        assert_eq!(l.purchase_record().price(), None);
    }

    #[test]
    fn explicit_values_win_over_defaults() {
        let mut d = draft("u1");
        d.start_date = Some(100);
        d.stop_date = Some(200);
        d.order_id = Some("order-1".into());
        d.purchase_record = Some(PurchaseDraft {
            price_currency_amount: Some(5),
            price_currency_iso4217: Some("USD".into()),
            purchase_timestamp: Some(90),
            payment_method: Some("billing".into()),
        });
        d.renew_record = Some(RenewDraft {
            recurring: Some(false),
            expiry_date: Some(300),
        });
        let l = grant(d).expect("valid");
        assert_eq!(
            (l.start_date().unix(), l.stop_date().map(Timestamp::unix)),
            (100, Some(200))
        );
        assert_eq!(l.order_id().map(OrderId::as_str), Some("order-1"));
        assert_eq!(
            l.purchase_record().price().map(|p| p.currency().code()),
            Some("USD")
        );
        assert_eq!(l.purchase_record().payment_method(), Some("billing"));
        assert_eq!(
            l.renew_record().expiry_date(),
            Some(Timestamp::from_unix(300))
        );
        assert!(!l.renew_record().recurring());
    }

    #[test]
    fn stop_must_follow_start() {
        let mut d = draft("u1");
        d.start_date = Some(200);
        d.stop_date = Some(200);
        assert_eq!(
            codes(&grant(d).expect_err("bad")),
            [("/attributes/stop_date", "stop_before_start")]
        );
    }

    #[test]
    fn only_active_or_suspended_may_be_requested() {
        let mut d = draft("u1");
        d.status = Some("SUSPENDED".into());
        assert_eq!(
            grant(d.clone()).expect("ok").state(),
            &LicenseState::Suspended
        );
        for bad in [
            "PROCESSING",
            "EXPIRED",
            "ORDER_ERROR",
            "SUSPENDEDADMIN",
            "active",
        ] {
            d.status = Some(bad.into());
            assert_eq!(
                codes(&grant(d.clone()).expect_err(bad)),
                [("/attributes/status", "invalid_status")]
            );
        }
    }

    #[test]
    fn a_missing_product_user_or_half_a_price_is_reported_with_pointers() {
        let d = LicenseDraft {
            product: Some("nope".into()),
            purchase_record: Some(PurchaseDraft {
                price_currency_amount: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = License::grant(lid("1"), d, None, NOW, Activation::Immediate).expect_err("bad");
        assert_eq!(
            codes(&err),
            [
                ("/relationships/user", "required"),
                ("/relationships/product", "product_not_found"),
                (
                    "/attributes/purchase_record/price_currency_iso4217",
                    "required"
                ),
            ]
        );
    }

    #[test]
    fn an_id_that_is_not_one_is_reported_at_the_id() {
        let d = LicenseDraft {
            user: Some("a b".into()),
            product: Some("p\u{7}".into()),
            ..Default::default()
        };
        let err = License::grant(lid("1"), d, None, NOW, Activation::Immediate).expect_err("bad");
        assert_eq!(
            codes(&err),
            [
                ("/relationships/user/data/id", "invalid_id"),
                ("/relationships/product/data/id", "invalid_id"),
            ]
        );
    }

    #[test]
    fn awaiting_the_entitlement_starts_processing_and_confirms_to_what_was_requested() {
        for (asked, settled) in [
            (None, LicenseState::Active),
            (Some("SUSPENDED"), LicenseState::Suspended),
        ] {
            let mut d = draft("u1");
            d.status = asked.map(Into::into);
            let l = License::grant(
                lid("1"),
                d,
                Some(&product()),
                NOW,
                Activation::AwaitEntitlement,
            )
            .expect("valid");
            assert_eq!(l.status_at(NOW), LicenseStatus::Processing);
            assert!(
                !l.is_effective_at(NOW),
                "a PROCESSING license grants nothing"
            );
            let confirmed = l.confirm().expect("allowed");
            assert_eq!(confirmed.state(), &settled);
        }
    }

    #[test]
    fn processing_can_fail_and_nothing_else_changes() {
        let processing = || {
            License::grant(
                lid("1"),
                draft("u"),
                Some(&product()),
                NOW,
                Activation::AwaitEntitlement,
            )
            .expect("valid")
        };
        let failed = processing()
            .fail_order("unknown Irdeto product")
            .expect("allowed");
        assert_eq!(failed.state().reason(), Some("unknown Irdeto product"));
        assert_eq!(failed.status_at(NOW), LicenseStatus::OrderError);
        assert_eq!(
            processing().fail_check("x").expect("ok").status_at(NOW),
            LicenseStatus::CheckInvalid
        );

        // Settled licenses cannot move: the license comes back unchanged in the error.
        let active = grant(draft("u")).expect("valid");
        let err = active.clone().confirm().expect_err("refused");
        assert_eq!(*err.license, active);
        assert_eq!(err.to_string(), "a ACTIVE license cannot become ACTIVE");
        assert!(failed.clone().confirm().is_err());
        assert!(failed.fail_check("again").is_err());
        assert!(active.fail_order("x").is_err());
    }

    fn in_state(state: LicenseState) -> License {
        let mut d = draft("u1");
        d.order_id = Some("order-7".into());
        let l = grant(d).expect("valid");
        License { state, ..l }
    }

    #[test]
    fn a_suspension_by_admin_is_a_copy_under_a_new_id() {
        {
            let l = in_state(LicenseState::Active);
            let s = l.clone().suspend_by_admin(lid("2"), NOW).expect("allowed");
            assert_eq!(s.id(), &lid("2"));
            assert_eq!(s.state(), &LicenseState::SuspendedAdmin);
            assert_eq!(s.status_at(NOW), LicenseStatus::SuspendedAdmin);
            assert!(
                !s.is_effective_at(NOW),
                "a suspended license grants nothing"
            );
            // Everything but the id and the state is the original's.
            assert_eq!(
                License {
                    id: lid("1"),
                    state: l.state.clone(),
                    ..s
                },
                l
            );
        }
    }

    #[test]
    fn only_settled_running_licenses_can_be_suspended_by_admin() {
        for from in [
            LicenseState::SuspendedAdmin,
            // The BSS's own suspension: reinstating a copy would make it ACTIVE.
            LicenseState::Suspended,
            LicenseState::Processing {
                requested: Requested::Active,
            },
            LicenseState::OrderError { reason: "r".into() },
            LicenseState::CheckInvalid { reason: "c".into() },
        ] {
            let l = in_state(from.clone());
            let err = l
                .clone()
                .suspend_by_admin(lid("2"), NOW)
                .expect_err("refused");
            assert_eq!(*err.license, l, "handed back unchanged");
            assert_eq!(
                (err.from, err.to),
                (from.status(), LicenseStatus::SuspendedAdmin)
            );
        }
        let active = in_state(LicenseState::Active);
        let stop = active.stop_date().expect("stop");
        let err = active
            .suspend_by_admin(lid("2"), stop)
            .expect_err("expired");
        assert_eq!(err.from, LicenseStatus::Expired);
        assert_eq!(
            err.to_string(),
            "a EXPIRED license cannot become SUSPENDEDADMIN"
        );
    }

    #[test]
    fn a_reinstatement_is_active_or_awaits_its_entitlement() {
        let suspended = in_state(LicenseState::SuspendedAdmin);
        let now = suspended
            .clone()
            .reinstate(lid("3"), Activation::Immediate, NOW)
            .expect("allowed");
        assert_eq!((now.id(), now.state()), (&lid("3"), &LicenseState::Active));
        assert!(now.is_effective_at(NOW));
        assert_eq!(now.order_id(), suspended.order_id());
        assert_eq!(now.purchase_record(), suspended.purchase_record());
        assert_eq!(now.renew_record(), suspended.renew_record());
        assert_eq!(
            (now.start_date(), now.stop_date()),
            (suspended.start_date(), suspended.stop_date())
        );

        let waiting = suspended
            .reinstate(lid("3"), Activation::AwaitEntitlement, NOW)
            .expect("allowed");
        assert_eq!(waiting.status_at(NOW), LicenseStatus::Processing);
        assert_eq!(
            waiting.confirm().expect("confirmed").state(),
            &LicenseState::Active
        );
    }

    #[test]
    fn only_a_running_license_suspended_by_admin_can_be_reinstated() {
        for from in [
            LicenseState::Active,
            LicenseState::Suspended,
            LicenseState::Processing {
                requested: Requested::Active,
            },
            LicenseState::OrderError { reason: "r".into() },
        ] {
            let l = in_state(from.clone());
            let err = l
                .clone()
                .reinstate(lid("3"), Activation::Immediate, NOW)
                .expect_err("refused");
            assert_eq!(*err.license, l);
            assert_eq!((err.from, err.to), (from.status(), LicenseStatus::Active));
        }
        let suspended = in_state(LicenseState::SuspendedAdmin);
        let stop = suspended.stop_date().expect("stop");
        let err = suspended
            .reinstate(lid("3"), Activation::AwaitEntitlement, stop)
            .expect_err("expired");
        assert_eq!(
            (err.from, err.to),
            (LicenseStatus::Expired, LicenseStatus::Processing)
        );
    }

    #[test]
    fn expired_is_derived_from_stop_date() {
        let l = grant(draft("u1")).expect("valid");
        let stop = l.stop_date().expect("stop");
        assert_eq!(
            l.status_at(Timestamp::from_unix(stop.unix() - 1)),
            LicenseStatus::Active
        );
        assert_eq!(l.status_at(stop), LicenseStatus::Expired);
        assert!(l.is_effective_at(NOW));
        assert!(!l.is_effective_at(stop));
        assert!(
            !l.is_effective_at(Timestamp::from_unix(NOW.unix() - 1)),
            "not yet started"
        );
    }

    #[test]
    fn stored_states_round_trip_and_unknown_codes_are_refused() {
        for s in [
            LicenseState::Processing {
                requested: Requested::Suspended,
            },
            LicenseState::Active,
            LicenseState::Suspended,
            LicenseState::SuspendedAdmin,
            LicenseState::OrderError { reason: "r".into() },
            LicenseState::CheckInvalid { reason: "c".into() },
        ] {
            let requested = s.requested().map(|r| r.status().as_str());
            let back = LicenseState::from_parts(
                s.status().as_str(),
                requested,
                s.reason().map(Into::into),
            );
            assert_eq!(back, Ok(s));
        }
        assert!(LicenseState::from_parts("EXPIRED", None, None).is_err());
        assert!(LicenseState::from_parts("PROCESSING", None, None).is_err());
        assert!(LicenseState::from_parts("GONE", None, None).is_err());
    }
}

#[cfg(test)]
mod serde_names {
    use super::LicenseStatus;

    #[test]
    fn each_status_serializes_as_its_api_name() {
        for s in LicenseStatus::ALL {
            let json = serde_json::to_string(&s).expect("a status serializes");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
    }
}
