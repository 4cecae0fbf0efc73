//! The repository contract: written once, run against every backend (the `contract!` macro
//! at the end generates one `#[tokio::test]` per backend and rule). Each test has a fresh
//! database of its own (licenses-testkit).
//! (Over 600 lines: the one contract every backend runs; splitting it would split the contract.)
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::Duration;

use diesel::prelude::*;
use licenses_app::ports::{
    Actor, Conflict, IdempotencyStore, JobKind, LicenseQuery, LicenseStore, NewEntitlementJob,
    ProductStore, StoreError, StoreHealth,
};
use licenses_domain::{License, LicenseState, LicenseStatus, ProductId, Timestamp, UserId};
use licenses_store::schema::{audit_log, entitlement_jobs, licenses};
use licenses_store::{Backend, OpenError, Store, StoreConfig};
use licenses_testkit::{TestDatabase, free_port};
use support::*;

fn query() -> LicenseQuery {
    LicenseQuery {
        user: None,
        product: None,
        statuses: Vec::new(),
        active_at: None,
        now: NOW,
        after: None,
        limit: 10_000,
    }
}

fn ids(licenses: &[License]) -> Vec<String> {
    licenses.iter().map(|l| l.id().to_string()).collect()
}

type AuditRow = (String, String, String, i64, String);

async fn audit_rows(store: &Store) -> Vec<AuditRow> {
    store
        .with_connection(|c| {
            audit_log::table
                .order(audit_log::id.asc())
                .select((
                    audit_log::action,
                    audit_log::resource_type,
                    audit_log::resource_id,
                    audit_log::occurred_at,
                    audit_log::actor,
                ))
                .load::<AuditRow>(c)
        })
        .await
        .unwrap()
        .unwrap()
}

type JobRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
    i32,
);

async fn job_rows(store: &Store) -> Vec<JobRow> {
    store
        .with_connection(|c| {
            entitlement_jobs::table
                .order(entitlement_jobs::id.asc())
                .select((
                    entitlement_jobs::kind,
                    entitlement_jobs::license_id,
                    entitlement_jobs::user_id,
                    entitlement_jobs::irdeto_product,
                    entitlement_jobs::valid_from,
                    entitlement_jobs::valid_until,
                    entitlement_jobs::state,
                    entitlement_jobs::attempts,
                ))
                .load::<JobRow>(c)
        })
        .await
        .unwrap()
        .unwrap()
}

async fn license_count(store: &Store) -> i64 {
    store
        .with_connection(|c| licenses::table.count().get_result::<i64>(c))
        .await
        .unwrap()
        .unwrap()
}

fn grant_job(l: &License) -> NewEntitlementJob {
    NewEntitlementJob {
        kind: JobKind::Grant,
        license: l.id().clone(),
        user: l.user().clone(),
        irdeto_product: "IRD-SPORT-01".into(),
        valid_from: l.start_date(),
        valid_until: l.stop_date(),
    }
}

async fn with_products(ctx: &Ctx, ids: &[&str]) {
    for id in ids {
        ProductStore::create(&ctx.store, &full_product(id), &change())
            .await
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Products

async fn products_round_trip_every_field(ctx: Ctx) {
    let s = &ctx.store;
    let full = full_product("p-full");
    let plain = plain_product("p-plain");
    ProductStore::create(s, &plain, &change()).await.unwrap();
    ProductStore::create(s, &full, &change()).await.unwrap();

    assert_eq!(
        ProductStore::get(s, &pid("p-full")).await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        ProductStore::get(s, &pid("p-plain")).await.unwrap(),
        Some(plain.clone())
    );
    assert_eq!(ProductStore::get(s, &pid("p-none")).await.unwrap(), None);
    assert_eq!(s.list().await.unwrap(), vec![full.clone(), plain.clone()]);
    let many = s
        .get_many(&[pid("p-plain"), pid("p-none"), pid("p-full"), pid("p-plain")])
        .await
        .unwrap();
    assert_eq!(many, vec![full, plain]);
    assert_eq!(s.get_many(&[]).await.unwrap(), vec![]);
}

async fn product_ids_are_unique(ctx: Ctx) {
    let s = &ctx.store;
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    let again = ProductStore::create(s, &plain_product("p1"), &change()).await;
    assert_eq!(again, Err(StoreError::Conflict(Conflict::DuplicateId)));
    assert_eq!(
        ProductStore::get(s, &pid("p1")).await.unwrap(),
        Some(full_product("p1"))
    );
}

async fn product_update_replaces_every_field(ctx: Ctx) {
    let s = &ctx.store;
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    // The plain product under the full one's id: every field changes, optional ones to none.
    let replaced =
        licenses_domain::Product::new(pid("p1"), plain_product("x").into_draft()).unwrap();
    s.update(&replaced, &change()).await.unwrap();
    assert_eq!(
        ProductStore::get(s, &pid("p1")).await.unwrap(),
        Some(replaced)
    );

    let missing = s.update(&plain_product("gone"), &change()).await;
    assert_eq!(missing, Err(StoreError::NotFound));
}

async fn product_delete_refuses_while_licenses_refer_to_it(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1", "p2"]).await;
    let batch = [
        active("l1", "u1", "p1"),
        active("l2", "u2", "p1"),
        active("l3", "u1", "p2"),
    ];
    LicenseStore::create(s, &batch, &[], &change())
        .await
        .unwrap();

    let refused = ProductStore::delete(s, &pid("p1"), &change()).await;
    assert_eq!(
        refused,
        Err(StoreError::Conflict(Conflict::ProductInUse { licenses: 2 }))
    );
    assert!(ProductStore::get(s, &pid("p1")).await.unwrap().is_some());

    LicenseStore::delete(s, &[lid("l1"), lid("l2")], &[], &change())
        .await
        .unwrap();
    ProductStore::delete(s, &pid("p1"), &change())
        .await
        .unwrap();
    assert_eq!(ProductStore::get(s, &pid("p1")).await.unwrap(), None);
    assert_eq!(
        ProductStore::delete(s, &pid("p1"), &change()).await,
        Err(StoreError::NotFound)
    );
}

// ---------------------------------------------------------------------------------------------
// Licenses: writes

async fn licenses_round_trip_every_field(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let mut batch: Vec<License> = every_state()
        .into_iter()
        .enumerate()
        .map(|(i, st)| full_license(&format!("full-{i}"), "u1", "p1", st))
        .collect();
    batch.push(license(
        "bare",
        "u1",
        "p1",
        LicenseState::Active,
        at(0),
        None,
    ));
    LicenseStore::create(s, &batch, &[], &change())
        .await
        .unwrap();
    for l in &batch {
        assert_eq!(
            LicenseStore::get(s, l.id()).await.unwrap().as_ref(),
            Some(l)
        );
    }
    assert_eq!(LicenseStore::get(s, &lid("none")).await.unwrap(), None);
}

async fn batch_create_is_all_or_nothing(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let first = with_order(&active("l0", "u1", "p1"), "o-1");
    LicenseStore::create(
        s,
        std::slice::from_ref(&first),
        &[grant_job(&first)],
        &change(),
    )
    .await
    .unwrap();
    let (audit_before, jobs_before) = (audit_rows(s).await, job_rows(s).await);

    // Position 3 reuses u1's o-1; the same order id for another user is fine.
    let batch = vec![
        active("l1", "u1", "p1"),
        with_order(&active("l2", "u2", "p1"), "o-1"),
        with_order(&active("l3", "u1", "p1"), "o-2"),
        with_order(&active("l4", "u1", "p1"), "o-1"),
        active("l5", "u3", "p1"),
    ];
    let jobs: Vec<_> = batch.iter().map(grant_job).collect();
    let refused = LicenseStore::create(s, &batch, &jobs, &change()).await;
    assert_eq!(
        refused,
        Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![3])))
    );
    for l in &batch {
        assert_eq!(
            LicenseStore::get(s, l.id()).await.unwrap(),
            None,
            "{}",
            l.id()
        );
    }
    assert_eq!(audit_rows(s).await, audit_before);
    assert_eq!(job_rows(s).await, jobs_before);

    // Twice the same order within the batch: the later one is named.
    let twice = vec![
        with_order(&active("l6", "u9", "p1"), "o-9"),
        active("l7", "u9", "p1"),
        with_order(&active("l8", "u9", "p1"), "o-9"),
    ];
    assert_eq!(
        LicenseStore::create(s, &twice, &[], &change()).await,
        Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![2])))
    );

    // Without the duplicate, everything is written.
    let mut fixed = batch.clone();
    fixed.remove(3);
    LicenseStore::create(s, &fixed, &jobs[..4], &change())
        .await
        .unwrap();
    assert_eq!(license_count(s).await, 5);
}

