//! Irdeto entitlements: which new licenses wait for one, the jobs the license changes queue
//! in the outbox (the transactional outbox: written in the transaction of the change), their
//! delivery by the workers, and the operator's view of the backlog.
//! (Over 600 lines: about 440 of use cases, the rest their unit tests against mocked ports.)
//!
//! - With the integration enabled, a new license of a product that maps to an Irdeto product
//!   (`irdeto_product_id`) is PROCESSING and queues a GRANT job; a product without a mapping
//!   needs no entitlement: its licenses are settled at once and queue nothing. Disabled, no
//!   job is ever queued.
//! - A deleted license of a mapped product queues a REVOKE job in its delete transaction (the
//!   store cancels a GRANT never tried instead, so neither is sent).
//! - [`Delivery::deliver_due`] claims due jobs, calls the [`EntitlementGateway`] outside any
//!   transaction, and settles each: delivered (a GRANT confirms its license), refused for good
//!   (a GRANT fails its license's order with the reason), or retried with exponential backoff
//!   and jitter until `max_attempts`, then parked for the operator.

use std::collections::HashMap;
use std::sync::Arc;

use licenses_domain::{License, LicenseStatus, Product, ProductId, UserId};

use crate::App;
use crate::error::AppError;
use crate::ports::{
    Actor, Backlog, Change, Clock, DeliveryError, EntitlementGateway, EntitlementJob,
    EntitlementJobs, FailedJob, JobKind, LicenseQuery, LicenseStore, NewEntitlementJob, StoreError,
};

/// The outbox, for the use cases that write or show jobs: its port, and how to wake the
/// workers once jobs were written.
#[derive(Clone)]
pub struct Entitlements {
    pub jobs: Arc<dyn EntitlementJobs>,
    /// Called after a change that queued jobs committed (e.g. notifies the in-process
    /// workers); workers poll too, so a lost wake-up only delays delivery.
    pub wake: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Entitlements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entitlements")
    }
}

/// How long delivered jobs are kept, for an operator looking back at what was sent.
pub const DELIVERED_JOB_RETENTION_SECONDS: u64 = 7 * 24 * 60 * 60;

/// Licenses a resync reads per page.
const RESYNC_PAGE: u32 = 500;
/// Parked jobs the backlog shows.
pub const FAILED_SHOWN: u32 = 100;

/// The backlog as the operator sees it: counts, and the jobs that failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BacklogReport {
    pub enabled: bool,
    pub counts: Backlog,
    pub failed: Vec<FailedJob>,
}

impl App {
    /// Turns the Irdeto integration on: new licenses of mapped products wait for their
    /// entitlement, and license changes queue jobs in `outbox`.
    #[must_use]
    pub fn with_entitlements(mut self, outbox: Entitlements) -> Self {
        self.entitlements = Some(outbox);
        self
    }

    /// Deletes the jobs delivered more than [`DELIVERED_JOB_RETENTION_SECONDS`] ago, so that
    /// the outbox does not grow with every license ever changed; how many.
    pub async fn prune_delivered_jobs(&self) -> Result<u64, AppError> {
        let Some(outbox) = &self.entitlements else {
            return Ok(0);
        };
        let keep = i64::try_from(DELIVERED_JOB_RETENTION_SECONDS).unwrap_or(i64::MAX);
        let before = licenses_domain::Timestamp::from_unix(
            self.ports.clock.now().unix().saturating_sub(keep),
        );
        Ok(outbox.jobs.prune_delivered(before).await?)
    }

    /// Whether the Irdeto integration is on.
    pub fn entitlements_enabled(&self) -> bool {
        self.entitlements.is_some()
    }

    /// Whether a new license of `product` waits for an Irdeto entitlement.
    pub(crate) fn needs_entitlement(&self, product: Option<&Product>) -> bool {
        self.entitlements.is_some() && product.and_then(Product::irdeto_product_id).is_some()
    }

