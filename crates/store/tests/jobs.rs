//! The outbox of entitlement jobs (the `EntitlementJobs` port), on every backend: claiming
//! with leases, the per-license order, settling with the license status, retries, parking,
//! the operator's requeue, and a REVOKE cancelling a GRANT never tried.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;

use licenses_app::ports::{
    Actor, AuditAction, AuditEntry, Backlog, Change, EntitlementJobs, JobKind, LicenseStore,
    NewEntitlementJob, OpenJobState, ProductStore, StoreError,
};
use licenses_domain::{License, LicenseState, LicenseStatus, Requested};
use support::*;

fn processing(id: &str) -> License {
    license(
        id,
        "u1",
        "p1",
        LicenseState::Processing {
            requested: Requested::Active,
        },
        at(-60),
        None,
    )
}

fn job(kind: JobKind, l: &License) -> NewEntitlementJob {
    NewEntitlementJob {
        kind,
        license: l.id().clone(),
        user: l.user().clone(),
        irdeto_product: "IRD-1".into(),
        valid_from: l.start_date(),
        valid_until: l.stop_date(),
    }
}

/// Creates PROCESSING licenses, each with its GRANT job, in one change.
async fn granted(ctx: &Ctx, ids: &[&str]) -> Vec<License> {
    ProductStore::create(&ctx.store, &full_product("p1"), &change())
        .await
        .unwrap();
    let ls: Vec<License> = ids.iter().map(|id| processing(id)).collect();
    let jobs: Vec<NewEntitlementJob> = ls.iter().map(|l| job(JobKind::Grant, l)).collect();
    LicenseStore::create(&ctx.store, &ls, &jobs, &change())
        .await
        .unwrap();
    ls
}

async fn status(ctx: &Ctx, id: &str) -> Option<LicenseState> {
    LicenseStore::get(&ctx.store, &lid(id))
        .await
        .unwrap()
        .map(|l| l.state().clone())
}

async fn claims_lease_and_settle_with_the_license(ctx: Ctx) {
    let s = &ctx.store;
    granted(&ctx, &["a", "b"]).await;
    let claimed = s.claim(NOW, 10, at(30)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed
            .iter()
            .all(|j| j.attempts == 1 && j.job.kind == JobKind::Grant)
    );
    assert_eq!(claimed[0].job.irdeto_product, "IRD-1");
    // Leased: nobody else gets them until the lease ends.
    assert!(s.claim(at(29), 10, at(60)).await.unwrap().is_empty());
    let again = s.claim(at(30), 10, at(60)).await.unwrap();
    assert_eq!(
        again.len(),
        2,
        "an ended lease (a dead worker) frees the jobs"
    );
    assert!(again.iter().all(|j| j.attempts == 2));

    let (a, b) = (&again[0], &again[1]);
    let confirmed = processing(a.job.license.as_str()).confirm().unwrap();
    s.complete(a.id, Some(confirmed)).await.unwrap();
    let failed = processing(b.job.license.as_str())
        .fail_order("Irdeto refused the entitlement: 422")
        .unwrap();
    s.refuse(b.id, "PUT answered 422", Some(failed))
        .await
        .unwrap();
    assert_eq!(
        status(&ctx, a.job.license.as_str()).await,
        Some(LicenseState::Active)
    );
    assert_eq!(
        status(&ctx, b.job.license.as_str()).await,
        Some(LicenseState::OrderError {
            reason: "Irdeto refused the entitlement: 422".into()
        })
    );
    assert_eq!(
        s.backlog(at(60)).await.unwrap(),
        Backlog {
            due: 0,
            retrying: 0,
            failed: 1
        }
    );
    let parked = s.failed(10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].id, b.id);
    assert_eq!(parked[0].last_error.as_deref(), Some("PUT answered 422"));
    assert!(s.claim(at(100), 10, at(130)).await.unwrap().is_empty());

    // The operator's retry: due again, attempts reset, audited on the job's license with who
    // asked; only a parked job can be, and a refused retry leaves no trace.
    let ops = Change {
        actor: Actor::ManagementKey("ops".into()),
        at: at(100),
        idempotency: None,
    };
    s.requeue(b.id, &ops).await.unwrap();
    assert_eq!(s.requeue(b.id, &ops).await, Err(StoreError::NotFound));
    assert_eq!(s.requeue(a.id, &ops).await, Err(StoreError::NotFound));
    let back = s.claim(at(100), 10, at(130)).await.unwrap();
    assert_eq!((back.len(), back[0].attempts), (1, 1));
    let trail = s.audit_trail(&b.job.license).await.unwrap();
    let retries: Vec<AuditEntry> = trail
        .into_iter()
        .filter(|e| e.action == AuditAction::DrmRetry)
        .collect();
    assert_eq!(
        retries,
        [AuditEntry {
            at: at(100),
            action: AuditAction::DrmRetry,
            actor: "key:ops".into(),
            related: None,
        }]
    );
    assert!(
        s.audit_trail(&a.job.license)
            .await
            .unwrap()
            .iter()
            .all(|e| e.action != AuditAction::DrmRetry)
    );
    assert_eq!(s.complete(999_999, None).await, Err(StoreError::NotFound));
}