async fn batch_create_refuses_taken_ids_and_gone_products(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    LicenseStore::create(s, &[active("l1", "u1", "p1")], &[], &change())
        .await
        .unwrap();

    let taken = [active("l2", "u1", "p1"), active("l1", "u2", "p1")];
    assert_eq!(
        LicenseStore::create(s, &taken, &[], &change()).await,
        Err(StoreError::Conflict(Conflict::DuplicateId))
    );
    let gone = [
        active("l3", "u1", "p1"),
        active("l4", "u1", "no-such-product"),
    ];
    assert_eq!(
        LicenseStore::create(s, &gone, &[], &change()).await,
        Err(StoreError::Conflict(Conflict::ProductGone))
    );
    assert_eq!(license_count(s).await, 1);
}

async fn large_batches_are_chunked_in_one_transaction(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let n = 2_500;
    let batch: Vec<License> = (0..n)
        .map(|i| {
            let l = full_license(
                &format!("bulk-{i:05}"),
                &format!("u{}", i % 7),
                "p1",
                LicenseState::Active,
            );
            with_order(&l, &format!("legacy-{i}"))
        })
        .collect();
    let jobs: Vec<_> = batch.iter().map(grant_job).collect();
    LicenseStore::create(s, &batch, &jobs, &change())
        .await
        .unwrap();
    assert_eq!(license_count(s).await, n);
    assert_eq!(audit_rows(s).await.len(), 2_500 + 1);
    assert_eq!(job_rows(s).await.len(), 2_500);
    let stored = LicenseStore::find(s, &query()).await.unwrap();
    assert_eq!(stored, batch);

    // A reused order id at the end of the last chunk: nothing of the second batch is written.
    let mut again: Vec<License> = (0..n)
        .map(|i| {
            with_order(
                &active(&format!("more-{i:05}"), "u1", "p1"),
                &format!("new-{i}"),
            )
        })
        .collect();
    again[n as usize - 1] = with_order(&active("more-last", "u3", "p1"), "legacy-3");
    assert_eq!(
        LicenseStore::create(s, &again, &[], &change()).await,
        Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![
            n as usize - 1
        ])))
    );
    assert_eq!(license_count(s).await, n);

    // And deleting them all is one call too.
    let all: Vec<_> = batch.iter().map(|l| l.id().clone()).collect();
    LicenseStore::delete(s, &all, &[], &change()).await.unwrap();
    assert_eq!(license_count(s).await, 0);
}

