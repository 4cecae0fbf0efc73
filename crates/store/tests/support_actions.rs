//! The support staff's suspension and reinstatement, and the operator's DRM retry: the use
//! cases of licenses-app on the real store, with the Irdeto integration enabled, on every
//! backend. What each queues in the outbox, and the audit trail it leaves.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use licenses_app::ports::{
    Actor, AuditAction, AuditEntry, Clock, EntitlementJob, EntitlementJobs, JobKind, LicenseStore,
    ProductStore,
};
use licenses_app::{App, AppError, Entitlements, ILLEGAL_TRANSITION, Ports, UuidV7Ids};
use licenses_domain::{License, LicenseState, LicenseStatus, Requested, Timestamp};
use licenses_testkit::TestDatabase;
use support::*;

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        NOW
    }
}

/// The use cases over `ctx`'s store, Irdeto enabled; how many times the workers were woken.
fn app(ctx: &Ctx) -> (App, Arc<AtomicUsize>) {
    let store = &ctx.store;
    let wakes = Arc::new(AtomicUsize::new(0));
    let woken = Arc::clone(&wakes);
    let app = App::new(Ports {
        products: Arc::new(store.clone()),
        licenses: Arc::new(store.clone()),
        idempotency: Arc::new(store.clone()),
        clock: Arc::new(FixedClock),
        ids: Arc::new(UuidV7Ids),
    })
    .with_entitlements(Entitlements {
        jobs: Arc::new(store.clone()),
        wake: Arc::new(move || {
            woken.fetch_add(1, Ordering::SeqCst);
        }),
    });
    (app, wakes)
}

/// Every job due now, claimed (for a minute).
async fn due_jobs(ctx: &Ctx) -> Vec<EntitlementJob> {
    ctx.store.claim(NOW, 100, at(60)).await.unwrap()
}

fn support_key() -> Actor {
    Actor::ManagementKey("support".into())
}

