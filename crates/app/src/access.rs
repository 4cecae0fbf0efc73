//! "Why can (or can't) this user watch?": the domain's [`explain`] over a user's licenses, the
//! catalogue in memory and, with the Irdeto integration on, the open jobs of the licenses that
//! wait for their entitlement.

use std::collections::HashMap;

use licenses_domain::{
    ChannelId, DrmJob, DrmJobState, Explanation, License, LicenseId, LicenseStatus, Product,
    Service, Timestamp, UserId, explain,
};

use crate::App;
use crate::error::AppError;
use crate::ports::{JobKind, OpenJob, OpenJobState};

/// The answer to "may this user watch `service` on `channel` now?", and what decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub explanation: Explanation,
    /// When it was decided.
    pub at: Timestamp,
    /// The licenses that decided it ([`Explanation::deciding_licenses`]), in that order.
    pub licenses: Vec<License>,
    /// Their products, each once, in id order (a product no longer in the catalogue is
    /// missing).
    pub products: Vec<Product>,
}

impl App {
    /// Whether `user` may watch `service` on `channel` now, and why: every license of the
    /// user is read (users are not stored: one without licenses gets `no_license`), their
    /// products from the catalogue in memory (as [`App::entitlements`] reads them), and, with
    /// the Irdeto integration on, the open GRANT job of each PROCESSING license.
    pub async fn explain_access(
        &self,
        user: &UserId,
        channel: &ChannelId,
        service: Service,
    ) -> Result<Access, AppError> {
        let at = self.ports.clock.now();
        let licenses = self.all_licenses(user, Vec::new(), None, at).await?;
        if licenses.is_empty() {
            return Ok(Access {
                explanation: explain(&licenses, |_| None, |_| None, channel, service, at),
                at,
                licenses,
                products: Vec::new(),
            });
        }
        let jobs = self.drm_jobs(&licenses).await?;
        let catalogue = self.catalogue_snapshot().await?;
        let explanation = explain(
            &licenses,
            |id| catalogue.get(id),
            |id| jobs.get(id).cloned(),
            channel,
            service,
            at,
        );
        let by_id: HashMap<&LicenseId, &License> = licenses.iter().map(|l| (l.id(), l)).collect();
        let deciding: Vec<License> = explanation
            .deciding_licenses()
            .into_iter()
            .filter_map(|id| by_id.get(id).map(|l| (*l).clone()))
            .collect();
        let products = catalogue
            .products_of(&deciding)
            .into_iter()
            .cloned()
            .collect();
        Ok(Access {
            explanation,
            at,
            licenses: deciding,
            products,
        })
    }

    /// The DRM job each PROCESSING license waits for: its latest open GRANT job. None with
    /// the integration off, or without a PROCESSING license (then the outbox is not read).
    async fn drm_jobs(&self, licenses: &[License]) -> Result<HashMap<LicenseId, DrmJob>, AppError> {
        let Some(outbox) = &self.entitlements else {
            return Ok(HashMap::new());
        };
        let waiting: Vec<LicenseId> = licenses
            .iter()
            .filter(|l| l.state().status() == LicenseStatus::Processing)
            .map(|l| l.id().clone())
            .collect();
        if waiting.is_empty() {
            return Ok(HashMap::new());
        }
        let mut jobs = HashMap::new();
        // In id order: a later GRANT of the same license replaces an earlier one.
        for job in outbox.jobs.open_jobs_of(&waiting).await? {
            if job.kind == JobKind::Grant {
                jobs.insert(job.license.clone(), drm_job(job));
            }
        }
        Ok(jobs)
    }
}