async fn delete_names_missing_positions_and_deletes_nothing(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let batch = [
        active("l1", "u1", "p1"),
        active("l2", "u1", "p1"),
        active("l3", "u2", "p1"),
    ];
    LicenseStore::create(s, &batch, &[], &change())
        .await
        .unwrap();
    let jobs_before = job_rows(s).await;

    let revoke = NewEntitlementJob {
        kind: JobKind::Revoke,
        ..grant_job(&batch[0])
    };
    let refused = LicenseStore::delete(
        s,
        &[lid("l1"), lid("x1"), lid("l3"), lid("x2")],
        std::slice::from_ref(&revoke),
        &change(),
    )
    .await;
    assert_eq!(refused, Err(StoreError::MissingItems(vec![1, 3])));
    assert_eq!(license_count(s).await, 3);
    assert_eq!(job_rows(s).await, jobs_before);

    LicenseStore::delete(s, &[lid("l1"), lid("l3")], &[revoke], &change())
        .await
        .unwrap();
    assert_eq!(ids(&LicenseStore::find(s, &query()).await.unwrap()), ["l2"]);
    // The revoke outlives its license.
    let jobs = job_rows(s).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].0.as_str(), jobs[0].1.as_str()), ("REVOKE", "l1"));
    assert_eq!(
        LicenseStore::delete(s, &[lid("l1")], &[], &change()).await,
        Err(StoreError::MissingItems(vec![0]))
    );
}

async fn jobs_commit_and_roll_back_with_their_licenses(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let l = license(
        "l1",
        "u1",
        "p1",
        LicenseState::Processing {
            requested: licenses_domain::Requested::Active,
        },
        at(-10),
        Some(at(1000)),
    );
    LicenseStore::create(s, std::slice::from_ref(&l), &[grant_job(&l)], &change())
        .await
        .unwrap();
    assert_eq!(
        job_rows(s).await,
        vec![(
            "GRANT".into(),
            "l1".into(),
            "u1".into(),
            "IRD-SPORT-01".into(),
            at(-10).unix(),
            Some(at(1000).unix()),
            "PENDING".into(),
            0
        )]
    );

    // The license is refused (its id is taken): its job is not queued.
    let dup = active("l1", "u2", "p1");
    assert!(
        LicenseStore::create(s, std::slice::from_ref(&dup), &[grant_job(&dup)], &change())
            .await
            .is_err()
    );
    assert_eq!(job_rows(s).await.len(), 1);
}