async fn suspension_and_reinstatement_queue_their_jobs(ctx: Ctx) {
    let s = &ctx.store;
    // p1 maps to the Irdeto product IRD-SPORT-01; the license's entitlement was delivered.
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    let original = full_license("l1", "u1", "p1", LicenseState::Active);
    LicenseStore::create(s, std::slice::from_ref(&original), &[], &change())
        .await
        .unwrap();
    let (app, wakes) = app(&ctx);

    // Suspended: replaced by a SUSPENDEDADMIN copy, the old entitlement revoked, no grant.
    let suspended = app
        .suspend_license(support_key(), &lid("l1"))
        .await
        .unwrap();
    assert_ne!(suspended.id(), original.id());
    assert_eq!(suspended.state(), &LicenseState::SuspendedAdmin);
    assert_eq!(suspended.order_id(), original.order_id());
    assert_eq!(LicenseStore::get(s, &lid("l1")).await.unwrap(), None);
    assert_eq!(
        LicenseStore::get(s, suspended.id()).await.unwrap().as_ref(),
        Some(&suspended)
    );
    let jobs = due_jobs(&ctx).await;
    assert_eq!(jobs.len(), 1);
    let revoke = &jobs[0].job;
    assert_eq!(
        (
            revoke.kind,
            revoke.license.as_str(),
            revoke.irdeto_product.as_str()
        ),
        (JobKind::Revoke, "l1", "IRD-SPORT-01")
    );
    s.complete(jobs[0].id, None).await.unwrap();
    assert_eq!(wakes.load(Ordering::SeqCst), 1);

    // A suspended license cannot be suspended again; the replaced one is gone.
    let again = app.suspend_license(support_key(), suspended.id()).await;
    assert!(
        matches!(&again, Err(AppError::Conflict(p)) if p[0].code == ILLEGAL_TRANSITION),
        "{again:?}"
    );
    let gone = app.suspend_license(support_key(), &lid("l1")).await;
    assert!(
        matches!(&gone, Err(AppError::NotFound(p)) if p.code == "license_not_found"),
        "{gone:?}"
    );

    // Reinstated: PROCESSING under a new id until its GRANT is delivered.
    let reinstated = app
        .reinstate_license(support_key(), suspended.id())
        .await
        .unwrap();
    assert_eq!(
        reinstated.state(),
        &LicenseState::Processing {
            requested: Requested::Active
        }
    );
    assert_eq!(LicenseStore::get(s, suspended.id()).await.unwrap(), None);
    let jobs = due_jobs(&ctx).await;
    assert_eq!(jobs.len(), 1);
    let grant = &jobs[0].job;
    assert_eq!(
        (grant.kind, &grant.license, grant.irdeto_product.as_str()),
        (JobKind::Grant, reinstated.id(), "IRD-SPORT-01")
    );
    assert_eq!(
        (grant.valid_from, grant.valid_until),
        (original.start_date(), original.stop_date())
    );
    assert_eq!(wakes.load(Ordering::SeqCst), 2);
    // Delivered: the copy is ACTIVE, as the original was.
    let confirmed = reinstated.clone().confirm().unwrap();
    s.complete(jobs[0].id, Some(confirmed)).await.unwrap();
    let now_active = LicenseStore::get(s, reinstated.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now_active.status_at(NOW), LicenseStatus::Active);

    // The trail of each license, the deleted ones included.
    let entry = |action, who: &str, related: Option<&License>| AuditEntry {
        at: NOW,
        action,
        actor: who.to_owned(),
        related: related.map(|l| l.id().clone()),
    };
    assert_eq!(
        app.audit_trail(&lid("l1")).await.unwrap(),
        [
            entry(AuditAction::Create, "key:bss", None),
            entry(AuditAction::Suspend, "key:support", Some(&suspended)),
        ]
    );
    assert_eq!(
        app.audit_trail(suspended.id()).await.unwrap(),
        [
            entry(AuditAction::Create, "key:support", Some(&original)),
            entry(AuditAction::Reinstate, "key:support", Some(&reinstated)),
        ]
    );
    assert_eq!(
        app.audit_trail(reinstated.id()).await.unwrap(),
        [entry(AuditAction::Create, "key:support", Some(&suspended))]
    );
}

async fn a_failed_job_retried_by_the_operator_is_audited(ctx: Ctx) {
    let s = &ctx.store;
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    let (app, wakes) = app(&ctx);
    let suspended = full_license("l1", "u1", "p1", LicenseState::SuspendedAdmin);
    LicenseStore::create(s, &[suspended], &[], &change())
        .await
        .unwrap();
    let reinstated = app
        .reinstate_license(support_key(), &lid("l1"))
        .await
        .unwrap();
    let job = due_jobs(&ctx).await.remove(0);
    s.park(job.id, "Irdeto answered 500 fifty times")
        .await
        .unwrap();

    let ops = Actor::ManagementKey("ops".into());
    app.retry_entitlement_job(ops.clone(), job.id)
        .await
        .unwrap();
    assert_eq!(wakes.load(Ordering::SeqCst), 2);
    assert_eq!(due_jobs(&ctx).await.len(), 1, "due again");
    let missing = app.retry_entitlement_job(ops, job.id + 1000).await;
    assert!(matches!(missing, Err(AppError::NotFound(_))));
    let trail = app.audit_trail(reinstated.id()).await.unwrap();
    let actions: Vec<(AuditAction, &str)> =
        trail.iter().map(|e| (e.action, e.actor.as_str())).collect();
    assert_eq!(
        actions,
        [
            (AuditAction::Create, "key:support"),
            (AuditAction::DrmRetry, "key:ops"),
        ]
    );
    let unknown = app.audit_trail(&lid("never")).await;
    assert!(matches!(unknown, Err(AppError::NotFound(_))));
}

macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Ctx::new(super::TestDatabase::postgres()).await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Ctx::new(super::TestDatabase::sqlite()).await).await;
                }
            )*
        }
    };
}

on_every_backend!(
    suspension_and_reinstatement_queue_their_jobs,
    a_failed_job_retried_by_the_operator_is_audited,
);