fn drm_job(job: OpenJob) -> DrmJob {
    DrmJob {
        state: match job.state {
            OpenJobState::Pending => DrmJobState::Pending,
            OpenJobState::Retrying => DrmJobState::Retrying,
            OpenJobState::Parked => DrmJobState::Failed,
        },
        attempts: job.attempts,
        last_error: job.last_error,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use licenses_domain::{
        LicenseState, ProductDraft, ProductId, ReasonCode, Requested, StoredParts,
    };

    use super::*;
    use crate::entitlements::Entitlements;
    use crate::ports::MockEntitlementJobs;
    use crate::testing::{Mocks, NOW};

    fn product(id: &str, live: &[&str]) -> Product {
        let draft = ProductDraft {
            title: Some(id.into()),
            product_type: Some("CHANNEL_GROUP".into()),
            channels: [
                live.iter().map(|c| (*c).to_owned()).collect(),
                vec![],
                vec![],
                vec![],
            ],
            ..Default::default()
        };
        Product::new(ProductId::parse(id).expect("id"), draft).expect("valid")
    }

    fn license(id: &str, product: &str, state: LicenseState) -> License {
        License::restore(StoredParts {
            id: LicenseId::parse(id).expect("id"),
            user: UserId::parse("u1").expect("id"),
            product: ProductId::parse(product).expect("id"),
            state,
            start_date: Timestamp::from_unix(NOW.unix() - 60),
            stop_date: None,
            order_id: None,
            price: None,
            purchase_timestamp: Timestamp::from_unix(NOW.unix() - 60),
            payment_method: None,
            recurring: false,
            expiry_date: None,
        })
        .expect("valid")
    }

    fn processing() -> LicenseState {
        LicenseState::Processing {
            requested: Requested::Active,
        }
    }

    /// The user's licenses, and the catalogue: `sport` has channel `a` live, `news` `b`.
    fn stored(m: &mut Mocks, licenses: Vec<License>) {
        m.licenses
            .expect_find()
            .withf(|q| q.user.as_ref().map(UserId::as_str) == Some("u1") && q.statuses.is_empty())
            .times(1)
            .returning(move |_| Ok(licenses.clone()));
        m.products.expect_version().returning(|| Ok(1));
        m.products
            .expect_list()
            .returning(|| Ok(vec![product("news", &["b"]), product("sport", &["a"])]));
    }

    fn with_jobs(app: App, jobs: MockEntitlementJobs) -> App {
        app.with_entitlements(Entitlements {
            jobs: Arc::new(jobs),
            wake: Arc::new(|| {}),
        })
    }

    fn ask(app: &App) -> impl std::future::Future<Output = Result<Access, AppError>> + '_ {
        let user = UserId::parse("u1").expect("id");
        let channel = ChannelId::parse("a").expect("id");
        async move { app.explain_access(&user, &channel, Service::Live).await }
    }

    #[tokio::test]
    async fn a_user_without_licenses_has_no_license_and_nothing_else_is_read() {
        let mut m = Mocks::new();
        m.licenses.expect_find().times(1).returning(|_| Ok(vec![]));
        let mut jobs = MockEntitlementJobs::new();
        jobs.expect_open_jobs_of().never();
        let app = with_jobs(m.app(), jobs);
        let access = ask(&app).await.expect("answer");
        assert!(!access.explanation.allowed);
        assert_eq!(access.explanation.reasons[0].code, ReasonCode::NoLicense);
        assert_eq!(access.at, NOW);
        assert!(access.licenses.is_empty() && access.products.is_empty());
    }

    #[tokio::test]
    async fn an_active_license_allows_and_is_the_one_that_decided() {
        let mut m = Mocks::new();
        stored(
            &mut m,
            vec![
                license("l1", "news", LicenseState::Active),
                license("l2", "sport", LicenseState::Active),
            ],
        );
        let access = ask(&m.app()).await.expect("answer");
        assert!(access.explanation.allowed);
        assert_eq!(access.explanation.until, None);
        let ids: Vec<&str> = access.licenses.iter().map(|l| l.id().as_str()).collect();
        assert_eq!(ids, ["l2"]);
        let products: Vec<&str> = access.products.iter().map(|p| p.id().as_str()).collect();
        assert_eq!(products, ["sport"]);
    }

    #[tokio::test]
    async fn a_processing_license_shows_its_open_grant_job() {
        let mut m = Mocks::new();
        stored(
            &mut m,
            vec![
                license("l1", "sport", processing()),
                license("l2", "sport", LicenseState::Suspended),
            ],
        );
        let mut jobs = MockEntitlementJobs::new();
        jobs.expect_open_jobs_of()
            .withf(|ids| ids.len() == 1 && ids[0].as_str() == "l1")
            .times(1)
            .returning(|_| {
                let job = |id, kind, state, error: Option<&str>| OpenJob {
                    id,
                    kind,
                    license: LicenseId::parse("l1").expect("id"),
                    state,
                    attempts: 3,
                    last_error: error.map(str::to_owned),
                    due_at: NOW,
                };
                Ok(vec![
                    job(1, JobKind::Grant, OpenJobState::Parked, Some("old")),
                    job(2, JobKind::Grant, OpenJobState::Retrying, Some("HTTP 503")),
                    job(3, JobKind::Revoke, OpenJobState::Pending, None),
                ])
            });
        let access = ask(&with_jobs(m.app(), jobs)).await.expect("answer");
        let reasons = &access.explanation.reasons;
        assert_eq!(reasons.len(), 2);
        assert_eq!(reasons[0].code, ReasonCode::WaitingForDrm);
        assert_eq!(
            reasons[0].drm,
            Some(DrmJob {
                state: DrmJobState::Retrying,
                attempts: 3,
                last_error: Some("HTTP 503".into()),
            })
        );
        assert_eq!(reasons[1].code, ReasonCode::LicenseSuspended);
        assert_eq!(access.licenses.len(), 2);
        assert_eq!(access.products.len(), 1);
    }

    #[tokio::test]
    async fn with_the_integration_off_no_job_is_known() {
        let mut m = Mocks::new();
        stored(&mut m, vec![license("l1", "sport", processing())]);
        let access = ask(&m.app()).await.expect("answer");
        let reason = &access.explanation.reasons[0];
        assert_eq!(reason.code, ReasonCode::WaitingForDrm);
        assert_eq!(reason.drm, None);
    }

    #[tokio::test]
    async fn a_parked_job_is_a_failed_one() {
        let mut m = Mocks::new();
        stored(&mut m, vec![license("l1", "sport", processing())]);
        let mut jobs = MockEntitlementJobs::new();
        jobs.expect_open_jobs_of().returning(|_| {
            Ok(vec![OpenJob {
                id: 7,
                kind: JobKind::Grant,
                license: LicenseId::parse("l1").expect("id"),
                state: OpenJobState::Parked,
                attempts: 10,
                last_error: Some("timeout".into()),
                due_at: NOW,
            }])
        });
        let access = ask(&with_jobs(m.app(), jobs)).await.expect("answer");
        let drm = access.explanation.reasons[0].drm.clone().expect("job");
        assert_eq!((drm.state, drm.attempts), (DrmJobState::Failed, 10));
    }
}