async fn a_retried_job_waits_for_its_time(ctx: Ctx) {
    let s = &ctx.store;
    granted(&ctx, &["a"]).await;
    let j = s.claim(NOW, 10, at(30)).await.unwrap().remove(0);
    s.retry(j.id, at(8), "503").await.unwrap();
    assert_eq!(
        s.backlog(NOW).await.unwrap(),
        Backlog {
            due: 0,
            retrying: 1,
            failed: 0
        }
    );
    assert!(s.claim(at(7), 10, at(40)).await.unwrap().is_empty());
    let j = s.claim(at(8), 10, at(40)).await.unwrap().remove(0);
    assert_eq!(j.attempts, 2);
    s.park(j.id, "503 ten times").await.unwrap();
    assert_eq!(s.backlog(at(9)).await.unwrap().failed, 1);
    assert_eq!(
        status(&ctx, "a").await.map(|s| s.status()),
        Some(LicenseStatus::Processing)
    );
}

async fn a_revoke_cancels_a_grant_never_tried(ctx: Ctx) {
    let s = &ctx.store;
    let ls = granted(&ctx, &["a"]).await;
    LicenseStore::delete(s, &[lid("a")], &[job(JobKind::Revoke, &ls[0])], &change())
        .await
        .unwrap();
    assert!(s.claim(at(10), 10, at(40)).await.unwrap().is_empty());
    assert_eq!(s.backlog(at(10)).await.unwrap(), Backlog::default());
}

async fn a_revoke_waits_behind_its_grant_in_flight(ctx: Ctx) {
    let s = &ctx.store;
    let ls = granted(&ctx, &["a", "b"]).await;
    let grants = s.claim(NOW, 1, at(30)).await.unwrap();
    assert_eq!(grants.len(), 1);
    let (sent, untried) = if grants[0].job.license == *ls[0].id() {
        (&ls[0], &ls[1])
    } else {
        (&ls[1], &ls[0])
    };
    LicenseStore::delete(
        s,
        &[sent.id().clone(), untried.id().clone()],
        &[job(JobKind::Revoke, sent), job(JobKind::Revoke, untried)],
        &change(),
    )
    .await
    .unwrap();
    // The grant in flight keeps its revoke, which waits until the grant is settled.
    assert!(s.claim(NOW, 10, at(30)).await.unwrap().is_empty());
    s.complete(grants[0].id, None).await.unwrap();
    let revokes = s.claim(at(1), 10, at(30)).await.unwrap();
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0].job.kind, JobKind::Revoke);
    assert_eq!(revokes[0].job.license, *sent.id());
}