/// One license's creation is all or nothing even when its last write fails: on PostgreSQL
/// it is one statement outside a transaction, which must not leave its first inserts behind.
async fn a_creation_failing_at_its_audit_row_writes_nothing(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let refuse_audit = if ctx.db.is_postgres() {
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$; \
         CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW \
           WHEN (NEW.resource_id = 'refused') EXECUTE FUNCTION refuse_audit();"
    } else {
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
           WHEN NEW.resource_id = 'refused' BEGIN SELECT RAISE(ABORT, 'audit refused'); END;"
    };
    s.with_connection(move |c| {
        use diesel::connection::SimpleConnection;
        c.batch_execute(refuse_audit)
    })
    .await
    .unwrap()
    .unwrap();

    let refused = active("refused", "u1", "p1");
    let created = LicenseStore::create(
        s,
        std::slice::from_ref(&refused),
        &[grant_job(&refused)],
        &change_with(record("user:u1", "key-refused", NOW)),
    )
    .await;
    assert!(created.is_err(), "{created:?}");
    assert_eq!(license_count(s).await, 0);
    assert_eq!(job_rows(s).await, []);
    assert_eq!(
        IdempotencyStore::find(s, "user:u1", "key-refused")
            .await
            .unwrap(),
        None
    );
    let events: i64 = s
        .with_connection(|c| {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "(SELECT count(*) FROM events WHERE subject_id = 'refused')",
            ))
            .get_result(c)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(events, 0);

    // The next creation goes in whole.
    let next = active("next", "u1", "p1");
    LicenseStore::create(
        s,
        std::slice::from_ref(&next),
        &[grant_job(&next)],
        &change_with(record("user:u1", "key-refused", NOW)),
    )
    .await
    .unwrap();
    assert_eq!(license_count(s).await, 1);
    assert_eq!(job_rows(s).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Licenses: reads

/// Licenses in every stored state, with dates on both sides of NOW and exactly at it.
fn status_fixture() -> Vec<License> {
    let dates: [(i64, Option<i64>); 7] = [
        (-100, None),
        (-100, Some(-1)),
        (-100, Some(0)),
        (-100, Some(1)),
        (50, Some(100)),
        (50, None),
        (0, Some(50)),
    ];
    let mut out = Vec::new();
    for (s, state) in every_state().into_iter().enumerate() {
        for (d, (start, stop)) in dates.iter().enumerate() {
            for (user, product) in [("u1", "p1"), ("u1", "p2"), ("u2", "p1")] {
                out.push(license(
                    &format!("L{s}{d}-{user}-{product}"),
                    user,
                    product,
                    state.clone(),
                    at(*start),
                    stop.map(at),
                ));
            }
        }
    }
    out
}

async fn filters_agree_with_the_domain(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1", "p2"]).await;
    let all = status_fixture();
    LicenseStore::create(s, &all, &[], &change()).await.unwrap();

    let mut status_sets: Vec<Vec<LicenseStatus>> =
        LicenseStatus::ALL.iter().map(|st| vec![*st]).collect();
    status_sets.push(vec![]);
    status_sets.push(LicenseStatus::ALL.to_vec());
    status_sets.push(vec![LicenseStatus::Active, LicenseStatus::Expired]);
    status_sets.push(vec![LicenseStatus::Suspended, LicenseStatus::Processing]);
    let times = [-101, -100, -1, 0, 1, 49, 50, 99, 100, 101];
    let scopes: [(Option<&str>, Option<&str>); 4] = [
        (None, None),
        (Some("u1"), None),
        (None, Some("p1")),
        (Some("u1"), Some("p2")),
    ];

    let mut checked = 0;
    for (user, product) in scopes {
        let in_scope = |l: &&License| {
            user.is_none_or(|u| l.user().as_str() == u)
                && product.is_none_or(|p| l.product().as_str() == p)
        };
        for now_offset in [0, 75] {
            let now = at(now_offset);
            for statuses in &status_sets {
                for active_at in std::iter::once(None).chain(times.iter().map(|t| Some(at(*t)))) {
                    // Every combination with a status filter would be slow; active_at runs
                    // with no status filter and with ACTIVE.
                    if active_at.is_some()
                        && !(statuses.is_empty() || statuses == &[LicenseStatus::Active])
                    {
                        continue;
                    }
                    let q = LicenseQuery {
                        user: user.map(uid),
                        product: product.map(pid),
                        statuses: statuses.clone(),
                        active_at,
                        now,
                        ..query()
                    };
                    let expected: Vec<String> = {
                        let mut v: Vec<&License> = all
                            .iter()
                            .filter(in_scope)
                            .filter(|l| statuses.is_empty() || statuses.contains(&l.status_at(now)))
                            .filter(|l| active_at.is_none_or(|t| l.is_effective_at(t)))
                            .collect();
                        v.sort_by(|a, b| a.id().cmp(b.id()));
                        v.into_iter().map(|l| l.id().to_string()).collect()
                    };
                    let got = ids(&LicenseStore::find(s, &q).await.unwrap());
                    assert_eq!(got, expected, "{q:?}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100);
}

async fn keyset_pages_never_skip_nor_repeat(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    // Ids whose byte order differs from a natural-language collation's.
    let names = [
        "Zeta", "alpha", "beta-1", "Beta_2", "10", "9", "a.b", "a-b", "a_b", "ZZ", "zz", "0",
        "~tilde", "A", "b", "B", "ab", "aB", "Ab", "_", "-", "x1", "x10", "x2", "é", "e", "f",
    ];
    let batch: Vec<License> = names.iter().map(|n| active(n, "u1", "p1")).collect();
    LicenseStore::create(s, &batch, &[], &change())
        .await
        .unwrap();
    let mut expected: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    expected.sort();

    let mut seen = Vec::new();
    let mut after = None;
    let mut added_meanwhile = false;
    loop {
        let page = LicenseStore::find(
            s,
            &LicenseQuery {
                after: after.clone(),
                limit: 4,
                user: Some(uid("u1")),
                ..query()
            },
        )
        .await
        .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        after = page.last().map(|l| l.id().clone());
        seen.extend(ids(&page));
        if !added_meanwhile {
            // Licenses created between two pages, before and after the cursor, do not
            // disturb the ones that existed.
            added_meanwhile = true;
            let extra = [active("!first", "u1", "p1"), active("zzz-last", "u1", "p1")];
            LicenseStore::create(s, &extra, &[], &change())
                .await
                .unwrap();
        }
    }
    let originals: Vec<&String> = seen.iter().filter(|i| expected.contains(i)).collect();
    assert_eq!(originals, expected.iter().collect::<Vec<_>>());
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a license was repeated: {seen:?}");
    let sorted = {
        let mut v = seen.clone();
        v.sort();
        v
    };
    assert_eq!(seen, sorted, "pages follow the ids' byte order");
}

// ---------------------------------------------------------------------------------------------
// Idempotency and audit

async fn idempotency_records_are_kept_with_the_change(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let rec = record("user:41", "key-1", NOW);
    LicenseStore::create(
        s,
        &[active("l1", "41", "p1")],
        &[],
        &change_with(rec.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        IdempotencyStore::find(s, "user:41", "key-1").await.unwrap(),
        Some(rec.clone())
    );
    assert_eq!(
        IdempotencyStore::find(s, "user:42", "key-1").await.unwrap(),
        None
    );

    // The same key again: refused, and the change is not applied.
    let again = LicenseStore::create(
        s,
        &[active("l2", "41", "p1")],
        &[],
        &change_with(rec.clone()),
    )
    .await;
    assert_eq!(
        again,
        Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken))
    );
    assert_eq!(LicenseStore::get(s, &lid("l2")).await.unwrap(), None);
    for write in [
        ProductStore::create(s, &plain_product("p9"), &change_with(rec.clone())).await,
        s.update(&full_product("p1"), &change_with(rec.clone()))
            .await,
        ProductStore::delete(s, &pid("p1"), &change_with(rec.clone())).await,
        LicenseStore::delete(s, &[lid("l1")], &[], &change_with(rec.clone())).await,
    ] {
        assert_eq!(
            write,
            Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken))
        );
    }
    assert_eq!(license_count(s).await, 1);

    // A change that fails keeps no record.
    let failed = ProductStore::create(
        s,
        &plain_product("p1"),
        &change_with(record("user:41", "key-2", NOW)),
    )
    .await;
    assert_eq!(failed, Err(StoreError::Conflict(Conflict::DuplicateId)));
    assert_eq!(
        IdempotencyStore::find(s, "user:41", "key-2").await.unwrap(),
        None
    );
}

/// A retry (its key and its order both taken) is refused for its key: the key is written
/// first, in a transaction as in PostgreSQL's one statement, so a retry waits for the key.
async fn a_retry_is_refused_for_its_key_before_its_order(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let rec = record("user:41", "key-retry", NOW);
    let first = with_order(&active("r1", "41", "p1"), "o-retry");
    LicenseStore::create(s, &[first], &[], &change_with(rec.clone()))
        .await
        .unwrap();
    let retry = with_order(&active("r2", "41", "p1"), "o-retry");
    assert_eq!(
        LicenseStore::create(s, &[retry], &[], &change_with(rec)).await,
        Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken))
    );
}

async fn prune_deletes_only_older_records(ctx: Ctx) {
    let s = &ctx.store;
    for (i, created) in [at(-3 * 86_400), at(-86_401), at(-86_400), at(0)]
        .into_iter()
        .enumerate()
    {
        ProductStore::create(
            s,
            &plain_product(&format!("p{i}")),
            &change_with(record("key:bss", &format!("k{i}"), created)),
        )
        .await
        .unwrap();
    }
    assert_eq!(s.prune(at(-86_400)).await.unwrap(), 2);
    assert_eq!(
        IdempotencyStore::find(s, "key:bss", "k1").await.unwrap(),
        None
    );
    assert!(
        IdempotencyStore::find(s, "key:bss", "k2")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.prune(at(-86_400)).await.unwrap(), 0);
}

async fn every_write_is_audited_and_the_trail_is_append_only(ctx: Ctx) {
    let s = &ctx.store;
    let bss = change();
    let user = licenses_app::ports::Change {
        actor: Actor::User(uid("41")),
        at: at(5),
        idempotency: None,
    };
    let system = licenses_app::ports::Change {
        actor: Actor::System("import"),
        at: at(9),
        idempotency: None,
    };
    ProductStore::create(s, &full_product("p1"), &bss)
        .await
        .unwrap();
    s.update(&full_product("p1"), &bss).await.unwrap();
    LicenseStore::create(
        s,
        &[active("l1", "41", "p1"), active("l2", "41", "p1")],
        &[],
        &user,
    )
    .await
    .unwrap();
    LicenseStore::delete(s, &[lid("l2")], &[], &system)
        .await
        .unwrap();
    ProductStore::create(s, &plain_product("p2"), &bss)
        .await
        .unwrap();
    ProductStore::delete(s, &pid("p2"), &bss).await.unwrap();
    // Refused writes leave no trace.
    let _ = ProductStore::delete(s, &pid("p1"), &bss).await;

    let row = |a: &str, t: &str, id: &str, when: Timestamp, who: &str| {
        (
            a.to_owned(),
            t.to_owned(),
            id.to_owned(),
            when.unix(),
            who.to_owned(),
        )
    };
    assert_eq!(
        audit_rows(s).await,
        vec![
            row("create", "product", "p1", NOW, "key:bss"),
            row("update", "product", "p1", NOW, "key:bss"),
            row("create", "license", "l1", at(5), "user:41"),
            row("create", "license", "l2", at(5), "user:41"),
            row("delete", "license", "l2", at(9), "system:import"),
            row("create", "product", "p2", NOW, "key:bss"),
            row("delete", "product", "p2", NOW, "key:bss"),
        ]
    );

    let (update, delete) = s
        .with_connection(|c| {
            let update = diesel::update(audit_log::table)
                .set(audit_log::actor.eq("someone else"))
                .execute(c);
            let delete = diesel::delete(audit_log::table).execute(c);
            (
                update.map_err(|e| e.to_string()),
                delete.map_err(|e| e.to_string()),
            )
        })
        .await
        .unwrap();
    assert!(
        update.as_ref().is_err_and(|e| e.contains("append-only")),
        "{update:?}"
    );
    assert!(
        delete.as_ref().is_err_and(|e| e.contains("append-only")),
        "{delete:?}"
    );
    assert_eq!(audit_rows(s).await.len(), 7);
}

// ---------------------------------------------------------------------------------------------
// Replacement (the support staff's suspension and reinstatement) and the audit trail

fn support(offset: i64) -> licenses_app::ports::Change {
    licenses_app::ports::Change {
        actor: Actor::ManagementKey("support".into()),
        at: at(offset),
        idempotency: None,
    }
}

fn revoke_job(l: &License) -> NewEntitlementJob {
    NewEntitlementJob {
        kind: JobKind::Revoke,
        ..grant_job(l)
    }
}

async fn replace_is_all_or_nothing(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let original = full_license("l1", "u1", "p1", LicenseState::Active);
    let other = full_license("l2", "u1", "p1", LicenseState::Active);
    LicenseStore::create(s, &[original.clone(), other], &[], &change())
        .await
        .unwrap();
    let (audited, jobs) = (audit_rows(s).await.len(), job_rows(s).await.len());

    // The copy keeps the (user, order id) of the license it replaces.
    let suspended = original.clone().suspend_by_admin(lid("s1"), NOW).unwrap();
    s.replace(
        &lid("l1"),
        &suspended,
        &[revoke_job(&original)],
        &support(10),
    )
    .await
    .unwrap();
    assert_eq!(LicenseStore::get(s, &lid("l1")).await.unwrap(), None);
    assert_eq!(
        LicenseStore::get(s, &lid("s1")).await.unwrap(),
        Some(suspended.clone())
    );
    let queued = job_rows(s).await;
    assert_eq!(queued.len(), jobs + 1);
    assert_eq!(
        (queued[jobs].0.as_str(), queued[jobs].1.as_str()),
        ("REVOKE", "l1")
    );
    assert_eq!(audit_rows(s).await.len(), audited + 2);

    let unchanged = |s: &Store| {
        let s = s.clone();
        async move {
            (
                license_count(&s).await,
                job_rows(&s).await.len(),
                audit_rows(&s).await.len(),
            )
        }
    };
    let before = unchanged(s).await;

    // The old license is gone (revoked meanwhile): nothing is written, not even the copy.
    let copy = suspended
        .clone()
        .reinstate(lid("r1"), licenses_domain::Activation::Immediate, NOW)
        .unwrap();
    let gone = s
        .replace(&lid("l1"), &copy, &[grant_job(&copy)], &support(20))
        .await;
    assert_eq!(gone, Err(StoreError::NotFound));
    assert_eq!(unchanged(s).await, before);
    assert_eq!(LicenseStore::get(s, &lid("r1")).await.unwrap(), None);

    // The copy's id is taken: the old license is back, nothing else written.
    let taken = suspended
        .clone()
        .reinstate(lid("l2"), licenses_domain::Activation::Immediate, NOW)
        .unwrap();
    let refused = s
        .replace(&lid("s1"), &taken, &[grant_job(&taken)], &support(20))
        .await;
    assert_eq!(refused, Err(StoreError::Conflict(Conflict::DuplicateId)));
    assert_eq!(unchanged(s).await, before);
    assert_eq!(
        LicenseStore::get(s, &lid("s1")).await.unwrap(),
        Some(suspended)
    );
}

async fn the_audit_trail_follows_a_license_through_its_replacements(ctx: Ctx) {
    use licenses_app::ports::{AuditAction, AuditEntry};
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let original = full_license("l1", "u1", "p1", LicenseState::Active);
    LicenseStore::create(s, std::slice::from_ref(&original), &[], &change())
        .await
        .unwrap();
    let suspended = original.suspend_by_admin(lid("s1"), NOW).unwrap();
    s.replace(&lid("l1"), &suspended, &[], &support(10))
        .await
        .unwrap();
    let reinstated = suspended
        .reinstate(lid("r1"), licenses_domain::Activation::Immediate, NOW)
        .unwrap();
    s.replace(&lid("s1"), &reinstated, &[], &support(20))
        .await
        .unwrap();
    let import = licenses_app::ports::Change {
        actor: Actor::System("import"),
        at: at(30),
        idempotency: None,
    };
    LicenseStore::delete(s, &[lid("r1")], &[], &import)
        .await
        .unwrap();

    let entry = |action, when: Timestamp, who: &str, related: Option<&str>| AuditEntry {
        at: when,
        action,
        actor: who.to_owned(),
        related: related.map(lid),
    };
    assert_eq!(
        s.audit_trail(&lid("l1")).await.unwrap(),
        [
            entry(AuditAction::Create, NOW, "key:bss", None),
            entry(AuditAction::Suspend, at(10), "key:support", Some("s1")),
        ]
    );
    assert_eq!(
        s.audit_trail(&lid("s1")).await.unwrap(),
        [
            entry(AuditAction::Create, at(10), "key:support", Some("l1")),
            entry(AuditAction::Reinstate, at(20), "key:support", Some("r1")),
        ]
    );
    // Deleted, and still readable.
    assert_eq!(
        s.audit_trail(&lid("r1")).await.unwrap(),
        [
            entry(AuditAction::Create, at(20), "key:support", Some("s1")),
            entry(AuditAction::Delete, at(30), "system:import", None),
        ]
    );
    assert_eq!(s.audit_trail(&lid("never")).await.unwrap(), []);
    // A product's rows are not a license's, even under the same id.
    ProductStore::create(s, &plain_product("l1"), &change())
        .await
        .unwrap();
    assert_eq!(s.audit_trail(&lid("l1")).await.unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Stored codes and corrupt rows

async fn unknown_status_codes_are_refused_by_the_database(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    LicenseStore::create(s, &[active("l1", "u1", "p1")], &[], &change())
        .await
        .unwrap();
    for (status, requested) in [
        ("EXPIRED", None),
        ("BOGUS", None),
        ("active", None),
        ("PROCESSING", None),
        ("ACTIVE", Some("ACTIVE")),
        ("PROCESSING", Some("EXPIRED")),
    ] {
        let refused = s
            .with_connection(move |c| {
                diesel::update(licenses::table.find("l1"))
                    .set((
                        licenses::status.eq(status),
                        licenses::requested_status.eq(requested),
                    ))
                    .execute(c)
            })
            .await
            .unwrap();
        assert!(
            matches!(
                refused,
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::CheckViolation,
                    _
                ))
            ),
            "{status}/{requested:?}: {refused:?}"
        );
    }
}

async fn a_corrupt_row_is_an_internal_error_not_a_panic(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    LicenseStore::create(
        s,
        &[full_license("l1", "u1", "p1", LicenseState::Active)],
        &[],
        &change(),
    )
    .await
    .unwrap();
    s.with_connection(|c| {
        diesel::update(licenses::table.find("l1"))
            .set(licenses::price_currency.eq("ZZZ"))
            .execute(c)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(matches!(
        LicenseStore::get(s, &lid("l1")).await,
        Err(StoreError::Internal(_))
    ));
    assert!(matches!(
        LicenseStore::find(s, &query()).await,
        Err(StoreError::Internal(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Availability

async fn an_exhausted_pool_answers_unavailable_without_waiting_for_it(ctx: Ctx) {
    let store = Store::open(&StoreConfig {
        pool_size: 1,
        checkout_timeout: Duration::from_millis(300),
        ..config(ctx.db.url())
    })
    .unwrap();
    let (release, released) = mpsc::channel::<()>();
    let (held, holding) = tokio::sync::oneshot::channel::<()>();
    let holder = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .with_connection(move |_conn| {
                    let _ = held.send(());
                    let _ = released.recv();
                })
                .await
        }
    });
    holding.await.unwrap();

    // The only connection is held until `release`: the second call must answer by itself.
    let second = tokio::time::timeout(Duration::from_secs(60), store.with_connection(|_| ()))
        .await
        .expect("the call answered while the pool was still exhausted");
    assert!(
        matches!(second, Err(StoreError::Unavailable(_))),
        "{second:?}"
    );
    let ready = tokio::time::timeout(Duration::from_secs(60), store.ready())
        .await
        .expect("the call answered while the pool was still exhausted");
    assert!(
        matches!(ready, Err(StoreError::Unavailable(_))),
        "{ready:?}"
    );

    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    assert_eq!(store.with_connection(|_| 7).await, Ok(7));
}

async fn an_unreachable_database_fails_to_open_with_a_clear_line(ctx: Ctx) {
    let url = match ctx.store.backend() {
        Backend::Postgres => {
            // A port nobody listens on: bind one, note it, close it.
            let port = free_port();
            format!("postgres://app:s3cret-pw@127.0.0.1:{port}/licenses")
        }
        Backend::Sqlite => {
            // A directory that cannot be created: its parent is a file.
            let file = tempfile::NamedTempFile::new().unwrap();
            let url = format!("sqlite://{}/sub/licenses.db", file.path().display());
            std::mem::forget(file);
            url
        }
    };
    let err = Store::open(&config(&url)).unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, OpenError::Unreachable(_)), "{err:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(!shown.contains('\n'), "{shown}");

    for bad in ["mysql://x/y", "data/licenses.db", "sqlite://"] {
        assert!(
            matches!(Store::open(&config(bad)), Err(OpenError::InvalidUrl(_))),
            "{bad}"
        );
    }
}

async fn ready_needs_a_connection_and_no_pending_migration(ctx: Ctx) {
    assert_eq!(ctx.store.ready().await, Ok(()));
    assert_eq!(ctx.store.pending_migrations().await, Ok(0));
    assert_eq!(ctx.store.migrate().await, Ok(vec![]));

    let fresh = if ctx.db.is_postgres() {
        TestDatabase::postgres()
    } else {
        TestDatabase::sqlite()
    };
    let store = Store::open(&config(fresh.url())).unwrap();
    assert_eq!(store.pending_migrations().await, Ok(9));
    assert!(matches!(
        store.ready().await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(store.migrate().await.unwrap().len(), 9);
    assert_eq!(store.ready().await, Ok(()));
    drop(store);
}

async fn ids_and_users_are_opaque_text(ctx: Ctx) {
    // Users may be e-mail addresses; ids carry punctuation.
    let s = &ctx.store;
    with_products(&ctx, &["p:1/x"]).await;
    let l = active("lic'1\"--", "waqqas.jabbar@gmail.com", "p:1/x");
    LicenseStore::create(s, std::slice::from_ref(&l), &[], &change())
        .await
        .unwrap();
    let found = LicenseStore::find(
        s,
        &LicenseQuery {
            user: Some(UserId::parse("waqqas.jabbar@gmail.com").unwrap()),
            product: Some(ProductId::parse("p:1/x").unwrap()),
            ..query()
        },
    )
    .await
    .unwrap();
    assert_eq!(found, vec![l]);
}

async fn concurrent_creates_of_one_order_let_exactly_one_in(ctx: Ctx) {
    with_products(&ctx, &["p1"]).await;
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let store = ctx.store.clone();
            tokio::spawn(async move {
                let l = with_order(&active(&format!("race-{i}"), "u1", "p1"), "o-race");
                LicenseStore::create(&store, &[l], &[], &change()).await
            })
        })
        .collect();
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(()) => won += 1,
            // A single license is refused by the unique index, and named at its position.
            Err(StoreError::Conflict(Conflict::DuplicateOrders(p))) => assert_eq!(p, [0]),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(license_count(&ctx.store).await, 1);
}

/// PostgreSQL: a batch whose order another writer holds uncommitted while the batch's COPY
/// goes in. The COPY waits on the unique `(user_id, order_id)` index, the other writer
/// commits, and the batch is refused as a reused order, named by its position (read after
/// the rollback); nothing of it is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_losing_an_order_to_a_concurrent_writer_is_refused_whole() {
    use diesel::connection::SimpleConnection;

    let ctx = Ctx::new(TestDatabase::postgres()).await;
    with_products(&ctx, &["p1"]).await;
    let taker = with_order(&active("taker", "u1", "p1"), "o-other");
    LicenseStore::create(&ctx.store, &[taker], &[], &change())
        .await
        .unwrap();
    // The other writer takes (u1, o-race) and holds its transaction open.
    let mut other = PgConnection::establish(ctx.db.url()).unwrap();
    other
        .batch_execute("BEGIN; UPDATE licenses SET order_id = 'o-race' WHERE id = 'taker';")
        .unwrap();

    let batch = vec![
        with_order(&active("b1", "u2", "p1"), "o-b1"),
        with_order(&active("b2", "u1", "p1"), "o-race"),
        with_order(&active("b3", "u3", "p1"), "o-b3"),
    ];
    let store = ctx.store.clone();
    let creating =
        tokio::spawn(async move { LicenseStore::create(&store, &batch, &[], &change()).await });
    // Until the batch waits for the other writer's row lock on the unique index.
    let mut watcher = PgConnection::establish(ctx.db.url()).unwrap();
    let waiting = |c: &mut PgConnection| {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND wait_event_type = 'Lock')",
        ))
        .get_result::<i64>(c)
        .unwrap()
    };
    let mut polls = 0;
    while waiting(&mut watcher) == 0 {
        assert!(polls < 400, "the batch never waited for the other writer");
        tokio::time::sleep(Duration::from_millis(25)).await;
        polls += 1;
    }
    other.batch_execute("COMMIT").unwrap();

    assert_eq!(
        creating.await.unwrap(),
        Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![1])))
    );
    assert_eq!(
        license_count(&ctx.store).await,
        1,
        "nothing of the batch is written"
    );
}

