//! The support staff's actions on one license (issue 21): suspend it, lift the suspension,
//! and read its audit trail.
//!
//! Licenses are immutable: a suspension replaces the license by a SUSPENDEDADMIN copy under
//! a new id, a reinstatement replaces that by an ACTIVE copy under another new id (PROCESSING
//! until its entitlement is delivered, when the Irdeto integration is on and the product maps
//! to an Irdeto product), each in one transaction ([`LicenseStore::replace`]) with its jobs:
//! a suspension REVOKEs the old license's entitlement (the suspended copy gets none: it must
//! not play); a reinstatement GRANTs the new license's.
//!
//! [`LicenseStore::replace`]: crate::ports::LicenseStore::replace

use licenses_domain::{Activation, IllegalTransition, License, LicenseId};

use crate::App;
use crate::error::{AppError, Problem};
use crate::ports::{Actor, AuditEntry, Change, StoreError};

/// The code of a suspension or reinstatement the license's status forbids (409).
pub const ILLEGAL_TRANSITION: &str = "illegal_transition";

/// The code of a license that does not exist (404).
const LICENSE_NOT_FOUND: &str = "license_not_found";

fn license_not_found() -> AppError {
    AppError::NotFound(Problem::new(
        None,
        LICENSE_NOT_FOUND,
        "no license has this id",
    ))
}

fn transition_refused(e: IllegalTransition) -> AppError {
    AppError::Conflict(vec![Problem::new(None, ILLEGAL_TRANSITION, e.to_string())])
}

fn replacement_refused(e: StoreError) -> AppError {
    match e {
        // Revoked, suspended or reinstated meanwhile.
        StoreError::NotFound => license_not_found(),
        e => e.into(),
    }
}

impl App {
    /// Suspends a license for the support staff: it is replaced by a SUSPENDEDADMIN copy under
    /// a new id, which is returned. With the Irdeto integration on, the old license's
    /// entitlement is revoked (a REVOKE job in the same transaction). Not found
    /// (`license_not_found`) if there is no such license, also when it is revoked meanwhile;
    /// a conflict (`illegal_transition`) unless it is ACTIVE and not expired.
    pub async fn suspend_license(&self, actor: Actor, id: &LicenseId) -> Result<License, AppError> {
        let old = self.license(id).await?;
        let now = self.ports.clock.now();
        let new = old
            .clone()
            .suspend_by_admin(self.ports.ids.license_id(), now)
            .map_err(transition_refused)?;
        let jobs = self.revoke_jobs(std::slice::from_ref(&old)).await?;
        self.replace(&old, new, jobs, actor, now).await
    }

    /// Lifts the support staff's suspension of a license: the SUSPENDEDADMIN license is
    /// replaced by a copy under a new id, which is returned: ACTIVE, or, with the Irdeto
    /// integration on and a product that maps to an Irdeto product, PROCESSING with a GRANT
    /// job queued in the same transaction. Not found (`license_not_found`) as for
    /// [`Self::suspend_license`]; a conflict (`illegal_transition`) unless the license is
    /// SUSPENDEDADMIN and not expired.
    pub async fn reinstate_license(
        &self,
        actor: Actor,
        id: &LicenseId,
    ) -> Result<License, AppError> {
        let old = self.license(id).await?;
        let now = self.ports.clock.now();
        let product = if self.entitlements_enabled() {
            self.ports.products.get(old.product()).await?
        } else {
            None
        };
        let activation = if self.needs_entitlement(product.as_ref()) {
            Activation::AwaitEntitlement
        } else {
            Activation::Immediate
        };
        let new = old
            .clone()
            .reinstate(self.ports.ids.license_id(), activation, now)
            .map_err(transition_refused)?;
        let jobs = self.grant_jobs(std::slice::from_ref(&new)).await?;
        self.replace(&old, new, jobs, actor, now).await
    }

    /// The audit trail of a license, oldest first: who created, suspended, reinstated,
    /// retried or deleted it, and when. Readable after the license is deleted or replaced.
    /// Not found (`license_not_found`) only when no such license exists and none was ever
    /// audited.
    pub async fn audit_trail(&self, license: &LicenseId) -> Result<Vec<AuditEntry>, AppError> {
        let trail = self.ports.licenses.audit_trail(license).await?;
        if trail.is_empty() && self.ports.licenses.get(license).await?.is_none() {
            return Err(license_not_found());
        }
        Ok(trail)
    }

    async fn license(&self, id: &LicenseId) -> Result<License, AppError> {
        self.ports
            .licenses
            .get(id)
            .await?
            .ok_or_else(license_not_found)
    }