    /// The GRANT jobs of new licenses: one per PROCESSING license, for its product's Irdeto
    /// product. A product that lost its mapping meanwhile is reported as gone.
    pub(crate) async fn grant_jobs(
        &self,
        licenses: &[License],
    ) -> Result<Vec<NewEntitlementJob>, StoreError> {
        let waiting: Vec<&License> = licenses
            .iter()
            .filter(|l| l.state().status() == LicenseStatus::Processing)
            .collect();
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let mapping = self
            .irdeto_products(waiting.iter().map(|l| l.product().clone()))
            .await?;
        waiting
            .into_iter()
            .map(|l| {
                let product = mapping
                    .get(l.product())
                    .ok_or(StoreError::Conflict(crate::ports::Conflict::ProductGone))?;
                Ok(job(JobKind::Grant, l, product))
            })
            .collect()
    }

    /// The REVOKE jobs of licenses about to be deleted: one per license of a mapped product.
    pub(crate) async fn revoke_jobs(
        &self,
        licenses: &[License],
    ) -> Result<Vec<NewEntitlementJob>, StoreError> {
        if self.entitlements.is_none() || licenses.is_empty() {
            return Ok(Vec::new());
        }
        let mapping = self
            .irdeto_products(licenses.iter().map(|l| l.product().clone()))
            .await?;
        Ok(licenses
            .iter()
            .filter_map(|l| mapping.get(l.product()).map(|p| job(JobKind::Revoke, l, p)))
            .collect())
    }

    /// The Irdeto product of each mapped product among `ids`.
    async fn irdeto_products(
        &self,
        ids: impl Iterator<Item = ProductId>,
    ) -> Result<HashMap<ProductId, String>, StoreError> {
        let mut ids: Vec<ProductId> = ids.collect();
        ids.sort();
        ids.dedup();
        Ok(self
            .ports
            .products
            .get_many(&ids)
            .await?
            .into_iter()
            .filter_map(|p| {
                p.irdeto_product_id()
                    .map(|irdeto| (p.id().clone(), irdeto.to_owned()))
            })
            .collect())
    }

    /// Wakes the workers after jobs were written.
    pub(crate) fn jobs_written(&self, jobs: usize) {
        if jobs > 0
            && let Some(outbox) = &self.entitlements
        {
            (outbox.wake)();
        }
    }

    /// The backlog: due, retrying and failed jobs, and the failed ones themselves.
    pub async fn entitlement_backlog(&self) -> Result<BacklogReport, AppError> {
        let Some(outbox) = &self.entitlements else {
            return Ok(BacklogReport::default());
        };
        let now = self.ports.clock.now();
        Ok(BacklogReport {
            enabled: true,
            counts: outbox.jobs.backlog(now).await?,
            failed: outbox.jobs.failed(FAILED_SHOWN).await?,
        })
    }

    /// The operator's retry of a failed job: due again now, attempts reset, audited on the
    /// job's license as `drm_retry` by `actor`. Not found unless the job exists and has failed.
    pub async fn retry_entitlement_job(&self, actor: Actor, id: i64) -> Result<(), AppError> {
        let Some(outbox) = &self.entitlements else {
            return Err(AppError::not_found("entitlement job"));
        };
        let change = Change {
            actor,
            at: self.ports.clock.now(),
            idempotency: None,
        };
        match outbox.jobs.requeue(id, &change).await {
            Ok(()) => {
                self.jobs_written(1);
                Ok(())
            }
            Err(StoreError::NotFound) => Err(AppError::not_found("entitlement job")),
            Err(e) => Err(e.into()),
        }
    }

    /// `licenses irdeto resync`: queues a GRANT again for every ACTIVE or SUSPENDED license
    /// (not expired) of a mapped product, of one user or of all; how many. Irdeto takes a
    /// grant it already has as success, so a resync only fills what is missing.
    pub async fn resync_entitlements(&self, user: Option<UserId>) -> Result<u64, AppError> {
        let Some(outbox) = &self.entitlements else {
            return Ok(0);
        };
        let now = self.ports.clock.now();
        let mut after = None;
        let mut queued = 0u64;
        loop {
            let page = self
                .ports
                .licenses
                .find(&LicenseQuery {
                    user: user.clone(),
                    product: None,
                    statuses: vec![LicenseStatus::Active, LicenseStatus::Suspended],
                    active_at: None,
                    now,
                    after: after.take(),
                    limit: RESYNC_PAGE,
                })
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id().clone());
            let mapping = self
                .irdeto_products(page.iter().map(|l| l.product().clone()))
                .await?;
            let jobs: Vec<NewEntitlementJob> = page
                .iter()
                .filter_map(|l| mapping.get(l.product()).map(|p| job(JobKind::Grant, l, p)))
                .collect();
            outbox.jobs.enqueue(&jobs, now).await?;
            queued += jobs.len() as u64;
            self.jobs_written(jobs.len());
            if page.len() < RESYNC_PAGE as usize {
                break;
            }
        }
        Ok(queued)
    }
}