async fn more_callers_than_connections_wait_their_turn(ctx: Ctx) {
    // pool_size 4: 40 callers at once queue on the semaphore within the checkout timeout.
    with_products(&ctx, &["p1"]).await;
    let calls: Vec<_> = (0..40)
        .map(|_| {
            let store = ctx.store.clone();
            tokio::spawn(async move { store.list().await.map(|p| p.len()) })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), Ok(1));
    }
}

async fn concurrent_first_pages_each_get_their_own_users_licenses(ctx: Ctx) {
    // Users' first pages are read together (several reads, one statement): 400 reads at
    // once over 10 users, with and without `active_at` and with several limits, get what
    // each alone would get.
    let s = &ctx.store;
    with_products(&ctx, &["p1", "p2"]).await;
    let all = status_fixture();
    let mut mine = Vec::new();
    for u in 0..8 {
        for i in 0..=u {
            mine.push(active(&format!("x{u}-{i}"), &format!("user{u}"), "p2"));
        }
    }
    LicenseStore::create(s, &all, &[], &change()).await.unwrap();
    LicenseStore::create(s, &mine, &[], &change())
        .await
        .unwrap();
    let everyone: Vec<&License> = all.iter().chain(&mine).collect();
    let users = ["u1", "u2", "user0", "user3", "user7", "nobody"];

    let reads: Vec<_> = (0..400)
        .map(|i| {
            let q = LicenseQuery {
                user: Some(uid(users[i % users.len()])),
                active_at: (i % 3 == 0).then(|| at(0)),
                limit: [1000, 3, 1][i % 4 / 2 + i % 2],
                ..query()
            };
            let store = ctx.store.clone();
            tokio::spawn(async move {
                let got = LicenseStore::find(&store, &q).await;
                (q, got)
            })
        })
        .collect();
    for read in reads {
        let (q, got) = read.await.unwrap();
        let mut expected: Vec<&License> = everyone
            .iter()
            .copied()
            .filter(|l| Some(l.user()) == q.user.as_ref())
            .filter(|l| q.active_at.is_none_or(|t| l.is_effective_at(t)))
            .collect();
        expected.sort_by(|a, b| a.id().cmp(b.id()));
        expected.truncate(q.limit as usize);
        let expected: Vec<String> = expected.iter().map(|l| l.id().to_string()).collect();
        assert_eq!(ids(&got.unwrap()), expected, "{q:?}");
    }
}