    async fn replace(
        &self,
        old: &License,
        new: License,
        jobs: Vec<crate::ports::NewEntitlementJob>,
        actor: Actor,
        at: licenses_domain::Timestamp,
    ) -> Result<License, AppError> {
        let change = Change {
            actor,
            at,
            idempotency: None,
        };
        self.ports
            .licenses
            .replace(old.id(), &new, &jobs, &change)
            .await
            .map_err(replacement_refused)?;
        self.jobs_written(jobs.len());
        self.events_written();
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use licenses_domain::{
        LicenseState, LicenseStatus, Product, ProductId, Requested, StoredParts, Timestamp, UserId,
    };

    use super::*;
    use crate::Entitlements;
    use crate::ports::{AuditAction, JobKind, MockEntitlementJobs};
    use crate::testing::{Mocks, NOW, channel_product_draft};

    fn lid(s: &str) -> LicenseId {
        LicenseId::parse(s).expect("id")
    }

    fn product(id: &str, irdeto: Option<&str>) -> Product {
        let mut d = channel_product_draft(id);
        d.irdeto_product_id = irdeto.map(str::to_owned);
        Product::new(ProductId::parse(id).expect("id"), d).expect("valid")
    }

    /// License `id` of user u1 to `product`, in `state`, running from an hour ago for a day.
    fn stored(id: &str, product: &str, state: LicenseState) -> License {
        License::restore(StoredParts {
            id: lid(id),
            user: UserId::parse("u1").expect("id"),
            product: ProductId::parse(product).expect("id"),
            state,
            start_date: Timestamp::from_unix(NOW.unix() - 3600),
            stop_date: Some(NOW.plus_seconds(86_400)),
            order_id: None,
            price: None,
            purchase_timestamp: NOW,
            payment_method: None,
            recurring: false,
            expiry_date: None,
        })
        .expect("valid")
    }

    fn found(m: &mut Mocks, license: License) {
        m.licenses
            .expect_get()
            .returning(move |_| Ok(Some(license.clone())));
    }

    /// `mapped` maps to IRD-1; any other product has no Irdeto product.
    fn catalogue(m: &mut Mocks) {
        let of = |id: &ProductId| match id.as_str() {
            "mapped" => product("mapped", Some("IRD-1")),
            other => product(other, None),
        };
        m.products
            .expect_get_many()
            .returning(move |ids| Ok(ids.iter().map(of).collect()));
        m.products
            .expect_get()
            .returning(move |id| Ok(Some(of(id))));
    }

    fn enabled(app: App, wakes: &Arc<AtomicUsize>) -> App {
        let wakes = Arc::clone(wakes);
        app.with_entitlements(Entitlements {
            jobs: Arc::new(MockEntitlementJobs::new()),
            wake: Arc::new(move || {
                wakes.fetch_add(1, Ordering::SeqCst);
            }),
        })
    }

    fn support() -> Actor {
        Actor::ManagementKey("support".into())
    }

    #[tokio::test]
    async fn a_suspension_replaces_the_license_and_revokes_its_entitlement() {
        let mut m = Mocks::new();
        catalogue(&mut m);
        found(&mut m, stored("a", "mapped", LicenseState::Active));
        m.licenses
            .expect_replace()
            .withf(|old, new, jobs, change| {
                old.as_str() == "a"
                    && new.id().as_str() == "l-1"
                    && new.state() == &LicenseState::SuspendedAdmin
                    && jobs.len() == 1
                    && jobs[0].kind == JobKind::Revoke
                    && jobs[0].license.as_str() == "a"
                    && jobs[0].irdeto_product == "IRD-1"
                    && change.actor == support()
                    && change.at == NOW
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let wakes = Arc::new(AtomicUsize::new(0));
        let app = enabled(m.app(), &wakes);
        let new = app.suspend_license(support(), &lid("a")).await.expect("ok");
        assert_eq!(new.id().as_str(), "l-1");
        assert_eq!(new.status_at(NOW), LicenseStatus::SuspendedAdmin);
        assert_eq!(wakes.load(Ordering::SeqCst), 1, "workers woken");
    }

    #[tokio::test]
    async fn disabled_or_unmapped_a_suspension_queues_nothing() {
        for (irdeto, product) in [(false, "mapped"), (true, "plain")] {
            let mut m = Mocks::new();
            catalogue(&mut m);
            found(&mut m, stored("a", product, LicenseState::Active));
            m.licenses
                .expect_replace()
                .withf(|_, new, jobs, _| {
                    jobs.is_empty() && new.state() == &LicenseState::SuspendedAdmin
                })
                .times(1)
                .returning(|_, _, _, _| Ok(()));
            let wakes = Arc::new(AtomicUsize::new(0));
            let app = if irdeto {
                enabled(m.app(), &wakes)
            } else {
                m.app()
            };
            app.suspend_license(support(), &lid("a")).await.expect("ok");
            assert_eq!(wakes.load(Ordering::SeqCst), 0);
        }
    }

    #[tokio::test]
    async fn a_reinstatement_awaits_its_grant_when_the_product_maps_to_irdeto() {
        let mut m = Mocks::new();
        catalogue(&mut m);
        found(&mut m, stored("s", "mapped", LicenseState::SuspendedAdmin));
        m.licenses
            .expect_replace()
            .withf(|old, new, jobs, _| {
                old.as_str() == "s"
                    && new.state()
                        == &LicenseState::Processing {
                            requested: Requested::Active,
                        }
                    && jobs.len() == 1
                    && jobs[0].kind == JobKind::Grant
                    && jobs[0].license == *new.id()
                    && jobs[0].valid_until == new.stop_date()
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let wakes = Arc::new(AtomicUsize::new(0));
        let app = enabled(m.app(), &wakes);
        let new = app.reinstate_license(support(), &lid("s")).await;
        assert_eq!(new.map(|l| l.status_at(NOW)), Ok(LicenseStatus::Processing));
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn disabled_a_reinstatement_is_active_at_once() {
        let mut m = Mocks::new();
        found(&mut m, stored("s", "mapped", LicenseState::SuspendedAdmin));
        m.licenses
            .expect_replace()
            .withf(|_, new, jobs, _| jobs.is_empty() && new.state() == &LicenseState::Active)
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let new = m.app().reinstate_license(support(), &lid("s")).await;
        assert_eq!(new.map(|l| l.id().clone()), Ok(lid("l-1")));
    }

    #[tokio::test]
    async fn a_forbidden_change_is_a_conflict_and_writes_nothing() {
        for (state, suspend) in [
            (LicenseState::SuspendedAdmin, true),
            (
                LicenseState::Processing {
                    requested: Requested::Active,
                },
                true,
            ),
            (LicenseState::Active, false),
        ] {
            let mut m = Mocks::new();
            found(&mut m, stored("a", "plain", state));
            let app = m.app();
            let answer = if suspend {
                app.suspend_license(support(), &lid("a")).await
            } else {
                app.reinstate_license(support(), &lid("a")).await
            };
            let Err(AppError::Conflict(problems)) = answer else {
                panic!("expected a conflict, got {answer:?}")
            };
            assert_eq!(problems[0].code, ILLEGAL_TRANSITION);
            assert_eq!(problems[0].pointer, None);
        }
    }

    #[tokio::test]
    async fn an_unknown_license_or_one_revoked_meanwhile_is_not_found() {
        let mut m = Mocks::new();
        m.licenses.expect_get().returning(|_| Ok(None));
        let answer = m.app().suspend_license(support(), &lid("x")).await;
        assert!(matches!(answer, Err(AppError::NotFound(p)) if p.code == LICENSE_NOT_FOUND));

        let mut m = Mocks::new();
        found(&mut m, stored("s", "plain", LicenseState::SuspendedAdmin));
        m.licenses
            .expect_replace()
            .returning(|_, _, _, _| Err(StoreError::NotFound));
        let answer = m.app().reinstate_license(support(), &lid("s")).await;
        assert!(matches!(answer, Err(AppError::NotFound(p)) if p.code == LICENSE_NOT_FOUND));
    }

    #[tokio::test]
    async fn the_trail_of_a_deleted_license_is_readable_and_of_an_unknown_one_not_found() {
        let mut m = Mocks::new();
        let entry = AuditEntry {
            at: NOW,
            action: AuditAction::Delete,
            actor: "key:support".into(),
            related: None,
        };
        let kept = entry.clone();
        m.licenses.expect_audit_trail().returning(move |id| {
            Ok(if id.as_str() == "gone" {
                vec![kept.clone()]
            } else {
                vec![]
            })
        });
        m.licenses.expect_get().returning(|_| Ok(None));
        let app = m.app();
        assert_eq!(app.audit_trail(&lid("gone")).await, Ok(vec![entry]));
        let unknown = app.audit_trail(&lid("never")).await;
        assert!(matches!(unknown, Err(AppError::NotFound(p)) if p.code == LICENSE_NOT_FOUND));
    }
}