fn job(kind: JobKind, license: &License, irdeto_product: &str) -> NewEntitlementJob {
    NewEntitlementJob {
        kind,
        license: license.id().clone(),
        user: license.user().clone(),
        irdeto_product: irdeto_product.to_owned(),
        valid_from: license.start_date(),
        valid_until: license.stop_date(),
    }
}

/// How jobs are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Tries per job before it is parked (`irdeto.max_attempts`).
    pub max_attempts: u32,
    /// How long a claimed job stays hidden from other workers, in seconds: longer than one
    /// delivery can take, so that only a dead worker's jobs are claimed again.
    pub lease_seconds: u64,
    /// The first retry's delay, in seconds; each further retry doubles it.
    pub base_backoff_seconds: u64,
    /// The longest delay between two tries, in seconds.
    pub max_backoff_seconds: u64,
}

impl DeliveryPolicy {
    /// The delay before try `attempts + 1`, in seconds: exponential, capped, with up to 50 %
    /// random jitter so that jobs failed together do not come back together; never shorter
    /// than the far end's `Retry-After`.
    pub fn backoff_seconds(&self, attempts: u32, retry_after: Option<std::time::Duration>) -> u64 {
        let exponent = attempts.saturating_sub(1).min(32);
        let base = self
            .base_backoff_seconds
            .max(1)
            .saturating_mul(1u64 << exponent)
            .min(self.max_backoff_seconds.max(1));
        let jitter = rand::random_range(0..=base / 2);
        let asked = retry_after.map_or(0, |d| d.as_secs().min(self.max_backoff_seconds.max(1)));
        (base + jitter).max(asked).max(1)
    }
}

/// What one round of delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryStats {
    pub claimed: u32,
    /// Delivered (granted or revoked).
    pub delivered: u32,
    /// Refused for good by Irdeto.
    pub refused: u32,
    /// Failed for now, to try again.
    pub retried: u32,
    /// Failed too often: parked for the operator.
    pub parked: u32,
    /// Settled at Irdeto but not recorded (storage failed): delivered again after the lease.
    pub unrecorded: u32,
}