async fn existing_orders_names_stored_pairs_and_writes_nothing(ctx: Ctx) {
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let stored = vec![
        with_order(&active("l1", "u1", "p1"), "o-1"),
        with_order(&active("l2", "u2", "p1"), "o-2"),
    ];
    LicenseStore::create(s, &stored, &[], &change())
        .await
        .unwrap();
    let audit_before = audit_rows(s).await;
    let oid = |o: &str| licenses_domain::OrderId::parse(o).unwrap();
    // Exact pairs only: u1's o-2 and u2's o-1 are not stored, though each part is.
    let mut asked = vec![
        (uid("u1"), oid("o-2")),
        (uid("u1"), oid("o-1")),
        (uid("u2"), oid("o-1")),
        (uid("u3"), oid("o-1")),
        (uid("u2"), oid("o-2")),
    ];
    assert_eq!(
        LicenseStore::existing_orders(s, &asked).await.unwrap(),
        vec![1, 4]
    );
    // Positions stay right past the first chunk of the IN lists.
    let mut filler: Vec<_> = (0..1_500)
        .map(|i| (uid(&format!("x{i}")), oid("o-1")))
        .collect();
    filler.append(&mut asked);
    assert_eq!(
        LicenseStore::existing_orders(s, &filler).await.unwrap(),
        vec![1_501, 1_504]
    );
    assert!(
        LicenseStore::existing_orders(s, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(license_count(s).await, 2);
    assert_eq!(audit_rows(s).await, audit_before);
}

async fn a_single_license_reusing_an_order_is_refused_at_position_0(ctx: Ctx) {
    // One license (a purchase) takes no SELECT first: the unique index refuses it, and the
    // whole change (idempotency record, job, audit) is rolled back with it.
    let s = &ctx.store;
    with_products(&ctx, &["p1"]).await;
    let first = with_order(&active("l1", "u1", "p1"), "o-1");
    LicenseStore::create(s, std::slice::from_ref(&first), &[], &change())
        .await
        .unwrap();
    let (audit_before, jobs_before) = (audit_rows(s).await, job_rows(s).await);
    let again = with_order(&active("l2", "u1", "p1"), "o-1");
    assert_eq!(
        LicenseStore::create(
            s,
            std::slice::from_ref(&again),
            &[grant_job(&again)],
            &change_with(record("user:u1", "key-2", NOW)),
        )
        .await,
        Err(StoreError::Conflict(Conflict::DuplicateOrders(vec![0])))
    );
    assert_eq!(LicenseStore::get(s, again.id()).await.unwrap(), None);
    assert_eq!(
        IdempotencyStore::find(s, "user:u1", "key-2").await.unwrap(),
        None
    );
    assert_eq!(audit_rows(s).await, audit_before);
    assert_eq!(job_rows(s).await, jobs_before);

    // The same order id for another user, and a taken license id, alone.
    let other = with_order(&active("l3", "u2", "p1"), "o-1");
    LicenseStore::create(s, std::slice::from_ref(&other), &[], &change())
        .await
        .unwrap();
    let taken = with_order(&active("l1", "u3", "p1"), "o-3");
    assert_eq!(
        LicenseStore::create(s, &[taken], &[], &change()).await,
        Err(StoreError::Conflict(Conflict::DuplicateId))
    );
    assert_eq!(license_count(s).await, 2);
}

macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let ctx = super::Ctx::new(licenses_testkit::TestDatabase::postgres()).await;
                    assert_eq!(ctx.store.backend(), licenses_store::Backend::Postgres);
                    super::$test(ctx).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let ctx = super::Ctx::new(licenses_testkit::TestDatabase::sqlite()).await;
                    assert_eq!(ctx.store.backend(), licenses_store::Backend::Sqlite);
                    super::$test(ctx).await;
                }
            )*
        }
    };
}