async fn concurrent_claimers_share_the_jobs_without_overlap(ctx: Ctx) {
    let names: Vec<String> = (0..300).map(|i| format!("l{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    granted(&ctx, &refs).await;
    let mut workers = Vec::new();
    for _ in 0..4 {
        let store = ctx.store.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim(NOW, 7, at(300)).await.unwrap();
                if batch.is_empty() {
                    break mine;
                }
                for j in batch {
                    store.complete(j.id, None).await.unwrap();
                    mine.push(j.id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 300, "every job claimed exactly once");
    assert_eq!(unique.len(), 300);
}

async fn find_by_ids_reads_what_exists(ctx: Ctx) {
    granted(&ctx, &["a", "b"]).await;
    let found = LicenseStore::find_by_ids(&ctx.store, &[lid("b"), lid("zz"), lid("a")])
        .await
        .unwrap();
    let mut ids: Vec<&str> = found.iter().map(|l| l.id().as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a", "b"]);
}

async fn a_round_is_settled_in_one_call_and_resync_jobs_queue_outside_a_change(ctx: Ctx) {
    let s = &ctx.store;
    let ls = granted(&ctx, &["a", "b", "c"]).await;
    let claimed = s.claim(NOW, 10, at(30)).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let done: Vec<(i64, Option<License>)> = claimed
        .iter()
        .map(|j| {
            let settled = (j.job.license.as_str() != "c")
                .then(|| processing(j.job.license.as_str()).confirm().unwrap());
            (j.id, settled)
        })
        .collect();
    s.complete_many(&done).await.unwrap();
    assert_eq!(status(&ctx, "a").await, Some(LicenseState::Active));
    assert_eq!(status(&ctx, "b").await, Some(LicenseState::Active));
    // Settled with nothing: the license keeps its state.
    assert_eq!(
        status(&ctx, "c").await.map(|s| s.status()),
        Some(LicenseStatus::Processing)
    );
    assert_eq!(s.backlog(at(31)).await.unwrap(), Backlog::default());
    assert!(s.claim(at(31), 10, at(60)).await.unwrap().is_empty());

    s.enqueue(&[job(JobKind::Grant, &ls[0])], at(40))
        .await
        .unwrap();
    assert!(
        s.claim(at(39), 10, at(60)).await.unwrap().is_empty(),
        "due at its time"
    );
    let again = s.claim(at(40), 10, at(60)).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    assert_eq!(again[0].job.license, *ls[0].id());
}

async fn delivered_jobs_are_pruned_and_the_others_kept(ctx: Ctx) {
    let s = &ctx.store;
    granted(&ctx, &["a", "b", "c"]).await;
    let claimed = s.claim(NOW, 10, at(30)).await.unwrap();
    assert_eq!(claimed.len(), 3);
    s.complete(claimed[0].id, None).await.unwrap();
    s.park(claimed[1].id, "refused").await.unwrap();
    // The third stays PENDING, leased.
    assert_eq!(
        s.prune_delivered(NOW).await.unwrap(),
        0,
        "not due before NOW"
    );
    assert_eq!(
        s.prune_delivered(at(1)).await.unwrap(),
        1,
        "the delivered one"
    );
    assert_eq!(s.prune_delivered(at(1)).await.unwrap(), 0);
    let left = s.backlog(at(60)).await.unwrap();
    assert_eq!(
        (left.failed, left.due),
        (1, 1),
        "parked and pending jobs are kept"
    );
}

async fn open_jobs_say_where_each_license_waits(ctx: Ctx) {
    let s = &ctx.store;
    let ls = granted(&ctx, &["a", "b", "c", "d", "e"]).await;
    let ids: Vec<_> = ls.iter().map(|l| l.id().clone()).collect();
    // a: never tried; b: in flight; c: retrying; d: parked; e: delivered.
    let claimed = s.claim(NOW, 10, at(30)).await.unwrap();
    let job_of = |id: &str| {
        claimed
            .iter()
            .find(|j| j.job.license.as_str() == id)
            .unwrap()
            .id
    };
    // a is claimed too: put it back untried by the operator's path (park, then requeue).
    s.park(job_of("a"), "stuck").await.unwrap();
    let ops = Change {
        actor: Actor::ManagementKey("ops".into()),
        at: at(1),
        idempotency: None,
    };
    s.requeue(job_of("a"), &ops).await.unwrap();
    s.retry(job_of("c"), at(8), "HTTP 503").await.unwrap();
    s.park(job_of("d"), "HTTP 503 ten times").await.unwrap();
    s.complete(job_of("e"), None).await.unwrap();

    let open = s.open_jobs_of(&ids).await.unwrap();
    let seen: Vec<(&str, OpenJobState, u32, Option<&str>)> = open
        .iter()
        .map(|j| {
            (
                j.license.as_str(),
                j.state,
                j.attempts,
                j.last_error.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("a", OpenJobState::Pending, 0, Some("stuck")),
            ("b", OpenJobState::Pending, 1, None),
            ("c", OpenJobState::Retrying, 1, Some("HTTP 503")),
            ("d", OpenJobState::Parked, 1, Some("HTTP 503 ten times")),
        ]
    );
    assert!(open.iter().all(|j| j.kind == JobKind::Grant));
    assert_eq!(open[0].due_at, at(1));
    assert_eq!(open[2].due_at, at(8));
    assert!(open.windows(2).all(|w| w[0].id < w[1].id), "in id order");
    // Only the licenses asked about; none asked, none read.
    let only_c = s.open_jobs_of(&[lid("c"), lid("nope")]).await.unwrap();
    assert_eq!(only_c.len(), 1);
    assert_eq!(only_c[0].license, lid("c"));
    assert!(s.open_jobs_of(&[]).await.unwrap().is_empty());
}

macro_rules! backends {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let ctx = super::Ctx::new(licenses_testkit::TestDatabase::postgres()).await;
                    super::$test(ctx).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let ctx = super::Ctx::new(licenses_testkit::TestDatabase::sqlite()).await;
                    super::$test(ctx).await;
                }
            )*
        }
    };
}

backends!(
    claims_lease_and_settle_with_the_license,
    a_retried_job_waits_for_its_time,
    a_revoke_cancels_a_grant_never_tried,
    a_revoke_waits_behind_its_grant_in_flight,
    concurrent_claimers_share_the_jobs_without_overlap,
    find_by_ids_reads_what_exists,
    a_round_is_settled_in_one_call_and_resync_jobs_queue_outside_a_change,
    delivered_jobs_are_pruned_and_the_others_kept,
    open_jobs_say_where_each_license_waits,
);