/// The delivery use case the workers run: jobs from the outbox to Irdeto.
#[derive(Clone)]
pub struct Delivery {
    pub jobs: Arc<dyn EntitlementJobs>,
    pub gateway: Arc<dyn EntitlementGateway>,
    pub licenses: Arc<dyn LicenseStore>,
    pub clock: Arc<dyn Clock>,
    pub policy: DeliveryPolicy,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

enum Outcome {
    Refused,
    Retried,
    Parked,
}

impl Delivery {
    /// Claims up to `limit` due jobs and calls Irdeto for them, concurrently. The delivered
    /// jobs of the round are settled together in one transaction (with their licenses'
    /// status changes); a refused or failed job is settled on its own. Errors only when
    /// nothing could be claimed, or the delivered jobs' licenses could not be read (the jobs
    /// stay leased and are delivered again, harmlessly, when the lease ends).
    pub async fn deliver_due(&self, limit: u32) -> Result<DeliveryStats, AppError> {
        let now = self.clock.now();
        let claimed = self
            .jobs
            .claim(now, limit, now.plus_seconds(self.policy.lease_seconds))
            .await?;
        let mut stats = DeliveryStats {
            claimed: u32::try_from(claimed.len()).unwrap_or(u32::MAX),
            ..DeliveryStats::default()
        };
        if claimed.is_empty() {
            return Ok(stats);
        }
        // The licenses of the grants, in one read, before calling: a grant whose license is
        // gone (deleted meanwhile, or after an operator's retry) is not sent at all.
        let grants: Vec<licenses_domain::LicenseId> = claimed
            .iter()
            .filter(|job| job.job.kind == JobKind::Grant)
            .map(|job| job.job.license.clone())
            .collect();
        let mut existing: HashMap<licenses_domain::LicenseId, License> = if grants.is_empty() {
            HashMap::new()
        } else {
            self.licenses
                .find_by_ids(&grants)
                .await?
                .into_iter()
                .map(|l| (l.id().clone(), l))
                .collect()
        };
        let answers = futures_util::future::join_all(claimed.iter().map(|job| {
            let gone = job.job.kind == JobKind::Grant && !existing.contains_key(&job.job.license);
            async move { if gone { Ok(()) } else { self.call(job).await } }
        }))
        .await;

        let mut done = Vec::new();
        for (job, answer) in claimed.into_iter().zip(answers) {
            // Only a PROCESSING license changes status; one settled already (a resync's
            // grant) or gone (nothing was sent) has nothing to settle.
            let license = match job.job.kind {
                JobKind::Grant => existing
                    .remove(&job.job.license)
                    .filter(|l| l.state().status() == LicenseStatus::Processing),
                JobKind::Revoke => None,
            };
            match answer {
                Ok(()) => done.push((job.id, license.and_then(|l| l.confirm().ok()))),
                Err(failure) => match self.settle_failure(&job, license, failure).await {
                    Ok(Outcome::Refused) => stats.refused += 1,
                    Ok(Outcome::Retried) => stats.retried += 1,
                    Ok(Outcome::Parked) => stats.parked += 1,
                    Err(error) => {
                        tracing::warn!(job = job.id, %error, "entitlement job not recorded");
                        stats.unrecorded += 1;
                    }
                },
            }
        }
        if done.is_empty() {
            return Ok(stats);
        }
        let delivered = u32::try_from(done.len()).unwrap_or(u32::MAX);
        match self.jobs.complete_many(&done).await {
            Ok(()) => stats.delivered = delivered,
            Err(error) => {
                tracing::warn!(%error, jobs = delivered, "delivered jobs not recorded; delivered again after their lease");
                stats.unrecorded += delivered;
            }
        }
        Ok(stats)
    }

    async fn call(&self, job: &EntitlementJob) -> Result<(), DeliveryError> {
        match job.job.kind {
            JobKind::Grant => self.gateway.grant(&job.job).await,
            JobKind::Revoke => self.gateway.revoke(&job.job.license).await,
        }
    }