contract!(
    products_round_trip_every_field,
    product_ids_are_unique,
    product_update_replaces_every_field,
    product_delete_refuses_while_licenses_refer_to_it,
    licenses_round_trip_every_field,
    batch_create_is_all_or_nothing,
    batch_create_refuses_taken_ids_and_gone_products,
    large_batches_are_chunked_in_one_transaction,
    delete_names_missing_positions_and_deletes_nothing,
    jobs_commit_and_roll_back_with_their_licenses,
    a_creation_failing_at_its_audit_row_writes_nothing,
    filters_agree_with_the_domain,
    keyset_pages_never_skip_nor_repeat,
    idempotency_records_are_kept_with_the_change,
    a_retry_is_refused_for_its_key_before_its_order,
    prune_deletes_only_older_records,
    every_write_is_audited_and_the_trail_is_append_only,
    unknown_status_codes_are_refused_by_the_database,
    a_corrupt_row_is_an_internal_error_not_a_panic,
    an_exhausted_pool_answers_unavailable_without_waiting_for_it,
    an_unreachable_database_fails_to_open_with_a_clear_line,
    ready_needs_a_connection_and_no_pending_migration,
    ids_and_users_are_opaque_text,
    concurrent_creates_of_one_order_let_exactly_one_in,
    more_callers_than_connections_wait_their_turn,
    concurrent_first_pages_each_get_their_own_users_licenses,
    existing_orders_names_stored_pairs_and_writes_nothing,
    a_single_license_reusing_an_order_is_refused_at_position_0,
    replace_is_all_or_nothing,
    the_audit_trail_follows_a_license_through_its_replacements,
);