    /// Settles a job Irdeto did not take: refused for good (a GRANT fails its license's order
    /// with the reason), or to try again later, or parked after `max_attempts`.
    async fn settle_failure(
        &self,
        job: &EntitlementJob,
        license: Option<License>,
        failure: DeliveryError,
    ) -> Result<Outcome, StoreError> {
        match failure {
            DeliveryError::Permanent { reason } => {
                tracing::warn!(job = job.id, license = %job.job.license, %reason, "Irdeto refused the job");
                let why = format!("Irdeto refused the entitlement: {reason}");
                let settled = license.and_then(|l| l.fail_order(why).ok());
                self.jobs.refuse(job.id, &reason, settled).await?;
                Ok(Outcome::Refused)
            }
            DeliveryError::Transient {
                reason,
                retry_after,
            } => {
                if job.attempts >= self.policy.max_attempts {
                    tracing::warn!(job = job.id, attempts = job.attempts, %reason, "entitlement job parked");
                    self.jobs.park(job.id, &reason).await?;
                    Ok(Outcome::Parked)
                } else {
                    let delay = self.policy.backoff_seconds(job.attempts, retry_after);
                    let at = self.clock.now().plus_seconds(delay);
                    self.jobs.retry(job.id, at, &reason).await?;
                    Ok(Outcome::Retried)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use licenses_domain::{LicenseDraft, LicenseId, LicenseState, Requested};

    use super::*;
    use crate::ports::{MockEntitlementGateway, MockEntitlementJobs, MockLicenseStore};
    use crate::testing::{FixedClock, Mocks, NOW, channel_product_draft, response};

    fn product(id: &str, irdeto: Option<&str>) -> Product {
        let mut d = channel_product_draft(id);
        d.irdeto_product_id = irdeto.map(str::to_owned);
        Product::new(ProductId::parse(id).expect("id"), d).expect("valid")
    }

    fn draft(user: &str, product: &str) -> LicenseDraft {
        LicenseDraft {
            user: Some(user.into()),
            product: Some(product.into()),
            ..Default::default()
        }
    }

    /// `mapped` maps to IRD-1; `plain` has no Irdeto product.
    fn catalogue(m: &mut Mocks) {
        m.products.expect_get_many().returning(|ids| {
            Ok(ids
                .iter()
                .map(|id| match id.as_str() {
                    "mapped" => product("mapped", Some("IRD-1")),
                    _ => product(id.as_str(), None),
                })
                .collect())
        });
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

    #[tokio::test]
    async fn enabled_a_mapped_product_waits_for_its_grant_written_with_the_license() {
        let mut m = Mocks::new();
        catalogue(&mut m);
        m.licenses
            .expect_create()
            .withf(|ls, jobs, _| {
                let processing = LicenseState::Processing {
                    requested: Requested::Active,
                };
                ls.len() == 2
                    && ls[0].state() == &processing
                    && ls[1].state() == &LicenseState::Active
                    && jobs.len() == 1
                    && jobs[0].kind == JobKind::Grant
                    && jobs[0].license == *ls[0].id()
                    && jobs[0].irdeto_product == "IRD-1"
                    && jobs[0].user.as_str() == "u1"
                    && jobs[0].valid_from == NOW
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let wakes = Arc::new(AtomicUsize::new(0));
        let app = enabled(m.app(), &wakes);
        let drafts = vec![draft("u1", "mapped"), draft("u2", "plain")];
        let answer = app
            .create_licenses(Actor::System("t"), drafts, true, None, |ls, _| {
                response(201, &ls.len().to_string())
            })
            .await;
        assert_eq!(answer, Ok(response(201, "2")));
        assert_eq!(wakes.load(Ordering::SeqCst), 1, "workers woken once");
    }

    #[tokio::test]
    async fn a_refused_creation_wakes_nobody() {
        let mut m = Mocks::new();
        catalogue(&mut m);
        m.licenses
            .expect_create()
            .returning(|_, _, _| Err(StoreError::Unavailable("down".into())));
        let wakes = Arc::new(AtomicUsize::new(0));
        let app = enabled(m.app(), &wakes);
        let answer = app
            .create_licenses(
                Actor::System("t"),
                vec![draft("u1", "mapped")],
                false,
                None,
                |_, _| response(201, ""),
            )
            .await;
        assert_eq!(answer, Err(AppError::Unavailable));
        assert_eq!(wakes.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn disabled_a_mapped_product_is_active_at_once_and_queues_nothing() {
        let mut m = Mocks::new();
        catalogue(&mut m);
        m.licenses
            .expect_create()
            .withf(|ls, jobs, _| jobs.is_empty() && ls[0].state() == &LicenseState::Active)
            .times(1)
            .returning(|_, _, _| Ok(()));
        let answer = m
            .app()
            .create_licenses(
                Actor::System("t"),
                vec![draft("u1", "mapped")],
                false,
                None,
                |_, _| response(201, ""),
            )
            .await;
        assert_eq!(answer, Ok(response(201, "")));
    }

    fn stored(id: &str, product: &str) -> License {
        License::grant(
            LicenseId::parse(id).expect("id"),
            draft("u1", product),
            Some(&self::product(product, None)),
            NOW,
            licenses_domain::Activation::AwaitEntitlement,
        )
        .expect("valid")
    }

    #[tokio::test]
    async fn a_deletion_queues_the_revokes_of_mapped_products_in_its_transaction() {
        let mut m = Mocks::new();
        catalogue(&mut m);
        m.licenses
            .expect_find_by_ids()
            .returning(|_| Ok(vec![stored("a", "mapped"), stored("b", "plain")]));
        m.licenses
            .expect_delete()
            .withf(|ids, jobs, _| {
                ids.len() == 2
                    && jobs.len() == 1
                    && jobs[0].kind == JobKind::Revoke
                    && jobs[0].license.as_str() == "a"
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let wakes = Arc::new(AtomicUsize::new(0));
        let app = enabled(m.app(), &wakes);
        let ids = vec![
            LicenseId::parse("a").expect("id"),
            LicenseId::parse("b").expect("id"),
        ];
        let answer = app
            .delete_licenses(Actor::System("t"), ids, true, None, |_| response(204, ""))
            .await;
        assert_eq!(answer, Ok(response(204, "")));
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_operators_retry_is_audited_with_who_asked() {
        let mut jobs = MockEntitlementJobs::new();
        jobs.expect_requeue()
            .withf(|id, change| {
                *id == 7
                    && change.actor == Actor::ManagementKey("ops".into())
                    && change.at == NOW
                    && change.idempotency.is_none()
            })
            .times(1)
            .returning(|_, _| Ok(()));
        jobs.expect_requeue()
            .withf(|id, _| *id == 8)
            .returning(|_, _| Err(StoreError::NotFound));
        let wakes = Arc::new(AtomicUsize::new(0));
        let woken = Arc::clone(&wakes);
        let app = Mocks::new().app().with_entitlements(Entitlements {
            jobs: Arc::new(jobs),
            wake: Arc::new(move || {
                woken.fetch_add(1, Ordering::SeqCst);
            }),
        });
        let ops = || Actor::ManagementKey("ops".into());
        assert_eq!(app.retry_entitlement_job(ops(), 7).await, Ok(()));
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        let gone = app.retry_entitlement_job(ops(), 8).await;
        assert!(matches!(gone, Err(AppError::NotFound(_))));
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        let disabled = Mocks::new().app().retry_entitlement_job(ops(), 7).await;
        assert!(matches!(disabled, Err(AppError::NotFound(_))));
    }

    const POLICY: DeliveryPolicy = DeliveryPolicy {
        max_attempts: 3,
        lease_seconds: 60,
        base_backoff_seconds: 2,
        max_backoff_seconds: 100,
    };

    fn claimed(id: i64, kind: JobKind, attempts: u32) -> EntitlementJob {
        EntitlementJob {
            id,
            job: job(kind, &stored("a", "mapped"), "IRD-1"),
            attempts,
        }
    }

    fn delivery(
        jobs: MockEntitlementJobs,
        gateway: MockEntitlementGateway,
        licenses: MockLicenseStore,
    ) -> Delivery {
        Delivery {
            jobs: Arc::new(jobs),
            gateway: Arc::new(gateway),
            licenses: Arc::new(licenses),
            clock: Arc::new(FixedClock),
            policy: POLICY,
        }
    }

    #[tokio::test]
    async fn a_delivered_grant_confirms_its_license_with_the_job() {
        let mut jobs = MockEntitlementJobs::new();
        jobs.expect_claim()
            .withf(|now, limit, lease| *now == NOW && *limit == 5 && *lease == NOW.plus_seconds(60))
            .returning(|_, _, _| Ok(vec![claimed(7, JobKind::Grant, 1)]));
        jobs.expect_complete_many()
            .withf(|done| {
                done.len() == 1
                    && done[0].0 == 7
                    && done[0].1.as_ref().map(|l| l.state().clone()) == Some(LicenseState::Active)
            })
            .times(1)
            .returning(|_| Ok(()));
        let mut gateway = MockEntitlementGateway::new();
        gateway.expect_grant().times(1).returning(|_| Ok(()));
        let mut licenses = MockLicenseStore::new();
        licenses
            .expect_find_by_ids()
            .times(1)
            .returning(|_| Ok(vec![stored("a", "mapped")]));
        let stats = delivery(jobs, gateway, licenses)
            .deliver_due(5)
            .await
            .expect("delivered");
        assert_eq!((stats.claimed, stats.delivered), (1, 1));
    }

    #[tokio::test]
    async fn a_refused_grant_fails_the_order_with_the_reason() {
        let mut jobs = MockEntitlementJobs::new();
        jobs.expect_claim()
            .returning(|_, _, _| Ok(vec![claimed(7, JobKind::Grant, 1)]));
        jobs.expect_refuse()
            .withf(|id, error, settled| {
                *id == 7
                    && error == "PUT answered 422"
                    && settled
                        .as_ref()
                        .and_then(|l| l.state().reason().map(str::to_owned))
                        == Some("Irdeto refused the entitlement: PUT answered 422".into())
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut gateway = MockEntitlementGateway::new();
        gateway.expect_grant().returning(|_| {
            Err(DeliveryError::Permanent {
                reason: "PUT answered 422".into(),
            })
        });
        let mut licenses = MockLicenseStore::new();
        licenses
            .expect_find_by_ids()
            .times(1)
            .returning(|_| Ok(vec![stored("a", "mapped")]));
        let stats = delivery(jobs, gateway, licenses)
            .deliver_due(5)
            .await
            .expect("settled");
        assert_eq!(stats.refused, 1);
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_later_then_parked_after_max_attempts() {
        let mut jobs = MockEntitlementJobs::new();
        jobs.expect_claim().returning(|_, _, _| {
            Ok(vec![
                claimed(1, JobKind::Revoke, 1),
                claimed(2, JobKind::Revoke, 3),
            ])
        });
        jobs.expect_retry()
            .withf(|id, at, error| {
                // Attempt 1: 2 s, plus up to 50 % jitter; Retry-After 3 s wins when longer.
                *id == 1
                    && (NOW.plus_seconds(3)..=NOW.plus_seconds(3)).contains(at)
                    && error.contains("503")
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        jobs.expect_park()
            .withf(|id, error| *id == 2 && error.contains("503"))
            .times(1)
            .returning(|_, _| Ok(()));
        let mut gateway = MockEntitlementGateway::new();
        gateway.expect_revoke().times(2).returning(|_| {
            Err(DeliveryError::Transient {
                reason: "DELETE answered 503".into(),
                retry_after: Some(Duration::from_secs(3)),
            })
        });
        let stats = delivery(jobs, gateway, MockLicenseStore::new())
            .deliver_due(5)
            .await
            .expect("settled");
        assert_eq!((stats.retried, stats.parked), (1, 1));
    }

    #[tokio::test]
    async fn a_grant_for_a_license_deleted_meanwhile_is_not_sent() {
        let mut jobs = MockEntitlementJobs::new();
        jobs.expect_claim()
            .returning(|_, _, _| Ok(vec![claimed(7, JobKind::Grant, 1)]));
        jobs.expect_complete_many()
            .withf(|done| done == [(7, None)])
            .times(1)
            .returning(|_| Ok(()));
        // No call expected: a grant whose license is gone is not sent.
        let gateway = MockEntitlementGateway::new();
        let mut licenses = MockLicenseStore::new();
        licenses.expect_find_by_ids().returning(|_| Ok(Vec::new()));
        let stats = delivery(jobs, gateway, licenses)
            .deliver_due(5)
            .await
            .expect("settled");
        assert_eq!(stats.delivered, 1);
    }

    #[tokio::test]
    async fn delivered_jobs_are_kept_a_week_and_only_with_the_integration_on() {
        assert_eq!(Mocks::new().app().prune_delivered_jobs().await, Ok(0));
        let mut jobs = MockEntitlementJobs::new();
        jobs.expect_prune_delivered()
            .withf(|before| before.unix() == NOW.unix() - 7 * 86_400)
            .times(1)
            .returning(|_| Ok(4));
        let app = Mocks::new().app().with_entitlements(Entitlements {
            jobs: Arc::new(jobs),
            wake: Arc::new(|| {}),
        });
        assert_eq!(app.prune_delivered_jobs().await, Ok(4));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for _ in 0..50 {
            let first = POLICY.backoff_seconds(1, None);
            assert!((2..=3).contains(&first), "{first}");
            let third = POLICY.backoff_seconds(3, None);
            assert!((8..=12).contains(&third), "{third}");
            let late = POLICY.backoff_seconds(30, None);
            assert!((100..=150).contains(&late), "{late}");
        }
        assert_eq!(POLICY.backoff_seconds(1, Some(Duration::from_secs(40))), 40);
    }
}
